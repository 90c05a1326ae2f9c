package truth

import (
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unsafe"
)

// PrefixOf is the prefix rule documented in samples/README.md: drop the last
// ':'-separated field of the key and keep at most the first two fields.
//
//	"acct:eu-west:000042" -> "acct:eu-west"
//	"sess:9f86d081884c7d65" -> "sess"
//	"a:b:c:d" -> "a:b"
//	"nocolon" -> ""
//
// The result is a substring of key (it shares key's bytes): never keep it.
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

// maxPrefix is the longest prefix a PrefixTruth can hold.
const maxPrefix = 48

// PrefixTruth accounts the entries of one key prefix. The prefix is copied
// into the struct itself: a substring would keep the first key with that
// prefix reachable from here as well as from its map, and a separately
// allocated copy would be counted as table bytes (it is allocated while the
// map's live heap is being measured).
type PrefixTruth struct {
	prefix     [maxPrefix]byte
	prefixLen  int
	Entries    int
	Bytes      uint64
	KeyBytes   uint64
	ValueBytes uint64
	Objects    uint64
	StoreBytes uint64 // sync.Map only (written when the map's HasStore)
}

// Prefix returns the prefix (a fresh string).
func (p *PrefixTruth) Prefix() string { return string(p.prefix[:p.prefixLen]) }

// Map is what the program knows about one of its maps.
type Map struct {
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
	HasMidGrowth bool // write "mid_growth" (main.growing only)
	MidGrowth    bool
	Addr         string
	Impl         string
	Holder       string
	Classic      *ClassicInfo

	// Written only when set (the services program; see extra.go).
	HeaderOnStack bool        // goroutine-local map whose header is in a goroutine's stack frame
	HasStore      bool        // sync.Map: write store_bytes (map and prefixes)
	StoreBytes    uint64      // sync.Map: live entries' key+value+Store windows
	HasShared     bool        // write shared_bytes / shared_objects
	SharedBytes   uint64      // part of entries_bytes also reachable from another owner
	SharedObjects uint64      // objects behind SharedBytes
	Inner         *InnerTruth // map whose values are maps: totals over the inner maps
	ClosureFunc   string      // map captured by a closure: the closure's function (runtime.FuncForPC)
	ClosureAddr   string      // ... and its funcval (the heap object holding the captured map)
	AlsoHeldBy    []string    // other roots holding the same map
	Sync          *SyncInfo   // sync.Map internals read with unsafe
	States        []StateTruth

	m       any // the map itself until seal
	live0   uint64
	header  uint64
	started bool
	stopped bool

	probe       func() (uintptr, int) // stack map: its header address and len, asked of its goroutine
	anon        bool                  // stack map whose address is never taken (NewAnonStackMap)
	lenChecked  bool                  // anon: CheckLen was called by its goroutine
	syncMap     *sync.Map             // sync.Map (impl "sync.Map") instead of m
	preexisting uint64                // entry bytes that were already live before Start (shared values)
}

// ClassicInfo is the hmap header of a classic (pre-Swiss) map, read with unsafe.
type ClassicInfo struct {
	B          uint8
	NOverflow  uint16
	Buckets    string
	OldBuckets string
	NEvacuate  uint64
}

// Truth is the content of truth.json.
type Truth struct {
	Program    string
	GoVersion  string
	GOOS       string
	GOARCH     string
	MapImpl    string
	Goroutines int
	Maps       []*Map
	Notes      []string
	Memstats   string
	Pools      []PoolTruth   // written only when non-empty (extra.go)
	Shared     []SharedTruth // written only when non-empty (extra.go)
}

// doc is the truth document being built. It is a plain global (in .bss):
// Finish clears it before the final collection, so that nothing it refers
// to is alive in the core.
var doc Truth

func initTruth(program string) {
	doc.Program = program
	doc.GoVersion = runtime.Version()
	doc.GOOS = runtime.GOOS
	doc.GOARCH = runtime.GOARCH
	doc.MapImpl = "swiss"
	if !SwissMaps() {
		doc.MapImpl = "classic"
	}
	doc.Memstats = "memstats.json"
	doc.Maps = make([]*Map, 0, 64) // never reallocated while measuring
}

