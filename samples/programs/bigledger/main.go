// bigledger is the ledger sample at benchmark scale: the same global map[string]*big.Int with
// one heavy key family, grown until about LEDGER_GB gigabytes of live heap, then it dies by
// SIGABRT with GOTRACEBACK=crash so the kernel writes a core. LEDGER_WORDS multiplies every
// value's size (default 1: about 60 bytes per object; 5: about 200, the ledger sample's large
// values at scale). It keeps no ground truth: it exists to measure how fast coreheap reads big
// cores (bench/run.sh), not what it reports.
package main

import (
	"math/big"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"syscall"
)

// balances is the map that eats the memory.
var balances = map[string]*big.Int{}

// family is one key prefix: its share of entries and its values' size in words.
type family struct {
	prefix string
	weight int
	words  int
}

var families = [...]family{
	{"acct:eu-west:", 45, 24},
	{"acct:us-east:", 20, 2},
	{"sess:", 15, 4},
	{"acct:ap-south:", 12, 3},
	{"tmp:", 8, 2},
}

// classSize rounds an allocation up to its size class, roughly (for the stopping rule only).
func classSize(n int) int {
	for _, c := range []int{8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256} {
		if n <= c {
			return c
		}
	}
	return (n + 63) &^ 63
}

// die raises SIGABRT on its own thread, which takes it before the call returns, and never
// parks the goroutine: a parked main goroutine can be found deadlocked first, and the runtime
// then hangs instead of dumping core.
//
//go:noinline
func die() {
	syscall.Tgkill(syscall.Getpid(), syscall.Gettid(), syscall.SIGABRT)
	for {
		ts := syscall.Timespec{Sec: 1}
		syscall.Nanosleep(&ts, nil)
	}
}

func main() {
	debug.SetTraceback("crash")
	debug.SetGCPercent(-1)
	gb, err := strconv.ParseFloat(os.Getenv("LEDGER_GB"), 64)
	if err != nil || gb <= 0 {
		gb = 1
	}
	target := int(gb * (1 << 30))
	scale, err := strconv.Atoi(os.Getenv("LEDGER_WORDS"))
	if err != nil || scale < 1 {
		scale = 1
	}
	var cycle []int
	for fi, f := range families {
		for j := 0; j < f.weight; j++ {
			cycle = append(cycle, fi)
		}
	}
	used := 0
	buf := make([]byte, 0, 64)
	for i := 0; used < target; i++ {
		f := families[cycle[i%len(cycle)]]
		buf = append(buf[:0], f.prefix...)
		buf = strconv.AppendUint(buf, uint64(i)*2654435761%1000000007, 10)
		key := string(buf)
		words := f.words * scale
		w := make([]big.Word, words)
		w[0], w[words-1] = big.Word(i), 1
		balances[key] = new(big.Int).SetBits(w)
		// key + big.Int + magnitude + ~28 bytes of map slot and control at 7/8 load
		used += classSize(len(key)) + 32 + classSize(8*words) + 28
	}
	runtime.GC() // drop the tables that growth replaced
	die()
}
