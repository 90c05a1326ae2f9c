// truth.go is shared by all sample programs (samples/programs/*/truth.go are
// identical copies; samples/build.sh checks that). It measures, with the
// garbage collector switched off, exactly how many heap bytes each map entry's
// key and value cost, and writes truth.json / memstats.json before the
// program crashes on purpose.
package main

import (
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

// ---------------------------------------------------------------- setup

// procs is GOMAXPROCS as the program started; measurement runs with one P
// and finish restores it before the crash.
var procs int

func setup() {
	debug.SetTraceback("crash")
	debug.SetGCPercent(-1)
	// Measure on a single P: the runtime's own small retained allocations
	// (per-P timer heaps, per-P sudog caches, GC worker goroutines) then
	// settle after a short warm-up instead of appearing at random while a
	// map is being measured.
	procs = runtime.GOMAXPROCS(1)
	warmUp()
}

// warmUp runs GC cycles and channel hand-offs until the live heap stops
// changing by itself, so that live-heap deltas measured later contain only
// what the program allocated.
func warmUp() {
	in, out := make(chan int), make(chan int)
	for i := 0; i < 4; i++ {
		go func() { out <- <-in }() // each handles one value, then exits
	}
	for i := 0; i < 4; i++ {
		in <- i
		<-out
	}
	settle()
}

// settle runs GC cycles until the live heap reads the same 8 times in a row.
func settle() {
	stable, last := 0, heapLive()
	for i := 0; i < 100 && stable < 8; i++ {
		if l := heapLive(); l == last {
			stable++
		} else {
			stable, last = 0, l
		}
	}
	if stable < 8 {
		fail("the live heap does not settle")
	}
}

var msLive runtime.MemStats

// heapLive forces a full collection (mark, then sweep of every span; the GC
// stays disabled otherwise) and returns HeapAlloc, i.e. exactly the bytes of
// the heap objects that are still reachable.
func heapLive() uint64 {
	runtime.GC()
	runtime.ReadMemStats(&msLive)
	return msLive.HeapAlloc
}

// stableLive is heapLive, insisting that two consecutive readings agree.
func stableLive() uint64 {
	last := heapLive()
	for i := 0; i < 10; i++ {
		l := heapLive()
		if l == last {
			return l
		}
		last = l
	}
	fail("the live heap does not settle")
	return 0
}

// sink makes values escape to the heap.
var sink any

// headerBytes measures what creating one empty map the way f does costs:
// used for package-level map literals whose header was allocated during
// package initialization, before any measurement could start.
func headerBytes(f func() any) uint64 {
	begin()
	sink = f()
	c := end()
	sink = nil
	if c.Objects != 1 {
		fail("headerBytes: expected exactly one allocation, got " + strconv.FormatUint(c.Objects, 10))
	}
	return c.Bytes
}

// fail reports a broken invariant and exits WITHOUT a core dump, so that
// samples/build.sh refuses to store a sample whose truth would be wrong.
func fail(msg string) {
	os.Stderr.WriteString("TRUTH VERIFICATION FAILED: " + msg + "\n")
	os.Exit(3)
}

// ---------------------------------------------------------------- measuring

// Cost is what one measured window allocated.
type Cost struct {
	Bytes   uint64 // MemStats.TotalAlloc delta (size-class rounded bytes)
	Objects uint64 // MemStats.Mallocs delta
}

var (
	msBuf    [2]runtime.MemStats
	msPrev   = &msBuf[0]
	msCur    = &msBuf[1]
	measured bool
)

// begin/lap/end bracket measurement windows. ReadMemStats stops the world
// and flushes every P's mcache, so TotalAlloc and Mallocs are exact at that
// instant (runtime/metrics' /gc/heap/allocs:bytes is only updated when an
// mcache span is refilled, which is why it is not used here). Nothing else
// allocates meanwhile: every other goroutine is blocked and the GC is off.
//
//	begin(); <build key>; kc := lap(); <build value>; vc := end()
func begin() {
	runtime.ReadMemStats(msPrev)
	measured = true
}

// lap returns what was allocated since the previous begin/lap and starts the
// next window at the same instant.
func lap() Cost {
	if !measured {
		fail("lap without begin")
	}
	runtime.ReadMemStats(msCur)
	c := Cost{msCur.TotalAlloc - msPrev.TotalAlloc, msCur.Mallocs - msPrev.Mallocs}
	msPrev, msCur = msCur, msPrev
	return c
}

// end closes the current window.
func end() Cost {
	c := lap()
	measured = false
	return c
}

func (c Cost) add(d Cost) Cost { return Cost{c.Bytes + d.Bytes, c.Objects + d.Objects} }

// sizeClasses is the Go heap size-class table (identical in Go 1.21 .. 1.27,
// runtime/sizeclasses.go resp. internal/runtime/gc/sizeclasses.go).
var sizeClasses = [...]uint64{8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256, 288, 320, 352, 384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280, 1408, 1536, 1792, 2048, 2304, 2688, 3072, 3200, 3456, 4096, 4864, 5376, 6144, 6528, 6784, 6912, 8192, 9472, 9728, 10240, 10880, 12288, 13568, 14336, 16384, 18432, 19072, 20480, 21760, 24576, 27264, 28672, 32768}

// classSize is the number of bytes the allocator really hands out for an
// n-byte small object without an allocation header (noscan objects, and
// pointerful objects <= 512 bytes).
func classSize(n int) uint64 {
	for _, c := range sizeClasses {
		if uint64(n) <= c {
			return c
		}
	}
	fail("classSize: large object " + strconv.Itoa(n))
	return 0
}

// expect verifies a window against what the program believes it allocated.
func expect(what string, c Cost, bytes, objects uint64) {
	if c.Bytes != bytes || c.Objects != objects {
		fail(what + ": measured " + strconv.FormatUint(c.Bytes, 10) + " bytes/" +
			strconv.FormatUint(c.Objects, 10) + " objects, expected " +
			strconv.FormatUint(bytes, 10) + "/" + strconv.FormatUint(objects, 10))
	}
}

// ---------------------------------------------------------------- keys

// appendPad appends v in decimal, zero padded to width digits.
func appendPad(b []byte, v uint64, width int) []byte {
	var tmp [20]byte
	d := strconv.AppendUint(tmp[:0], v, 10)
	for i := len(d); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, d...)
}

