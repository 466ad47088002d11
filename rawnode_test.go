package raft

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
)

// newBootstrapped returns a fresh RawNode bootstrapped with peers, on its
// own MemoryStorage.
func newBootstrapped(t *testing.T, id uint64, peers ...uint64) (*RawNode, *MemoryStorage) {
	t.Helper()
	s := NewMemoryStorage()
	rn, err := NewRawNode(testConfig(id, s))
	require.NoError(t, err)
	var ps []Peer
	for _, p := range peers {
		ps = append(ps, Peer{ID: p})
	}
	require.NoError(t, rn.Bootstrap(ps))
	return rn, s
}

// handle persists and applies rd as the Ready contract says, then advances.
func handle(t *testing.T, rn *RawNode, s *MemoryStorage, rd Ready) {
	t.Helper()
	require.NoError(t, s.Save(rd.HardState, rd.Entries, rd.Snapshot))
	for _, e := range rd.CommittedEntries {
		if e.Type == pb.EntryConfChange || e.Type == pb.EntryConfChangeV2 {
			cc, err := pb.UnmarshalConfChange(e)
			require.NoError(t, err)
			rn.ApplyConfChange(cc)
		}
	}
	rn.Advance(rd)
}

// The Ready contract, step by step on a single voter: SoftState only when
// the leader or role changed, HardState only when it changed, MustSync
// exactly when term, vote or entries changed, and the leader's own entry
// committed only after it was persisted.
func TestRawNodeReadyContract(t *testing.T) {
	rn, s := newBootstrapped(t, 1, 1)

	// Bootstrap: the membership entry, committed at once.
	rd := rn.Ready()
	require.Nil(t, rd.SoftState, "a follower without leader is the initial soft state")
	require.Equal(t, pb.HardState{Term: 1, Commit: 1}, rd.HardState)
	require.Len(t, rd.Entries, 1)
	require.Equal(t, rd.Entries, rd.CommittedEntries)
	require.True(t, rd.MustSync)
	handle(t, rn, s, rd)
	require.False(t, rn.HasReady())

	// Campaign: the vote for itself must be durable before it counts.
	require.NoError(t, rn.Campaign())
	require.True(t, rn.HasReady())
	rd = rn.Ready()
	require.Equal(t, &SoftState{Lead: None, RaftState: StateCandidate}, rd.SoftState)
	require.Equal(t, pb.HardState{Term: 2, Vote: 1, Commit: 1}, rd.HardState)
	require.True(t, rd.MustSync)
	require.Empty(t, rd.Entries)
	require.Empty(t, rd.Messages, "the vote to itself is not a message to send")
	require.Equal(t, StateCandidate, rn.BasicStatus().RaftState, "not leader before the vote is persisted")
	handle(t, rn, s, rd)

	// Leader: its empty entry is to be persisted, not yet committed.
	rd = rn.Ready()
	require.Equal(t, &SoftState{Lead: 1, RaftState: StateLeader}, rd.SoftState)
	require.True(t, IsEmptyHardState(rd.HardState), "term and vote did not change")
	require.Equal(t, []pb.Entry{{Term: 2, Index: 2}}, rd.Entries)
	require.Empty(t, rd.CommittedEntries, "the leader counts its entry only once persisted")
	require.True(t, rd.MustSync)
	handle(t, rn, s, rd)

	// The entry commits: only the commit index changed, no sync needed.
	rd = rn.Ready()
	require.Nil(t, rd.SoftState)
	require.Equal(t, pb.HardState{Term: 2, Vote: 1, Commit: 2}, rd.HardState)
	require.Equal(t, []pb.Entry{{Term: 2, Index: 2}}, rd.CommittedEntries)
	require.False(t, rd.MustSync)
	handle(t, rn, s, rd)
	require.False(t, rn.HasReady())

	// A proposal: persisted in one Ready, committed in the next.
	require.NoError(t, rn.Propose([]byte("a")))
	rd = rn.Ready()
	require.Equal(t, []pb.Entry{{Term: 2, Index: 3, Data: []byte("a")}}, rd.Entries)
	require.Empty(t, rd.CommittedEntries)
	require.True(t, IsEmptyHardState(rd.HardState))
	require.True(t, rd.MustSync)
	handle(t, rn, s, rd)
	rd = rn.Ready()
	require.Equal(t, []pb.Entry{{Term: 2, Index: 3, Data: []byte("a")}}, rd.CommittedEntries)
	require.False(t, rd.MustSync)
	handle(t, rn, s, rd)
	require.False(t, rn.HasReady())
	require.Equal(t, uint64(3), rn.BasicStatus().Applied)
}

