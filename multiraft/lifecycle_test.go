package multiraft

import (
	"context"
	"errors"
	"testing"

	"github.com/raftcore/raft"
	mrpb "github.com/raftcore/raft/multiraft/multiraftpb"
	pb "github.com/raftcore/raft/raftpb"
)

// TestLeaderLeavingVotersDoesNotQuiesce: a leader that applied its own
// removal or demotion to learner (without StepDownOnRemoval) sends no
// heartbeats, so that the voters elect a leader of the new configuration.
// It must not quiesce either: its Quiesce heartbeats would put them to
// sleep under it, and its node, alive, would never wake them.
func TestLeaderLeavingVotersDoesNotQuiesce(t *testing.T) {
	tests := []struct {
		name string
		cc   pb.ConfChangeI
	}{
		{"removed", pb.ConfChange{Type: pb.ConfChangeRemoveNode, NodeID: 1}},
		{"demoted", pb.ConfChangeV2{Changes: []pb.ConfChangeSingle{{Type: pb.ConfChangeAddLearnerNode, NodeID: 1}}}},
		{"removed through a joint config", pb.ConfChangeV2{
			Transition: pb.ConfChangeTransitionJointImplicit,
			Changes:    []pb.ConfChangeSingle{{Type: pb.ConfChangeRemoveNode, NodeID: 1}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCluster(t, 1, 3, 1, Config{})
			c.electSpread() // node 1 leads group 1
			if err := c.node(1).host.ProposeConfChange(1, tt.cc); err != nil {
				t.Fatal(err)
			}
			c.settle()
			var lead uint64
			for i := 0; i < 100 && lead == 0; i++ {
				c.tick()
				for _, id := range []uint64{2, 3} {
					if st, _ := c.node(id).host.BasicStatus(1); st.RaftState == raft.StateLeader {
						lead = id
					}
				}
			}
			if lead == 0 {
				st, _ := c.node(2).host.BasicStatus(1)
				t.Fatalf("no leader among the voters after 100 ticks: node 2 follows %d, quiesced %v", st.Lead, c.node(2).host.Quiesced(1))
			}
			if err := c.node(lead).host.Propose(1, []byte("after")); err != nil {
				t.Fatal(err)
			}
			c.settle()
			for _, id := range []uint64{2, 3} {
				if got := c.appliedData(id, 1); len(got) != 1 || got[0] != "after" {
					t.Fatalf("node %d applied %q, want [after]", id, got)
				}
			}
			// The new configuration's leader quiesces as usual.
			for range 40 {
				c.tick()
			}
			for _, id := range []uint64{2, 3} {
				if !c.node(id).host.Quiesced(1) {
					t.Errorf("node %d: group 1 not quiesced under the new leader", id)
				}
			}
		})
	}
}

// TestRemovedSleeperStaysRemoved: a group removed while quiesced under a
// leader is not woken (put back among the ticked groups) when that
// leader's node is taken for down or removed as a peer.
func TestRemovedSleeperStaysRemoved(t *testing.T) {
	tests := []struct {
		name     string
		leaveOne func(c *cluster)
	}{
		{"peer removed", func(c *cluster) { c.node(2).host.RemovePeer(1) }},
		{"node down", func(c *cluster) {
			c.crash(1)
			for range 2 * c.node(2).host.cfg.NodeDownTicks {
				c.tick()
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := quietCluster(t, 3)
			h := c.node(2).host // group 1 is led by node 1
			if err := h.RemoveGroup(1); err != nil {
				t.Fatal(err)
			}
			if _, ok := h.sleepers[1][1]; ok {
				t.Fatal("removed group still asleep under node 1")
			}
			tt.leaveOne(c)
			if a := h.NumActive(); a != 0 {
				t.Fatalf("%d groups ticked after the removal (of %d hosted)", a, h.NumGroups())
			}
			if n := h.IdleTicks(); n == 1 {
				t.Fatalf("IdleTicks %d: the host is kept busy", n)
			}
		})
	}
}

// TestRemoveGroupDropsQueuedItems: a group removed between a Tick or call
// and the next Ready sends nothing from it: not the Quiesce heartbeats of a
// leader that quiesced at the Tick, nor a follower's wake for its leader.
func TestRemoveGroupDropsQueuedItems(t *testing.T) {
	t.Run("quiesce heartbeats", func(t *testing.T) {
		c := newCluster(t, 1, 3, 1, Config{})
		c.electSpread()
		h := c.node(1).host // leads group 1
		for i := 0; !h.Quiesced(1); i++ {
			if i == 100 {
				t.Fatal("group 1 never quiesces")
			}
			c.settle()
			for _, n := range c.nodes {
				n.host.Tick()
			}
		}
		if err := h.RemoveGroup(1); err != nil {
			t.Fatal(err)
		}
		checkNoGroupItems(t, h, 1)
	})
	t.Run("wake", func(t *testing.T) {
		c := quietCluster(t, 1)
		h := c.node(2).host // follows node 1
		if err := h.Propose(1, []byte("x")); err != nil {
			t.Fatal(err)
		}
		if err := h.RemoveGroup(1); err != nil {
			t.Fatal(err)
		}
		checkNoGroupItems(t, h, 1)
	})
}

// checkNoGroupItems takes h's Ready and fails if any part of it is group
// id's.
func checkNoGroupItems(t *testing.T, h *Host, id uint64) {
	t.Helper()
	rd := h.Ready()
	defer h.Advance(rd)
	if n := groupItems(&rd, id); n > 0 {
		t.Fatalf("the Ready after RemoveGroup(%d) carries %d items of it", id, n)
	}
}

// groupItems counts the parts of rd that are group id's.
func groupItems(rd *Ready, id uint64) int {
	n := 0
	for _, gr := range rd.Groups {
		if gr.GroupID == id {
			n++
		}
	}
	for _, b := range rd.Batches {
		for _, m := range b.Messages {
			if m.GroupID == id {
				n++
			}
		}
		for _, hb := range b.Heartbeats {
			if hb.GroupID == id {
				n++
			}
		}
		for _, r := range b.HeartbeatResponses {
			if r.GroupID == id {
				n++
			}
		}
		for _, g := range b.WakeGroups {
			if g == id {
				n++
			}
		}
	}
	return n
}

// TestCreateGroupRefusesAsyncStorageWrites: the host persists and applies
// through its Ready, so a group with AsyncStorageWrites is refused, both
// by CreateGroup and when OnUnknownGroup asks for one.
func TestCreateGroupRefusesAsyncStorageWrites(t *testing.T) {
	asyncConfig := func(group uint64) raft.Config {
		cfg := groupConfig(1, 2, group, raft.NewMemoryStorage())
		cfg.AsyncStorageWrites = true
		return cfg
	}
	t.Run("CreateGroup", func(t *testing.T) {
		h, err := NewHost(Config{ID: 2})
		if err != nil {
			t.Fatal(err)
		}
		err = h.CreateGroup(1, asyncConfig(1), []raft.Peer{{ID: 2}})
		if !errors.Is(err, ErrAsyncStorageWrites) {
			t.Fatalf("CreateGroup: %v, want ErrAsyncStorageWrites", err)
		}
		if h.NumGroups() != 0 || h.HasReady() {
			t.Fatalf("refused group left state: %d groups, HasReady %v", h.NumGroups(), h.HasReady())
		}
	})
	t.Run("OnUnknownGroup", func(t *testing.T) {
		h, err := NewHost(Config{ID: 2, OnUnknownGroup: func(group uint64, _ pb.Message) (bool, raft.Config) {
			return true, asyncConfig(group)
		}})
		if err != nil {
			t.Fatal(err)
		}
		b := &mrpb.Batch{From: 1, To: 2, Messages: []mrpb.GroupMessage{{GroupID: 5, Message: pb.Message{
			Type: pb.MsgApp, From: 1, To: 2, Term: 1, Index: 0, LogTerm: 0, Commit: 1,
			Entries: []pb.Entry{{Term: 1, Index: 1}},
		}}}}
		if err := h.Step(1, b); err != nil {
			t.Fatal(err)
		}
		if h.NumGroups() != 0 || h.Metrics().UnknownGroup != 1 {
			t.Fatalf("%d groups, %d unknown-group drops; want the message dropped", h.NumGroups(), h.Metrics().UnknownGroup)
		}
		for h.HasReady() {
			h.Advance(h.Ready())
		}
	})
}

// TestNodeReadyWithoutRemovedGroup: once Node.RemoveGroup has returned,
// no Ready the application receives carries the group, though the Node
// had computed one with it before.
func TestNodeReadyWithoutRemovedGroup(t *testing.T) {
	h, err := NewHost(Config{ID: 1})
	if err != nil {
		t.Fatal(err)
	}
	storages := map[uint64]*raft.MemoryStorage{}
	for _, g := range []uint64{7, 8} {
		storages[g] = raft.NewMemoryStorage()
		if err := h.CreateGroup(g, groupConfig(1, 1, g, storages[g]), []raft.Peer{{ID: 1}, {ID: 2}}); err != nil {
			t.Fatal(err)
		}
	}
	// Group 7 answers node 2, so the Ready has a batch for it.
	b := &mrpb.Batch{From: 2, To: 1, Heartbeats: []mrpb.Heartbeat{{GroupID: 7, Term: 1}}}
	if err := h.Step(2, b); err != nil {
		t.Fatal(err)
	}
	n := StartNode(h) // computes its first Ready before serving any call
	defer n.Stop()
	if err := n.RemoveGroup(context.Background(), 7); err != nil {
		t.Fatal(err)
	}
	rd := <-n.Ready()
	if k := groupItems(&rd, 7); k > 0 {
		t.Fatalf("Ready received after RemoveGroup returned carries %d items of the removed group", k)
	}
	if groupItems(&rd, 8) != 1 {
		t.Fatalf("Ready lost group 8: %+v", rd.Groups)
	}
	for _, b := range rd.Batches {
		if len(b.Messages)+len(b.Heartbeats)+len(b.HeartbeatResponses)+len(b.WakeGroups) == 0 && !b.NodeHeartbeat {
			t.Fatalf("empty batch to %d left in the Ready", b.To)
		}
	}
	for _, gr := range rd.Groups {
		if err := storages[gr.GroupID].Save(gr.HardState, gr.Entries, gr.Snapshot); err != nil {
			t.Fatal(err)
		}
	}
	n.Advance()
}
