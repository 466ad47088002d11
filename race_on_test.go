//go:build race

package raft

// raceEnabled is true when the tests run under the race detector, whose
// instrumentation allocates: allocation counts are not meaningful then.
const raceEnabled = true
