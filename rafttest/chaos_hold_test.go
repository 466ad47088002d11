package rafttest_test

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/rafttest"
)

// heldMapServer is mapServer applying each Ready a little later than it
// takes it (ServerEnv.HoldReady), while the node goes on stepping
// messages and ticking; forgetAdvance is a bug: it never calls Advance
// for a held Ready.
type heldMapServer struct {
	*mapServer
	forgetAdvance bool
}

func startHeldMap(forgetAdvance bool) func(*rafttest.ServerEnv) (rafttest.Server, error) {
	return func(env *rafttest.ServerEnv) (rafttest.Server, error) {
		srv, err := startMap(env)
		return heldMapServer{srv.(*mapServer), forgetAdvance}, err
	}
}

func (s heldMapServer) HandleReady(rd raft.Ready) error {
	if err := s.env.Storage.Save(rd.HardState, rd.Entries, rd.Snapshot); err != nil {
		return err
	}
	s.env.Send(rd.Messages...)
	s.env.HoldReady()
	s.env.Later("apply", func() {
		s.apply(rd.CommittedEntries)
		if !s.forgetAdvance {
			s.rn.Advance(rd)
		}
		s.env.ReleaseReady()
	})
	return nil
}

// A server that applies its Readys while the node goes on passes; one
// that releases a held Ready without Advance is caught.
func TestRunHeldReadys(t *testing.T) {
	rafttest.Run(t, mapChaosConfig(startHeldMap(false)))
	cfg := mapChaosConfig(startHeldMap(true))
	for seed := uint64(1); seed <= 5; seed++ {
		if res := rafttest.RunChaos(cfg, seed); strings.Contains(strings.Join(res.Violations, "\n"), "released its held Ready without calling Advance") {
			return
		}
	}
	t.Fatal("no seed caught a server that never advances its held Readys")
}

// confSkipper is reconfMapServer whose node 2 never calls
// ApplyConfChange: its configuration stays what it started with.
type confSkipper struct{ rafttest.Server }

func (s confSkipper) HandleReady(rd raft.Ready) error {
	srv := s.Server.(reconfMapServer)
	if srv.env.ID != 2 {
		return srv.HandleReady(rd)
	}
	if err := srv.env.Storage.Save(rd.HardState, rd.Entries, rd.Snapshot); err != nil {
		return err
	}
	srv.env.Send(rd.Messages...)
	srv.apply(slices.DeleteFunc(slices.Clone(rd.CommittedEntries), func(e pb.Entry) bool {
		return e.Type == pb.EntryConfChange || e.Type == pb.EntryConfChangeV2
	}))
	srv.rn.Advance(rd)
	return nil
}

func (s confSkipper) Reconfigure(r *rand.Rand, nodes []uint64) {
	s.Server.(reconfMapServer).Reconfigure(r, nodes)
}

// A node whose configuration differs from the others' after applying the
// same entries is caught.
func TestRunCatchesConfigDivergence(t *testing.T) {
	cfg := reconfMapConfig()
	start := cfg.Start
	cfg.Start = func(env *rafttest.ServerEnv) (rafttest.Server, error) {
		srv, err := start(env)
		return confSkipper{srv}, err
	}
	for seed := uint64(1); seed <= 20; seed++ {
		if res := rafttest.RunChaos(cfg, seed); strings.Contains(strings.Join(res.Violations, "\n"), "after the same conf changes") {
			return
		}
	}
	t.Fatal("no seed caught a node that skips its conf changes")
}
