// services holds memory the way long-running services do: maps that live
// only in a goroutine's stack frame, arrays and slices of maps and of
// structs holding maps, sync.Maps caught in every state their read/dirty
// implementation has, a sync.Pool full of buffers after one collection, a
// map of 400 small maps, and values shared between two maps and a slice.
package main

import (
	"math/big"
	"runtime"
	"strconv"
	"sync"
	"unsafe"

	"samples/internal/truth"
)

// ---------------------------------------------------------------- types

// Session is the value of main.shards[i].
type Session struct {
	User    int64
	Token   []byte
	Expires int64
} // 40 bytes -> size class 48

// Item is the value of main.pool[i].byKey.
type Item struct {
	ID      int64
	Hits    uint64
	Payload []byte
	Owner   string
} // 56 bytes -> size class 64

// User is the value of main.table[i].idx.
type User struct {
	ID    int64
	Name  string
	Email string
	Score float64
} // 48 bytes

// Token is the value of both sync.Maps.
type Token struct {
	ID      int64
	Expires int64
	Secret  []byte
} // 40 bytes -> size class 48, plus a 32-byte secret

// Key is the key of main.cache.items.
type Key struct {
	Tenant string
	ID     int64
}

// Shard is an element of main.pool.
type Shard struct {
	name  string
	byKey map[string]*Item
}

// Cache holds a sync.Map in a field (main.cache.items).
type Cache struct {
	name  string
	items sync.Map
}

// Buffer is what main.bufPool pools.
type Buffer struct {
	data []byte
	used int
} // 32 bytes, plus 4096 bytes of data

// ---------------------------------------------------------------- globals

// handler is a global func variable; its closure (made by setup) is the
// only thing that holds the map hits.
var handler func() int

// queue holds two maps in its buffer: sent, never received.
var queue = make(chan map[string]int64, 4)

// idxA and idxB are the same map: two roots.
var idxA, idxB map[string]*Session

var (
	shards [4]map[string]*Session // array of maps
	pool   []Shard                // slice of structs holding maps
	table  [3]struct {            // array of structs holding maps
		label string
		idx   map[int64]*User
	}
	tokens  sync.Map                  // sync.Map in every state
	cache   = &Cache{name: "tenants"} // sync.Map in a struct behind a pointer
	bufPool = sync.Pool{New: func() any { return &Buffer{data: make([]byte, 4096)} }}
	nested  map[string]map[string]int64 // 400 small inner maps

	primary, replica map[string]*big.Int // replica's values are primary's
	recent           []*big.Int          // more of primary's values

	ready      = make(chan string, 4)
	jobsProbe  = make(chan struct{})
	smallProbe = make(chan struct{})
	anonBlock  = make(chan struct{}) // never sent to: the anonymous workers wait on it forever
)

var r = truth.Rng(4242)

// ---------------------------------------------------------------- helpers

// key turns the bytes into a heap string inside its own window.
func key(b []byte) (string, truth.Cost) {
	truth.Begin()
	k := string(b)
	c := truth.End()
	truth.Expect("key "+k, c, truth.ClassSize(len(b)), 1)
	return k, c
}

// newInt builds a big.Int with a words-word magnitude inside a window.
func newInt(words int) (*big.Int, truth.Cost) {
	lo := r.Next()
	truth.Begin()
	w := make([]big.Word, words)
	w[0] = big.Word(lo)
	w[words-1] |= 1
	v := new(big.Int).SetBits(w)
	c := truth.End()
	truth.Expect("big.Int", c, 32+truth.ClassSize(8*words), 2)
	return v, c
}

func kb(prefix string, id uint64, width int) []byte {
	b := make([]byte, 0, 48) // caller-side scratch; never inside a window
	b = append(b, prefix...)
	return truth.AppendPad(b, id, width)
}

// ---------------------------------------------------------------- goroutine-local maps

// Written by the workers when asked (probe), read by main after the answer.
var (
	jobsAddr, smallAddr uintptr
	jobsLen, smallLen   int
)

