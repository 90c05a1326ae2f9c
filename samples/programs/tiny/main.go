// tiny is the smallest sample: one global map[string]int with 10 entries and
// one extra goroutine blocked on a channel, then a core dump (SIGABRT).
package main

import (
	"runtime"

	"samples/internal/truth"
)

// colors is the only map the truth talks about.
var colors = map[string]int{}

var (
	block = make(chan int)
	ready = make(chan struct{})
)

// idle blocks forever on a channel receive.
//
//go:noinline
func idle(ready chan<- struct{}, ch <-chan int) {
	ready <- struct{}{}
	<-ch
}

func main() {
	truth.Setup("tiny")
	go idle(ready, block)
	<-ready

	// key = "color:<group>:<name>-<4 digits>", e.g. "color:warm:red-0000";
	// prefixes are "color:warm" (4 entries), "color:cool" (4), "color:gray" (2).
	names := [...]string{"warm:red", "cool:green", "cool:blue", "cool:cyan", "warm:magenta", "warm:yellow", "gray:black", "gray:white", "warm:orange", "cool:purple"}
	mt := truth.NewMap("main.colors", "global", colors)
	mt.Start(truth.HeaderBytes(func() any { return map[string]int{} }))
	for i, name := range names {
		// the key is always >= 16 bytes, so it never goes
		// through the tiny allocator.
		var buf [32]byte
		b := append(buf[:0], "color:"...)
		b = append(b, name...)
		b = append(b, '-')
		b = truth.AppendPad(b, uint64(i), 4)

		truth.Begin()
		k := string(b)
		kc := truth.End()
		truth.Expect("key "+k, kc, truth.ClassSize(len(b)), 1)

		colors[k] = (i + 1) * 100 // int values live inside the map's slots
		mt.Add(k, kc, truth.Cost{})
	}
	mt.Stop()
	runtime.Gosched()
	truth.Finish()
}
