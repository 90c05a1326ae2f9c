// zoo holds maps reached in every way a heap analyzer has to follow: through
// a pointer global's struct field, a slice of maps, an interface, only a
// goroutine's stack, map values that are maps, a map that grew and was then
// almost emptied, small and empty maps, and (classic maps only) a map caught
// in the middle of an incremental grow.
package main

import (
	"math/big"
	"runtime"
	"strconv"
	"unsafe"

	"samples/internal/truth"
)

// ---------------------------------------------------------------- types

// Registry is reached through a pointer global: main.registry.accounts.
type Registry struct {
	name     string
	accounts map[string]*big.Int
}

// Item is the value type of the map stored in an interface (main.cache).
type Item struct {
	ID      int64
	Hits    uint64
	Payload []byte
	Owner   string
} // 56 bytes -> size class 64

// User is the value type of the int64-keyed map (main.users).
type User struct {
	ID    int64
	Name  string
	Email string
	Score float64
} // 48 bytes

// Session is the value type of the map reached through an interface's
// dynamic *Server (main.svc.sessions).
type Session struct {
	User    int64
	Token   []byte
	Expires int64
} // 40 bytes -> size class 48

// Service is implemented by *Server; main.svc is only known as a Service.
type Service interface {
	Lookup(token string) *Session
	Len() int
}

type Server struct {
	addr     string
	sessions map[string]*Session
	requests chan string
}

func (s *Server) Lookup(token string) *Session { return s.sessions[token] }
func (s *Server) Len() int                     { return len(s.sessions) }

// serve is a method goroutine blocked on a channel receive.
//
//go:noinline
func (s *Server) serve(ready chan<- string) {
	ready <- "serve"
	for tok := range s.requests {
		_ = s.Lookup(tok)
	}
}

// ---------------------------------------------------------------- globals

var (
	registry = &Registry{name: "primary", accounts: map[string]*big.Int{}} // (a)
	shards   []map[string][]byte                                           // (b), (f)
	cache    any                                                           // (c) map[string]*Item behind any
	svc      Service                                                       // (c') *Server behind an interface
	users    = map[int64]*User{}                                           // (e)
	nested   = map[string]map[string]*big.Int{}                            // (g)
	churn    = map[string]int64{}                                          // (h)
	small    = map[string]string{}                                         // (i)
	empty    = make(map[string]int)                                        // (j)
	growing  map[string]*big.Int                                           // (k)
	opaque   unsafe.Pointer                                                // (l) *Hidden, untyped
	wide     = map[Digest]Record{}                                         // (m) indirect keys and values

	ready   = make(chan string, 4)
	forever = make(chan struct{})
)

var r = truth.Rng(77)

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

// ---------------------------------------------------------------- builders
//
// Every builder registers its map(s) with truth.NewMap, then brackets the build
// with mt.Start/mt.Stop (live-heap measurement of the whole map, see
// package truth) and measures every key and value in its own window.

func buildRegistry() {
	mt := truth.NewMap("main.registry.accounts", "global *main.Registry -> field accounts", registry.accounts)
	mt.Start(truth.HeaderBytes(func() any { return map[string]*big.Int{} }))
	regions := [...]string{"acct:eu-west:", "acct:us-east:", "acct:eu-central:"}
	for i := 0; i < 900; i++ {
		k, kc := key(kb(regions[i%3], uint64(i)*31+7, 6))
		v, vc := newInt(2 + i%3)
		registry.accounts[k] = v
		mt.Add(k, kc, vc)
	}
	mt.Stop()
}

func buildShards() {
	shards = make([]map[string][]byte, 4)
	for s := range shards {
		mt := truth.NewMap("main.shards["+strconv.Itoa(s)+"]", "global []map -> element "+strconv.Itoa(s), map[string][]byte(nil))
		mt.Start(0)
		shards[s] = map[string][]byte{}
		mt.Bind(shards[s])
		for i := 0; i < 300+50*s; i++ {
			b := append(make([]byte, 0, 48), "blob:s"...)
			b = strconv.AppendInt(b, int64(s), 10)
			b = append(b, ':')
			b = truth.AppendPad(b, uint64(i), 8)
			k, kc := key(b)
			n := 16 + int(r.Next()%240) // >= 16 bytes: never the tiny allocator
			truth.Begin()
			v := make([]byte, n)
			vc := truth.End()
			truth.Expect("blob", vc, truth.ClassSize(n), 1)
			for j := range v {
				v[j] = byte('a' + (i+j)%26)
			}
			shards[s][k] = v
			mt.Add(k, kc, vc)
		}
		mt.Stop()
	}
}