func appendHex(b []byte, v uint64, width int) []byte {
	const digits = "0123456789abcdef"
	for i := width - 1; i >= 0; i-- {
		b = append(b, digits[(v>>(uint(i)*4))&15])
	}
	return b
}

// rng is a tiny deterministic generator (splitmix64); no allocation.
type rng uint64

func (r *rng) next() uint64 {
	*r += 0x9e3779b97f4a7c15
	z := uint64(*r)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// PrefixOf is the prefix rule documented in samples/README.md: drop the last
// ':'-separated field of the key and keep at most the first two fields.
//
//	"acct:eu-west:000042" -> "acct:eu-west"
//	"sess:9f86d081884c7d65" -> "sess"
//	"a:b:c:d" -> "a:b"
//	"nocolon" -> ""
func PrefixOf(key string) string {
	last := strings.LastIndexByte(key, ':')
	if last < 0 {
		return ""
	}
	p := key[:last]
	if first := strings.IndexByte(p, ':'); first >= 0 {
		if second := strings.IndexByte(p[first+1:], ':'); second >= 0 {
			p = p[:first+1+second]
		}
	}
	return p
}

// ---------------------------------------------------------------- truth

type PrefixTruth struct {
	Prefix     string
	Entries    int
	Bytes      uint64
	KeyBytes   uint64
	ValueBytes uint64
	Objects    uint64
}

type MapTruth struct {
	Name         string
	KeyType      string
	ValueType    string
	Entries      int
	EntriesBytes uint64
	KeyBytes     uint64
	ValueBytes   uint64
	Objects      uint64
	TableBytes   uint64
	Prefixes     []PrefixTruth
	HasMidGrowth bool
	MidGrowth    bool
	Addr         string
	Impl         string
	Holder       string
	Classic      *ClassicInfo

	m       any
	live0   uint64 // heapLive() when start was called
	header  uint64 // header bytes allocated before start (package-level maps)
	started bool
	stopped bool
}

// ClassicInfo is the hmap header of a classic (pre-Swiss) map, read with unsafe.
type ClassicInfo struct {
	B          uint8
	NOverflow  uint16
	Buckets    string
	OldBuckets string
	NEvacuate  uint64
}

type Truth struct {
	Program    string
	GoVersion  string
	GOOS       string
	GOARCH     string
	MapImpl    string
	Goroutines int
	Maps       []*MapTruth
	Notes      []string
	Memstats   string
}

var truth = &Truth{}

func initTruth(program string) {
	truth.Program = program
	truth.GoVersion = runtime.Version()
	truth.GOOS = runtime.GOOS
	truth.GOARCH = runtime.GOARCH
	truth.MapImpl = "swiss"
	if !swissMaps() {
		truth.MapImpl = "classic"
	}
	truth.Memstats = "memstats.json"
	truth.Maps = make([]*MapTruth, 0, 64) // never reallocated while measuring
}

// swissMaps reports whether this binary uses Swiss-table maps (Go >= 1.24
// unless built with GOEXPERIMENT=noswissmap, which runtime.Version reports as
// a trailing " X:noswissmap").
func swissMaps() bool {
	v := runtime.Version()
	if strings.Contains(v, "noswissmap") {
		return false
	}
	v = strings.TrimPrefix(v, "go")
	if i := strings.IndexAny(v, " -"); i >= 0 {
		v = v[:i]
	}
	parts := strings.Split(v, ".")
	if len(parts) < 2 {
		return true
	}
	minor, err := strconv.Atoi(parts[1])
	if err != nil {
		return true
	}
	return minor >= 24
}

// newMap registers a map under the name a person would use for it. m gives
// the map type; it may be a nil map of that type, in which case bind must
// be called with the real map later.
func newMap(name, holder string, m any) *MapTruth {
	t := reflect.TypeOf(m)
	if t.Kind() != reflect.Map {
		fail(name + " is not a map")
	}
	mt := &MapTruth{Name: name, Holder: holder, KeyType: t.Key().String(), ValueType: t.Elem().String(),
		Prefixes: make([]PrefixTruth, 0, 32), m: m}
	if len(truth.Maps) == cap(truth.Maps) {
		fail("too many maps")
	}
	truth.Maps = append(truth.Maps, mt)
	return mt
}

// bind sets the map itself (after newMap was given a typed nil map).
func (mt *MapTruth) bind(m any) {
	if reflect.TypeOf(m) != reflect.TypeOf(mt.m) {
		fail(mt.Name + ": bind with a different type")
	}
	mt.m = m
}

// start begins the live-heap measurement of the map: everything that is
// allocated from now until stop and is still reachable at stop must belong
// to this map (entries or table). header is the size of the map header if
// the map already exists (allocated by package init), else 0.
func (mt *MapTruth) start(header uint64) {
	mt.header = header
	mt.live0 = stableLive()
	mt.started = true
}

// stop ends the live-heap measurement: table_bytes = live growth + header -
// entries_bytes.
func (mt *MapTruth) stop() {
	if !mt.started || mt.stopped {
		fail(mt.Name + ": stop without start")
	}
	live1 := stableLive()
	if live1+mt.header < mt.live0+mt.EntriesBytes {
		fail(mt.Name + ": live heap grew by less than entries_bytes")
	}
	mt.TableBytes = live1 + mt.header - mt.live0 - mt.EntriesBytes
	mt.stopped = true
}

// add accounts one entry. key is used for the prefix only when the map has
// string keys (pass "" otherwise).
func (mt *MapTruth) add(key string, kc, vc Cost) {
	mt.Entries++
	mt.KeyBytes += kc.Bytes
	mt.ValueBytes += vc.Bytes
	mt.EntriesBytes += kc.Bytes + vc.Bytes
	mt.Objects += kc.Objects + vc.Objects
	if mt.KeyType != "string" {
		return
	}
	p := PrefixOf(key)
	for i := range mt.Prefixes {
		if mt.Prefixes[i].Prefix == p {
			pt := &mt.Prefixes[i]
			pt.Entries++
			pt.KeyBytes += kc.Bytes
			pt.ValueBytes += vc.Bytes
			pt.Bytes += kc.Bytes + vc.Bytes
			pt.Objects += kc.Objects + vc.Objects
			return
		}
	}
	if len(mt.Prefixes) == cap(mt.Prefixes) {
		fail(mt.Name + ": too many prefixes") // appending would allocate
	}
	mt.Prefixes = append(mt.Prefixes, PrefixTruth{Prefix: p, Entries: 1, Bytes: kc.Bytes + vc.Bytes,
		KeyBytes: kc.Bytes, ValueBytes: vc.Bytes, Objects: kc.Objects + vc.Objects})
}

// seal checks len(m) against the accounted entries and records the header.
func (mt *MapTruth) seal() {
	v := reflect.ValueOf(mt.m)
	if v.IsNil() {
		fail(mt.Name + ": nil map")
	}
	if !mt.stopped {
		fail(mt.Name + ": table bytes were not measured")
	}
	if v.Len() != mt.Entries {
		fail(mt.Name + ": len " + strconv.Itoa(v.Len()) + " != accounted " + strconv.Itoa(mt.Entries))
	}
	p := v.UnsafePointer()
	mt.Addr = "0x" + strconv.FormatUint(uint64(uintptr(p)), 16)
	if swissMaps() {
		mt.Impl = "swiss"
	} else {
		mt.Impl = "classic"
		mt.Classic = classicHeader(p)
	}
	mt.m = nil
}

// classicHeader reads runtime.hmap. 64-bit layout, identical in Go 1.21..1.23
// and 1.24 with GOEXPERIMENT=noswissmap up to nevacuate:
//
//	count int (0); flags uint8 (8); B uint8 (9); noverflow uint16 (10); hash0 uint32 (12);
//	buckets unsafe.Pointer (16); oldbuckets unsafe.Pointer (24); nevacuate uintptr (32);
//	extra *mapextra (40)   [1.24 noswissmap: clearSeq uint64 (40); extra (48)]
func classicHeader(h unsafe.Pointer) *ClassicInfo {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		fail("classicHeader: 64-bit only")
	}
	return &ClassicInfo{
		B:          *(*uint8)(unsafe.Add(h, 9)),
		NOverflow:  *(*uint16)(unsafe.Add(h, 10)),
		Buckets:    "0x" + strconv.FormatUint(uint64(*(*uintptr)(unsafe.Add(h, 16))), 16),
		OldBuckets: "0x" + strconv.FormatUint(uint64(*(*uintptr)(unsafe.Add(h, 24))), 16),
		NEvacuate:  uint64(*(*uintptr)(unsafe.Add(h, 32))),
	}
}

