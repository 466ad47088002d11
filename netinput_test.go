package raft

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
)

// Input from the network that could crash a node later, or change state it
// must not, is refused where it enters and changes nothing.

// requireInvalid checks that err refuses a message as invalid.
func requireInvalid(t *testing.T, err error, msgAndArgs ...any) {
	t.Helper()
	require.ErrorIs(t, err, ErrInvalidMessage, msgAndArgs...)
}

// A term so high that campaigning after it would overflow is refused, in
// every message type that carries one, and the node still campaigns
// normally afterwards.
func TestHugeTermRefused(t *testing.T) {
	for _, term := range []uint64{maxTerm, math.MaxUint64 - 1, math.MaxUint64} {
		for _, m := range []pb.Message{
			{Type: pb.MsgHeartbeat, From: 2, To: 1, Term: term},
			{Type: pb.MsgApp, From: 2, To: 1, Term: term},
			{Type: pb.MsgAppResp, From: 2, To: 1, Term: term},
			{Type: pb.MsgVote, From: 2, To: 1, Term: term},
			{Type: pb.MsgPreVote, From: 2, To: 1, Term: term},
			{Type: pb.MsgVoteResp, From: 2, To: 1, Term: term},
			{Type: pb.MsgPreVoteResp, From: 2, To: 1, Term: term},
			{Type: pb.MsgTimeoutNow, From: 2, To: 1, Term: term},
		} {
			n := newTestNode(t, 1, []uint64{1, 2, 3}, withPreVote)
			requireInvalid(t, n.rn.Step(m), "%s at term %d", m.Type, term)
			require.Zero(t, n.r().Term)
			n.ready()
			n.tick(30)
			require.Equal(t, StatePreCandidate, n.r().state, "the node campaigns as usual")
		}
	}
	// The highest term accepted leaves room for a campaign and a pre-vote.
	n := newTestNode(t, 1, []uint64{1, 2, 3}, withPreVote)
	require.NoError(t, n.rn.Step(pb.Message{Type: pb.MsgHeartbeat, From: 2, To: 1, Term: maxTerm - 1}))
	n.ready()
	n.tick(30)
	require.Equal(t, maxTerm-1, n.r().Term)
}

// A node whose stored term leaves no room for another campaign refuses to
// campaign instead of wrapping its term to 0.
func TestCampaignRefusedAtTermLimit(t *testing.T) {
	for _, term := range []uint64{maxTerm - 1, math.MaxUint64} {
		for _, preVote := range []bool{false, true} {
			n := newTestNode(t, 1, []uint64{1, 2, 3}, func(c *Config) {
				c.PreVote = preVote
				require.NoError(t, c.Storage.(*MemoryStorage).SetHardState(pb.HardState{Term: term}))
			})
			require.Equal(t, term, n.r().Term)
			n.tick(30)
			require.NoError(t, n.rn.Campaign())
			n.ready()
			require.Equal(t, StateFollower, n.r().state, "term %d pre-vote %v", term, preVote)
			require.Equal(t, term, n.r().Term)
		}
	}
}