// worker builds jobs, a map that never escapes: the compiler puts its
// header in this frame (go build -gcflags=-m: "make(map[string]*big.Int)
// does not escape"); its table is on the heap (8000 entries). Then it
// blocks. Asked on probe, it reports where the header is (the stack can
// move) without calling anything.
//
//go:noinline
func worker(done chan<- string, probe <-chan struct{}) {
	mt := truth.NewStackMap("goroutine main.worker: jobs",
		"local variable jobs of goroutine main.worker (header in its stack frame)", map[string]*big.Int(nil))
	mt.Probe(probeJobs)
	mt.Start(0)
	jobs := make(map[string]*big.Int)
	for i := 0; i < 8000; i++ {
		region := "job:eu:"
		if i%3 == 2 {
			region = "job:us:"
		}
		k, kc := key(kb(region, uint64(i)*7+3, 9)) // 16 bytes
		v, vc := newInt(2 + i%2)
		jobs[k] = v
		mt.Add(k, kc, vc)
	}
	mt.Stop()
	done <- "worker"
	for range probe {
		jobsAddr, jobsLen = *(*uintptr)(unsafe.Pointer(&jobs)), len(jobs)
		done <- "worker"
	}
	runtime.KeepAlive(jobs)
}

func probeJobs() (uintptr, int) {
	jobsProbe <- struct{}{}
	<-ready
	return jobsAddr, jobsLen
}

// smallWorker is worker with a map of 5 entries: header and its single
// bucket (classic) or group (Swiss) are both in the frame; only the keys
// and values are on the heap.
//
//go:noinline
func smallWorker(done chan<- string, probe <-chan struct{}) {
	mt := truth.NewStackMap("goroutine main.smallWorker: small",
		"local variable small of goroutine main.smallWorker (header and its one bucket/group in its stack frame)",
		map[string]*big.Int(nil))
	mt.Probe(probeSmall)
	mt.Start(0)
	small := make(map[string]*big.Int)
	for i := 0; i < 5; i++ {
		k, kc := key(kb("cfg:limits:", uint64(i), 5)) // 16 bytes
		v, vc := newInt(4)
		small[k] = v
		mt.Add(k, kc, vc)
	}
	mt.Stop()
	done <- "smallWorker"
	for range probe {
		smallAddr, smallLen = *(*uintptr)(unsafe.Pointer(&small)), len(small)
		done <- "smallWorker"
	}
	runtime.KeepAlive(small)
}

func probeSmall() (uintptr, int) {
	smallProbe <- struct{}{}
	<-ready
	return smallAddr, smallLen
}

// ---------------------------------------------------------------- maps in arrays, slices, structs

func newSession(i int) (*Session, truth.Cost) {
	truth.Begin()
	se := &Session{User: int64(i), Token: make([]byte, 32), Expires: 1700000000 + int64(i)}
	vc := truth.End()
	truth.Expect("session", vc, 48+32, 2)
	return se, vc
}

func buildShards() {
	for s := range shards {
		mt := truth.NewMap("main.shards["+strconv.Itoa(s)+"]", "global [4]map -> element "+strconv.Itoa(s), map[string]*Session(nil))
		mt.Start(0)
		m := map[string]*Session{}
		shards[s] = m
		mt.Bind(m)
		for i := 0; i < 50+10*s; i++ {
			b := append(make([]byte, 0, 48), "sess:s"...)
			b = strconv.AppendInt(b, int64(s), 10)
			b = append(b, ':')
			b = truth.AppendHex(b, r.Next(), 12) // 20 bytes
			k, kc := key(b)
			if _, dup := m[k]; dup {
				truth.Fail("dup session")
			}
			v, vc := newSession(i)
			m[k] = v
			mt.Add(k, kc, vc)
		}
		mt.Stop()
	}
}

func buildPool() {
	pool = make([]Shard, 8)
	for p := range pool {
		pool[p].name = "shard-" + strconv.Itoa(p)
		ps := strconv.Itoa(p)
		mt := truth.NewMap("main.pool["+ps+"].byKey", "global []main.Shard -> element "+ps+" -> field byKey", map[string]*Item(nil))
		mt.Start(0)
		m := map[string]*Item{}
		pool[p].byKey = m
		mt.Bind(m)
		kinds := [...]string{"item:hot:", "item:cold:"}
		for i := 0; i < 10+p*5; i++ {
			k, kc := key(kb(kinds[i%2], uint64(p*1000+i), 8))
			ob := append(make([]byte, 0, 48), "owner-"...)
			ob = truth.AppendPad(ob, uint64(i%11), 12)
			n := 16 + 16*(i%4)
			truth.Begin()
			it := &Item{ID: int64(i), Hits: uint64(i * 5), Payload: make([]byte, n), Owner: string(ob)}
			vc := truth.End()
			truth.Expect("item", vc, 64+truth.ClassSize(n)+truth.ClassSize(len(ob)), 3)
			m[k] = it
			mt.Add(k, kc, vc)
		}
		mt.Stop()
	}
}

