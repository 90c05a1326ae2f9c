package truth

// Additions for the services program: maps whose header lives in a
// goroutine's stack frame, sync.Map, sync.Pool, values shared between
// owners, and totals over the inner maps of a map of maps. Everything here
// is written to truth.json only when a program uses it, so tiny, ledger and
// zoo write exactly what they wrote before.

import (
	"reflect"
	"strconv"
	"sync"
	"unsafe"
)

// ---------------------------------------------------------------- stack maps

// NewStackMap is NewMap for a map that never escapes its goroutine: the
// compiler put its header (and, while it has at most 8 entries, its single
// bucket or group) in the goroutine's stack frame. m is a nil map of the
// type: passing the real map here would make it escape. Probe must be called.
func NewStackMap(name, holder string, m any) *Map {
	mt := NewMap(name, holder, m)
	mt.HeaderOnStack = true
	return mt
}

// Probe registers how Finish learns where the map's header is and how many
// entries it has: f is called from the main goroutine and must ask the
// map's own goroutine (which reads its variable and answers without
// calling anything). The header moves whenever the runtime copies that
// stack, so Finish asks after the last stack shrink (see probeStacks).
func (mt *Map) Probe(f func() (addr uintptr, n int)) { mt.probe = f }

// probeStacks asks every stack map for its header address, checks the
// header (its first word is the entry count in both map implementations:
// hmap.count and maps.Map.used) and, with verify, that it did not move
// since the previous call. It reports whether there is any stack map.
func probeStacks(verify bool) bool {
	found := false
	for _, mt := range doc.Maps {
		if mt.probe == nil {
			continue
		}
		found = true
		addr, n := mt.probe()
		if n != mt.Entries {
			Fail(mt.Name + ": len " + strconv.Itoa(n) + " != accounted " + strconv.Itoa(mt.Entries))
		}
		// addr is in a parked goroutine's stack, which nothing moves until it runs
		// again (the GC only shrinks stacks while marking; none runs here).
		h := *(*unsafe.Pointer)(unsafe.Pointer(&addr))
		if *(*uint64)(h) != uint64(n) {
			Fail(mt.Name + ": the probed header does not hold the entry count")
		}
		a := "0x" + strconv.FormatUint(uint64(addr), 16)
		if verify {
			if a != mt.Addr {
				Fail(mt.Name + ": the stack map moved from " + mt.Addr + " to " + a + " after truth was taken")
			}
			continue
		}
		mt.Addr = a
		if SwissMaps() {
			mt.Impl = "swiss"
		} else {
			mt.Impl = "classic"
			mt.Classic = ClassicHeader(h)
		}
	}
	return found
}

// NewAnonStackMap is NewStackMap for a map whose goroutine never takes
// its header's address (no Probe): truth.json then has no address for it
// ("addr": "") and no classic record. Its goroutine must call CheckLen.
func NewAnonStackMap(name, holder string, m any) *Map {
	mt := NewStackMap(name, holder, m)
	mt.anon = true
	return mt
}

// CheckLen is the length check of seal, done by the goroutine that owns an
// anonymous stack map (len(m) is all it passes: nothing makes m escape).
func (mt *Map) CheckLen(n int) {
	if n != mt.Entries {
		Fail(mt.Name + ": len " + strconv.Itoa(n) + " != accounted " + strconv.Itoa(mt.Entries))
	}
	mt.lenChecked = true
}

// sealExtra is seal for stack maps and sync.Maps.
func (mt *Map) sealExtra() {
	if !mt.stopped {
		Fail(mt.Name + ": table bytes were not measured")
	}
	if mt.anon {
		if !mt.lenChecked {
			Fail(mt.Name + ": CheckLen was not called")
		}
		mt.Addr = ""
		mt.Impl = "swiss"
		if !SwissMaps() {
			mt.Impl = "classic"
		}
		mt.m = nil
		return
	}
	if mt.probe != nil {
		mt.m = nil // Addr, Impl and the length check: probeStacks
		return
	}
	sm := mt.syncMap
	mt.Addr = "0x" + strconv.FormatUint(uint64(uintptr(unsafe.Pointer(sm))), 16)
	mt.Impl = "sync.Map"
	var counts [8]int
	var names [8]string
	ns := 0
	count := func(state string) {
		for i := 0; i < ns; i++ {
			if names[i] == state {
				counts[i]++
				return
			}
		}
		if ns == len(names) {
			Fail(mt.Name + ": too many states")
		}
		names[ns], counts[ns] = state, 1
		ns++
	}
	live := 0
	if SyncMapReadDirty() {
		info := SyncMapWalk(sm, func(_ any, state string) {
			count(state)
			if state != "deleted" && state != "expunged" {
				live++
			}
		})
		mt.Sync = &info
	} else {
		sm.Range(func(_, _ any) bool { live++; count("trie"); return true })
		mt.Sync = &SyncInfo{Impl: "HashTrieMap", Root: hexWord(unsafe.Add(unsafe.Pointer(sm), 16))}
	}
	if live != mt.Entries {
		Fail(mt.Name + ": " + strconv.Itoa(live) + " live entries != accounted " + strconv.Itoa(mt.Entries))
	}
	// Every state found in the map must be declared with AddState with the
	// same count, and every declared state (but "removed") must be found.
	for i := 0; i < ns; i++ {
		st := mt.state(names[i])
		if st == nil || st.Entries != counts[i] {
			Fail(mt.Name + ": state " + names[i] + " has " + strconv.Itoa(counts[i]) + " entries, not as declared")
		}
	}
	for i := range mt.States {
		st := &mt.States[i]
		if st.State == "removed" {
			continue
		}
		found := false
		for j := 0; j < ns; j++ {
			found = found || names[j] == st.State
		}
		if !found && st.Entries > 0 {
			Fail(mt.Name + ": declared state " + st.State + " not found")
		}
	}
	mt.syncMap = nil
	mt.m = nil
}

