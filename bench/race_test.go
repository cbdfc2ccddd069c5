//go:build race

package bench

// raceEnabled reports a -race build, where the tests shrink the scenarios further.
const raceEnabled = true