func buildTable() {
	labels := [...]string{"by-id", "by-signup", "by-login"}
	for t := range table {
		table[t].label = labels[t]
		ts := strconv.Itoa(t)
		mt := truth.NewMap("main.table["+ts+"].idx", "global [3]struct -> element "+ts+" -> field idx", map[int64]*User(nil))
		mt.Start(0)
		m := map[int64]*User{}
		table[t].idx = m
		mt.Bind(m)
		for i := 0; i < 40+30*t; i++ {
			id := int64(t*100000 + i*17)
			nb := append(make([]byte, 0, 48), "user-name-"...)
			nb = truth.AppendPad(nb, uint64(id), 8)
			eb := append(make([]byte, 0, 64), "user."...)
			eb = truth.AppendPad(eb, uint64(id), 8)
			eb = append(eb, "@example.com"...)
			truth.Begin()
			u := &User{ID: id, Name: string(nb), Email: string(eb), Score: float64(i) / 7}
			vc := truth.End()
			truth.Expect("user", vc, 48+truth.ClassSize(len(nb))+truth.ClassSize(len(eb)), 3)
			m[id] = u
			mt.Add("", truth.Cost{}, vc) // int64 keys live in the map's slots
		}
		mt.Stop()
	}
}

// ---------------------------------------------------------------- sync.Map

// Scratch for the sync.Maps (in .bss; cleared before Finish).
var (
	tokKeys  [112]string
	tokKC    [112]truth.Cost
	tokVC    [112]truth.Cost
	tokSC    [112]truth.Cost
	tokState [112]string
	cKeys    [40]Key
	cKC      [40]truth.Cost
	cVC      [40]truth.Cost
	cSC      [40]truth.Cost
	cState   [40]string
)

// storeTok makes the key and the value of token slot s, each in its own
// window, then stores them in a third window (the Store call: interface
// boxes, *entry, map growth, dirty rebuilds; or HashTrieMap nodes).
func storeTok(s int, b []byte) {
	truth.Begin()
	k := string(b)
	tokKC[s] = truth.Lap()
	t := &Token{ID: int64(s), Expires: 1800000000 + int64(s), Secret: make([]byte, 32)}
	tokVC[s] = truth.Lap()
	tokens.Store(k, t)
	tokSC[s] = truth.End()
	truth.Expect("token key", tokKC[s], truth.ClassSize(len(b)), 1)
	truth.Expect("token value", tokVC[s], 48+32, 2)
	tokKeys[s] = k
}

const (
	nA = 64 // tok:a:*, stored first, then promoted to read
	nB = 48 // tok:b:*, stored after the promotion
)