func hexWord(p unsafe.Pointer) string {
	return "0x" + strconv.FormatUint(uint64(*(*uintptr)(p)), 16)
}

// ---------------------------------------------------------------- sync.Map

// SyncInfo is what truth.json says about a sync.Map's internals.
type SyncInfo struct {
	Impl     string // "read+dirty" (Go <= 1.23) or "HashTrieMap" (Go >= 1.24)
	Read     string // read+dirty: Map.read (*readOnly), "0x0" if never stored
	ReadM    string // read+dirty: readOnly.m (the map header), "0x0" if nil
	ReadLen  int
	Amended  bool
	Dirty    string // read+dirty: Map.dirty, "0x0" if nil
	DirtyLen int
	Misses   int
	Expunged string // read+dirty: the value of sync.expunged, if an expunged entry exists ("" otherwise)
	Root     string // HashTrieMap: its root indirect node
}

// StateTruth counts the entries of a sync.Map in one state (see README).
type StateTruth struct {
	State      string
	Entries    int
	KeyBytes   uint64 // key bytes the sync.Map still references
	ValueBytes uint64 // value bytes the sync.Map still references
}

// NewSyncMap registers a sync.Map. key and value are examples of the dynamic
// key and value types (a zero value or typed nil is fine).
func NewSyncMap(name, holder string, sm *sync.Map, key, value any) *Map {
	mt := &Map{Name: name, Holder: holder, KeyType: reflect.TypeOf(key).String(),
		ValueType: reflect.TypeOf(value).String(), Prefixes: make([]PrefixTruth, 0, 32),
		States: make([]StateTruth, 0, 8), syncMap: sm, HasStore: true}
	if len(doc.Maps) == cap(doc.Maps) {
		Fail("too many maps")
	}
	doc.Maps = append(doc.Maps, mt)
	return mt
}

// AddStore accounts one live entry of a sync.Map: kc and vc are the windows
// around making the key and the value, sc the window around the Store call.
func (mt *Map) AddStore(key string, kc, vc, sc Cost) {
	mt.Add(key, kc, vc)
	b := kc.Bytes + vc.Bytes + sc.Bytes
	mt.StoreBytes += b
	if mt.KeyType != "string" {
		return
	}
	p := PrefixOf(key)
	for i := range mt.Prefixes {
		pt := &mt.Prefixes[i]
		if string(pt.prefix[:pt.prefixLen]) == p {
			pt.StoreBytes += b
			return
		}
	}
	Fail(mt.Name + ": AddStore: prefix vanished")
}

func (mt *Map) state(name string) *StateTruth {
	for i := range mt.States {
		if mt.States[i].State == name {
			return &mt.States[i]
		}
	}
	return nil
}

// AddState accounts one entry in a state (live or not).
func (mt *Map) AddState(state string, keyBytes, valueBytes uint64) {
	st := mt.state(state)
	if st == nil {
		if len(mt.States) == cap(mt.States) {
			Fail(mt.Name + ": too many states")
		}
		mt.States = append(mt.States, StateTruth{State: state})
		st = &mt.States[len(mt.States)-1]
	}
	st.Entries++
	st.KeyBytes += keyBytes
	st.ValueBytes += valueBytes
}

// SyncMapReadDirty reports whether sync.Map is the read/dirty implementation
// (Go <= 1.23: mu, read, dirty, misses; 32 bytes) rather than the
// internal/sync.HashTrieMap one (Go >= 1.24; 48 bytes).
func SyncMapReadDirty() bool {
	switch unsafe.Sizeof(sync.Map{}) {
	case 32:
		return true
	case 48:
		return false
	}
	Fail("unknown sync.Map layout")
	return false
}

