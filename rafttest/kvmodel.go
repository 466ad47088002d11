package rafttest

import (
	"fmt"

	"github.com/anishathalye/porcupine"
)

// KVOp is the kind of a key-value operation in a history checked with
// KVModel.
type KVOp uint8

const (
	// KVGet reads a key.
	KVGet KVOp = iota
	// KVPut sets a key to a value.
	KVPut
	// KVDelete removes a key.
	KVDelete
)

// KVInput is a key-value operation as a client called it: the Input of a
// porcupine.Operation checked with KVModel.
type KVInput struct {
	Op    KVOp
	Key   string
	Value string // KVPut only
}

// KVOutput is what a key-value operation returned: the Output of a
// porcupine.Operation checked with KVModel.
type KVOutput struct {
	// Unknown marks a write whose result the client does not know: its
	// answer was lost, or the API does not say whether the key existed.
	// Found is then not checked. A write that may not have taken effect
	// at all must also have Return math.MaxInt64 (or the latest time it
	// can have taken effect).
	Unknown bool
	// Found is, for KVGet, whether the key exists (Value is then its
	// value); for KVPut and KVDelete, whether the key existed before.
	Found bool
	Value string // KVGet only
}

// kvRegister is KVModel's state: one key, which may be missing.
type kvRegister struct {
	exists bool
	value  string
}

// KVModel returns the sequential specification of a key-value store for
// porcupine: each key is a register that may be missing, and the history
// is partitioned by key, so each key's operations are checked on their
// own. Operations must have a KVInput as Input and a KVOutput as Output.
// Each call returns a new Model; it may be used from several goroutines.
func KVModel() porcupine.Model {
	return porcupine.Model{
		Partition:         partitionByKey,
		Init:              func() any { return kvRegister{} },
		Step:              kvStep,
		DescribeOperation: describeKVOperation,
		DescribeState: func(state any) string {
			if s := state.(kvRegister); s.exists {
				return fmt.Sprintf("%q", s.value)
			}
			return "(missing)"
		},
	}
}

// partitionByKey splits a history into one history per key, in the order
// the keys first appear.
func partitionByKey(history []porcupine.Operation) [][]porcupine.Operation {
	byKey := map[string][]porcupine.Operation{}
	var keys []string
	for _, op := range history {
		k := op.Input.(KVInput).Key
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
}

func kvStep(state, input, output any) (bool, any) {
	s, in, out := state.(kvRegister), input.(KVInput), output.(KVOutput)
	switch in.Op {
	case KVGet:
		return out.Found == s.exists && out.Value == s.value, s
	case KVPut:
		return out.Unknown || out.Found == s.exists, kvRegister{exists: true, value: in.Value}
	default:
		return out.Unknown || out.Found == s.exists, kvRegister{}
	}
}

func describeKVOperation(input, output any) string {
	in, out := input.(KVInput), output.(KVOutput)
	switch {
	case in.Op == KVGet && out.Found:
		return fmt.Sprintf("get(%s) -> %q", in.Key, out.Value)
	case in.Op == KVGet:
		return fmt.Sprintf("get(%s) -> not found", in.Key)
	case out.Unknown && in.Op == KVPut:
		return fmt.Sprintf("put(%s, %q) -> ?", in.Key, in.Value)
	case out.Unknown:
		return fmt.Sprintf("delete(%s) -> ?", in.Key)
	case in.Op == KVPut:
		return fmt.Sprintf("put(%s, %q) -> created %v", in.Key, in.Value, !out.Found)
	default:
		return fmt.Sprintf("delete(%s) -> deleted %v", in.Key, out.Found)
	}
}

// KVUnanswered is ChaosConfig.Unanswered for KVModel: a read that got no
// answer is left out of the history, a write is kept with an unknown
// output (it may have taken effect at any time after its call).
func KVUnanswered(input any) (output any, keep bool) {
	return KVOutput{Unknown: true}, input.(KVInput).Op != KVGet
}