func buildCache() {
	mt := truth.NewMap("main.cache", "global any (dynamic type map[string]*main.Item)", map[string]*Item(nil))
	mt.Start(0)
	m := map[string]*Item{}
	cache = m
	mt.Bind(m)
	cats := [...]string{"item:book:", "item:tool:", "item:food:", "item:toys:"}
	for i := 0; i < 320; i++ {
		k, kc := key(kb(cats[i%4], uint64(i), 6))
		ob := append(make([]byte, 0, 48), "owner-"...)
		ob = truth.AppendPad(ob, uint64(i%37), 12)
		n := 32 + 16*(i%5)
		truth.Begin()
		it := &Item{ID: int64(i), Hits: uint64(i * 3), Payload: make([]byte, n), Owner: string(ob)}
		vc := truth.End()
		truth.Expect("item", vc, 64+truth.ClassSize(n)+truth.ClassSize(len(ob)), 3)
		m[k] = it
		mt.Add(k, kc, vc)
	}
	mt.Stop()
}

// Hidden is reached only through an unsafe.Pointer global: no typed path leads to its map,
// whose groups or buckets a heap analyzer must find through their allocation headers.
type Hidden struct {
	label string
	m     map[string]*big.Int
}

func buildOpaque() {
	mt := truth.NewMap("main.opaque", "global unsafe.Pointer -> *main.Hidden -> field m", map[string]*big.Int(nil))
	h := &Hidden{label: "hidden"} // before Start: the struct is not part of the map
	opaque = unsafe.Pointer(h)
	mt.Start(0)
	m := map[string]*big.Int{}
	h.m = m
	mt.Bind(m)
	for i := 0; i < 150; i++ {
		k, kc := key(kb("secret:vault-", uint64(i)*13+5, 8))
		v, vc := newInt(2 + i%2)
		m[k] = v
		mt.Add(k, kc, vc)
	}
	mt.Stop()
}

func buildServer() {
	s := &Server{addr: "127.0.0.1:8080", requests: make(chan string)}
	svc = s
	go s.serve(ready)
	<-ready
	mt := truth.NewMap("main.svc.sessions", "global main.Service (dynamic *main.Server) -> field sessions", map[string]*Session(nil))
	mt.Start(0)
	s.sessions = map[string]*Session{}
	mt.Bind(s.sessions)
	for i := 0; i < 200; i++ {
		b := append(make([]byte, 0, 48), "sess:"...)
		b = truth.AppendHex(b, r.Next(), 16)
		k, kc := key(b)
		truth.Begin()
		se := &Session{User: int64(i), Token: make([]byte, 32), Expires: 1700000000 + int64(i)}
		vc := truth.End()
		truth.Expect("session", vc, 48+32, 2)
		if _, dup := s.sessions[k]; dup {
			truth.Fail("dup session")
		}
		s.sessions[k] = se
		mt.Add(k, kc, vc)
	}
	mt.Stop()
}

func buildUsers() {
	mt := truth.NewMap("main.users", "global", users)
	mt.Start(truth.HeaderBytes(func() any { return map[int64]*User{} }))
	for i := 0; i < 1500; i++ {
		id := int64(100000 + i*13)
		nb := append(make([]byte, 0, 48), "user-name-"...)
		nb = truth.AppendPad(nb, uint64(id), 8)
		eb := append(make([]byte, 0, 64), "user."...)
		eb = truth.AppendPad(eb, uint64(id), 8)
		eb = append(eb, "@example.com"...)
		truth.Begin()
		u := &User{ID: id, Name: string(nb), Email: string(eb), Score: float64(i) / 3}
		vc := truth.End()
		truth.Expect("user", vc, 48+truth.ClassSize(len(nb))+truth.ClassSize(len(eb)), 3)
		users[id] = u
		mt.Add("", truth.Cost{}, vc) // int64 keys live inside the map's slots
	}
	mt.Stop()
}

// Scratch space for buildNested. Package-level arrays live in .bss, not on
// the heap, so they do not disturb the live-heap measurements.
var (
	nKeys  [128]string
	nKC    [128]truth.Cost
	nVC    [128]truth.Cost
	nKBuf  [128][32]byte
	nKLen  [128]int
	nWords [128]uint64
)

