// panicky is the crash sample: it fills a small global map, then a goroutine
// other than main dereferences a nil pointer in a function that is not
// inlined. The runtime prints
//
//	panic: runtime error: invalid memory address or nil pointer dereference
//	[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=...]
//
// and, with GOTRACEBACK=crash, dumps every goroutine and dies of SIGABRT, so
// the kernel writes a core. It uses the runtime only (no truth package): its
// ground truth is the traceback the runtime printed (traceback.txt).
package main

// account's first field is the one read, so the faulting address is 0.
type account struct {
	balance int
	name    string
}

// accounts is the map the crashing goroutine reads.
var accounts = map[string]*account{}

// done is never closed: main waits on it until the panic ends the process.
var done = make(chan struct{})

// key makes "acct-NNNN" without strconv.
func key(i int) string {
	b := []byte("acct-0000")
	for j := len(b) - 1; i > 0 && j >= 5; j-- {
		b[j] = byte('0' + i%10)
		i /= 10
	}
	return string(b)
}

// balanceOf reads the balance of a; a nil account faults here.
//
//go:noinline
func balanceOf(a *account) int {
	return a.balance
}

// audit sums the balances of the named accounts; a missing one is nil.
//
//go:noinline
func audit(names []string) int {
	total := 0
	for _, n := range names {
		total += balanceOf(accounts[n])
	}
	return total
}

func main() {
	for i := 0; i < 16; i++ {
		k := key(i)
		accounts[k] = &account{balance: 100 * i, name: k}
	}
	go func() {
		println(audit([]string{"acct-0003", "acct-9999"}))
		close(done)
	}()
	<-done
}