// MustSync: term, vote and new entries are promises to other nodes and
// must be durable; the commit index can be relearned.
func TestMustSync(t *testing.T) {
	prev := pb.HardState{Term: 2, Vote: 1, Commit: 5}
	for _, tt := range []struct {
		st   pb.HardState
		ents int
		want bool
	}{
		{prev, 0, false},
		{pb.HardState{Term: 2, Vote: 1, Commit: 6}, 0, false},
		{prev, 1, true},
		{pb.HardState{Term: 3, Vote: 1, Commit: 5}, 0, true},
		{pb.HardState{Term: 2, Vote: 2, Commit: 5}, 0, true},
	} {
		require.Equal(t, tt.want, MustSync(tt.st, prev, tt.ents), "%+v with %d entries", tt.st, tt.ents)
	}
}

// SoftState is reported when the leader changes even if the role does not.
func TestRawNodeSoftStateOnLeaderChange(t *testing.T) {
	n := newTestNode(t, 2, []uint64{1, 2, 3})
	n.ready()
	n.step(pb.Message{From: 1, To: 2, Type: pb.MsgHeartbeat, Term: 1})
	rd := n.rn.Ready()
	require.Equal(t, &SoftState{Lead: 1, RaftState: StateFollower}, rd.SoftState)
	handle(t, n.rn, n.storage, rd)
	n.step(pb.Message{From: 1, To: 2, Type: pb.MsgHeartbeat, Term: 1})
	rd = n.rn.Ready()
	require.Nil(t, rd.SoftState, "same leader, same role")
	handle(t, n.rn, n.storage, rd)
	n.step(pb.Message{From: 3, To: 2, Type: pb.MsgHeartbeat, Term: 2})
	rd = n.rn.Ready()
	require.Equal(t, &SoftState{Lead: 3, RaftState: StateFollower}, rd.SoftState)
	handle(t, n.rn, n.storage, rd)
}

func TestRawNodeBootstrapErrors(t *testing.T) {
	rn, err := NewRawNode(testConfig(1, NewMemoryStorage()))
	require.NoError(t, err)
	require.Error(t, rn.Bootstrap(nil), "no peers")
	require.False(t, rn.HasReady(), "a failed bootstrap changes nothing")

	s := NewMemoryStorage()
	require.NoError(t, s.Append(entsFrom(1, 1)))
	rn, err = NewRawNode(testConfig(1, s))
	require.NoError(t, err)
	require.Error(t, rn.Bootstrap([]Peer{{ID: 1}}), "storage not empty")
}

// A node with a term or a vote is not empty even while its log is:
// Bootstrap refuses it and keeps the term and vote (going back to term 1
// could grant a second vote in term 5).
func TestRawNodeBootstrapRefusesTermOrVote(t *testing.T) {
	t.Run("stored hard state", func(t *testing.T) {
		s := NewMemoryStorage()
		require.NoError(t, s.SetHardState(pb.HardState{Term: 5, Vote: 2}))
		rn, err := NewRawNode(testConfig(1, s))
		require.NoError(t, err)
		require.Error(t, rn.Bootstrap([]Peer{{ID: 1}, {ID: 2}}))
		require.Equal(t, uint64(5), rn.raft.Term)
		require.Equal(t, uint64(2), rn.raft.Vote)
		require.Zero(t, rn.raft.raftLog.lastIndex())
		require.False(t, rn.HasReady())
	})
	t.Run("term from a message", func(t *testing.T) {
		rn, err := NewRawNode(testConfig(1, NewMemoryStorage()))
		require.NoError(t, err)
		require.NoError(t, rn.Step(pb.Message{From: 2, To: 1, Type: pb.MsgVote, Term: 5}))
		require.Equal(t, uint64(5), rn.raft.Term)
		hs := rn.raft.hardState()
		require.Error(t, rn.Bootstrap([]Peer{{ID: 1}, {ID: 2}}))
		require.Equal(t, hs, rn.raft.hardState())
		require.Zero(t, rn.raft.raftLog.lastIndex())
	})
}

