//go:build !unix

package raft

// processCPUNanos is not measured here; the cpu-ns/entry metric reads 0.
func processCPUNanos() int64 { return 0 }