// An index so high that the log could reach the end of the index space is
// refused in every field that carries one, and the node goes on.
func TestHugeIndexRefused(t *testing.T) {
	cs := pb.ConfState{Voters: []uint64{1, 2, 3}}
	for _, tt := range []struct {
		name string
		m    pb.Message
	}{
		{"snapshot at the last index", pb.Message{Type: pb.MsgSnap, From: 2, To: 1, Term: 1,
			Snapshot: &pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: math.MaxUint64, Term: 1, ConfState: cs}}}},
		{"snapshot at the bound", pb.Message{Type: pb.MsgSnap, From: 2, To: 1, Term: 1,
			Snapshot: &pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: maxIndex, Term: 1, ConfState: cs}}}},
		{"append ending at the last index", pb.Message{Type: pb.MsgApp, From: 2, To: 1, Term: 1, Index: math.MaxUint64 - 1, LogTerm: 1,
			Entries: []pb.Entry{{Index: math.MaxUint64, Term: 1}}}},
		{"append ending at the bound", pb.Message{Type: pb.MsgApp, From: 2, To: 1, Term: 1, Index: maxIndex - 1, LogTerm: 1,
			Entries: []pb.Entry{{Index: maxIndex, Term: 1}}}},
		{"append after the bound", pb.Message{Type: pb.MsgApp, From: 2, To: 1, Term: 1, Index: maxIndex, LogTerm: 1}},
		{"append commit", pb.Message{Type: pb.MsgApp, From: 2, To: 1, Term: 1, Commit: maxIndex}},
		{"heartbeat commit", pb.Message{Type: pb.MsgHeartbeat, From: 2, To: 1, Term: 1, Commit: math.MaxUint64}},
		{"append response index", pb.Message{Type: pb.MsgAppResp, From: 2, To: 1, Term: 1, Index: maxIndex}},
		{"append response reject hint", pb.Message{Type: pb.MsgAppResp, From: 2, To: 1, Term: 1, Index: 1, Reject: true, RejectHint: maxIndex}},
		{"vote last index", pb.Message{Type: pb.MsgVote, From: 2, To: 1, Term: 1, Index: math.MaxUint64}},
		{"read index response", pb.Message{Type: pb.MsgReadIndexResp, From: 2, To: 1, Term: 1, Index: maxIndex,
			Entries: []pb.Entry{{Data: []byte("ctx")}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := newTestNode(t, 1, []uint64{1, 2, 3})
			before := nodeState(n)
			requireInvalid(t, n.rn.Step(tt.m))
			require.Equal(t, before, nodeState(n))
			n.ready()
			n.tick(30)
			n.ready()
			require.Equal(t, StateCandidate, n.r().state)
		})
	}
	// Just below the bound a snapshot is taken, and the node still
	// campaigns and leads from it: a leader has room to append.
	n := newTestNode(t, 1, []uint64{1})
	require.NoError(t, n.rn.Step(pb.Message{Type: pb.MsgSnap, From: 2, To: 1, Term: 1,
		Snapshot: &pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: maxIndex - 1, Term: 1, ConfState: pb.ConfState{Voters: []uint64{1, 2}}}}}))
	n.ready()
	require.Equal(t, maxIndex-1, n.r().raftLog.lastIndex())
	n.tick(30)
	n.ready()
	require.Equal(t, StateCandidate, n.r().state)
}

// newAsyncLeader returns a 3-node async cluster whose node 1 leads.
func newAsyncLeader(t *testing.T) *asyncCluster {
	c := newAsyncCluster(t, 1, 2, 3)
	for id := uint64(1); id <= 3; id++ {
		c.process(id)
	}
	require.NoError(t, c.nodes[1].rn.Campaign())
	c.run(c.process(1))
	require.Equal(t, StateLeader, c.nodes[1].rn.raft.state)
	return c
}

// The storage threads' IDs are never a sender: a message "from" one would
// make it the node's leader (or the candidate it voted for), and the node
// would then address messages to its append thread.
func TestLocalThreadSenderRefused(t *testing.T) {
	for _, from := range []uint64{LocalAppendThread, LocalApplyThread} {
		for typ := range pb.MessageType_name {
			mt := pb.MessageType(typ)
			if IsLocalMsg(mt) {
				continue
			}
			cfg := testConfig(1, NewMemoryStorage())
			cfg.AsyncStorageWrites = true
			rn, err := NewRawNode(cfg)
			require.NoError(t, err)
			require.NoError(t, rn.Bootstrap([]Peer{{ID: 1}, {ID: 2}, {ID: 3}}))
			m := pb.Message{Type: mt, From: from, To: 1, Term: 1}
			switch mt {
			case pb.MsgProp, pb.MsgReadIndex:
				m.Term = 0
				m.Entries = []pb.Entry{{Data: []byte("x")}}
			case pb.MsgReadIndexResp:
				m.Entries = []pb.Entry{{Data: []byte("x")}}
			case pb.MsgSnap:
				m.Snapshot = &pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 5, Term: 1, ConfState: pb.ConfState{Voters: []uint64{1, 2, 3}}}}
			}
			requireInvalid(t, rn.Step(m), "%s from %x", mt, from)
			rd := rn.Ready()
			for _, out := range rd.Messages {
				for _, resp := range append([]pb.Message{out}, out.Responses...) {
					if resp.Type != pb.MsgStorageAppend && resp.Type != pb.MsgStorageApply {
						require.False(t, IsLocalMsgTarget(resp.To), "%s to a storage thread after %s", resp.Type, mt)
					}
				}
			}
			require.Equal(t, None, rn.raft.lead)
			require.Equal(t, None, rn.raft.Vote)
		}
	}
}