// A Bootstrap that fails on its peers changes nothing, so it can be
// retried with a correct list.
func TestRawNodeBootstrapInvalidPeersChangesNothing(t *testing.T) {
	s := NewMemoryStorage()
	rn, err := NewRawNode(testConfig(1, s))
	require.NoError(t, err)
	for _, peers := range [][]Peer{{{ID: 1}, {ID: 2}, {ID: 2}}, {{ID: 1}, {ID: 0}}} {
		require.Error(t, rn.Bootstrap(peers), "peers %v", peers)
		require.False(t, rn.HasReady())
		require.Zero(t, rn.raft.Term)
		require.Zero(t, rn.raft.raftLog.lastIndex())
		require.Zero(t, rn.raft.raftLog.committed)
		require.Empty(t, rn.raft.conf.voterIDs())
	}

	require.NoError(t, rn.Bootstrap([]Peer{{ID: 1}, {ID: 2}, {ID: 3}}))
	rd := rn.Ready()
	require.Len(t, rd.CommittedEntries, 3)
	handle(t, rn, s, rd)
	require.Equal(t, []uint64{1, 2, 3}, rn.raft.conf.voterIDs())
}

// Bootstrap writes one conf change per peer, carrying the peer's context,
// and the applied changes make every peer a voter.
func TestRawNodeBootstrapPeers(t *testing.T) {
	s := NewMemoryStorage()
	rn, err := NewRawNode(testConfig(1, s))
	require.NoError(t, err)
	require.NoError(t, rn.Bootstrap([]Peer{{ID: 1, Context: []byte("a")}, {ID: 2}, {ID: 3}}))
	rd := rn.Ready()
	require.Len(t, rd.CommittedEntries, 3)
	for i, e := range rd.CommittedEntries {
		cc, err := pb.UnmarshalConfChange(e)
		require.NoError(t, err)
		v1, ok := cc.AsV1()
		require.True(t, ok)
		require.Equal(t, pb.ConfChangeAddNode, v1.Type)
		require.Equal(t, uint64(i+1), v1.NodeID)
	}
	cc, _ := pb.UnmarshalConfChange(rd.CommittedEntries[0])
	v1, _ := cc.AsV1()
	require.Equal(t, []byte("a"), v1.Context)
	handle(t, rn, s, rd)
	require.Equal(t, []uint64{1, 2, 3}, rn.raft.conf.voterIDs())
}

// After a restart, Config.Applied says how far the application got; the
// node hands out only the committed entries after it.
func TestRawNodeRestartFromApplied(t *testing.T) {
	rn, s := newBootstrapped(t, 1, 1)
	handle(t, rn, s, rn.Ready())
	require.NoError(t, rn.Campaign())
	for rn.HasReady() {
		handle(t, rn, s, rn.Ready())
	}
	for i := 0; i < 8; i++ {
		require.NoError(t, rn.Propose([]byte{byte(i)}))
	}
	for rn.HasReady() {
		handle(t, rn, s, rn.Ready())
	}
	require.Equal(t, uint64(10), rn.BasicStatus().Commit)
	// The application snapshotted its state (and configuration) at 3.
	_, err := s.CreateSnapshot(3, &pb.ConfState{Voters: []uint64{1}}, nil)
	require.NoError(t, err)
	require.NoError(t, s.Compact(3))

	for _, tt := range []struct {
		applied   uint64
		wantFirst uint64
		wantErr   bool
	}{
		{applied: 0, wantFirst: 4}, // from the snapshot on
		{applied: 3, wantFirst: 4},
		{applied: 6, wantFirst: 7},
		{applied: 10},
		{applied: 11, wantErr: true}, // past the last index
		{applied: 2, wantErr: true},  // before the snapshot
	} {
		t.Run(fmt.Sprint(tt.applied), func(t *testing.T) {
			cfg := testConfig(1, s)
			cfg.Applied = tt.applied
			rn, err := NewRawNode(cfg)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			st := rn.BasicStatus()
			require.Equal(t, uint64(2), st.Term)
			require.Equal(t, uint64(1), st.Vote)
			require.Equal(t, StateFollower, st.RaftState, "a restarted node starts as follower")
			if tt.wantFirst == 0 {
				require.False(t, rn.HasReady())
				return
			}
			rd := rn.Ready()
			require.Equal(t, tt.wantFirst, rd.CommittedEntries[0].Index)
			require.Equal(t, uint64(10), rd.CommittedEntries[len(rd.CommittedEntries)-1].Index)
			require.Empty(t, rd.Entries, "nothing new to persist")
			require.True(t, IsEmptyHardState(rd.HardState), "the stored hard state is not handed back")
		})
	}
}