// buildNested: the outer entry's value bytes are everything allocated while
// building the inner map: its header and table (pre-sized with make(map, n),
// so it never grows and leaves no garbage) plus the inner entries. The
// program checks that this equals the live-heap growth.
func buildNested() {
	outer := truth.NewMap("main.nested", "global", nested)
	regions := [...]string{"eu", "us", "ap"} // string literals: key bytes are not on the heap
	sizes := [...]int{120, 60, 7}
	var inners [3]*truth.Map
	for ri, region := range regions {
		inners[ri] = truth.NewMap("main.nested[\""+region+"\"]", "value of main.nested", map[string]*big.Int(nil))
	}
	outer.Start(truth.HeaderBytes(func() any { return map[string]map[string]*big.Int{} }))
	for ri, region := range regions {
		n := sizes[ri]
		inner := inners[ri]
		for i := 0; i < n; i++ {
			b := append(nKBuf[i][:0], "acct:"...)
			b = append(b, region...)
			b = append(b, ':')
			b = truth.AppendPad(b, uint64(i)*97+5, 10)
			nKLen[i] = len(b)
			nWords[i] = r.Next()
		}
		live0 := truth.HeapLive()
		truth.Begin() // contiguous laps: their sum is the whole inner build
		m := make(map[string]*big.Int, n)
		total := truth.Lap()
		hdr := total
		for i := 0; i < n; i++ {
			k := string(nKBuf[i][:nKLen[i]])
			nKC[i] = truth.Lap()
			w := make([]big.Word, 2)
			w[0] = big.Word(nWords[i])
			w[1] = 1
			v := new(big.Int).SetBits(w)
			nVC[i] = truth.Lap()
			m[k] = v // overflow buckets etc.: part of the inner table, not of the entry
			ic := truth.Lap()
			hdr = hdr.Add(ic)
			total = total.Add(nKC[i]).Add(nVC[i]).Add(ic)
			nKeys[i] = k
		}
		truth.Expect("nested tail", truth.End(), 0, 0)
		if live := truth.HeapLive() - live0; live != total.Bytes {
			truth.Fail("main.nested[" + region + "]: live growth " + strconv.FormatUint(live, 10) +
				" != allocated " + strconv.FormatUint(total.Bytes, 10) + " (inner map left garbage)")
		}
		inner.StartBuilt(total.Bytes) // the inner map was built between live0 and now
		for i := 0; i < n; i++ {
			truth.Expect("nested key", nKC[i], truth.ClassSize(nKLen[i]), 1)
			truth.Expect("nested value", nVC[i], 32+16, 2)
			inner.Add(nKeys[i], nKC[i], nVC[i])
			nKeys[i] = ""
		}
		inner.Bind(m)
		inner.Stop()
		if inner.TableBytes != hdr.Bytes {
			truth.Fail("nested inner table mismatch")
		}
		nested[region] = m
		outer.Add(region, truth.Cost{}, total)
	}
	outer.Stop()
}

// buildChurn: 50,000 inserts, then everything but 10 entries is deleted. The
// table keeps its size; the deleted keys become garbage (freed by the GC).
func buildChurn() {
	mt := truth.NewMap("main.churn", "global", churn)
	mt.Start(truth.HeaderBytes(func() any { return map[string]int64{} }))
	const total, keep = 50000, 10
	var kept [keep]string
	var costs [keep]truth.Cost
	nk := 0
	for i := 0; i < total; i++ {
		b := append(make([]byte, 0, 48), "churn:"...)
		b = truth.AppendPad(b, uint64(i%16), 2)
		b = append(b, ':')
		b = truth.AppendPad(b, uint64(i), 8)
		if i%(total/keep) == 0 {
			k, kc := key(b)
			churn[k] = int64(i)
			kept[nk], costs[nk] = k, kc
			nk++
		} else {
			churn[string(b)] = int64(i)
		}
	}
	for k := range churn {
		survivor := false
		for _, s := range kept {
			if s == k {
				survivor = true
			}
		}
		if !survivor {
			delete(churn, k)
		}
	}
	for i := range kept {
		mt.Add(kept[i], costs[i], truth.Cost{})
	}
	mt.Stop()
}

func buildSmall() {
	mt := truth.NewMap("main.small", "global", small)
	mt.Start(truth.HeaderBytes(func() any { return map[string]string{} }))
	names := [...]string{"cfg:db:primary-host", "cfg:db:replica-host", "cfg:cache:ttl-seconds", "cfg:http:listen-addr", "cfg:http:read-timeout"}
	for i, name := range names {
		k, kc := key([]byte(name))
		vb := append(make([]byte, 0, 48), "value-of-setting-"...)
		vb = truth.AppendPad(vb, uint64(i), 4)
		truth.Begin()
		v := string(vb)
		vc := truth.End()
		truth.Expect("small value", vc, truth.ClassSize(len(vb)), 1)
		small[k] = v
		mt.Add(k, kc, vc)
	}
	mt.Stop()
}