// A configuration naming a storage thread's ID as a node is refused: in a
// snapshot, in a forwarded conf change, in the leader's own proposal, and
// (from a log a leader of another implementation wrote) when applied.
func TestLocalThreadNodeIDRefused(t *testing.T) {
	for _, id := range []uint64{LocalAppendThread, LocalApplyThread} {
		cc := pb.ConfChange{Type: pb.ConfChangeAddNode, NodeID: id}
		data, err := cc.Marshal()
		require.NoError(t, err)
		ccEntry := pb.Entry{Type: pb.EntryConfChange, Data: data}

		n := newTestNode(t, 1, []uint64{1, 2, 3})
		for _, cs := range []pb.ConfState{
			{Voters: []uint64{1, 2, id}},
			{Voters: []uint64{1, 2}, Learners: []uint64{id}},
			{Voters: []uint64{1, 2}, VotersOutgoing: []uint64{1, id}, LearnersNext: []uint64{id}},
		} {
			requireInvalid(t, n.rn.Step(pb.Message{Type: pb.MsgSnap, From: 2, To: 1, Term: 1,
				Snapshot: &pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 5, Term: 1, ConfState: cs}}}), "%v", cs)
		}

		l := newTestNode(t, 1, []uint64{1, 2, 3})
		l.makeLeader()
		requireInvalid(t, l.rn.Step(pb.Message{Type: pb.MsgProp, From: 2, To: 1, Entries: []pb.Entry{ccEntry}}))
		last := l.r().raftLog.lastIndex()
		require.ErrorIs(t, l.rn.ProposeConfChange(cc), ErrProposalConfChangeRefused)
		require.ErrorIs(t, l.rn.ProposeConfChange(pb.ConfChangeV2{Changes: []pb.ConfChangeSingle{
			{Type: pb.ConfChangeAddNode, NodeID: 4}, {Type: pb.ConfChangeAddLearnerNode, NodeID: id}}}), ErrProposalConfChangeRefused)
		require.Equal(t, last, l.r().raftLog.lastIndex(), "nothing appended")

		cs := n.rn.ApplyConfChange(cc)
		require.Equal(t, pb.ConfState{Voters: []uint64{1, 2, 3}}, *cs, "a committed change naming %x is ignored", id)
		require.False(t, n.r().isMember(id))
	}
}

// With AsyncStorageWrites, a message "from" the node to itself that it
// never handed out is refused, and changes nothing: a rejection (which the
// node never sends itself), an acknowledgement of entries not yet durable,
// a term it is not in, a vote it did not cast.
func TestForgedSelfResponseRefused(t *testing.T) {
	c := newAsyncLeader(t)
	n := c.nodes[1]
	l := n.rn.raft
	last := l.raftLog.lastIndex()
	for _, m := range []pb.Message{
		{Type: pb.MsgAppResp, From: 1, To: 1, Term: l.Term, Index: last + 5, Reject: true, RejectHint: 1},
		{Type: pb.MsgAppResp, From: 1, To: 1, Term: l.Term, Index: last, Reject: true, RejectHint: 0},
		{Type: pb.MsgAppResp, From: 1, To: 1, Term: 0, Index: last},
		{Type: pb.MsgAppResp, From: 1, To: 1, Term: l.Term + 1, Index: last},
		{Type: pb.MsgAppResp, From: 1, To: 1, Term: l.Term, Index: last + 1},
		{Type: pb.MsgVoteResp, From: 1, To: 1, Term: l.Term + 1},
		{Type: pb.MsgPreVoteResp, From: 1, To: 1, Term: l.Term + 2},
		{Type: pb.MsgVoteResp, From: 1, To: 1, Term: l.Term, Reject: true},
	} {
		before := l.Term
		var err error
		require.NotPanics(t, func() { err = n.rn.Step(m) }, "%s", DescribeMessage(m, nil))
		requireInvalid(t, err, "%s", DescribeMessage(m, nil))
		require.Equal(t, before, l.Term)
		require.Equal(t, StateLeader, l.state)
	}

	// While the leader's write is held, an acknowledgement of it is not
	// the leader's: its own copy does not count toward commit.
	n.hold = true
	require.NoError(t, n.rn.Propose([]byte("x")))
	c.run(c.process(1))
	last = l.raftLog.lastIndex()
	stored, err := n.s.LastIndex()
	require.NoError(t, err)
	require.Equal(t, last-1, stored)
	requireInvalid(t, n.rn.Step(pb.Message{Type: pb.MsgAppResp, From: 1, To: 1, Term: l.Term, Index: last}))
	require.Equal(t, last-1, l.trk.Progress[1].Match)
	n.hold = false
	c.run(n.flush(len(n.queued)))
	require.Equal(t, last, l.trk.Progress[1].Match)
	require.Equal(t, last, l.raftLog.committed)
}