// As with etcd raft, Advance with no Ready outstanding (before the first
// Ready, or a second time for one Ready) does nothing.
func TestRawNodeAdvanceWithoutReadyIsHarmless(t *testing.T) {
	rn, s := newBootstrapped(t, 1, 1)
	before := rn.Status()
	hadReady := rn.HasReady()
	rn.Advance(Ready{})
	require.Equal(t, before, rn.Status())
	require.Equal(t, hadReady, rn.HasReady())

	rd := rn.Ready()
	require.NoError(t, s.Append(rd.Entries))
	require.NoError(t, s.SetHardState(rd.HardState))
	rn.Advance(rd)
	after := rn.Status()
	rn.Advance(rd)
	require.Equal(t, after, rn.Status(), "a second Advance for the same Ready changes nothing")
}

// Every malformed, inconsistent or misdirected message is refused with an
// error and leaves the node exactly as it was.
func TestRawNodeStepRefusesBadMessages(t *testing.T) {
	bigVoterSet := pb.ConfState{Voters: []uint64{1, 2}, Learners: []uint64{2}}
	for _, tt := range []struct {
		name string
		m    pb.Message
		want error
	}{
		{"unknown type", pb.Message{Type: 99, From: 2, To: 1, Term: 5}, ErrInvalidMessage},
		{"negative type", pb.Message{Type: -1, From: 2, To: 1, Term: 5}, ErrInvalidMessage},
		{"local hup", pb.Message{Type: pb.MsgHup, From: 2, To: 1}, ErrStepLocalMsg},
		{"local beat", pb.Message{Type: pb.MsgBeat, From: 2, To: 1}, ErrStepLocalMsg},
		{"local check quorum", pb.Message{Type: pb.MsgCheckQuorum, From: 2, To: 1}, ErrStepLocalMsg},
		{"local unreachable", pb.Message{Type: pb.MsgUnreachable, From: 2, To: 1}, ErrStepLocalMsg},
		{"local snap status", pb.Message{Type: pb.MsgSnapStatus, From: 2, To: 1}, ErrStepLocalMsg},
		{"local storage append", pb.Message{Type: pb.MsgStorageAppend, From: 2, To: 1}, ErrStepLocalMsg},
		{"local storage apply", pb.Message{Type: pb.MsgStorageApply, From: 2, To: 1}, ErrStepLocalMsg},
		{"forget leader with a term", pb.Message{Type: pb.MsgForgetLeader, From: 2, To: 1, Term: 5}, ErrInvalidMessage},
		{"no sender", pb.Message{Type: pb.MsgHeartbeat, To: 1, Term: 5}, ErrInvalidMessage},
		{"from itself", pb.Message{Type: pb.MsgHeartbeat, From: 1, To: 1, Term: 5}, ErrInvalidMessage},
		{"to another node", pb.Message{Type: pb.MsgHeartbeat, From: 2, To: 3, Term: 5}, ErrInvalidMessage},
		{"no term", pb.Message{Type: pb.MsgApp, From: 2, To: 1}, ErrInvalidMessage},
		{"local responses", pb.Message{Type: pb.MsgHeartbeat, From: 2, To: 1, Term: 5, Responses: []pb.Message{{}}}, ErrInvalidMessage},
		{"snapshot on heartbeat", pb.Message{Type: pb.MsgHeartbeat, From: 2, To: 1, Term: 5, Snapshot: snapAt(9, 5)}, ErrInvalidMessage},
		{"entries on vote", pb.Message{Type: pb.MsgVote, From: 2, To: 1, Term: 6, LogTerm: 2, Index: 3, Entries: entsFrom(4, 6)}, ErrInvalidMessage},
		{"vote log term above term", pb.Message{Type: pb.MsgVote, From: 2, To: 1, Term: 6, LogTerm: 7, Index: 3}, ErrInvalidMessage},
		{"pre-vote log term above term", pb.Message{Type: pb.MsgPreVote, From: 2, To: 1, Term: 6, LogTerm: 7, Index: 3}, ErrInvalidMessage},
		{"append log term above term", pb.Message{Type: pb.MsgApp, From: 2, To: 1, Term: 5, Index: 3, LogTerm: 6}, ErrInvalidMessage},
		{"append gap", pb.Message{Type: pb.MsgApp, From: 2, To: 1, Term: 5, Index: 3, LogTerm: 2, Entries: entsFrom(5, 5)}, ErrInvalidMessage},
		{"append not contiguous", pb.Message{Type: pb.MsgApp, From: 2, To: 1, Term: 5, Index: 3, LogTerm: 2,
			Entries: []pb.Entry{{Index: 4, Term: 5}, {Index: 6, Term: 5}}}, ErrInvalidMessage},
		{"append entry term above term", pb.Message{Type: pb.MsgApp, From: 2, To: 1, Term: 5, Index: 3, LogTerm: 2, Entries: entsFrom(4, 6)}, ErrInvalidMessage},
		{"append entry term below previous", pb.Message{Type: pb.MsgApp, From: 2, To: 1, Term: 5, Index: 3, LogTerm: 2, Entries: entsFrom(4, 1)}, ErrInvalidMessage},
		{"append terms decrease", pb.Message{Type: pb.MsgApp, From: 2, To: 1, Term: 5, Index: 3, LogTerm: 2, Entries: entsFrom(4, 4, 3)}, ErrInvalidMessage},
		{"append index overflow", pb.Message{Type: pb.MsgApp, From: 2, To: 1, Term: 5, Index: ^uint64(0), LogTerm: 2,
			Entries: []pb.Entry{{Index: 0, Term: 5}}}, ErrInvalidMessage},
		{"append unknown entry type", pb.Message{Type: pb.MsgApp, From: 2, To: 1, Term: 5, Index: 3, LogTerm: 2,
			Entries: []pb.Entry{{Index: 4, Term: 5, Type: 7}}}, ErrInvalidMessage},
		{"proposal without entries", pb.Message{Type: pb.MsgProp, From: 2, To: 1}, ErrInvalidMessage},
		{"proposal unknown entry type", pb.Message{Type: pb.MsgProp, From: 2, To: 1, Entries: []pb.Entry{{Type: 9}}}, ErrInvalidMessage},
		{"proposal with a term", pb.Message{Type: pb.MsgProp, From: 2, To: 1, Term: 9, Entries: []pb.Entry{{}}}, ErrInvalidMessage},
		{"read index with a term", pb.Message{Type: pb.MsgReadIndex, From: 2, To: 1, Term: 9, Entries: []pb.Entry{{}}}, ErrInvalidMessage},
		{"read index without entry", pb.Message{Type: pb.MsgReadIndex, From: 2, To: 1}, ErrInvalidMessage},
		{"snapshot missing", pb.Message{Type: pb.MsgSnap, From: 2, To: 1, Term: 5}, ErrInvalidMessage},
		{"snapshot empty", pb.Message{Type: pb.MsgSnap, From: 2, To: 1, Term: 5, Snapshot: &pb.Snapshot{}}, ErrInvalidMessage},
		{"snapshot term zero", pb.Message{Type: pb.MsgSnap, From: 2, To: 1, Term: 5, Snapshot: snapAt(9, 0)}, ErrInvalidMessage},
		{"snapshot term above term", pb.Message{Type: pb.MsgSnap, From: 2, To: 1, Term: 5, Snapshot: snapAt(9, 6)}, ErrInvalidMessage},
		{"snapshot without voters", pb.Message{Type: pb.MsgSnap, From: 2, To: 1, Term: 5, Snapshot: snapAt(9, 5)}, ErrInvalidMessage},
		{"snapshot with invalid config", pb.Message{Type: pb.MsgSnap, From: 2, To: 1, Term: 5,
			Snapshot: &pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 9, Term: 5, ConfState: bigVoterSet}}}, ErrInvalidMessage},
		{"response from unknown peer", pb.Message{Type: pb.MsgAppResp, From: 9, To: 1, Term: 5, Index: 3}, ErrStepPeerNotFound},
		{"vote response from unknown peer", pb.Message{Type: pb.MsgVoteResp, From: 9, To: 1, Term: 5}, ErrStepPeerNotFound},
		{"heartbeat response from unknown peer", pb.Message{Type: pb.MsgHeartbeatResp, From: 9, To: 1, Term: 5}, ErrStepPeerNotFound},
		{"heartbeat commit past log", pb.Message{Type: pb.MsgHeartbeat, From: 2, To: 1, Term: 5, Commit: 4}, ErrInvalidMessage},
		{"heartbeat commit past log, new term", pb.Message{Type: pb.MsgHeartbeat, From: 3, To: 1, Term: 9, Commit: 4}, ErrInvalidMessage},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := newTestNode(t, 1, []uint64{1, 2, 3}, withLog(5, 1, 1, 2))
			n.r().becomeFollower(5, 2)
			n.ready()
			before := nodeState(n)
			err := n.rn.Step(tt.m)
			require.ErrorIs(t, err, tt.want)
			require.Equal(t, before, nodeState(n), "a refused message changes nothing")
			require.False(t, n.rn.HasReady())
		})
	}
}