// The classes of tokens (i = index within tok:a, j within tok:b):
//
//	a, i%8 == 1: deleted after the promotion, before the first tok:b store
//	a, i%8 == 2: deleted after the tok:b stores
//	a, others:   live
//	b, j%8 == 3: deleted (were only in dirty)
//	b, others:   live
//
// On the read/dirty implementation (Go <= 1.23) that gives, at the crash:
//
//	live a -> "both"     (read.m and dirty hold the same *entry)
//	a i%8==1 -> "expunged" (the first tok:b store rebuilt dirty from read:
//	                        the nil entries were expunged and left out)
//	a i%8==2 -> "deleted"  (p == nil, in read.m and dirty)
//	live b -> "dirty"    (dirty only; read.amended)
//	b j%8==3 -> "removed"  (deleted from dirty: gone)
//
// ("read", live entries in read.m only, exists only while dirty == nil: a
// live read.m entry is always copied into a new dirty. main.cache.items
// shows it.) With the HashTrieMap (Go >= 1.24) every Delete removes the
// entry: live ones are "trie", the others "removed".
func buildTokens() {
	rd := truth.SyncMapReadDirty()
	mt := truth.NewSyncMap("main.tokens", "global sync.Map", &tokens, "", (*Token)(nil))
	mt.Start(0)
	tokens.Load("init") // HashTrieMap: allocates its root now (table bytes), not in the first Store
	for i := 0; i < nA; i++ {
		storeTok(i, kb("tok:a:", uint64(i), 10)) // 16 bytes
	}
	// Promote: every Load of a key that is only in dirty is a miss; after
	// len(dirty) misses, dirty becomes read and dirty is nil.
	for i := 0; i < nA; i++ {
		if _, ok := tokens.Load(tokKeys[i]); !ok {
			truth.Fail("main.tokens: lost a key")
		}
	}
	if rd {
		truth.SyncMapWalk(&tokens, func(_ any, st string) {
			if st != "read" {
				truth.Fail("main.tokens: not promoted")
			}
		})
	}
	for i := 1; i < nA; i += 8 {
		tokens.Delete(tokKeys[i])
	}
	for j := 0; j < nB; j++ {
		storeTok(nA+j, kb("tok:b:", uint64(j), 10))
	}
	for i := 2; i < nA; i += 8 {
		tokens.Delete(tokKeys[i])
	}
	for j := 3; j < nB; j += 8 {
		tokens.Delete(tokKeys[nA+j])
	}
	// Expected state per slot.
	for s := 0; s < nA+nB; s++ {
		st := "trie"
		switch {
		case s < nA && s%8 == 1:
			st = "expunged"
		case s < nA && s%8 == 2:
			st = "deleted"
		case s >= nA && (s-nA)%8 == 3:
			st = "removed"
		case rd && s < nA:
			st = "both"
		case rd:
			st = "dirty"
		}
		if !rd && st != "trie" {
			st = "removed"
		}
		tokState[s] = st
	}
	for s := 0; s < nA+nB; s++ {
		kc, vc := tokKC[s], tokVC[s]
		switch tokState[s] {
		case "removed":
			mt.AddState("removed", 0, 0)
		case "deleted", "expunged":
			mt.AddState(tokState[s], kc.Bytes, 0) // the key stays in read.m; the value is garbage
		default:
			mt.AddStore(tokKeys[s], kc, vc, tokSC[s])
			mt.AddState(tokState[s], kc.Bytes, vc.Bytes)
		}
	}
	verifyTokens(rd)
	for s := range tokKeys {
		tokKeys[s] = ""
	}
	mt.Stop()
}

// verifyTokens checks every key's state: with unsafe reads on Go <= 1.23
// (a Load would count misses), with Load on Go >= 1.24.
func verifyTokens(rd bool) {
	if rd {
		seen := 0
		truth.SyncMapWalk(&tokens, func(k any, st string) {
			ks := k.(string)
			s, err := strconv.Atoi(ks[6:])
			if err != nil {
				truth.Fail("main.tokens: bad key")
			}
			if ks[4] == 'b' {
				s += nA
			}
			if tokState[s] != st {
				truth.Fail("main.tokens: " + ks + " is " + st + ", expected " + tokState[s])
			}
			seen++
		})
		removed := 0
		for s := 0; s < nA+nB; s++ {
			if tokState[s] == "removed" {
				removed++
			}
		}
		if seen+removed != nA+nB {
			truth.Fail("main.tokens: wrong number of keys")
		}
		return
	}
	for s := 0; s < nA+nB; s++ {
		_, ok := tokens.Load(tokKeys[s])
		if ok != (tokState[s] == "trie") {
			truth.Fail("main.tokens: " + tokKeys[s] + " present=" + strconv.FormatBool(ok) + ", expected " + tokState[s])
		}
	}
}

