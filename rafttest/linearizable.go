package rafttest

import (
	"math"

	"github.com/anishathalye/porcupine"
)

// checkLinearizable checks the clients' history against KVModel. A Put that
// never returned may have taken effect at any point after it was called; a
// Get that never returned says nothing and is left out. A Put's answer does
// not say whether the key existed, so its output is unknown; a Get of a
// missing key reads "", and values are never empty, so "" means not found.
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
		in := KVInput{Op: KVPut, Key: h.op.Key, Value: h.op.Value}
		out := KVOutput{Unknown: true}
		if h.op.Get {
			in.Op = KVGet
			out = KVOutput{Found: h.output != "", Value: h.output}
		}
		ops = append(ops, porcupine.Operation{
			ClientId: h.op.Client,
			Input:    in,
			Call:     h.call,
			Output:   out,
			Return:   ret,
		})
	}
	return porcupine.CheckOperations(KVModel(), ops)
}