// Mirrors of sync.Map's read/dirty implementation (Go 1.21 .. 1.23).
type rdMap struct {
	mu     [8]byte // sync.Mutex{state int32; sema uint32}
	read   *rdReadOnly
	dirty  map[any]*rdEntry
	misses int
}

type rdReadOnly struct {
	m       map[any]*rdEntry
	amended bool
}

type rdEntry struct {
	p unsafe.Pointer // *any; nil when deleted; sync.expunged when expunged
}

func mapWord(m map[any]*rdEntry) string { return hexWord(unsafe.Pointer(&m)) }

// SyncMapWalk reads a read/dirty sync.Map with unsafe (no method call, so
// no miss is counted and nothing is promoted) and calls f for every key with
// its state:
//
//	"read"     in read.m only, live, dirty == nil
//	"both"     in read.m and dirty (the same *entry), live
//	"dirty"    in dirty only, live
//	"deleted"  p == nil: in read.m, and in dirty too if dirty != nil
//	"expunged" p == expunged: in read.m only, dirty != nil
func SyncMapWalk(sm *sync.Map, f func(key any, state string)) SyncInfo {
	if !SyncMapReadDirty() {
		Fail("SyncMapWalk: not a read/dirty sync.Map")
	}
	rd := (*rdMap)(unsafe.Pointer(sm))
	info := SyncInfo{Impl: "read+dirty", Read: "0x0", ReadM: "0x0", Dirty: mapWord(rd.dirty),
		DirtyLen: len(rd.dirty), Misses: rd.misses}
	var readM map[any]*rdEntry
	if ro := rd.read; ro != nil {
		info.Read = "0x" + strconv.FormatUint(uint64(uintptr(unsafe.Pointer(ro))), 16)
		readM = ro.m
		info.ReadM = mapWord(ro.m)
		info.ReadLen = len(ro.m)
		info.Amended = ro.amended
	}
	var expunged unsafe.Pointer
	for k, e := range readM {
		d, inDirty := rd.dirty[k]
		if inDirty && d != e {
			Fail("SyncMapWalk: read and dirty hold different entries for a key")
		}
		var state string
		switch {
		case e.p == nil:
			if inDirty != (rd.dirty != nil) {
				Fail("SyncMapWalk: deleted entry breaks the invariant")
			}
			state = "deleted"
		case rd.dirty == nil:
			state = "read"
		case inDirty:
			state = "both"
		default:
			if expunged != nil && e.p != expunged {
				Fail("SyncMapWalk: two different expunged markers")
			}
			expunged = e.p
			state = "expunged"
		}
		f(k, state)
	}
	for k, e := range rd.dirty {
		if _, inRead := readM[k]; inRead {
			continue
		}
		if e.p == nil || e.p == expunged {
			Fail("SyncMapWalk: dead entry only in dirty")
		}
		f(k, "dirty")
	}
	if expunged != nil {
		info.Expunged = "0x" + strconv.FormatUint(uint64(uintptr(expunged)), 16)
	}
	return info
}

// ---------------------------------------------------------------- shared values, inner maps

// SharedTruth says that objects are reachable from several owners.
type SharedTruth struct {
	Owners  []string // truth names (maps) or variables (e.g. "main.recent")
	What    string   // "values"
	Entries int      // number of shared values
	Objects uint64
	Bytes   uint64
}

// AddShared records a SharedTruth.
func AddShared(s SharedTruth) {
	if doc.Shared == nil {
		doc.Shared = make([]SharedTruth, 0, 8)
	}
	if len(doc.Shared) == cap(doc.Shared) {
		Fail("too many shared records")
	}
	doc.Shared = append(doc.Shared, s)
}

// MarkShared says that c of the map's entry bytes are also reachable from
// another owner.
func (mt *Map) MarkShared(c Cost) {
	mt.HasShared = true
	mt.SharedBytes += c.Bytes
	mt.SharedObjects += c.Objects
}

// AddSharedEntry accounts an entry whose value another owner allocated
// (and measured, as vc) before this map's Start: it counts in value_bytes
// like any value, and in shared_bytes, but not in the live growth of the heap.
func (mt *Map) AddSharedEntry(key string, kc, vc Cost) {
	mt.Add(key, kc, vc)
	mt.preexisting += vc.Bytes
	mt.MarkShared(vc)
}

// InnerTruth sums the inner maps of a map whose values are maps.
type InnerTruth struct {
	Count      int
	Entries    int
	KeyBytes   uint64
	ValueBytes uint64
	Objects    uint64 // objects behind the inner entries (keys and values)
	TableBytes uint64 // the inner maps' headers and tables
}

