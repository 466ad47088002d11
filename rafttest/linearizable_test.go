package rafttest

import "testing"

// TestCheckLinearizable checks how the simulation's history reaches
// KVModel: a Get that read "" found nothing, a Put's answer says nothing
// about the key, and an unanswered Put may take effect later.
func TestCheckLinearizable(t *testing.T) {
	put := func(client int, seq uint64, v string, call, ret int64) histOp {
		return histOp{op: simOp{Client: client, Seq: seq, Key: "k0", Value: v}, call: call, ret: ret}
	}
	get := func(client int, seq uint64, out string, call, ret int64) histOp {
		return histOp{op: simOp{Client: client, Seq: seq, Get: true, Key: "k0"}, call: call, ret: ret, output: out}
	}
	tests := []struct {
		name    string
		history []histOp
		ok      bool
	}{
		{"read before any write", []histOp{get(0, 1, "", 1, 2), put(1, 1, "1.1", 3, 4), get(0, 2, "1.1", 5, 6)}, true},
		{"overwrite", []histOp{put(0, 1, "0.1", 1, 2), put(1, 1, "1.1", 3, 4), get(0, 2, "1.1", 5, 6)}, true},
		{"stale read", []histOp{put(0, 1, "0.1", 1, 2), put(1, 1, "1.1", 3, 4), get(0, 2, "0.1", 5, 6)}, false},
		{"read of a lost write", []histOp{put(0, 1, "0.1", 1, 2), get(1, 1, "", 3, 4)}, false},
		{"unanswered write seen later", []histOp{put(0, 1, "0.1", 1, 0), get(1, 1, "", 2, 3), get(1, 2, "0.1", 4, 5)}, true},
		{"unanswered read left out", []histOp{put(0, 1, "0.1", 1, 2), get(1, 1, "", 3, 0)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := checkLinearizable(tt.history); got != tt.ok {
				t.Errorf("linearizable = %v, want %v", got, tt.ok)
			}
		})
	}
}