// A candidate takes its own vote only for the campaign it is in.
func TestForgedSelfVoteRefused(t *testing.T) {
	n := newAsyncNode(t, 1, []Peer{{ID: 1}})
	n.process()
	n.hold = true
	require.NoError(t, n.rn.Campaign())
	n.process()
	r := n.rn.raft
	require.Equal(t, StateCandidate, r.state)
	requireInvalid(t, n.rn.Step(pb.Message{Type: pb.MsgVoteResp, From: 1, To: 1, Term: r.Term + 1}))
	requireInvalid(t, n.rn.Step(pb.Message{Type: pb.MsgVoteResp, From: 1, To: 1, Term: r.Term, Reject: true}))
	requireInvalid(t, n.rn.Step(pb.Message{Type: pb.MsgPreVoteResp, From: 1, To: 1, Term: r.Term + 2}))
	// A pre-vote for this term belongs to the pre-election that led here:
	// dropped, as its own pre-vote is once that round is won.
	require.NoError(t, n.rn.Step(pb.Message{Type: pb.MsgPreVoteResp, From: 1, To: 1, Term: r.Term}))
	require.Equal(t, StateCandidate, r.state)
	n.flush(len(n.queued))
	require.Equal(t, StateLeader, r.state)
}

// With AsyncStorageWrites, a storage response that answers no work handed
// out is refused and changes nothing.
func TestForgedStorageResponseRefused(t *testing.T) {
	c := newAsyncLeader(t)
	n := c.nodes[2]
	r := n.rn.raft
	for _, tt := range []struct {
		name string
		m    pb.Message
	}{
		{"apply past the committed index", pb.Message{Type: pb.MsgStorageApplyResp, From: LocalApplyThread, To: 2, Entries: []pb.Entry{{Index: 1000}}}},
		{"apply with a gap", pb.Message{Type: pb.MsgStorageApplyResp, From: LocalApplyThread, To: 2, Entries: []pb.Entry{{Index: r.raftLog.applied + 2}}}},
		{"apply without entries", pb.Message{Type: pb.MsgStorageApplyResp, From: LocalApplyThread, To: 2}},
		{"snapshot never received", pb.Message{Type: pb.MsgStorageAppendResp, From: LocalAppendThread, To: 2,
			Snapshot: &pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 1000}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := r.raftLog.String()
			var err error
			require.NotPanics(t, func() { err = n.rn.Step(tt.m) })
			requireInvalid(t, err)
			require.Equal(t, before, r.raftLog.String())
		})
	}

	// Entries not handed out for writing yet are not made stable by a
	// response naming them.
	next := r.raftLog.lastIndex() + 1
	require.NoError(t, n.rn.Step(pb.Message{Type: pb.MsgApp, From: 1, To: 2, Term: r.Term, Index: next - 1,
		LogTerm: r.raftLog.lastEntryID().term, Commit: next, Entries: []pb.Entry{{Index: next, Term: r.Term}}}))
	last := r.raftLog.lastEntryID()
	require.Equal(t, next, r.raftLog.committed)
	before := r.raftLog.String()
	requireInvalid(t, n.rn.Step(pb.Message{Type: pb.MsgStorageAppendResp, From: LocalAppendThread, To: 2, Index: last.index, LogTerm: last.term}))
	// Nor is a committed entry not handed out for applying made applied.
	requireInvalid(t, n.rn.Step(pb.Message{Type: pb.MsgStorageApplyResp, From: LocalApplyThread, To: 2, Entries: []pb.Entry{{Index: next}}}))
	require.Equal(t, before, r.raftLog.String())
	// The real write completes; its entry is handed out for applying.
	appendMsg, _, _ := takeAsync(n.rn.Ready())
	n.queued = append(n.queued, appendMsg)
	n.flush(1)
	require.Equal(t, last.index, r.raftLog.unstable.offset-1, "the real write's response counts")
	_, applyMsg, _ := takeAsync(n.rn.Ready())
	require.Equal(t, []pb.Entry{{Index: next, Term: r.Term}}, applyMsg.Entries)
	require.Equal(t, next-1, r.raftLog.applied)
	for _, ents := range [][]pb.Entry{
		{{Index: next - 1}, {Index: next}},
		{{Index: next}, {Index: next}},
		{{Index: next}, {Index: next + 1}},
	} {
		before := r.raftLog.String()
		requireInvalid(t, n.rn.Step(pb.Message{Type: pb.MsgStorageApplyResp, From: LocalApplyThread, To: 2, Entries: ents}), "%v", ents)
		require.Equal(t, before, r.raftLog.String())
	}
	require.NoError(t, n.rn.Step(applyMsg.Responses[0]))
	require.Equal(t, next, r.raftLog.applied, "the real apply response counts")
}

