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

	ready   = make(chan string, 4)
	forever = make(chan struct{})
)

var r = rng(77)

// ---------------------------------------------------------------- helpers

// key turns the bytes into a heap string inside its own window.
func key(b []byte) (string, Cost) {
	begin()
	k := string(b)
	c := end()
	expect("key "+k, c, classSize(len(b)), 1)
	return k, c
}

// newInt builds a big.Int with a words-word magnitude inside a window.
func newInt(words int) (*big.Int, Cost) {
	lo := r.next()
	begin()
	w := make([]big.Word, words)
	w[0] = big.Word(lo)
	w[words-1] |= 1
	v := new(big.Int).SetBits(w)
	c := end()
	expect("big.Int", c, 32+classSize(8*words), 2)
	return v, c
}

func kb(prefix string, id uint64, width int) []byte {
	b := make([]byte, 0, 48) // caller-side scratch; never inside a window
	b = append(b, prefix...)
	return appendPad(b, id, width)
}

// ---------------------------------------------------------------- builders
//
// Every builder registers its map(s) with newMap, then brackets the build
// with mt.start/mt.stop (live-heap measurement of the whole map, see
// truth.go) and measures every key and value in its own window.

func buildRegistry() {
	mt := newMap("main.registry.accounts", "global *main.Registry -> field accounts", registry.accounts)
	mt.start(headerBytes(func() any { return map[string]*big.Int{} }))
	regions := [...]string{"acct:eu-west:", "acct:us-east:", "acct:eu-central:"}
	for i := 0; i < 900; i++ {
		k, kc := key(kb(regions[i%3], uint64(i)*31+7, 6))
		v, vc := newInt(2 + i%3)
		registry.accounts[k] = v
		mt.add(k, kc, vc)
	}
	mt.stop()
}

func buildShards() {
	shards = make([]map[string][]byte, 4)
	for s := range shards {
		mt := newMap("main.shards["+strconv.Itoa(s)+"]", "global []map -> element "+strconv.Itoa(s), map[string][]byte(nil))
		mt.start(0)
		shards[s] = map[string][]byte{}
		mt.bind(shards[s])
		for i := 0; i < 300+50*s; i++ {
			b := append(make([]byte, 0, 48), "blob:s"...)
			b = strconv.AppendInt(b, int64(s), 10)
			b = append(b, ':')
			b = appendPad(b, uint64(i), 8)
			k, kc := key(b)
			n := 16 + int(r.next()%240) // >= 16 bytes: never the tiny allocator
			begin()
			v := make([]byte, n)
			vc := end()
			expect("blob", vc, classSize(n), 1)
			for j := range v {
				v[j] = byte('a' + (i+j)%26)
			}
			shards[s][k] = v
			mt.add(k, kc, vc)
		}
		mt.stop()
	}
}

func buildCache() {
	mt := newMap("main.cache", "global any (dynamic type map[string]*main.Item)", map[string]*Item(nil))
	mt.start(0)
	m := map[string]*Item{}
	cache = m
	mt.bind(m)
	cats := [...]string{"item:book:", "item:tool:", "item:food:", "item:toys:"}
	for i := 0; i < 320; i++ {
		k, kc := key(kb(cats[i%4], uint64(i), 6))
		ob := append(make([]byte, 0, 48), "owner-"...)
		ob = appendPad(ob, uint64(i%37), 12)
		n := 32 + 16*(i%5)
		begin()
		it := &Item{ID: int64(i), Hits: uint64(i * 3), Payload: make([]byte, n), Owner: string(ob)}
		vc := end()
		expect("item", vc, 64+classSize(n)+classSize(len(ob)), 3)
		m[k] = it
		mt.add(k, kc, vc)
	}
	mt.stop()
}

func buildServer() {
	s := &Server{addr: "127.0.0.1:8080", requests: make(chan string)}
	svc = s
	go s.serve(ready)
	<-ready
	mt := newMap("main.svc.sessions", "global main.Service (dynamic *main.Server) -> field sessions", map[string]*Session(nil))
	mt.start(0)
	s.sessions = map[string]*Session{}
	mt.bind(s.sessions)
	for i := 0; i < 200; i++ {
		b := append(make([]byte, 0, 48), "sess:"...)
		b = appendHex(b, r.next(), 16)
		k, kc := key(b)
		begin()
		se := &Session{User: int64(i), Token: make([]byte, 32), Expires: 1700000000 + int64(i)}
		vc := end()
		expect("session", vc, 48+32, 2)
		if _, dup := s.sessions[k]; dup {
			fail("dup session")
		}
		s.sessions[k] = se
		mt.add(k, kc, vc)
	}
	mt.stop()
}

