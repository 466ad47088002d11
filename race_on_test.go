//go:build race

package raft

// raceEnabled reports whether the race detector is on; it changes heap
// sizes, so byte-count assertions skip under it.
const raceEnabled = true