// buildCacheItems: 40 entries with struct keys, promoted to read by misses,
// then 5 deleted. Go <= 1.23: 35 "read" (dirty is nil), 5 "deleted" (p ==
// nil in read.m; not expunged, since no dirty was rebuilt). Go >= 1.24: 35
// "trie", 5 "removed".
func buildCacheItems() {
	rd := truth.SyncMapReadDirty()
	mt := truth.NewSyncMap("main.cache.items", "global *main.Cache -> field items (sync.Map)", &cache.items, Key{}, (*Token)(nil))
	mt.Start(0)
	cache.items.Load(Key{})
	for i := range cKeys {
		tb := append(make([]byte, 0, 32), "tenant-"...)
		tb = truth.AppendPad(tb, uint64(i%7), 4)
		tb = append(tb, "-acme"...) // 16 bytes
		truth.Begin()
		k := Key{Tenant: string(tb), ID: int64(5000 + i)}
		cKC[i] = truth.Lap()
		t := &Token{ID: int64(1000 + i), Expires: 1800000000 + int64(i), Secret: make([]byte, 32)}
		cVC[i] = truth.Lap()
		cache.items.Store(k, t)
		cSC[i] = truth.End()
		truth.Expect("cache key", cKC[i], truth.ClassSize(len(tb)), 1)
		truth.Expect("cache value", cVC[i], 48+32, 2)
		cKeys[i] = k
	}
	for i := range cKeys {
		if _, ok := cache.items.Load(cKeys[i]); !ok {
			truth.Fail("main.cache.items: lost a key")
		}
	}
	for i := 5; i < len(cKeys); i += 8 {
		cache.items.Delete(cKeys[i])
	}
	for i := range cKeys {
		switch {
		case i%8 == 5 && rd:
			cState[i] = "deleted"
		case i%8 == 5:
			cState[i] = "removed"
		case rd:
			cState[i] = "read"
		default:
			cState[i] = "trie"
		}
		switch cState[i] {
		case "removed":
			mt.AddState("removed", 0, 0)
		case "deleted":
			mt.AddState("deleted", cKC[i].Bytes, 0)
		default:
			mt.AddStore("", cKC[i], cVC[i], cSC[i])
			mt.AddState(cState[i], cKC[i].Bytes, cVC[i].Bytes)
		}
	}
	if rd {
		truth.SyncMapWalk(&cache.items, func(k any, st string) {
			i := int(k.(Key).ID - 5000)
			if cState[i] != st {
				truth.Fail("main.cache.items: key " + strconv.Itoa(i) + " is " + st + ", expected " + cState[i])
			}
		})
	} else {
		for i := range cKeys {
			if _, ok := cache.items.Load(cKeys[i]); ok != (cState[i] == "trie") {
				truth.Fail("main.cache.items: wrong presence")
			}
		}
	}
	for i := range cKeys {
		cKeys[i] = Key{}
	}
	mt.Stop()
}

// ---------------------------------------------------------------- sync.Pool

const nBufs = 16

var (
	poolBufs  [nBufs]*Buffer // holds the buffers until Finish's final collection
	poolAddrs [nBufs]uintptr // their addresses (not pointers: they keep nothing alive)
	poolTmp   [nBufs]*Buffer
	poolPut   bool
)

// buildBufPool makes 16 buffers and measures them. They go into bufPool
// only right before Finish's final collection (fillBufPool): a pool is
// emptied into its victim cache by every collection and dropped by the
// next, and Finish collects many times before that (settle). So at the
// crash the pool holds exactly these buffers, in its victim cache, having
// survived exactly one collection.
func buildBufPool() {
	if unsafe.Sizeof(bufPool) != unsafe.Sizeof(poolMirror{}) {
		truth.Fail("unknown sync.Pool layout")
	}
	var total truth.Cost
	for i := range poolBufs {
		truth.Begin()
		b := &Buffer{data: make([]byte, 4096)}
		c := truth.End()
		truth.Expect("buffer", c, 32+4096, 2)
		b.data[0] = byte(i)
		poolBufs[i] = b
		poolAddrs[i] = uintptr(unsafe.Pointer(b))
		total = total.Add(c)
	}
	truth.AddPool(truth.PoolTruth{Name: "main.bufPool", Type: "*main.Buffer", Count: nBufs,
		Objects: total.Objects, Bytes: total.Bytes, GCsSurvived: 1, Where: "victim"})
	truth.BeforeFinalGC(fillBufPool)
}