// An append response for a snapshot below the pending one that this node
// never handed out for writing (forged, or the response of a snapshot
// replaced before any Ready carried it) is taken without an error, as a
// superseded response is, and moves nothing: only the write of a snapshot
// handed out tells the node that the application installed it.
func TestAsyncSupersededSnapshotResponseNotHandedOut(t *testing.T) {
	n := newAsyncNode(t, 2, []Peer{{ID: 1}, {ID: 2}, {ID: 3}})
	n.process()
	snapAt := func(i uint64) *pb.Snapshot {
		return &pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: i, Term: 1, ConfState: pb.ConfState{Voters: []uint64{1, 2, 3}}}}
	}
	// The snapshot at 10 is replaced by the one at 20 before a Ready
	// hands it out.
	require.NoError(t, n.rn.Step(pb.Message{Type: pb.MsgSnap, From: 1, To: 2, Term: 1, Snapshot: snapAt(10)}))
	require.NoError(t, n.rn.Step(pb.Message{Type: pb.MsgSnap, From: 1, To: 2, Term: 1, Snapshot: snapAt(20)}))
	write, _, _ := takeAsync(n.rn.Ready())
	require.Equal(t, uint64(20), write.Snapshot.Metadata.Index)
	for _, i := range []uint64{10, 15} {
		before := n.rn.raft.raftLog.String()
		resp := pb.Message{Type: pb.MsgStorageAppendResp, From: LocalAppendThread, To: 2, Snapshot: &pb.Snapshot{Metadata: snapAt(i).Metadata}}
		require.NoError(t, n.rn.Step(resp))
		require.Equal(t, before, n.rn.raft.raftLog.String(), "a response for the snapshot at %d", i)
	}
	n.queued = append(n.queued, write)
	n.flush(1)
	require.Equal(t, uint64(20), n.rn.Status().Applied)
	n.process()
	require.Equal(t, uint64(20), n.rn.Status().Commit)
}

// Bootstrap refuses a storage thread's ID as a peer, and leaves the node
// and its storage as they were.
func TestBootstrapRefusesLocalThreadPeer(t *testing.T) {
	for _, id := range []uint64{LocalAppendThread, LocalApplyThread} {
		s := NewMemoryStorage()
		rn, err := NewRawNode(testConfig(1, s))
		require.NoError(t, err)
		require.Error(t, rn.Bootstrap([]Peer{{ID: 1}, {ID: id}}))
		require.False(t, rn.HasReady())
		require.Equal(t, uint64(0), rn.raft.Term)
		require.Empty(t, rn.raft.conf.voterIDs())
	}
}

// An append carrying a conf change that does not decode is refused: no
// leader appends one, and the application could not apply it.
func TestAppendWithUndecodableConfChangeRefused(t *testing.T) {
	for _, typ := range []pb.EntryType{pb.EntryConfChange, pb.EntryConfChangeV2} {
		n := newTestNode(t, 1, []uint64{1, 2, 3})
		before := nodeState(n)
		requireInvalid(t, n.rn.Step(pb.Message{Type: pb.MsgApp, From: 2, To: 1, Term: 1, Commit: 1,
			Entries: []pb.Entry{{Index: 1, Term: 1, Type: typ, Data: []byte{0xff}}}}), "%s", typ)
		require.Equal(t, before, nodeState(n))
	}
}
