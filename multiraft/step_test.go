package multiraft

import (
	"errors"
	"fmt"
	"testing"

	"github.com/raftcore/raft"
	mrpb "github.com/raftcore/raft/multiraft/multiraftpb"
	pb "github.com/raftcore/raft/raftpb"
	"github.com/stretchr/testify/require"
)

// voteBatch is a batch from node 2 to node 1 asking group 1 for a vote at
// term 5, which would move node 1's term if stepped.
func voteBatch() *mrpb.Batch {
	return &mrpb.Batch{From: 2, To: 1, Messages: []mrpb.GroupMessage{{
		GroupID: 1,
		Message: pb.Message{Type: pb.MsgVote, From: 2, To: 1, Term: 5, LogTerm: 1, Index: 3},
	}}}
}

func TestStepRefusesMalformedBatchWhole(t *testing.T) {
	tests := []struct {
		name  string
		from  uint64
		spoil func(b *mrpb.Batch)
	}{
		{"sender differs from the batch's", 3, func(*mrpb.Batch) {}},
		{"batch for another node", 2, func(b *mrpb.Batch) { b.To = 3 }},
		{"message without a group", 2, func(b *mrpb.Batch) {
			b.Messages = append(b.Messages, mrpb.GroupMessage{Message: pb.Message{Type: pb.MsgApp, From: 2, To: 1, Term: 5}})
		}},
		{"message for another node", 2, func(b *mrpb.Batch) {
			b.Messages = append(b.Messages, mrpb.GroupMessage{GroupID: 2, Message: pb.Message{Type: pb.MsgApp, From: 2, To: 3, Term: 5}})
		}},
		{"message from a third node", 2, func(b *mrpb.Batch) {
			b.Messages = append(b.Messages, mrpb.GroupMessage{GroupID: 2, Message: pb.Message{Type: pb.MsgApp, From: 3, To: 1, Term: 5}})
		}},
		{"local message type", 2, func(b *mrpb.Batch) {
			b.Messages = append(b.Messages, mrpb.GroupMessage{GroupID: 2, Message: pb.Message{Type: pb.MsgHup, From: 2, To: 1}})
		}},
		{"unknown message type", 2, func(b *mrpb.Batch) {
			b.Messages = append(b.Messages, mrpb.GroupMessage{GroupID: 2, Message: pb.Message{Type: 99, From: 2, To: 1, Term: 5}})
		}},
		{"heartbeat without a group", 2, func(b *mrpb.Batch) {
			b.Heartbeats = append(b.Heartbeats, mrpb.Heartbeat{Term: 5})
		}},
		{"heartbeat response without a term", 2, func(b *mrpb.Batch) {
			b.HeartbeatResponses = append(b.HeartbeatResponses, mrpb.HeartbeatResponse{GroupID: 2})
		}},
		{"wake without a group", 2, func(b *mrpb.Batch) {
			b.WakeGroups = append(b.WakeGroups, 2, 0)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCluster(t, 1, 3, 2, Config{})
			c.settle()
			h := c.node(1).host
			before, _ := h.BasicStatus(1)
			b := voteBatch()
			tt.spoil(b)
			if err := h.Step(tt.from, b); !errors.Is(err, ErrMalformedBatch) {
				t.Fatalf("Step: %v, want ErrMalformedBatch", err)
			}
			if after, _ := h.BasicStatus(1); after.HardState != before.HardState {
				t.Fatalf("refused batch changed group 1: %+v -> %+v", before.HardState, after.HardState)
			}
			if h.HasReady() {
				t.Fatal("refused batch left work")
			}
		})
	}
	t.Run("undecodable bytes", func(t *testing.T) {
		c := newCluster(t, 1, 3, 1, Config{})
		c.settle()
		if err := c.node(1).host.StepBytes(2, []byte{0xff, 0xff, 0xff}); !errors.Is(err, ErrMalformedBatch) {
			t.Fatalf("StepBytes: %v", err)
		}
	})
	t.Run("the unspoiled batch is stepped", func(t *testing.T) {
		c := newCluster(t, 1, 3, 2, Config{})
		c.settle()
		h := c.node(1).host
		if err := h.Step(2, voteBatch()); err != nil {
			t.Fatal(err)
		}
		if st, _ := h.BasicStatus(1); st.Term != 5 {
			t.Fatalf("term %d after a vote request of term 5", st.Term)
		}
	})
}

func TestStepUnknownGroup(t *testing.T) {
	msg := func(g uint64) *mrpb.Batch {
		return &mrpb.Batch{From: 2, To: 1, Messages: []mrpb.GroupMessage{{
			GroupID: g,
			Message: pb.Message{Type: pb.MsgHeartbeat, From: 2, To: 1, Term: 3},
		}}}
	}
	t.Run("dropped and counted", func(t *testing.T) {
		h, _ := NewHost(Config{ID: 1})
		if err := h.Step(2, msg(42)); err != nil {
			t.Fatal(err)
		}
		if h.NumGroups() != 0 || h.Metrics().UnknownGroup != 1 {
			t.Fatalf("groups %d, metrics %+v", h.NumGroups(), h.Metrics())
		}
	})
	t.Run("created by the hook", func(t *testing.T) {
		var asked []uint64
		h, _ := NewHost(Config{ID: 1, OnUnknownGroup: func(g uint64, m pb.Message) (bool, raft.Config) {
			asked = append(asked, g)
			return g == 42, groupConfig(1, 1, g, raft.NewMemoryStorage())
		}})
		if err := h.Step(2, msg(42)); err != nil {
			t.Fatal(err)
		}
		if err := h.Step(2, msg(43)); err != nil {
			t.Fatal(err)
		}
		if len(asked) != 2 || h.NumGroups() != 1 || h.Metrics().UnknownGroup != 1 {
			t.Fatalf("asked %v, groups %d, metrics %+v", asked, h.NumGroups(), h.Metrics())
		}
		if st, err := h.BasicStatus(42); err != nil || st.Term != 3 || st.Lead != 2 {
			t.Fatalf("created group: %+v, %v", st, err)
		}
	})
	t.Run("removed group refused, hook not asked", func(t *testing.T) {
		asked := 0
		h, _ := NewHost(Config{ID: 1, Tombstones: []uint64{42}, OnUnknownGroup: func(g uint64, m pb.Message) (bool, raft.Config) {
			asked++
			return true, groupConfig(1, 1, g, raft.NewMemoryStorage())
		}})
		if err := h.Step(2, msg(42)); err != nil {
			t.Fatal(err)
		}
		if asked != 0 || h.NumGroups() != 0 || h.Metrics().RemovedGroup != 1 {
			t.Fatalf("asked %d, groups %d, metrics %+v", asked, h.NumGroups(), h.Metrics())
		}
	})
}

