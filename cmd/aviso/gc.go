package main

import "runtime/debug"

// gcPercent is the garbage collector's target that aviso runs with unless GOGC is set: a node's
// live heap is small (tens of MiB: caches, queues, buffers) while every delivery allocates
// (requests, rows, JSON), so with Go's default of 100 the collector runs very often and costs
// a large share of the CPU. At 400 the heap may grow to five times the live data between
// collections: a few tens of MiB more, for about 15% less CPU per delivery in `aviso bench`
// (BENCHMARKS.md). Set GOGC (and GOMEMLIMIT) to choose otherwise.
const gcPercent = 400

// tuneGC applies gcPercent when the environment does not set GOGC, and reports the percent in
// force.
func tuneGC(getenv func(string) string) int {
	if v := getenv("GOGC"); v != "" {
		prev := debug.SetGCPercent(-1) // read the runtime's value (from GOGC) and put it back
		debug.SetGCPercent(prev)
		return prev
	}
	debug.SetGCPercent(gcPercent)
	return gcPercent
}
