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
// other nodes (its clients still reach it, its clock stalls) until the
// others have elected a leader and taken writes, while it still answers
// reads.
func TestRunCatchesLeaderLocalReads(t *testing.T) {
	tb := &fatalTB{name: "TestLeaderReads"}
	runAside(tb, leaderReadsConfig())
	if !strings.Contains(tb.failed, "not linearizable") {
		t.Fatalf("Run passed a server whose leader answers reads from its own state: %q", tb.failed)
	}
}

// Most of the default seeds catch it.
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
	if len(caught) < 10 {
		t.Fatalf("only seeds %v of 1..20 caught it", caught)
	}
	t.Logf("seeds %v of 1..20 caught it", caught)
}

// Reads by the leader's lease are safe only while clocks keep pace: an
// isolated leader whose clock stalls serves them after the others have
// elected, and with SteadyClocks it does not.
func TestRunSteadyClocks(t *testing.T) {
	cfg := counterConfig(counterBugs{leaseReads: true})
	caught := false
	for seed := uint64(1); seed <= 20 && !caught; seed++ {
		caught = rafttest.RunChaos(cfg, seed).Failed()
	}
	if !caught {
		t.Fatal("no seed out of 20 caught lease reads under stalled clocks")
	}
	cfg.SteadyClocks = true
	rafttest.Run(t, cfg)
}
