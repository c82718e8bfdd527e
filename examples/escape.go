// escape.go -- how Go makes returning a pointer to a local safe: escape
// analysis. newCounter is make_counter of return_local.c, in Go. The
// compiler sees that &counter outlives the call, so it allocates counter on
// the garbage-collected heap instead of in the frame ("moved to heap:
// counter" in the output of `go build -gcflags=-m`). sumTo's local never
// leaves its frame, so it stays on the stack and costs no allocation.
package main

import (
	"fmt"
	"testing"
)

//go:noinline
func newCounter() *int {
	counter := 42
	return &counter
}

//go:noinline
func sumTo(n int) int {
	total := 0
	p := &total // the address is taken, but does not leave the function
	for i := 1; i <= n; i++ {
		*p += i
	}
	return total
}

func main() {
	p := newCounter()
	q := newCounter()
	*q = 7
	fmt.Printf("newCounter() twice: %d and %d, distinct variables: %v\n", *p, *q, p != q)
	// testing.AllocsPerRun counts heap allocations per call, measured.
	fmt.Printf("heap allocations per call: newCounter %.0f, sumTo %.0f\n",
		testing.AllocsPerRun(1000, func() { p = newCounter() }),
		testing.AllocsPerRun(1000, func() { sumTo(10) }))
}