// stateSnapshot is what a refused message must leave unchanged.
type stateSnapshot struct {
	hs        pb.HardState
	ss        SoftState
	last      entryID
	committed uint64
	elapsed   int
}

func nodeState(n *testNode) stateSnapshot {
	r := n.r()
	return stateSnapshot{r.hardState(), r.softState(), r.raftLog.lastEntryID(), r.raftLog.committed, r.electionElapsed}
}

// ReportUnreachable makes the leader probe the peer again instead of
// streaming appends that are likely lost.
func TestRawNodeReportUnreachable(t *testing.T) {
	c := newTestCluster(t, 3)
	c.campaign(1)
	pr := c.nodes[1].r().trk.Progress[2]
	require.Equal(t, "StateReplicate", pr.State.String())
	c.nodes[1].rn.ReportUnreachable(2)
	require.Equal(t, "StateProbe", pr.State.String())
	// Unknown peers are ignored.
	c.nodes[1].rn.ReportUnreachable(9)
}

// A proposal forwarded by a follower whose leader changed can come back to
// the node that first proposed it; it must be taken, not refused.
func TestRawNodeStepTakesProposalForwardedBack(t *testing.T) {
	c := newTestCluster(t, 3)
	c.campaign(1)
	leader := c.nodes[1]
	before := leader.r().raftLog.lastIndex()
	require.NoError(t, leader.rn.Step(pb.Message{Type: pb.MsgProp, From: 1, To: 1, Entries: []pb.Entry{{Data: []byte("back")}}}))
	require.Equal(t, before+1, leader.r().raftLog.lastIndex())
}

