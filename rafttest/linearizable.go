package rafttest

import (
	"math"

	"github.com/anishathalye/porcupine"
)

// kvInput and kvOutput are the operations of the key-value model checked
// for linearizability: a Put or Get of one key.
type kvInput struct {
	get   bool
	key   string
	value string
}

// kvModel is the sequential specification of a register per key; the
// history is partitioned by key, so the state is one key's value.
var kvModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(kvInput).key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		in := input.(kvInput)
		if in.get {
			return output.(string) == state.(string), state
		}
		return true, in.value
	},
}

// checkLinearizable checks the clients' history. A Put that never returned
// may have taken effect at any point after it was called; a Get that never
// returned says nothing and is left out.
func checkLinearizable(history []histOp) bool {
	ops := make([]porcupine.Operation, 0, len(history))
	for _, h := range history {
		ret := h.ret
		if ret == 0 {
			if h.op.Get {
				continue
			}
			ret = math.MaxInt64
		}
		ops = append(ops, porcupine.Operation{
			ClientId: h.op.Client,
			Input:    kvInput{get: h.op.Get, key: h.op.Key, value: h.op.Value},
			Call:     h.call,
			Output:   h.output,
			Return:   ret,
		})
	}
	return porcupine.CheckOperations(kvModel, ops)
}