// ---------------------------------------------------------------- finish

var (
	ms1, ms2    runtime.MemStats
	memBuf      []byte
	nilTarget   *Victim
	goroutinesN int
)

// Victim is the type whose nil pointer the program dereferences at the end.
type Victim struct {
	pad   [3]uint64
	field uint64
}

// finish writes truth.json, then collects garbage, snapshots MemStats into
// memstats.json without allocating, and crashes with a nil dereference.
func finish() {
	truthPath := os.Getenv("TRUTH")
	if truthPath == "" {
		truthPath = "truth.json"
	}
	memPath := os.Getenv("MEMSTATS")
	if memPath == "" {
		memPath = filepath.Join(filepath.Dir(truthPath), "memstats.json")
	}
	for _, mt := range truth.Maps {
		mt.seal()
	}
	// Back to the original number of Ps (the core should look like a normal
	// process), and let the runtime settle (new P: GC worker, timers) before
	// the final snapshot.
	runtime.GOMAXPROCS(procs)
	settle()
	goroutinesN = runtime.NumGoroutine()
	truth.Goroutines = goroutinesN
	data := truth.appendJSON(nil)
	if err := os.WriteFile(truthPath, data, 0o644); err != nil {
		fail(err.Error())
	}
	fd, err := syscall.Open(memPath, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_TRUNC|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		fail(err.Error())
	}
	memBuf = make([]byte, 0, 16<<10)
	truth = nil
	data = nil

	runtime.GC() // completes marking and sweeping; GC stays disabled afterwards
	runtime.ReadMemStats(&ms1)
	b := appendMemStats(memBuf[:0], &ms1)
	writeAll(fd, b)
	runtime.ReadMemStats(&ms2)
	b = memBuf[:0]
	b = append(b, "  \"mallocs_after_write\": "...)
	b = strconv.AppendUint(b, ms2.Mallocs-ms1.Mallocs, 10)
	b = append(b, ",\n  \"total_alloc_after_write\": "...)
	b = strconv.AppendUint(b, ms2.TotalAlloc-ms1.TotalAlloc, 10)
	b = append(b, ",\n  \"goroutines\": "...)
	n := runtime.NumGoroutine()
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, "\n}\n"...)
	writeAll(fd, b)
	syscall.Close(fd)
	if n != goroutinesN {
		fail("goroutine count changed between truth.json and crash")
	}
	crash(nilTarget)
}

