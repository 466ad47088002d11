package multiraft

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"unsafe"

	"github.com/raftcore/raft"
	mrpb "github.com/raftcore/raft/multiraft/multiraftpb"
	pb "github.com/raftcore/raft/raftpb"
)

func TestHostReplicatesEachGroup(t *testing.T) {
	c := newCluster(t, 1, 3, 6, Config{DisableQuiescence: true})
	c.electSpread()
	for _, g := range c.groups {
		n := c.node(c.leader(g))
		if err := n.host.Propose(g, []byte(fmt.Sprintf("g%d", g))); err != nil {
			t.Fatal(err)
		}
	}
	c.settle()
	for _, g := range c.groups {
		for _, n := range c.nodes {
			if got, want := c.appliedData(n.id, g), []string{fmt.Sprintf("g%d", g)}; !slices.Equal(got, want) {
				t.Errorf("node %d group %d applied %q, want %q", n.id, g, got, want)
			}
		}
	}
}

func TestHostBatchesMessagesPerNode(t *testing.T) {
	c := newCluster(t, 1, 3, 9, Config{DisableQuiescence: true})
	c.electSpread()
	// Node 1 leads groups 1, 4, 7: one proposal each gives one batch per
	// follower node, carrying the three groups' appends.
	n := c.node(1)
	for _, g := range []uint64{1, 4, 7} {
		if err := n.host.Propose(g, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	rd := n.host.Ready()
	if len(rd.Batches) != 2 || rd.Batches[0].To != 2 || rd.Batches[1].To != 3 {
		t.Fatalf("batches to %v, want one to node 2 and one to node 3", batchDests(rd.Batches))
	}
	for _, b := range rd.Batches {
		var groups []uint64
		for _, gm := range b.Messages {
			if gm.Message.Type != pb.MsgApp {
				t.Fatalf("unexpected %s", gm.Message.Type)
			}
			groups = append(groups, gm.GroupID)
		}
		if !slices.Equal(groups, []uint64{1, 4, 7}) {
			t.Fatalf("batch to %d carries appends of groups %v", b.To, groups)
		}
	}
	for _, gr := range rd.Groups {
		if gr.Messages != nil {
			t.Fatalf("group %d keeps its messages in the GroupReady", gr.GroupID)
		}
		if err := n.storages[gr.GroupID].Save(gr.HardState, gr.Entries, gr.Snapshot); err != nil {
			t.Fatal(err)
		}
	}
	n.host.Advance(rd)
}

func batchDests(bs []*mrpb.Batch) []uint64 {
	var out []uint64
	for _, b := range bs {
		out = append(out, b.To)
	}
	return out
}

// TestHostReadyFollowsGroupsWithWork shows that Ready looks only at the
// groups input reached: after the cluster is quiet, a proposal to one group
// of many yields a Ready with that group alone.
func TestHostReadyFollowsGroupsWithWork(t *testing.T) {
	c := newCluster(t, 1, 3, 30, Config{DisableQuiescence: true})
	c.electSpread()
	h := c.node(1).host
	if h.HasReady() {
		t.Fatal("host has work after settling")
	}
	if err := h.Propose(4, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if len(h.work) != 1 {
		t.Fatalf("%d groups marked with work, want 1", len(h.work))
	}
	rd := h.Ready()
	if len(rd.Groups) != 1 || rd.Groups[0].GroupID != 4 {
		t.Fatalf("Ready holds %d groups", len(rd.Groups))
	}
	gr := rd.Groups[0]
	if err := c.node(1).storages[4].Save(gr.HardState, gr.Entries, gr.Snapshot); err != nil {
		t.Fatal(err)
	}
	h.Advance(rd)
}

func TestHostCreateAndRemoveGroups(t *testing.T) {
	h, err := NewHost(Config{ID: 1})
	if err != nil {
		t.Fatal(err)
	}
	cfg := groupConfig(1, 1, 7, raft.NewMemoryStorage())
	if err := h.CreateGroup(7, cfg, []raft.Peer{{ID: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := h.CreateGroup(7, groupConfig(1, 1, 7, raft.NewMemoryStorage()), nil); !errors.Is(err, ErrGroupExists) {
		t.Fatalf("second create: %v", err)
	}
	bad := groupConfig(1, 2, 8, raft.NewMemoryStorage())
	if err := h.CreateGroup(8, bad, nil); err == nil {
		t.Fatal("created a group whose raft ID is not the node ID")
	}
	if err := h.RemoveGroup(7); err != nil {
		t.Fatal(err)
	}
	if err := h.Propose(7, nil); !errors.Is(err, ErrGroupRemoved) {
		t.Fatalf("propose to removed group: %v", err)
	}
	if err := h.CreateGroup(7, groupConfig(1, 1, 7, raft.NewMemoryStorage()), nil); !errors.Is(err, ErrGroupRemoved) {
		t.Fatalf("re-create removed group: %v", err)
	}
	if err := h.Propose(9, nil); !errors.Is(err, ErrGroupNotFound) {
		t.Fatalf("propose to unknown group: %v", err)
	}
	if got := h.Tombstones(); !slices.Equal(got, []uint64{7}) {
		t.Fatalf("tombstones %v", got)
	}
	// A host restarted with the tombstones keeps refusing the group.
	h2, err := NewHost(Config{ID: 1, Tombstones: h.Tombstones()})
	if err != nil {
		t.Fatal(err)
	}
	if err := h2.CreateGroup(7, groupConfig(1, 1, 7, raft.NewMemoryStorage()), nil); !errors.Is(err, ErrGroupRemoved) {
		t.Fatalf("re-create after restart: %v", err)
	}
}

// TestHostSingleNodeGroup runs the whole loop on one node.
func TestHostSingleNodeGroup(t *testing.T) {
	c := newCluster(t, 1, 1, 3, Config{})
	c.settle()
	for _, g := range c.groups {
		if err := c.nodes[0].host.Campaign(g); err != nil {
			t.Fatal(err)
		}
	}
	c.settle()
	for _, g := range c.groups {
		if err := c.nodes[0].host.Propose(g, []byte("a")); err != nil {
			t.Fatal(err)
		}
	}
	c.settle()
	for _, g := range c.groups {
		if got := c.appliedData(1, g); !slices.Equal(got, []string{"a"}) {
			t.Fatalf("group %d applied %q", g, got)
		}
	}
}

// TestRemoveGroupWithReadyOutstanding: a group removed between Ready and
// Advance is skipped by Advance, and its later messages are refused.
func TestRemoveGroupWithReadyOutstanding(t *testing.T) {
	c := newCluster(t, 1, 3, 2, Config{DisableQuiescence: true})
	c.electSpread()
	h := c.node(1).host
	if err := h.Propose(1, []byte("x")); err != nil {
		t.Fatal(err)
	}
	rd := h.Ready()
	if len(rd.Groups) != 1 {
		t.Fatalf("%d groups in Ready", len(rd.Groups))
	}
	if err := h.RemoveGroup(1); err != nil {
		t.Fatal(err)
	}
	h.Advance(rd) // would panic in the group: its entries were never persisted
	if err := h.Step(2, &mrpb.Batch{From: 2, To: 1, HeartbeatResponses: []mrpb.HeartbeatResponse{{GroupID: 1, Term: 2}}}); err != nil {
		t.Fatal(err)
	}
	if h.Metrics().RemovedGroup != 1 || h.NumGroups() != 1 {
		t.Fatalf("metrics %+v, groups %d", h.Metrics(), h.NumGroups())
	}
}

// TestRemovedGroupLeavesReady: a group removed after input reached it is
// not in the next Ready.
func TestRemovedGroupLeavesReady(t *testing.T) {
	c := newCluster(t, 1, 3, 2, Config{DisableQuiescence: true})
	c.electSpread()
	h := c.node(1).host
	if err := h.Propose(1, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := h.RemoveGroup(1); err != nil {
		t.Fatal(err)
	}
	rd := h.Ready()
	if len(rd.Groups) != 0 || len(rd.Batches) != 0 {
		t.Fatalf("Ready of a removed group: %d groups, %d batches", len(rd.Groups), len(rd.Batches))
	}
	h.Advance(rd)
}

// A host keeps one group record per group: it must stay in the 64-byte
// size class (see the group type).
func TestGroupRecordSize(t *testing.T) {
	if got := unsafe.Sizeof(group{}); got > 64 {
		t.Fatalf("group record is %d bytes, want at most 64", got)
	}
}
