package main

import (
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/raftcore/raft"
	"github.com/raftcore/raft/rafttest"
)

// The example's Ready handling (handleReady) and state machine (kvStore)
// run here under rafttest's simulation, which crashes and restarts the
// node: each restart rebuilds the store from what handleReady persisted.
// Writes are the example's "set key=value" commands; reads go through
// ReadIndex, which the example itself does not serve.

// simNode is one incarnation of the example's node in the simulation.
type simNode struct {
	node    *raft.RawNode
	storage nodeStorage
	kv      *kvStore
	// localReads answers a read from the store at once, without a read
	// index.
	localReads bool
	writes     map[uint64]simWrite // by the index the write was appended at
	reads      map[string]*simRead // by request context
}

type simWrite struct {
	term uint64
	done func(any)
}

type simRead struct {
	key   string
	index uint64 // 0 while not known
	done  func(any)
}

func startSimNode(env *rafttest.ServerEnv, localReads bool) (rafttest.Server, error) {
	s := &simNode{
		storage: memStorage(env.Storage), kv: &kvStore{out: io.Discard, data: map[string]string{}},
		localReads: localReads, writes: map[uint64]simWrite{}, reads: map[string]*simRead{},
	}
	node, err := raft.NewRawNode(env.Config()) // Applied 0: the store is rebuilt from the log
	if err != nil {
		return nil, err
	}
	if last, _ := env.Storage.LastIndex(); last == 0 {
		if err := node.Bootstrap(env.Peers); err != nil {
			return nil, err
		}
	}
	s.node = node
	return s, nil
}

func (s *simNode) RawNode() *raft.RawNode { return s.node }

func (s *simNode) Submit(op rafttest.Op) {
	in := op.Input.(rafttest.KVInput)
	if in.Op == rafttest.KVGet {
		if s.localReads {
			v, ok := s.kv.data[in.Key]
			op.Done(rafttest.KVOutput{Found: ok, Value: v})
			return
		}
		ctx := fmt.Sprint(op.ID)
		s.reads[ctx] = &simRead{key: in.Key, done: op.Done}
		s.node.ReadIndex([]byte(ctx))
		return
	}
	res, err := s.node.ProposeWithResult([]byte(fmt.Sprintf("set %s=%s", in.Key, in.Value)))
	if err == nil {
		s.writes[res.Index] = simWrite{term: res.Term, done: op.Done}
	}
}

func (s *simNode) HandleReady(rd raft.Ready) error {
	if err := handleReady(s.node, s.storage, s.kv, rd); err != nil {
		return err
	}
	for _, e := range rd.CommittedEntries {
		if w, ok := s.writes[e.Index]; ok {
			delete(s.writes, e.Index)
			if w.term == e.Term {
				// The store does not say whether the key existed.
				w.done(rafttest.KVOutput{Unknown: true})
			}
		}
	}
	for _, rs := range rd.ReadStates {
		if r := s.reads[string(rs.RequestCtx)]; r != nil {
			r.index = rs.Index
		}
	}
	// In a fixed order, so that a seed replays.
	for _, ctx := range slices.Sorted(maps.Keys(s.reads)) {
		if r := s.reads[ctx]; r.index != 0 && s.kv.applied >= r.index {
			v, ok := s.kv.data[r.key]
			r.done(rafttest.KVOutput{Found: ok, Value: v})
			delete(s.reads, ctx)
		}
	}
	return nil
}

func chaosConfig(localReads bool) rafttest.ChaosConfig {
	return rafttest.ChaosConfig{
		Start: func(env *rafttest.ServerEnv) (rafttest.Server, error) {
			return startSimNode(env, localReads)
		},
		Model: rafttest.KVModel(),
		NextOp: func(r *rand.Rand) any {
			key := fmt.Sprint("k", r.IntN(3))
			if r.IntN(2) == 0 {
				return rafttest.KVInput{Op: rafttest.KVGet, Key: key}
			}
			return rafttest.KVInput{Op: rafttest.KVPut, Key: key, Value: fmt.Sprint("v", r.IntN(1000))}
		},
		Unanswered: rafttest.KVUnanswered,
		Nodes:      1,
		Seeds:      10,
	}
}

// TestChaos crashes and restarts the node at random while clients write
// and read; the history must be linearizable.
func TestChaos(t *testing.T) {
	rafttest.Run(t, chaosConfig(false))
}

// TestChaosCatchesLocalReads: reads answered from the store without a
// read index see an empty store after a restart, before the log is
// applied again, and the simulation finds it.
func TestChaosCatchesLocalReads(t *testing.T) {
	cfg := chaosConfig(true)
	for seed := uint64(1); seed <= uint64(cfg.Seeds); seed++ {
		if res := rafttest.RunChaos(cfg, seed); res.Failed() {
			t.Logf("caught by seed %d", seed)
			return
		}
	}
	t.Fatalf("passed %d seeds", cfg.Seeds)
}