// TestStepCountsRejectedMessages: a message the group refuses is dropped
// and counted; the rest of the batch goes through.
func TestStepCountsRejectedMessages(t *testing.T) {
	c := newCluster(t, 1, 3, 2, Config{})
	c.settle()
	h := c.node(1).host
	b := voteBatch()
	// A heartbeat committing past group 2's last index is refused by the
	// group.
	b.Messages = append(b.Messages, mrpb.GroupMessage{GroupID: 2, Message: pb.Message{Type: pb.MsgHeartbeat, From: 2, To: 1, Term: 5, Commit: 100}})
	if err := h.Step(2, b); err != nil {
		t.Fatal(err)
	}
	if h.Metrics().Rejected != 1 {
		t.Fatalf("metrics %+v", h.Metrics())
	}
	if st, _ := h.BasicStatus(1); st.Term != 5 {
		t.Fatalf("group 1 term %d", st.Term)
	}
}

// A leader transfer asked of a follower is forwarded to the leader with the
// transferee as its sender (raft's own convention), which may be a third
// node: the batch carrying it is accepted and the transfer happens.
func TestForwardedLeaderTransferAccepted(t *testing.T) {
	c := newCluster(t, 1, 3, 2, Config{})
	c.electSpread()
	const g = 1
	lead := c.leader(g)
	require.NotZero(t, lead)
	var follower, transferee uint64
	for id := uint64(1); id <= 3; id++ {
		if id == lead {
			continue
		}
		if follower == 0 {
			follower = id
		} else {
			transferee = id
		}
	}
	require.NoError(t, c.node(follower).host.TransferLeader(g, transferee))
	c.settle()
	// Without ticks: the transfer itself, not a later election.
	require.Equal(t, transferee, c.leader(g), "the transfer forwarded by node %d", follower)
}

// TestForwardedRequestsFromNonMembersRefused: a forwarded request keeps
// its first sender, which may be a third node (a read forwarded twice, by
// a follower whose leader changed), but must be a member of the group:
// the leader answers a read to its sender, and every node a group sends to
// becomes a peer of the host, heartbeated from then on. One batch of reads
// from invented senders adds none; a read from a member forwarded by
// another member is answered.
func TestForwardedRequestsFromNonMembersRefused(t *testing.T) {
	c := quietCluster(t, 3)
	h := c.node(1).host // leads group 1
	const reads = 1000
	b := &mrpb.Batch{From: 2, To: 1}
	for i := range uint64(reads) {
		b.Messages = append(b.Messages, mrpb.GroupMessage{GroupID: 1, Message: pb.Message{
			Type: pb.MsgReadIndex, From: 1000 + i, To: 1, Entries: []pb.Entry{{Data: fmt.Appendf(nil, "r%d", i)}},
		}})
	}
	require.NoError(t, h.Step(2, b))
	c.settle()
	require.Equal(t, 2, len(h.peers), "peers after reads from %d strangers", reads)
	require.Equal(t, uint64(reads), h.Metrics().Rejected)

	// Node 3's read, forwarded by node 2.
	var answered []string
	c.onReadState = func(n *testNode, g uint64, rs raft.ReadState) {
		answered = append(answered, fmt.Sprintf("%d/%d/%s", n.id, g, rs.RequestCtx))
	}
	fwd := &mrpb.Batch{From: 2, To: 1, Messages: []mrpb.GroupMessage{{GroupID: 1, Message: pb.Message{
		Type: pb.MsgReadIndex, From: 3, To: 1, Entries: []pb.Entry{{Data: []byte("via 2")}},
	}}}}
	require.NoError(t, h.Step(2, fwd))
	c.settle()
	require.Equal(t, []string{"3/1/via 2"}, answered)
	require.Equal(t, 2, len(h.peers))
}

// TestReadyAddsOnlyMembersAsPeers: a node a group's message goes to
// becomes a peer of the host only if it is a member of that group (a
// group's own rules may still address others: an answer to a read taken
// from a node since removed, say).
func TestReadyAddsOnlyMembersAsPeers(t *testing.T) {
	c := quietCluster(t, 3)
	h := c.node(1).host
	g := h.groups[1]
	h.activate(g, h.id)
	h.markWork(g)
	// Stepped past the host's checks, as if taken before node 7 left.
	require.NoError(t, g.rn.Step(pb.Message{Type: pb.MsgReadIndex, From: 7, To: 1, Entries: []pb.Entry{{Data: []byte("x")}}}))
	c.settle()
	require.Equal(t, 2, len(h.peers))
}
