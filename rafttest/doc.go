// Package rafttest helps test raftcore and the programs built on it.
//
// Network is the one in-memory network both use: it partitions, drops,
// delays (and so reorders) and duplicates messages, on a clock in ticks,
// with every random choice drawn from its seed.
//
// Cluster runs a few RawNodes on MemoryStorage over a Network; a test
// drives it step by step (Tick, Propose, Stabilize) and looks at what
// every node applied.
//
// RunSim is the built-in deterministic chaos simulation, one user of Run's
// machinery: from one seed it builds a cluster of 3, 5 or 7 nodes running
// a key-value server (a Server like any user's) with clients reading and
// writing it, injects faults (a network that delays, reorders, drops and
// duplicates messages and partitions nodes; crashes that lose what was not
// persisted, power loss on a simulated disk; slow disks and lagging apply
// threads with AsyncStorageWrites; compaction, leader transfers and
// membership changes), checks the safety invariants after every step and
// the clients' history for linearizability, and reports a failing run with
// its seed, configuration and last events. The same seed replays the same
// run: go test ./rafttest -run 'TestSim$' -seed=N -v.
//
// Run (and RunChaos, one seed) puts a program's own server code under the
// same faults, and cuts the current leader off from the other nodes
// (its clients still reaching it, its clock stalled) until they have
// elected another: its
// Ready handling, state machine and storage, as a Server, with its
// clients' operations checked against its own porcupine model. ExampleRunChaos tests a replicated map in about forty lines.
package rafttest
