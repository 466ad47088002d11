//go:build !unix

package raftpb

// processCPUNanos is not measured here; the cpu-ns/op metric reads 0.
func processCPUNanos() int64 { return 0 }