// fillBufPool runs before each of Finish's final collections. The first
// time it Puts the buffers. If Finish has to collect again (its snapshot
// saw the runtime allocate), the previous collection moved them to the
// victim cache and this one would drop them: take them back and Put them
// again, so that the last collection before the crash is the only one they
// have been through. Get finds the victim's shared chains from any P, but
// a victim's private slot only from its own P (and would call New
// otherwise), so the private slots are emptied first, with unsafe.
func fillBufPool() {
	if !poolPut {
		for i := range poolBufs {
			bufPool.Put(poolBufs[i])
			poolBufs[i] = nil
		}
		poolPut = true
		return
	}
	n := 0
	pm := (*poolMirror)(unsafe.Pointer(&bufPool))
	for i := uintptr(0); i < pm.victimSize; i++ {
		l := (*poolLocalMirror)(unsafe.Add(pm.victim, i*unsafe.Sizeof(poolLocalMirror{})))
		if l.private != nil {
			poolTmp[n] = l.private.(*Buffer)
			l.private = nil
			n++
		}
	}
	for ; n < nBufs; n++ {
		poolTmp[n] = bufPool.Get().(*Buffer)
	}
	for i := range poolTmp {
		a := uintptr(unsafe.Pointer(poolTmp[i]))
		ok := false
		for j := range poolAddrs {
			if poolAddrs[j] == a {
				ok = true
				poolAddrs[j] = 0
			}
		}
		if !ok {
			truth.Fail("main.bufPool: got back a buffer that was not put")
		}
	}
	for i := range poolTmp {
		poolAddrs[i] = uintptr(unsafe.Pointer(poolTmp[i]))
		bufPool.Put(poolTmp[i])
		poolTmp[i] = nil
	}
}

// Mirrors of sync.Pool and sync.poolLocal (the same in Go 1.21 .. 1.27).
type poolMirror struct {
	local      unsafe.Pointer // *[P]poolLocal
	localSize  uintptr
	victim     unsafe.Pointer // local before the last collection
	victimSize uintptr
	New        func() any
}

type poolLocalMirror struct {
	private    any
	head, tail unsafe.Pointer // poolChain
	pad        [128 - 32]byte
}

// ---------------------------------------------------------------- nested maps

const nInner = 400

// Scratch for buildNested (in .bss; cleared before Finish).
var (
	inner     [nInner]map[string]int64
	innerCost [nInner]truth.Cost
	nKBuf     [8][24]byte
	nKLen     [8]int
)

// buildNested: 400 inner maps (3..6 entries, pre-sized), then the outer map.
// An outer entry's value bytes are everything allocated for its inner map:
// header, table and the inner keys (values are int64, inline).
func buildNested() {
	outer := truth.NewMap("main.nested", "global", map[string]map[string]int64(nil))
	in := &truth.InnerTruth{Count: nInner} // before Start: not part of the map
	outer.Start(0)
	live0 := truth.HeapLive()
	var all truth.Cost
	for m := 0; m < nInner; m++ {
		n := 3 + m%4
		for i := 0; i < n; i++ {
			b := append(nKBuf[i][:0], "limit:r"...)
			b = truth.AppendPad(b, uint64(m), 5)
			b = append(b, ":k"...)
			b = truth.AppendPad(b, uint64(i), 2) // 16 bytes
			nKLen[i] = len(b)
		}
		truth.Begin() // contiguous laps: their sum is the whole inner build
		im := make(map[string]int64, n)
		total := truth.Lap()
		hdr := total
		for i := 0; i < n; i++ {
			k := string(nKBuf[i][:nKLen[i]])
			kc := truth.Lap()
			truth.Expect("inner key", kc, truth.ClassSize(nKLen[i]), 1)
			im[k] = int64(m*10 + i)
			ic := truth.Lap()
			hdr = hdr.Add(ic)
			total = total.Add(kc).Add(ic)
			in.Entries++
			in.KeyBytes += kc.Bytes
			in.Objects += kc.Objects
		}
		truth.Expect("nested tail", truth.End(), 0, 0)
		in.TableBytes += hdr.Bytes
		inner[m] = im
		innerCost[m] = total
		all = all.Add(total)
	}
	if live := truth.HeapLive() - live0; live != all.Bytes {
		truth.Fail("main.nested: live growth " + strconv.FormatUint(live, 10) +
			" != allocated " + strconv.FormatUint(all.Bytes, 10) + " (an inner map left garbage)")
	}
	nested = map[string]map[string]int64{}
	outer.Bind(nested)
	for m := 0; m < nInner; m++ {
		k, kc := key(kb("region:", uint64(m), 9)) // 16 bytes
		nested[k] = inner[m]
		outer.Add(k, kc, innerCost[m])
		inner[m] = nil
	}
	if in.KeyBytes+in.ValueBytes+in.TableBytes != outer.ValueBytes {
		truth.Fail("main.nested: inner totals do not add up to the outer value bytes")
	}
	outer.Inner = in
	outer.Stop()
}

