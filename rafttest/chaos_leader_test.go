package rafttest_test

import (
	"strings"
	"testing"

	"github.com/raftcore/raft"
	"github.com/raftcore/raft/rafttest"
)

// leaderReads is the map server with the usual read mistake: its leader
// answers a read from its own map at once, without ReadIndex, and its
// followers leave reads to the leader (the client times out and tries
// elsewhere). A leader cut off from the others, and already replaced,
// still answers.
type leaderReads struct{ *mapServer }

func (s leaderReads) Submit(op rafttest.Op) {
	in := op.Input.(rafttest.KVInput)
	if in.Op != rafttest.KVGet {
		s.mapServer.Submit(op)
		return
	}
	if s.rn.BasicStatus().RaftState == raft.StateLeader {
		v, ok := s.data[in.Key]
		op.Done(rafttest.KVOutput{Found: ok, Value: v})
	}
}

func leaderReadsConfig() rafttest.ChaosConfig {
	return mapChaosConfig(func(env *rafttest.ServerEnv) (rafttest.Server, error) {
		s, err := startMap(env)
		if err != nil {
			return nil, err
		}
		return leaderReads{s.(*mapServer)}, nil
	})
}

// A server whose leader answers reads without ReadIndex fails Run with
// its defaults: the chaos phase cuts the current leader off from the
// other nodes (its clients still reach it) for longer than an election
// timeout, so that the others elect a leader and take writes while it
// still answers reads.
func TestRunCatchesLeaderLocalReads(t *testing.T) {
	tb := &fatalTB{name: "TestLeaderReads"}
	runAside(tb, leaderReadsConfig())
	if !strings.Contains(tb.failed, "not linearizable") {
		t.Fatalf("Run passed a server whose leader answers reads from its own state: %q", tb.failed)
	}
}

// A good part of the default seeds catch it (those without CheckQuorum,
// which keeps a cut-off leader leading), not one in fifty as before.
func TestLeaderLocalReadsCatchRate(t *testing.T) {
	if testing.Short() {
		t.Skip("20 seeds")
	}
	cfg := leaderReadsConfig()
	var caught []uint64
	for seed := uint64(1); seed <= 20; seed++ {
		if rafttest.RunChaos(cfg, seed).Failed() {
			caught = append(caught, seed)
		}
	}
	if len(caught) < 5 {
		t.Fatalf("only seeds %v of 1..20 caught it", caught)
	}
	t.Logf("seeds %v of 1..20 caught it", caught)
}