// Some etcd raft applications batch proposals by stepping a MsgProp with
// To left at 0, and From set to themselves or left at 0 too; etcd raft
// takes it, so Step does (for MsgProp only), on the leader and on a
// follower, which forwards it.
func TestRawNodeStepTakesProposalWithoutRecipient(t *testing.T) {
	c := newTestCluster(t, 3)
	c.campaign(1)
	for _, tt := range []struct{ id, from uint64 }{{1, 1}, {2, 2}, {1, None}, {2, None}} {
		id := tt.id
		data := [][]byte{[]byte(fmt.Sprintf("a%d%d", id, tt.from)), []byte(fmt.Sprintf("b%d%d", id, tt.from))}
		require.NoError(t, c.nodes[id].rn.Step(pb.Message{Type: pb.MsgProp, From: tt.from,
			Entries: []pb.Entry{{Data: data[0]}, {Data: data[1]}}}), "node %x", id)
		c.stabilize()
		for _, n := range c.nodes {
			applied := n.applied[len(n.applied)-2:]
			require.Equal(t, data, [][]byte{applied[0].Data, applied[1].Data}, "node %x", n.r().id)
		}
	}
	// Any other message still has to name this node.
	err := c.nodes[2].rn.Step(pb.Message{Type: pb.MsgHeartbeat, From: 1, Term: c.nodes[1].r().Term})
	require.ErrorIs(t, err, ErrInvalidMessage)
}

// A state machine may have applied entries whose commit index the storage
// had not recorded yet (AsyncStorageWrites writes the commit index after
// the entries); on restart the node commits up to Config.Applied instead
// of refusing to start.
func TestRawNodeRestartAppliedPastStoredCommit(t *testing.T) {
	s := NewMemoryStorage()
	require.NoError(t, s.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 2, Term: 1, ConfState: pb.ConfState{Voters: []uint64{1}}}}))
	require.NoError(t, s.Append(entsFrom(3, 1, 1, 1)))
	require.NoError(t, s.SetHardState(pb.HardState{Term: 1, Commit: 3}))
	cfg := testConfig(1, s)
	cfg.Applied = 4
	rn, err := NewRawNode(cfg)
	require.NoError(t, err)
	require.Equal(t, uint64(4), rn.raft.raftLog.committed)
	require.Equal(t, uint64(4), rn.raft.raftLog.applied)
}