// ---------------------------------------------------------------- shared values

var (
	pVals [300]*big.Int
	pVC   [300]truth.Cost
)

// buildShared: main.primary has 300 entries; main.replica has its own keys
// for 100 of them (i%3 == 0) holding the same *big.Int pointers; main.recent
// (a slice) holds 50 others (i%3 == 1, i < 150).
func buildShared() {
	mp := truth.NewMap("main.primary", "global", map[string]*big.Int(nil))
	mp.Start(0)
	primary = map[string]*big.Int{}
	mp.Bind(primary)
	for i := range pVals {
		k, kc := key(kb("acct:primary:", uint64(i), 6)) // 19 bytes
		v, vc := newInt(2 + i%3)
		primary[k] = v
		mp.Add(k, kc, vc)
		pVals[i], pVC[i] = v, vc
	}
	mp.Stop()

	mr := truth.NewMap("main.replica", "global", map[string]*big.Int(nil))
	mr.Start(0)
	replica = map[string]*big.Int{}
	mr.Bind(replica)
	var toReplica, toRecent truth.Cost
	for i := 0; i < len(pVals); i += 3 {
		k, kc := key(kb("acct:replica:", uint64(i), 6))
		replica[k] = pVals[i]
		mr.AddSharedEntry(k, kc, pVC[i])
		toReplica = toReplica.Add(pVC[i])
	}
	mr.Stop()

	recent = make([]*big.Int, 0, 50)
	for i := 1; i < 150; i += 3 {
		recent = append(recent, pVals[i])
		toRecent = toRecent.Add(pVC[i])
	}
	mp.MarkShared(toReplica)
	mp.MarkShared(toRecent)
	truth.AddShared(truth.SharedTruth{Owners: []string{"main.primary", "main.replica"}, What: "values",
		Entries: 100, Objects: toReplica.Objects, Bytes: toReplica.Bytes})
	truth.AddShared(truth.SharedTruth{Owners: []string{"main.primary", "main.recent"}, What: "values",
		Entries: 50, Objects: toRecent.Objects, Bytes: toRecent.Bytes})
	for i := range pVals {
		pVals[i] = nil
	}
}

// ---------------------------------------------------------------- a map held by a closure

// setup makes hits, a local map that escapes only through the closure it
// stores in the global handler (the closure captures hits by value: its
// funcval is {code pointer, map pointer}), and fills it.
//
//go:noinline
func setup() {
	mt := truth.NewMap("main.handler (closure: hits)", "closure", map[string]*big.Int(nil))
	truth.Begin()
	hits := make(map[string]*big.Int)
	hc := truth.Lap()
	handler = func() int { return len(hits) }
	cc := truth.End()
	truth.Expect("hits header", hc, hc.Bytes, 1)
	truth.Expect("closure", cc, 16, 1)
	// Like a package-level map literal: the header is already live, and the
	// 16-byte closure is the holder's, not the map's.
	mt.Start(hc.Bytes)
	mt.Bind(hits)
	for i := 0; i < 120; i++ {
		k, kc := key(kb("hit:", uint64(i)*31+7, 12)) // 16 bytes
		v, vc := newInt(2 + i%3)
		hits[k] = v
		mt.Add(k, kc, vc)
	}
	mt.Stop()
	if handler() != 120 {
		truth.Fail("main.handler: the closure does not see the map")
	}
	fv := *(*unsafe.Pointer)(unsafe.Pointer(&handler)) // *funcval
	if *(*unsafe.Pointer)(unsafe.Add(fv, 8)) != truth.MapPointer(hits) {
		truth.Fail("main.handler: the closure does not hold the map header in its second word")
	}
	mt.ClosureFunc = runtime.FuncForPC(*(*uintptr)(fv)).Name()
	mt.ClosureAddr = "0x" + strconv.FormatUint(uint64(uintptr(fv)), 16)
}

