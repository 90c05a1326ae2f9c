// growth is a session cache that leaks, dumped twice: STAGE=1 is the service an hour in,
// STAGE=2 the same service later, grown. A `coreheap diff` of the two cores must find what
// the two truth files say changed: main.cache grew (user:eu tripled, job appeared, sess
// shrank), main.audit appeared (nil in stage 1) and main.retired disappeared (nil in stage 2).
// With HOLD=1 the program does not crash: it waits to be dumped with gcore and killed.
package main

import (
	"os"
	"strconv"

	"samples/internal/truth"
)

// cache is the session cache that leaks.
var cache = map[string][]byte{}

// audit appears in stage 2: nil before.
var audit map[string]string

// retired is filled in stage 1 only: nil in stage 2.
var retired map[string]int

// family is one key prefix of the cache, with its size in each stage.
type family struct {
	prefix string // including the trailing ':'
	count  [2]int // entries in stage 1 and stage 2
	value  int    // bytes of each value
	hex    bool   // 16 hex digits of id instead of 8 decimal ones
}

var families = [...]family{
	{prefix: "user:eu:", count: [2]int{2000, 6000}, value: 96},
	{prefix: "user:us:", count: [2]int{1500, 1500}, value: 48},
	{prefix: "sess:web:", count: [2]int{1200, 400}, value: 32, hex: true},
	{prefix: "job:batch:", count: [2]int{0, 2500}, value: 160},
}

func main() {
	truth.Setup("growth")
	stage, err := strconv.Atoi(os.Getenv("STAGE"))
	if err != nil || stage < 1 || stage > 2 {
		truth.Fail("STAGE must be 1 or 2")
	}
	fill(stage - 1)
	if stage == 1 {
		keep(40)
	} else {
		record(900)
	}
	if os.Getenv("HOLD") == "1" {
		truth.Hold()
	}
	truth.Finish()
}

// fill inserts every family's entries of stage s, interleaved as an ingest stream would.
func fill(s int) {
	mt := truth.NewMap("main.cache", "global", cache)
	mt.Start(truth.HeaderBytes(func() any { return map[string][]byte{} }))
	r := truth.Rng(20261207)
	var done [len(families)]int
	for more := true; more; {
		more = false
		for fi := range families {
			f := &families[fi]
			if done[fi] < f.count[s] {
				insert(mt, f, done[fi], &r)
				done[fi]++
				more = more || done[fi] < f.count[s]
			}
		}
	}
	mt.Stop()
}

// insert adds entry i of family f, measuring its key and value.
func insert(mt *truth.Map, f *family, i int, r *truth.Rng) {
	var buf [40]byte
	b := append(buf[:0], f.prefix...)
	if f.hex {
		b = truth.AppendHex(b, r.Next(), 16)
	} else {
		b = truth.AppendPad(b, uint64(i)*7919%100000000, 8)
	}
	fill := byte(r.Next())
	truth.Begin()
	k := string(b)
	kc := truth.Lap()
	v := make([]byte, f.value)
	vc := truth.End()
	v[0] = fill
	truth.Expect("key "+k, kc, truth.ClassSize(len(b)), 1)
	truth.Expect("value of "+k, vc, truth.ClassSize(f.value), 1)
	cache[k] = v
	mt.Add(k, kc, vc)
}

// keep fills main.retired, stage 1's map of retired job ids.
func keep(n int) {
	retired = map[string]int{}
	mt := truth.NewMap("main.retired", "global", retired)
	mt.Start(truth.HeaderBytes(func() any { return map[string]int{} }))
	for i := 0; i < n; i++ {
		var buf [24]byte
		b := truth.AppendPad(append(buf[:0], "old:"...), uint64(i), 6)
		truth.Begin()
		k := string(b)
		kc := truth.End()
		truth.Expect("key "+k, kc, truth.ClassSize(len(b)), 1)
		retired[k] = i
		mt.Add(k, kc, truth.Cost{})
	}
	mt.Stop()
}

// record fills main.audit, stage 2's audit trail.
func record(n int) {
	audit = map[string]string{}
	mt := truth.NewMap("main.audit", "global", audit)
	mt.Start(truth.HeaderBytes(func() any { return map[string]string{} }))
	for i := 0; i < n; i++ {
		var buf [24]byte
		b := truth.AppendPad(append(buf[:0], "evt:login:"...), uint64(i), 6)
		truth.Begin()
		k := string(b)
		kc := truth.Lap()
		v := string(b[4:])
		vc := truth.End()
		truth.Expect("key "+k, kc, truth.ClassSize(len(b)), 1)
		truth.Expect("value of "+k, vc, truth.ClassSize(len(b)-4), 1)
		audit[k] = v
		mt.Add(k, kc, vc)
	}
	mt.Stop()
}
