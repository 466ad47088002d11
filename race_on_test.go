//go:build race

package raft

// raceEnabled reports whether the tests run under the race detector,
// whose instrumentation allocates and changes heap sizes: allocation and
// byte-count assertions skip under it.
const raceEnabled = true