// ---------------------------------------------------------------- maps in a channel's buffer

func buildQueue() {
	for q := 0; q < 2; q++ {
		qs := strconv.Itoa(q)
		mt := truth.NewMap("main.queue (buffered "+qs+")", "channel buffer", map[string]int64(nil))
		mt.Start(0)
		m := map[string]int64{}
		mt.Bind(m)
		for i := 0; i < 30; i++ {
			b := append(make([]byte, 0, 48), 'q')
			b = strconv.AppendInt(b, int64(q), 10)
			b = append(b, ':')
			b = truth.AppendPad(b, uint64(i*17+q), 13) // 16 bytes
			k, kc := key(b)
			m[k] = int64(i)
			mt.Add(k, kc, truth.Cost{}) // int64 values are inline
		}
		queue <- m // the buffer slot is the only reference
		mt.Stop()
	}
	if len(queue) != 2 {
		truth.Fail("main.queue: expected 2 buffered maps")
	}
}

// ---------------------------------------------------------------- one map, two roots

func buildIdx() {
	mt := truth.NewMap("main.idxA", "global (the same map is main.idxB)", map[string]*Session(nil))
	mt.AlsoHeldBy = []string{"main.idxB"}
	mt.Start(0)
	idxA = map[string]*Session{}
	mt.Bind(idxA)
	for i := 0; i < 40; i++ {
		k, kc := key(kb("idx:", uint64(i)*101+3, 12)) // 16 bytes
		v, vc := newSession(i)
		idxA[k] = v
		mt.Add(k, kc, vc)
	}
	idxB = idxA
	mt.Stop()
}

// ---------------------------------------------------------------- goroutine-local maps nobody points to

// anonWorker is worker without the probe: its map's header is in this
// frame (make(...) does not escape) and its address is never taken or
// sent anywhere, so nothing but the frame itself says where the header is.
// Truth has no address for it.
//
//go:noinline
func anonWorker(done chan<- string, block <-chan struct{}) {
	mt := truth.NewAnonStackMap("goroutine main.anonWorker: map[string]*big.Int",
		"goroutine main.anonWorker's stack frame (header in the frame, its address never taken)",
		map[string]*big.Int(nil))
	mt.Start(0)
	m := make(map[string]*big.Int)
	for i := 0; i < 3000; i++ {
		k, kc := key(kb("anon:", uint64(i)*11+5, 11)) // 16 bytes
		v, vc := newInt(2 + i%3)
		m[k] = v
		mt.Add(k, kc, vc)
	}
	mt.CheckLen(len(m))
	mt.Stop()
	done <- "anonWorker"
	<-block
	runtime.KeepAlive(m)
}

// anonSmall is anonWorker with 4 entries: header and its only bucket or
// group are in the frame.
//
//go:noinline
func anonSmall(done chan<- string, block <-chan struct{}) {
	mt := truth.NewAnonStackMap("goroutine main.anonSmall: map[string]*big.Int",
		"goroutine main.anonSmall's stack frame (header and its one bucket/group in the frame, address never taken)",
		map[string]*big.Int(nil))
	mt.Start(0)
	m := make(map[string]*big.Int)
	for i := 0; i < 4; i++ {
		k, kc := key(kb("tiny:", uint64(i)*7+1, 11)) // 16 bytes
		v, vc := newInt(3)
		m[k] = v
		mt.Add(k, kc, vc)
	}
	mt.CheckLen(len(m))
	mt.Stop()
	done <- "anonSmall"
	<-block
	runtime.KeepAlive(m)
}

func main() {
	truth.Setup("services")

	go worker(ready, jobsProbe)
	<-ready // the worker measured its map while main waited here
	go smallWorker(ready, smallProbe)
	<-ready

	buildShards()
	buildPool()
	buildTable()
	buildTokens()
	buildCacheItems()
	buildNested()
	buildShared()
	buildBufPool()
	setup()
	buildQueue()
	buildIdx()

	go anonWorker(ready, anonBlock)
	<-ready
	go anonSmall(ready, anonBlock)
	<-ready
	truth.Finish()
}
