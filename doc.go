// Package raft is raftcore's Raft consensus core: the protocol as a
// deterministic state machine with no goroutines, clocks, disks or sockets of
// its own. The application persists, sends and applies what the core asks
// for in Ready batches.
package raft