// Digest and Record are over 128 bytes, so the map stores both behind pointers: inserting an
// entry allocates one object for the key and one for the value, which belong to the entry.
type Digest [144]byte

// Record is a 176-byte value holding a pointer (its note).
type Record struct {
	Sums [20]uint64
	Note string
}

func buildWide() {
	mt := truth.NewMap("main.wide", "global", wide)
	mt.Start(truth.HeaderBytes(func() any { return map[Digest]Record{} }))
	for i := 0; i < 48; i++ {
		var d Digest
		copy(d[:], "digest-")
		d[100], d[143] = byte(i), byte(i*7)
		nb := append(make([]byte, 0, 48), "note:wide:"...)
		nb = truth.AppendPad(nb, uint64(i), 10)
		truth.Begin()
		note := string(nb)
		nc := truth.End()
		truth.Expect("wide note", nc, truth.ClassSize(len(nb)), 1)
		// The key and value objects are allocated by the map itself as it stores them.
		kc := truth.Cost{Bytes: truth.ClassSize(len(d)), Objects: 1}
		vc := nc.Add(truth.Cost{Bytes: truth.ClassSize(int(unsafe.Sizeof(Record{}))), Objects: 1})
		wide[d] = Record{Sums: [20]uint64{uint64(i)}, Note: note}
		mt.Add("", kc, vc)
	}
	mt.Stop()
}

func buildEmpty() {
	mt := truth.NewMap("main.empty", "global", empty)
	mt.Start(truth.HeaderBytes(func() any { return make(map[string]int) }))
	mt.Stop()
}

// buildGrowing: with classic maps, make(map, 150) gives B=5 (32 buckets).
// Inserting one entry past the load-factor threshold (192 entries in Go
// 1.21/1.22, whose integer load factor is 6; 208 from Go 1.23 on, 6.5)
// triggers hashGrow, and that insert evacuates only one or two of the 32 old
// buckets, so oldbuckets != nil afterwards. The loop stops at exactly that
// insert. Swiss maps grow atomically; there the map simply gets 209 entries.
func buildGrowing() {
	mt := truth.NewMap("main.growing", "global", growing)
	mt.Start(0)
	growing = make(map[string]*big.Int, 150)
	mt.Bind(growing)
	classic := !truth.SwissMaps()
	if classic {
		if h := truth.ClassicHeader(truth.MapPointer(growing)); h.B != 5 {
			truth.Fail("main.growing: make(map, 150) gave B=" + strconv.Itoa(int(h.B)))
		}
	}
	mid := false
	for i := 0; ; i++ {
		if i == 400 {
			truth.Fail("main.growing never started growing")
		}
		k, kc := key(kb("grow:batch:", uint64(i), 8))
		v, vc := newInt(2)
		growing[k] = v
		mt.Add(k, kc, vc)
		if classic {
			h := truth.ClassicHeader(truth.MapPointer(growing))
			if h.OldBuckets != "0x0" {
				if h.B != 6 || h.NEvacuate > 2 || (i+1 != 193 && i+1 != 209) {
					truth.Fail("main.growing: unexpected grow state at entry " + strconv.Itoa(i+1))
				}
				mid = true
				break
			}
		} else if i+1 == 209 {
			break
		}
	}
	mt.HasMidGrowth, mt.MidGrowth = true, mid
	mt.Stop()
}

// worker builds a map that only its own stack references, then blocks forever.
//
//go:noinline
func worker(done chan<- string, block <-chan struct{}) {
	mt := truth.NewMap("goroutine main.worker: m", "local variable m of goroutine main.worker", map[string]*big.Int(nil))
	mt.Start(0)
	m := make(map[string]*big.Int)
	mt.Bind(m)
	for i := 0; i < 400; i++ {
		k, kc := key(kb("job:queue-7:", uint64(i)*3+1, 8))
		v, vc := newInt(3)
		m[k] = v
		mt.Add(k, kc, vc)
	}
	mt.Stop()
	done <- "worker"
	<-block
	runtime.KeepAlive(m)
}

func main() {
	truth.Setup("zoo")

	go worker(ready, forever)
	<-ready // the worker measured its map while main waited here

	buildRegistry()
	buildShards()
	buildCache()
	buildOpaque()
	buildWide()
	buildServer()
	buildUsers()
	buildNested()
	buildChurn()
	buildSmall()
	buildEmpty()
	buildGrowing()
	truth.Finish()
}
