package rafttest_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/rafttest"
)

// mapServer is a tiny replicated map: the code a server runs around its
// RawNode, which rafttest drives under faults and crashes.
type mapServer struct {
	rn      *raft.RawNode
	env     *rafttest.ServerEnv
	data    map[string]string
	applied map[uint64]any       // operation ID -> output: a proposal may come twice
	waiting map[uint64]func(any) // operation ID -> answer
}

type mapEntry struct {
	ID uint64
	In rafttest.KVInput
}

func startMap(env *rafttest.ServerEnv) (rafttest.Server, error) {
	rn, err := raft.NewRawNode(env.Config()) // Applied 0: the map is rebuilt from the log
	if last, _ := env.Storage.LastIndex(); err == nil && last == 0 {
		err = rn.Bootstrap(env.Peers)
	}
	return &mapServer{rn: rn, env: env, data: map[string]string{}, applied: map[uint64]any{}, waiting: map[uint64]func(any){}}, err
}

func (s *mapServer) RawNode() *raft.RawNode { return s.rn }

func (s *mapServer) Submit(op rafttest.Op) {
	data, _ := json.Marshal(mapEntry{ID: op.ID, In: op.Input.(rafttest.KVInput)})
	s.waiting[op.ID] = op.Done
	_ = s.rn.Propose(data) // if dropped, the client times out
}

func (s *mapServer) HandleReady(rd raft.Ready) error {
	if err := s.env.Storage.Save(rd.HardState, rd.Entries, rd.Snapshot); err != nil {
		return err
	}
	s.env.Send(rd.Messages...)
	s.apply(rd.CommittedEntries)
	s.rn.Advance(rd)
	return nil
}

func (s *mapServer) apply(ents []pb.Entry) {
	for _, e := range ents {
		if cc, err := pb.UnmarshalConfChange(e); err == nil && cc != nil {
			s.rn.ApplyConfChange(cc)
			continue
		}
		var en mapEntry
		if json.Unmarshal(e.Data, &en) != nil {
			continue // the empty entry of a new leader
		}
		out, dup := s.applied[en.ID]
		if !dup { // a duplicate gets the first one's output
			old, found := s.data[en.In.Key]
			kv := rafttest.KVOutput{Found: found, Value: old}
			if en.In.Op == rafttest.KVPut {
				s.data[en.In.Key], kv.Value = en.In.Value, ""
			}
			out, s.applied[en.ID] = kv, kv
		}
		if done := s.waiting[en.ID]; done != nil {
			done(out)
		}
	}
}

// A test runs the same configuration with rafttest.Run(t, cfg), which
// reports a failing seed with the command that replays it.
func ExampleRunChaos() {
	cfg := rafttest.ChaosConfig{
		Start: startMap,
		Model: rafttest.KVModel(),
		NextOp: func(r *rand.Rand) any {
			key := []string{"x", "y"}[r.IntN(2)]
			if r.IntN(2) == 0 {
				return rafttest.KVInput{Op: rafttest.KVGet, Key: key}
			}
			return rafttest.KVInput{Op: rafttest.KVPut, Key: key, Value: fmt.Sprint(r.IntN(1000))}
		},
		Unanswered: rafttest.KVUnanswered,
	}
	for seed := uint64(1); seed <= 3; seed++ {
		res := rafttest.RunChaos(cfg, seed)
		fmt.Printf("seed %d: %d nodes, failed: %v\n", seed, res.Faults.Nodes, res.Failed())
	}
	// Output:
	// seed 1: 3 nodes, failed: false
	// seed 2: 3 nodes, failed: false
	// seed 3: 5 nodes, failed: false
}
