package truth

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"
)

var (
	ms1, ms2    runtime.MemStats
	ms3         runtime.MemStats
	memBuf      []byte
	goroutinesN int
	pauseTS     = syscall.Timespec{Sec: 1}
)

// Finish writes truth.json, then collects garbage, snapshots MemStats into
// memstats.json without allocating, and dumps core (see crash). It never
// returns.
func Finish() {
	snapshot()
	crash()
}

// readyLine is what Hold writes when the process may be dumped (allocated
// before the snapshot).
var readyLine = []byte("ready\n")

// Hold is Finish for a core taken from the living process (gcore): after the
// snapshot it writes "ready" to the file $READY and waits, without
// allocating, to be dumped and killed. It never returns.
func Hold() {
	fd, err := syscall.Open(os.Getenv("READY"), syscall.O_WRONLY|syscall.O_CREAT|syscall.O_TRUNC|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		Fail("READY: " + err.Error())
	}
	snapshot()
	writeAll(fd, readyLine)
	for {
		syscall.RawSyscall(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&pauseTS)), 0, 0)
	}
}

// snapshot writes truth.json, collects garbage and writes memstats.json,
// repeating until nothing was allocated from the MemStats read to the end.
func snapshot() {
	truthPath := os.Getenv("TRUTH")
	if truthPath == "" {
		truthPath = "truth.json"
	}
	memPath := os.Getenv("MEMSTATS")
	if memPath == "" {
		memPath = filepath.Join(filepath.Dir(truthPath), "memstats.json")
	}
	for _, mt := range doc.Maps {
		mt.seal()
	}
	// Back to the original number of Ps (the core should look like a normal
	// process), and let the runtime settle (new P: GC worker, timers) before
	// the final snapshot.
	runtime.GOMAXPROCS(procs)
	settle()
	// Goroutine-local maps (extra.go): their headers live in stack frames,
	// which GC may shrink (and so move) until the stack is small enough; ask
	// their goroutines for the address now, collect, and ask again: it must
	// not have moved. Nothing happens here for programs without such maps.
	if probeStacks(false) {
		settle()
		probeStacks(true)
	}
	goroutinesN = runtime.NumGoroutine()
	doc.Goroutines = goroutinesN
	data := doc.appendJSON(nil)
	if err := os.WriteFile(truthPath, data, 0o644); err != nil {
		Fail(err.Error())
	}
	fd, err := syscall.Open(memPath, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_TRUNC|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		Fail(err.Error())
	}
	memBuf = make([]byte, 0, 16<<10)
	// Forget all bookkeeping: at the crash, the keys and values of every
	// measured map must be reachable only through that map.
	doc = Truth{}
	sink = nil
	data = nil

	// The snapshot. The runtime can allocate on its own at any moment (e.g.
	// sysmon wakes the scavenger, no idle M is left, and startm creates a new
	// M: an m, two g's, ...). So: collect, read MemStats, write the file,
	// read MemStats again, and start over (rewriting the file) until nothing
	// was allocated from the first read to the last; then crash at once.
	var attempts uint64
	for {
		attempts++
		if attempts > 20 {
			Fail("the runtime keeps allocating after the final collection")
		}
		runFinalHooks() // extra.go: none except in services (it fills its sync.Pool here)
		runtime.GC()    // completes marking and sweeping; GC stays disabled afterwards
		runtime.ReadMemStats(&ms1)
		if _, err := syscall.Seek(fd, 0, 0); err != nil {
			Fail("seek memstats")
		}
		if err := syscall.Ftruncate(fd, 0); err != nil {
			Fail("truncate memstats")
		}
		writeAll(fd, appendMemStats(memBuf[:0], &ms1))
		runtime.ReadMemStats(&ms2)
		b := memBuf[:0]
		b = append(b, "  \"mallocs_after_write\": "...)
		b = strconv.AppendUint(b, ms2.Mallocs-ms1.Mallocs, 10)
		b = append(b, ",\n  \"total_alloc_after_write\": "...)
		b = strconv.AppendUint(b, ms2.TotalAlloc-ms1.TotalAlloc, 10)
		b = append(b, ",\n  \"snapshot_attempts\": "...)
		b = strconv.AppendUint(b, attempts, 10)
		b = append(b, ",\n  \"goroutines\": "...)
		n := runtime.NumGoroutine()
		b = strconv.AppendInt(b, int64(n), 10)
		b = append(b, "\n}\n"...)
		writeAll(fd, b)
		if n != goroutinesN {
			Fail("goroutine count changed between truth.json and crash")
		}
		runtime.ReadMemStats(&ms3)
		if ms3.Mallocs == ms1.Mallocs && ms3.TotalAlloc == ms1.TotalAlloc && ms3.Frees == ms1.Frees {
			break
		}
	}
	// fd stays open (the kernel closes it; the data is written already).
}

func writeAll(fd int, b []byte) {
	for len(b) > 0 {
		n, err := syscall.Write(fd, b)
		if err != nil {
			Fail("write memstats")
		}
		b = b[n:]
	}
}

// crash sends SIGABRT to the thread it runs on (tgkill, a raw system call:
// no allocation, and the goroutine stays "running" on this thread). The
// signal is delivered as the system call returns; the runtime's signal
// handler (which never allocates from the heap) prints every goroutine
// (GOTRACEBACK=crash) and dies with SIGABRT, and the kernel writes the core.
// Sending the signal to the process instead (kill) would let the kernel pick
// any thread, usually the main thread, which is not running this goroutine.
// The loop only waits, without allocating, in case the signal takes a moment.
//
//go:noinline
func crash() {
	pid, tid := syscall.Getpid(), syscall.Gettid()
	syscall.RawSyscall(syscall.SYS_TGKILL, uintptr(pid), uintptr(tid), uintptr(syscall.SIGABRT))
	for {
		syscall.RawSyscall(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&pauseTS)), 0, 0)
	}
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
