// ledger models the incident coreheap was written for: a ledger service keeps
// every balance it has ever seen in one global map[string]*big.Int, keyed by
// "<kind>:<region>:<id>". One key family (acct:eu-west) holds ~70% of the
// bytes. A few worker goroutines are parked on channels when the process dies.
package main

import (
	"math/big"

	"samples/internal/truth"
)

// balances is the map that "ate the memory".
var balances = map[string]*big.Int{}

// family describes one key prefix.
type family struct {
	prefix string // key prefix including the trailing ':'
	count  int    // number of entries
	words  int    // big.Word count of every value's magnitude (>= 2)
	hex    bool   // id is 16 random hex digits instead of a decimal number
	digits int    // decimal id width
}

var families = [...]family{
	{prefix: "acct:eu-west:", count: 9000, words: 24, digits: 8},
	{prefix: "acct:us-east:", count: 4000, words: 2, digits: 8},
	{prefix: "sess:", count: 3000, words: 4, hex: true},
	{prefix: "acct:ap-south:", count: 2500, words: 3, digits: 8},
	{prefix: "tmp:", count: 1500, words: 2, digits: 12},
}

var (
	settleCh = make(chan *big.Int)
	auditCh  = make(chan string)
	quitCh   = make(chan struct{})
	started  = make(chan string, 3)
)

// settler waits for settlements that never come (chan receive).
//
//go:noinline
func settler(in <-chan *big.Int) {
	started <- "settler"
	for v := range in {
		_ = v
	}
}

// auditor tries to hand an audit record to nobody (chan send).
//
//go:noinline
func auditor(out chan<- string) {
	started <- "auditor"
	out <- "audit:eu-west:pending"
}

// janitor waits in a select on two channels.
//
//go:noinline
func janitor(quit <-chan struct{}, in <-chan *big.Int) {
	started <- "janitor"
	select {
	case <-quit:
	case <-in:
	}
}

func main() {
	truth.Setup("ledger")
	go settler(settleCh)
	go auditor(auditCh)
	go janitor(quitCh, settleCh)
	for i := 0; i < 3; i++ {
		<-started
	}

	mt := truth.NewMap("main.balances", "global", balances)
	mt.Start(truth.HeaderBytes(func() any { return map[string]*big.Int{} }))
	r := truth.Rng(20240917)
	// Interleave the families like a real ingest stream would.
	var done [len(families)]int
	for remaining := true; remaining; {
		remaining = false
		for fi := range families {
			f := &families[fi]
			// heavy family gets 3 inserts per round, others 1
			per := 1
			if fi == 0 {
				per = 3
			}
			for j := 0; j < per && done[fi] < f.count; j++ {
				insert(mt, f, done[fi], &r)
				done[fi]++
			}
			if done[fi] < f.count {
				remaining = true
			}
		}
	}
	mt.Stop()
	truth.Finish()
}

// insert builds one key and one value inside measurement windows, verifies
// their cost, and inserts them outside the windows.
func insert(mt *truth.Map, f *family, i int, r *truth.Rng) {
	var buf [48]byte
	b := append(buf[:0], f.prefix...)
	if f.hex {
		b = truth.AppendHex(b, r.Next(), 16)
	} else {
		id := (uint64(i)*7919 + 104729) % 100000000
		if f.digits > 8 {
			id += uint64(r.Next()%9000+1000) * 100000000
		}
		b = truth.AppendPad(b, id, f.digits)
	}
	amount := r.Next()

	truth.Begin()
	k := string(b)
	kc := truth.Lap()
	w := make([]big.Word, f.words)
	w[0] = big.Word(amount)
	w[f.words-1] |= 1 // normalized magnitude: top word non-zero
	v := new(big.Int).SetBits(w)
	vc := truth.End()

	truth.Expect("key "+k, kc, truth.ClassSize(len(b)), 1)
	truth.Expect("value of "+k, vc, 32+truth.ClassSize(8*f.words), 2)
	if _, dup := balances[k]; dup {
		truth.Fail("duplicate key " + k)
	}
	balances[k] = v
	mt.Add(k, kc, vc)
}
