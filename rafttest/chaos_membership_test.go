package rafttest_test

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/rafttest"
)

// reconfMapServer is mapServer whose operators change the membership:
// spares join as learners and are promoted, and then initial voters are
// removed, never below three voters. A spare is never removed and a
// removed node is never added again (its ID is an initial one).
type reconfMapServer struct {
	*mapServer
	initial int // IDs 1 to initial are the initial members
}

func startReconfMap(initial int) func(*rafttest.ServerEnv) (rafttest.Server, error) {
	return func(env *rafttest.ServerEnv) (rafttest.Server, error) {
		cfg := env.Config()
		// Removed nodes keep running here: CheckQuorum and PreVote keep
		// their elections from disrupting the cluster.
		cfg.CheckQuorum, cfg.PreVote = true, true
		rn, err := raft.NewRawNode(cfg)
		if last, _ := env.Storage.LastIndex(); err == nil && last == 0 && len(env.Peers) > 0 {
			err = rn.Bootstrap(env.Peers)
		}
		s := &mapServer{rn: rn, env: env, data: map[string]string{}, applied: map[uint64]any{}, waiting: map[uint64]func(any){}}
		return reconfMapServer{s, initial}, err
	}
}

// Reconfigure proposes one change the node's view of the configuration
// allows, as an operator's request to this node would.
func (s reconfMapServer) Reconfigure(r *rand.Rand, nodes []uint64) {
	cfg := s.rn.Status().Config
	if len(cfg.Voters[1]) > 0 {
		return // joint: not used here
	}
	var changes []pb.ConfChange
	for _, id := range nodes {
		_, voter := cfg.Voters[0][id]
		_, learner := cfg.Learners[id]
		switch {
		case int(id) > s.initial && !voter && !learner:
			changes = append(changes, pb.ConfChange{Type: pb.ConfChangeAddLearnerNode, NodeID: id})
		case learner:
			changes = append(changes, pb.ConfChange{Type: pb.ConfChangeAddNode, NodeID: id})
		case voter && int(id) <= s.initial && len(cfg.Voters[0]) > 3:
			changes = append(changes, pb.ConfChange{Type: pb.ConfChangeRemoveNode, NodeID: id})
		}
	}
	if len(changes) > 0 {
		_ = s.rn.ProposeConfChange(changes[r.IntN(len(changes))])
	}
}

func reconfMapConfig() rafttest.ChaosConfig {
	cfg := mapChaosConfig(startReconfMap(3))
	cfg.Nodes, cfg.Spares, cfg.ReconfigureRate = 3, 2, 0.05
	return cfg
}

// A server whose own code changes the membership passes: spares join and
// become voters, initial voters leave, under the same faults and checks.
// Some seed must end with a removed initial node and a spare voting, or
// the test would prove nothing about membership.
func TestRunServerDrivenMembership(t *testing.T) {
	cfg := reconfMapConfig()
	rafttest.Run(t, cfg)
	for seed := uint64(1); seed <= 20; seed++ {
		for _, n := range rafttest.RunChaos(cfg, seed).Nodes {
			if v := n.Conf.Voters; len(v) == 3 && (slices.Contains(v, 4) || slices.Contains(v, 5)) {
				return // a spare votes and an initial voter has left
			}
		}
	}
	t.Fatal("no seed ended with a spare voting and an initial voter gone")
}

// Spares start empty and are not members until added.
func TestRunSparesStartEmpty(t *testing.T) {
	cfg := reconfMapConfig()
	cfg.ReconfigureRate = 0
	res := rafttest.RunChaos(cfg, 1)
	if res.Failed() {
		t.Fatal(res.Report())
	}
	if len(res.Nodes) != 5 {
		t.Fatalf("%d nodes at the end, want 3 and 2 spares: %v", len(res.Nodes), res.Nodes)
	}
	for _, n := range res.Nodes[3:] {
		if n.Term != 0 || n.Commit != 0 || len(n.Conf.Voters) != 0 {
			t.Fatalf("a spare took part without being added: %s", n)
		}
	}
}