func writeAll(fd int, b []byte) {
	for len(b) > 0 {
		n, err := syscall.Write(fd, b)
		if err != nil {
			fail("write memstats")
		}
		b = b[n:]
	}
}

// crash dereferences p, which is nil: SIGSEGV -> runtime panic ->
// GOTRACEBACK=crash -> SIGABRT -> core dump.
//
//go:noinline
func crash(p *Victim) uint64 {
	return p.field + 1
}

func appendField(b []byte, name string, v uint64) []byte {
	b = append(b, "  \""...)
	b = append(b, name...)
	b = append(b, "\": "...)
	b = strconv.AppendUint(b, v, 10)
	return append(b, ",\n"...)
}

func appendMemStats(b []byte, m *runtime.MemStats) []byte {
	b = append(b, "{\n"...)
	b = appendField(b, "heap_objects", m.HeapObjects)
	b = appendField(b, "heap_alloc", m.HeapAlloc)
	b = appendField(b, "heap_inuse", m.HeapInuse)
	b = appendField(b, "heap_idle", m.HeapIdle)
	b = appendField(b, "heap_released", m.HeapReleased)
	b = appendField(b, "heap_sys", m.HeapSys)
	b = appendField(b, "sys", m.Sys)
	b = appendField(b, "mallocs", m.Mallocs)
	b = appendField(b, "frees", m.Frees)
	b = appendField(b, "total_alloc", m.TotalAlloc)
	b = appendField(b, "stack_inuse", m.StackInuse)
	b = appendField(b, "stack_sys", m.StackSys)
	b = appendField(b, "mspan_inuse", m.MSpanInuse)
	b = appendField(b, "mcache_inuse", m.MCacheInuse)
	b = appendField(b, "gc_sys", m.GCSys)
	b = appendField(b, "other_sys", m.OtherSys)
	b = appendField(b, "next_gc", m.NextGC)
	b = appendField(b, "num_gc", uint64(m.NumGC))
	b = appendField(b, "num_forced_gc", uint64(m.NumForcedGC))
	b = append(b, "  \"gc_cpu_fraction\": "...)
	b = strconv.AppendFloat(b, m.GCCPUFraction, 'g', -1, 64)
	b = append(b, ",\n  \"by_size\": ["...)
	for i := range m.BySize {
		s := &m.BySize[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n    {\"size\": "...)
		b = strconv.AppendUint(b, uint64(s.Size), 10)
		b = append(b, ", \"mallocs\": "...)
		b = strconv.AppendUint(b, s.Mallocs, 10)
		b = append(b, ", \"frees\": "...)
		b = strconv.AppendUint(b, s.Frees, 10)
		b = append(b, '}')
	}
	b = append(b, "\n  ],\n"...)
	return b
}

// ---------------------------------------------------------------- JSON
// Hand-written (encoding/json would add ~300 KB compressed to every binary).

func appendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c >= 0x7f:
			fail("non-printable byte in JSON string")
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

type jw struct {
	b     []byte
	depth int
	first bool
}

func (w *jw) nl() {
	w.b = append(w.b, '\n')
	for i := 0; i < w.depth; i++ {
		w.b = append(w.b, "  "...)
	}
}

func (w *jw) sep() {
	if !w.first {
		w.b = append(w.b, ',')
	}
	w.first = false
	w.nl()
}

func (w *jw) open(name string, c byte) {
	w.sep()
	if name != "" {
		w.b = appendQuoted(w.b, name)
		w.b = append(w.b, ": "...)
	}
	w.b = append(w.b, c)
	w.depth++
	w.first = true
}

func (w *jw) close(c byte) {
	w.depth--
	if !w.first {
		w.nl()
	}
	w.b = append(w.b, c)
	w.first = false
}

func (w *jw) key(name string) {
	w.sep()
	w.b = appendQuoted(w.b, name)
	w.b = append(w.b, ": "...)
}

func (w *jw) str(name, v string)          { w.key(name); w.b = appendQuoted(w.b, v) }
func (w *jw) u64(name string, v uint64)   { w.key(name); w.b = strconv.AppendUint(w.b, v, 10) }
func (w *jw) int(name string, v int)      { w.key(name); w.b = strconv.AppendInt(w.b, int64(v), 10) }
func (w *jw) boolean(name string, v bool) { w.key(name); w.b = strconv.AppendBool(w.b, v) }

func (t *Truth) appendJSON(b []byte) []byte {
	w := &jw{b: b, first: true}
	w.b = append(w.b, '{')
	w.depth = 1
	w.str("program", t.Program)
	w.str("go_version", t.GoVersion)
	w.str("goos", t.GOOS)
	w.str("goarch", t.GOARCH)
	w.str("map_impl", t.MapImpl)
	w.int("goroutines", t.Goroutines)
	w.open("maps", '[')
	for _, m := range t.Maps {
		w.open("", '{')
		w.str("name", m.Name)
		w.str("key_type", m.KeyType)
		w.str("value_type", m.ValueType)
		w.int("entries", m.Entries)
		w.u64("entries_bytes", m.EntriesBytes)
		w.u64("key_bytes", m.KeyBytes)
		w.u64("value_bytes", m.ValueBytes)
		w.u64("objects", m.Objects)
		w.u64("table_bytes", m.TableBytes)
		w.u64("total_bytes", m.EntriesBytes+m.TableBytes)
		w.open("prefixes", '[')
		for _, p := range m.Prefixes {
			w.open("", '{')
			w.str("prefix", p.Prefix)
			w.int("entries", p.Entries)
			w.u64("bytes", p.Bytes)
			w.u64("key_bytes", p.KeyBytes)
			w.u64("value_bytes", p.ValueBytes)
			w.u64("objects", p.Objects)
			w.close('}')
		}
		w.close(']')
		if m.HasMidGrowth {
			w.boolean("mid_growth", m.MidGrowth)
		}
		w.str("addr", m.Addr)
		w.str("impl", m.Impl)
		w.str("holder", m.Holder)
		if c := m.Classic; c != nil {
			w.open("classic", '{')
			w.int("B", int(c.B))
			w.int("noverflow", int(c.NOverflow))
			w.str("buckets", c.Buckets)
			w.str("oldbuckets", c.OldBuckets)
			w.u64("nevacuate", c.NEvacuate)
			w.close('}')
		}
		w.close('}')
	}
	w.close(']')
	if len(t.Notes) > 0 {
		w.open("notes", '[')
		for _, n := range t.Notes {
			w.sep()
			w.b = appendQuoted(w.b, n)
		}
		w.close(']')
	}
	w.str("memstats", t.Memstats)
	w.close('}')
	return append(w.b, '\n')
}

// mapPointer returns the runtime map header pointer of m.
func mapPointer(m any) unsafe.Pointer { return reflect.ValueOf(m).UnsafePointer() }
