// Package truth is shared by the sample programs (samples/programs/{tiny,
// ledger,zoo,services}). With the garbage collector switched off it measures exactly
// how many heap bytes each map entry's key and value cost and how much live
// memory each map's own table holds, writes truth.json and memstats.json,
// and then makes the process dump core (SIGABRT, without allocating).
//
// Use from a program:
//
//	truth.Setup("ledger")                 // GC off, one P, warm-up
//	mt := truth.NewMap("main.m", "global", m)
//	mt.Start(truth.HeaderBytes(func() any { return map[string]int{} }))
//	truth.Begin(); k := string(b); kc := truth.End()   // one window per key/value
//	m[k] = v; mt.Add(k, kc, vc)
//	mt.Stop()
//	truth.Finish()                        // never returns
package truth

import (
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
)

// ---------------------------------------------------------------- setup

// procs is GOMAXPROCS as the program started; measurement runs with one P
// and Finish restores it before the crash.
var procs int

// Setup prepares the process for measuring and starts the truth document
// for program: crash tracebacks, GC off, one P, then a warm-up until the
// live heap no longer changes by itself.
func Setup(program string) {
	debug.SetTraceback("crash")
	debug.SetGCPercent(-1)
	// Measure on a single P: the runtime's own small retained allocations
	// (per-P timer heaps, per-P sudog caches, GC worker goroutines) then
	// settle after a short warm-up instead of appearing at random while a
	// map is being measured.
	procs = runtime.GOMAXPROCS(1)
	warmUp()
	initTruth(program)
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
	stable, last := 0, HeapLive()
	for i := 0; i < 100 && stable < 8; i++ {
		if l := HeapLive(); l == last {
			stable++
		} else {
			stable, last = 0, l
		}
	}
	if stable < 8 {
		Fail("the live heap does not settle")
	}
}

var msLive runtime.MemStats

// HeapLive forces a full collection (mark, then sweep of every span; the GC
// stays disabled otherwise) and returns HeapAlloc, i.e. exactly the bytes of
// the heap objects that are still reachable.
func HeapLive() uint64 {
	runtime.GC()
	runtime.ReadMemStats(&msLive)
	return msLive.HeapAlloc
}

// stableLive is HeapLive, insisting that two consecutive readings agree.
func stableLive() uint64 {
	last := HeapLive()
	for i := 0; i < 10; i++ {
		l := HeapLive()
		if l == last {
			return l
		}
		last = l
	}
	Fail("the live heap does not settle")
	return 0
}

// sink makes values escape to the heap (always nil outside HeaderBytes).
var sink any

// HeaderBytes measures what creating one empty map the way f does costs:
// used for package-level map literals whose header was allocated during
// package initialization, before any measurement could start.
func HeaderBytes(f func() any) uint64 {
	Begin()
	sink = f()
	c := End()
	sink = nil
	if c.Objects != 1 {
		Fail("HeaderBytes: expected exactly one allocation, got " + strconv.FormatUint(c.Objects, 10))
	}
	return c.Bytes
}

// Fail reports a broken invariant and exits WITHOUT a core dump, so that
// samples/build.sh refuses to store a sample whose truth would be wrong.
func Fail(msg string) {
	os.Stderr.WriteString("TRUTH VERIFICATION FAILED: " + msg + "\n")
	os.Exit(3)
}

// ---------------------------------------------------------------- measuring

// Cost is what one measured window allocated.
type Cost struct {
	Bytes   uint64 // MemStats.TotalAlloc delta (size-class rounded bytes)
	Objects uint64 // MemStats.Mallocs delta
}

// Add returns the sum of two costs.
func (c Cost) Add(d Cost) Cost { return Cost{c.Bytes + d.Bytes, c.Objects + d.Objects} }

var (
	msBuf    [2]runtime.MemStats
	msPrev   = &msBuf[0]
	msCur    = &msBuf[1]
	measured bool
)

// Begin, Lap and End bracket measurement windows. ReadMemStats stops the
// world and flushes every P's mcache, so TotalAlloc and Mallocs are exact at
// that instant (runtime/metrics' /gc/heap/allocs:bytes is only updated when
// an mcache span is refilled, which is why it is not used here). Nothing
// else allocates meanwhile: every other goroutine is blocked and the GC is
// off.
//
//	truth.Begin(); <build key>; kc := truth.Lap(); <build value>; vc := truth.End()
func Begin() {
	runtime.ReadMemStats(msPrev)
	measured = true
}

// Lap returns what was allocated since the previous Begin/Lap and starts the
// next window at the same instant.
func Lap() Cost {
	if !measured {
		Fail("Lap without Begin")
	}
	runtime.ReadMemStats(msCur)
	c := Cost{msCur.TotalAlloc - msPrev.TotalAlloc, msCur.Mallocs - msPrev.Mallocs}
	msPrev, msCur = msCur, msPrev
	return c
}

// End closes the current window and returns what it allocated.
func End() Cost {
	c := Lap()
	measured = false
	return c
}

// sizeClasses is the Go heap size-class table (identical in Go 1.21 .. 1.27,
// runtime/sizeclasses.go resp. internal/runtime/gc/sizeclasses.go).
var sizeClasses = [...]uint64{8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256, 288, 320, 352, 384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280, 1408, 1536, 1792, 2048, 2304, 2688, 3072, 3200, 3456, 4096, 4864, 5376, 6144, 6528, 6784, 6912, 8192, 9472, 9728, 10240, 10880, 12288, 13568, 14336, 16384, 18432, 19072, 20480, 21760, 24576, 27264, 28672, 32768}

// ClassSize is the number of bytes the allocator really hands out for an
// n-byte small object without an allocation header (noscan objects, and
// pointerful objects <= 512 bytes).
func ClassSize(n int) uint64 {
	for _, c := range sizeClasses {
		if uint64(n) <= c {
			return c
		}
	}
	Fail("ClassSize: large object " + strconv.Itoa(n))
	return 0
}

// Expect verifies a window against what the program believes it allocated.
func Expect(what string, c Cost, bytes, objects uint64) {
	if c.Bytes != bytes || c.Objects != objects {
		Fail(what + ": measured " + strconv.FormatUint(c.Bytes, 10) + " bytes/" +
			strconv.FormatUint(c.Objects, 10) + " objects, expected " +
			strconv.FormatUint(bytes, 10) + "/" + strconv.FormatUint(objects, 10))
	}
}

// ---------------------------------------------------------------- keys

// AppendPad appends v in decimal, zero padded to width digits.
func AppendPad(b []byte, v uint64, width int) []byte {
	var tmp [20]byte
	d := strconv.AppendUint(tmp[:0], v, 10)
	for i := len(d); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, d...)
}

// AppendHex appends the low width hex digits of v.
func AppendHex(b []byte, v uint64, width int) []byte {
	const digits = "0123456789abcdef"
	for i := width - 1; i >= 0; i-- {
		b = append(b, digits[(v>>(uint(i)*4))&15])
	}
	return b
}

// Rng is a tiny deterministic generator (splitmix64); no allocation.
type Rng uint64

// Next returns the next pseudo-random number.
func (r *Rng) Next() uint64 {
	*r += 0x9e3779b97f4a7c15
	z := uint64(*r)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