// A stored commit index below the snapshot's index is stale, not corrupt
// (the snapshot holds committed state); one past the last index is
// corrupt storage and refused.
func TestRawNodeRestartStoredCommitRange(t *testing.T) {
	s := NewMemoryStorage()
	require.NoError(t, s.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 5, Term: 1, ConfState: pb.ConfState{Voters: []uint64{1}}}}))
	require.NoError(t, s.Append(entsFrom(6, 1)))
	require.NoError(t, s.SetHardState(pb.HardState{Term: 1, Commit: 3}))
	rn, err := NewRawNode(testConfig(1, s))
	require.NoError(t, err)
	require.Equal(t, uint64(5), rn.raft.raftLog.committed)

	require.NoError(t, s.SetHardState(pb.HardState{Term: 1, Commit: 7}))
	_, err = NewRawNode(testConfig(1, s))
	require.ErrorContains(t, err, "storage is corrupt")
}

// TickQuiesced moves the election clock and does nothing else: a
// follower does not campaign however long it is quiesced, but once ticked
// normally it campaigns at once, the quiesced ticks having counted toward
// its election timeout. A leader sends no heartbeats while quiesced.
func TestRawNodeTickQuiesced(t *testing.T) {
	t.Run("follower", func(t *testing.T) {
		n := newTestNode(t, 2, []uint64{1, 2, 3})
		n.ready()
		term := n.r().Term
		for i := 0; i < 3*n.r().electionTimeout; i++ {
			n.rn.TickQuiesced()
		}
		require.False(t, n.rn.HasReady(), "nothing to do while quiesced")
		require.Equal(t, StateFollower, n.r().state)
		require.Equal(t, term, n.r().Term)

		n.rn.Tick()
		require.Equal(t, StateCandidate, n.r().state, "the quiesced ticks counted")
		require.Len(t, filterMsgs(n.ready(), pb.MsgVote, 0), 2)
	})
	t.Run("leader", func(t *testing.T) {
		c := newTestCluster(t, 3, withCheckQuorum, func(cfg *Config) { cfg.ReadOnlyOption = ReadOnlyLeaseBased })
		c.campaign(1)
		c.tickAll(1) // a heartbeat round starts the lease
		leader := c.nodes[1]
		require.True(t, leader.r().leaseValid())
		for i := 0; i < 3*leader.r().electionTimeout; i++ {
			leader.rn.TickQuiesced()
		}
		require.False(t, leader.rn.HasReady(), "no heartbeats while quiesced")
		require.Equal(t, StateLeader, leader.r().state, "no quorum check while quiesced")
		// The followers' election clocks may have run on: the lease must
		// not outlive them.
		require.False(t, leader.r().leaseValid(), "the lease expires with quiesced ticks")
	})
}

// As in etcd raft: Step takes MsgForgetLeader (a follower forgets its
// leader, as with ForgetLeader), refuses local message types with the bare
// ErrStepLocalMsg (code compares it with ==), and StartNode on a storage
// that already holds state starts from it instead of panicking.
func TestEtcdCompatibleStepAndStart(t *testing.T) {
	c := newTestCluster(t, 3)
	c.campaign(1)
	f := c.nodes[2]
	require.Equal(t, uint64(1), f.r().lead)
	require.NoError(t, f.rn.Step(pb.Message{Type: pb.MsgForgetLeader}))
	require.Equal(t, None, f.r().lead)
	require.False(t, IsLocalMsg(pb.MsgForgetLeader))
	err := f.rn.Step(pb.Message{Type: pb.MsgHup, From: 1, To: 2})
	require.True(t, err == ErrStepLocalMsg, "got %v", err)

	s := NewMemoryStorage()
	require.NoError(t, s.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 1, Term: 1,
		ConfState: pb.ConfState{Voters: []uint64{1}}}}))
	var n Node
	require.NotPanics(t, func() { n = StartNode(testConfig(1, s), []Peer{{ID: 1}}) })
	require.Equal(t, uint64(1), n.Status().Commit)
	n.Stop()
}
