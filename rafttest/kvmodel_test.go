package rafttest

import (
	"math"
	"testing"

	"github.com/anishathalye/porcupine"
)

// TestKVModel checks that the model rejects what it must, so that a
// history it accepts means something.
func TestKVModel(t *testing.T) {
	op := func(client int, call, ret int64, in KVInput, out KVOutput) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Call: call, Return: ret, Input: in, Output: out}
	}
	put := KVInput{Op: KVPut, Key: "x", Value: "a"}
	get := KVInput{Op: KVGet, Key: "x"}
	del := KVInput{Op: KVDelete, Key: "x"}
	tests := []struct {
		name    string
		history []porcupine.Operation
		ok      bool
	}{
		{"read your write", []porcupine.Operation{op(0, 0, 10, put, KVOutput{}), op(1, 20, 30, get, KVOutput{Found: true, Value: "a"})}, true},
		{"stale read", []porcupine.Operation{op(0, 0, 10, put, KVOutput{}), op(1, 20, 30, get, KVOutput{})}, false},
		{"concurrent read may miss", []porcupine.Operation{op(0, 0, 10, put, KVOutput{}), op(1, 5, 30, get, KVOutput{})}, true},
		{"created twice", []porcupine.Operation{op(0, 0, 10, put, KVOutput{}), op(1, 20, 30, put, KVOutput{})}, false},
		{"deleted what existed", []porcupine.Operation{op(0, 0, 10, put, KVOutput{}), op(1, 20, 30, del, KVOutput{Found: true}), op(0, 40, 50, get, KVOutput{})}, true},
		{"read after delete", []porcupine.Operation{op(0, 0, 10, put, KVOutput{}), op(1, 20, 30, del, KVOutput{Found: true}), op(0, 40, 50, get, KVOutput{Found: true, Value: "a"})}, false},
		{"unknown write seen later", []porcupine.Operation{op(0, 0, math.MaxInt64, put, KVOutput{Unknown: true}), op(1, 20, 30, get, KVOutput{}), op(1, 40, 50, get, KVOutput{Found: true, Value: "a"})}, true},
		{"unknown write unseen then gone", []porcupine.Operation{op(0, 0, math.MaxInt64, put, KVOutput{Unknown: true}), op(1, 20, 30, get, KVOutput{Found: true, Value: "a"}), op(1, 40, 50, get, KVOutput{})}, false},
		{"value never written", []porcupine.Operation{op(1, 20, 30, get, KVOutput{Found: true, Value: "b"})}, false},
	}
	for _, tt := range tests {
		if got := porcupine.CheckOperations(KVModel(), tt.history); got != tt.ok {
			t.Errorf("%s: linearizable = %v, want %v", tt.name, got, tt.ok)
		}
	}
}