func buildUsers() {
	mt := newMap("main.users", "global", users)
	mt.start(headerBytes(func() any { return map[int64]*User{} }))
	for i := 0; i < 1500; i++ {
		id := int64(100000 + i*13)
		nb := append(make([]byte, 0, 48), "user-name-"...)
		nb = appendPad(nb, uint64(id), 8)
		eb := append(make([]byte, 0, 64), "user."...)
		eb = appendPad(eb, uint64(id), 8)
		eb = append(eb, "@example.com"...)
		begin()
		u := &User{ID: id, Name: string(nb), Email: string(eb), Score: float64(i) / 3}
		vc := end()
		expect("user", vc, 48+classSize(len(nb))+classSize(len(eb)), 3)
		users[id] = u
		mt.add("", Cost{}, vc) // int64 keys live inside the map's slots
	}
	mt.stop()
}

// Scratch space for buildNested. Package-level arrays live in .bss, not on
// the heap, so they do not disturb the live-heap measurements.
var (
	nKeys  [128]string
	nKC    [128]Cost
	nVC    [128]Cost
	nKBuf  [128][32]byte
	nKLen  [128]int
	nWords [128]uint64
)

// buildNested: the outer entry's value bytes are everything allocated while
// building the inner map: its header and table (pre-sized with make(map, n),
// so it never grows and leaves no garbage) plus the inner entries. The
// program checks that this equals the live-heap growth.
func buildNested() {
	outer := newMap("main.nested", "global", nested)
	regions := [...]string{"eu", "us", "ap"} // string literals: key bytes are not on the heap
	sizes := [...]int{120, 60, 7}
	var inners [3]*MapTruth
	for ri, region := range regions {
		inners[ri] = newMap("main.nested[\""+region+"\"]", "value of main.nested", map[string]*big.Int(nil))
	}
	outer.start(headerBytes(func() any { return map[string]map[string]*big.Int{} }))
	for ri, region := range regions {
		n := sizes[ri]
		inner := inners[ri]
		for i := 0; i < n; i++ {
			b := append(nKBuf[i][:0], "acct:"...)
			b = append(b, region...)
			b = append(b, ':')
			b = appendPad(b, uint64(i)*97+5, 10)
			nKLen[i] = len(b)
			nWords[i] = r.next()
		}
		live0 := heapLive()
		begin() // contiguous laps: their sum is the whole inner build
		m := make(map[string]*big.Int, n)
		total := lap()
		hdr := total
		for i := 0; i < n; i++ {
			k := string(nKBuf[i][:nKLen[i]])
			nKC[i] = lap()
			w := make([]big.Word, 2)
			w[0] = big.Word(nWords[i])
			w[1] = 1
			v := new(big.Int).SetBits(w)
			nVC[i] = lap()
			m[k] = v // overflow buckets etc.: part of the inner table, not of the entry
			ic := lap()
			hdr = hdr.add(ic)
			total = total.add(nKC[i]).add(nVC[i]).add(ic)
			nKeys[i] = k
		}
		expect("nested tail", end(), 0, 0)
		if live := heapLive() - live0; live != total.Bytes {
			fail("main.nested[" + region + "]: live growth " + strconv.FormatUint(live, 10) +
				" != allocated " + strconv.FormatUint(total.Bytes, 10) + " (inner map left garbage)")
		}
		inner.start(0)
		inner.live0 -= total.Bytes // the inner map was built between live0 and now
		for i := 0; i < n; i++ {
			expect("nested key", nKC[i], classSize(nKLen[i]), 1)
			expect("nested value", nVC[i], 32+16, 2)
			inner.add(nKeys[i], nKC[i], nVC[i])
			nKeys[i] = ""
		}
		inner.bind(m)
		inner.stop()
		if inner.TableBytes != hdr.Bytes {
			fail("nested inner table mismatch")
		}
		nested[region] = m
		outer.add(region, Cost{}, total)
	}
	outer.stop()
}