// ---------------------------------------------------------------- sync.Pool

// PoolTruth describes the objects a sync.Pool holds at the crash.
type PoolTruth struct {
	Name        string
	Type        string // the dynamic type of the pooled values
	Objects     uint64 // heap objects of the pooled values (and what they own)
	Bytes       uint64
	Count       int    // pooled values
	GCsSurvived int    // collections since they were Put
	Where       string // "victim" after one collection, "local" before any
}

// AddPool records a PoolTruth.
func AddPool(p PoolTruth) {
	if doc.Pools == nil {
		doc.Pools = make([]PoolTruth, 0, 4)
	}
	if len(doc.Pools) == cap(doc.Pools) {
		Fail("too many pools")
	}
	doc.Pools = append(doc.Pools, p)
}

var (
	finalHooks  [4]func()
	nFinalHooks int
)

// BeforeFinalGC registers f to run right before each of Finish's final
// collections (normally one; one per snapshot attempt). It runs after
// truth.json was written and the truth document dropped.
func BeforeFinalGC(f func()) {
	if nFinalHooks == len(finalHooks) {
		Fail("too many final hooks")
	}
	finalHooks[nFinalHooks] = f
	nFinalHooks++
}

func runFinalHooks() {
	for i := 0; i < nFinalHooks; i++ {
		finalHooks[i]()
	}
}

// ---------------------------------------------------------------- JSON

func (m *Map) appendExtraJSON(w *jw) {
	if m.HeaderOnStack {
		w.boolean("header_on_stack", true)
	}
	if m.HasStore {
		w.u64("store_bytes", m.StoreBytes)
	}
	if m.HasShared {
		w.u64("shared_bytes", m.SharedBytes)
		w.u64("shared_objects", m.SharedObjects)
	}
	if in := m.Inner; in != nil {
		w.open("inner_maps", '{')
		w.int("count", in.Count)
		w.int("entries", in.Entries)
		w.u64("entries_bytes", in.KeyBytes+in.ValueBytes)
		w.u64("key_bytes", in.KeyBytes)
		w.u64("value_bytes", in.ValueBytes)
		w.u64("objects", in.Objects)
		w.u64("table_bytes", in.TableBytes)
		w.u64("total_bytes", in.KeyBytes+in.ValueBytes+in.TableBytes)
		w.close('}')
	}
	if s := m.Sync; s != nil {
		w.open("sync_map", '{')
		w.str("impl", s.Impl)
		if s.Impl == "HashTrieMap" {
			w.str("root", s.Root)
		} else {
			w.str("read", s.Read)
			w.str("read_m", s.ReadM)
			w.int("read_len", s.ReadLen)
			w.boolean("amended", s.Amended)
			w.str("dirty", s.Dirty)
			w.int("dirty_len", s.DirtyLen)
			w.int("misses", s.Misses)
			if s.Expunged != "" {
				w.str("expunged", s.Expunged)
			}
		}
		w.close('}')
	}
	if m.ClosureFunc != "" {
		w.str("closure_func", m.ClosureFunc)
		w.str("closure_addr", m.ClosureAddr)
	}
	if len(m.AlsoHeldBy) > 0 {
		w.open("also_held_by", '[')
		for _, o := range m.AlsoHeldBy {
			w.sep()
			w.b = appendQuoted(w.b, o)
		}
		w.close(']')
	}
	if len(m.States) > 0 {
		w.open("states", '[')
		for i := range m.States {
			st := &m.States[i]
			w.open("", '{')
			w.str("state", st.State)
			w.int("entries", st.Entries)
			w.u64("key_bytes", st.KeyBytes)
			w.u64("value_bytes", st.ValueBytes)
			w.close('}')
		}
		w.close(']')
	}
}

func (t *Truth) appendExtraJSON(w *jw) {
	if len(t.Pools) > 0 {
		w.open("pools", '[')
		for _, p := range t.Pools {
			w.open("", '{')
			w.str("name", p.Name)
			w.str("type", p.Type)
			w.int("count", p.Count)
			w.u64("objects", p.Objects)
			w.u64("bytes", p.Bytes)
			w.int("gcs_survived", p.GCsSurvived)
			w.str("where", p.Where)
			w.close('}')
		}
		w.close(']')
	}
	if len(t.Shared) > 0 {
		w.open("shared", '[')
		for _, s := range t.Shared {
			w.open("", '{')
			w.open("owners", '[')
			for _, o := range s.Owners {
				w.sep()
				w.b = appendQuoted(w.b, o)
			}
			w.close(']')
			w.str("what", s.What)
			w.int("entries", s.Entries)
			w.u64("objects", s.Objects)
			w.u64("bytes", s.Bytes)
			w.close('}')
		}
		w.close(']')
	}
}