// SwissMaps reports whether this binary uses Swiss-table maps (Go >= 1.24
// unless built with GOEXPERIMENT=noswissmap, which runtime.Version reports as
// a trailing " X:noswissmap").
func SwissMaps() bool {
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

// NewMap registers a map under the name a person would use for it. m gives
// the map type; it may be a nil map of that type, in which case Bind must
// be called with the real map later.
func NewMap(name, holder string, m any) *Map {
	t := reflect.TypeOf(m)
	if t.Kind() != reflect.Map {
		Fail(name + " is not a map")
	}
	mt := &Map{Name: name, Holder: holder, KeyType: t.Key().String(), ValueType: t.Elem().String(),
		Prefixes: make([]PrefixTruth, 0, 32), m: m}
	if len(doc.Maps) == cap(doc.Maps) {
		Fail("too many maps")
	}
	doc.Maps = append(doc.Maps, mt)
	return mt
}

// Bind sets the map itself (after NewMap was given a typed nil map).
func (mt *Map) Bind(m any) {
	if reflect.TypeOf(m) != reflect.TypeOf(mt.m) {
		Fail(mt.Name + ": Bind with a different type")
	}
	mt.m = m
}

// Start begins the live-heap measurement of the map: everything that is
// allocated from now until Stop and is still reachable at Stop must belong
// to this map (entries or table). header is the size of the map header if
// the map already exists (allocated by package init), else 0.
func (mt *Map) Start(header uint64) {
	mt.header = header
	mt.live0 = stableLive()
	mt.started = true
}

// StartBuilt is Start for a map that was already built, entirely, since the
// last HeapLive reading, and that allocated built live bytes doing so.
func (mt *Map) StartBuilt(built uint64) {
	mt.Start(0)
	mt.live0 -= built
}

// Stop ends the live-heap measurement: table_bytes = live growth + header -
// entries_bytes.
func (mt *Map) Stop() {
	if !mt.started || mt.stopped {
		Fail(mt.Name + ": Stop without Start")
	}
	live1 := stableLive()
	// preexisting is 0 except for maps whose values another owner allocated
	// before Start (AddSharedEntry).
	if live1+mt.header+mt.preexisting < mt.live0+mt.EntriesBytes {
		Fail(mt.Name + ": live heap grew by less than entries_bytes")
	}
	mt.TableBytes = live1 + mt.header + mt.preexisting - mt.live0 - mt.EntriesBytes
	mt.stopped = true
}

// Add accounts one entry. key is used for the prefix only when the map has
// string keys (pass "" otherwise); it is not kept. Add does not allocate.
func (mt *Map) Add(key string, kc, vc Cost) {
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
		pt := &mt.Prefixes[i]
		if string(pt.prefix[:pt.prefixLen]) == p { // no allocation
			pt.Entries++
			pt.KeyBytes += kc.Bytes
			pt.ValueBytes += vc.Bytes
			pt.Bytes += kc.Bytes + vc.Bytes
			pt.Objects += kc.Objects + vc.Objects
			return
		}
	}
	if len(mt.Prefixes) == cap(mt.Prefixes) {
		Fail(mt.Name + ": too many prefixes") // appending would allocate
	}
	if len(p) > maxPrefix {
		Fail(mt.Name + ": prefix longer than " + strconv.Itoa(maxPrefix) + " bytes")
	}
	mt.Prefixes = append(mt.Prefixes, PrefixTruth{prefixLen: len(p), Entries: 1, Bytes: kc.Bytes + vc.Bytes,
		KeyBytes: kc.Bytes, ValueBytes: vc.Bytes, Objects: kc.Objects + vc.Objects})
	copy(mt.Prefixes[len(mt.Prefixes)-1].prefix[:], p)
}

// seal checks len(m) against the accounted entries, records the header and
// forgets the map.
func (mt *Map) seal() {
	if mt.probe != nil || mt.syncMap != nil || mt.anon {
		mt.sealExtra() // extra.go
		return
	}
	v := reflect.ValueOf(mt.m)
	if v.IsNil() {
		Fail(mt.Name + ": nil map")
	}
	if !mt.stopped {
		Fail(mt.Name + ": table bytes were not measured")
	}
	if v.Len() != mt.Entries {
		Fail(mt.Name + ": len " + strconv.Itoa(v.Len()) + " != accounted " + strconv.Itoa(mt.Entries))
	}
	p := v.UnsafePointer()
	mt.Addr = "0x" + strconv.FormatUint(uint64(uintptr(p)), 16)
	if SwissMaps() {
		mt.Impl = "swiss"
	} else {
		mt.Impl = "classic"
		mt.Classic = ClassicHeader(p)
	}
	mt.m = nil
}

// ClassicHeader reads runtime.hmap. 64-bit layout, identical in Go 1.21..1.23
// and 1.24 with GOEXPERIMENT=noswissmap up to nevacuate:
//
//	count int (0); flags uint8 (8); B uint8 (9); noverflow uint16 (10); hash0 uint32 (12);
//	buckets unsafe.Pointer (16); oldbuckets unsafe.Pointer (24); nevacuate uintptr (32);
//	extra *mapextra (40)   [1.24 noswissmap: clearSeq uint64 (40); extra (48)]
func ClassicHeader(h unsafe.Pointer) *ClassicInfo {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		Fail("ClassicHeader: 64-bit only")
	}
	return &ClassicInfo{
		B:          *(*uint8)(unsafe.Add(h, 9)),
		NOverflow:  *(*uint16)(unsafe.Add(h, 10)),
		Buckets:    "0x" + strconv.FormatUint(uint64(*(*uintptr)(unsafe.Add(h, 16))), 16),
		OldBuckets: "0x" + strconv.FormatUint(uint64(*(*uintptr)(unsafe.Add(h, 24))), 16),
		NEvacuate:  uint64(*(*uintptr)(unsafe.Add(h, 32))),
	}
}

// MapPointer returns the runtime map header pointer of m.
func MapPointer(m any) unsafe.Pointer { return reflect.ValueOf(m).UnsafePointer() }