// buildChurn: 50,000 inserts, then everything but 10 entries is deleted. The
// table keeps its size; the deleted keys become garbage (freed by the GC).
func buildChurn() {
	mt := newMap("main.churn", "global", churn)
	mt.start(headerBytes(func() any { return map[string]int64{} }))
	const total, keep = 50000, 10
	var kept [keep]string
	var costs [keep]Cost
	nk := 0
	for i := 0; i < total; i++ {
		b := append(make([]byte, 0, 48), "churn:"...)
		b = appendPad(b, uint64(i%16), 2)
		b = append(b, ':')
		b = appendPad(b, uint64(i), 8)
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
		mt.add(kept[i], costs[i], Cost{})
	}
	mt.stop()
}

func buildSmall() {
	mt := newMap("main.small", "global", small)
	mt.start(headerBytes(func() any { return map[string]string{} }))
	names := [...]string{"cfg:db:primary-host", "cfg:db:replica-host", "cfg:cache:ttl-seconds", "cfg:http:listen-addr", "cfg:http:read-timeout"}
	for i, name := range names {
		k, kc := key([]byte(name))
		vb := append(make([]byte, 0, 48), "value-of-setting-"...)
		vb = appendPad(vb, uint64(i), 4)
		begin()
		v := string(vb)
		vc := end()
		expect("small value", vc, classSize(len(vb)), 1)
		small[k] = v
		mt.add(k, kc, vc)
	}
	mt.stop()
}

func buildEmpty() {
	mt := newMap("main.empty", "global", empty)
	mt.start(headerBytes(func() any { return make(map[string]int) }))
	mt.stop()
}

// buildGrowing: with classic maps, make(map, 150) gives B=5 (32 buckets).
// Inserting one entry past the load-factor threshold (192 entries in Go
// 1.21/1.22, whose integer load factor is 6; 208 from Go 1.23 on, 6.5)
// triggers hashGrow, and that insert evacuates only one or two of the 32 old
// buckets, so oldbuckets != nil afterwards. The loop stops at exactly that
// insert. Swiss maps grow atomically; there the map simply gets 209 entries.
func buildGrowing() {
	mt := newMap("main.growing", "global", growing)
	mt.start(0)
	growing = make(map[string]*big.Int, 150)
	mt.bind(growing)
	classic := !swissMaps()
	if classic {
		if h := classicHeader(mapPointer(growing)); h.B != 5 {
			fail("main.growing: make(map, 150) gave B=" + strconv.Itoa(int(h.B)))
		}
	}
	mid := false
	for i := 0; ; i++ {
		if i == 400 {
			fail("main.growing never started growing")
		}
		k, kc := key(kb("grow:batch:", uint64(i), 8))
		v, vc := newInt(2)
		growing[k] = v
		mt.add(k, kc, vc)
		if classic {
			h := classicHeader(mapPointer(growing))
			if h.OldBuckets != "0x0" {
				if h.B != 6 || h.NEvacuate > 2 || (i+1 != 193 && i+1 != 209) {
					fail("main.growing: unexpected grow state at entry " + strconv.Itoa(i+1))
				}
				mid = true
				break
			}
		} else if i+1 == 209 {
			break
		}
	}
	mt.HasMidGrowth, mt.MidGrowth = true, mid
	mt.stop()
}

// worker builds a map that only its own stack references, then blocks forever.
//
//go:noinline
func worker(done chan<- string, block <-chan struct{}) {
	mt := newMap("goroutine main.worker: m", "local variable m of goroutine main.worker", map[string]*big.Int(nil))
	mt.start(0)
	m := make(map[string]*big.Int)
	mt.bind(m)
	for i := 0; i < 400; i++ {
		k, kc := key(kb("job:queue-7:", uint64(i)*3+1, 8))
		v, vc := newInt(3)
		m[k] = v
		mt.add(k, kc, vc)
	}
	mt.stop()
	done <- "worker"
	<-block
	runtime.KeepAlive(m)
}

func main() {
	setup()
	initTruth("zoo")

	go worker(ready, forever)
	<-ready // the worker measured its map while main waited here

	buildRegistry()
	buildShards()
	buildCache()
	buildServer()
	buildUsers()
	buildNested()
	buildChurn()
	buildSmall()
	buildEmpty()
	buildGrowing()
	finish()
}
