package raft

import (
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/tracker"
)

// compactLeader proposes k entries through the cluster's leader 1 while
// node `away` is cut off, then snapshots and compacts the leader's storage
// at its applied index.
func compactLeader(t *testing.T, c *testCluster, away uint64, k int) uint64 {
	t.Helper()
	c.isolate(away)
	leader := c.nodes[1]
	for i := 0; i < k; i++ {
		require.NoError(t, leader.rn.Propose([]byte{byte(i)}))
	}
	c.stabilize()
	applied := leader.r().raftLog.applied
	cs := pb.ConfState{Voters: c.ids}
	_, err := leader.storage.CreateSnapshot(applied, &cs, []byte("state"))
	require.NoError(t, err)
	require.NoError(t, leader.storage.Compact(applied))
	return applied
}

// A follower cut off while the leader compacts past its log rejoins
// through a snapshot, then replicates normally.
func TestSnapshotCatchesUpLaggingFollower(t *testing.T) {
	c := newTestCluster(t, 3)
	c.campaign(1)
	snapIndex := compactLeader(t, c, 3, 20)
	c.heal()

	c.tickAll(1) // a heartbeat: node 3 answers, and the leader sends a snapshot
	require.Equal(t, 1, c.delivered[pb.MsgSnap])
	follower := c.nodes[3]
	snap, err := follower.storage.Snapshot()
	require.NoError(t, err)
	require.Equal(t, snapIndex, snap.Metadata.Index)
	require.Equal(t, []byte("state"), snap.Data)
	pr := c.nodes[1].r().trk.Progress[3]
	require.Equal(t, tracker.StateReplicate, pr.State, "the follower's ack ends the snapshot state")

	// Replication continues from the log.
	require.NoError(t, c.nodes[1].rn.Propose([]byte("after")))
	c.stabilize()
	require.Equal(t, c.nodes[1].r().raftLog.lastIndex(), follower.r().raftLog.lastIndex())
	require.Equal(t, c.nodes[1].r().raftLog.applied, follower.r().raftLog.applied)
	require.Equal(t, []byte("after"), follower.applied[len(follower.applied)-1].Data)
	require.Equal(t, 1, c.delivered[pb.MsgSnap], "one snapshot was enough")
}

// A snapshot that failed (ReportSnapshot with SnapshotFailure) is retried
// after the next heartbeat response.
func TestSnapshotFailureRetried(t *testing.T) {
	c := newTestCluster(t, 3)
	c.campaign(1)
	compactLeader(t, c, 3, 10)
	c.heal()
	c.intercept = func(m *pb.Message) bool { return m.Type != pb.MsgSnap } // the transport fails
	c.tickAll(1)
	leader := c.nodes[1]
	pr := leader.r().trk.Progress[3]
	require.Equal(t, tracker.StateSnapshot, pr.State)
	leader.rn.ReportSnapshot(3, SnapshotFailure)
	require.Equal(t, tracker.StateProbe, pr.State)
	require.Zero(t, pr.PendingSnapshot)
	require.True(t, pr.IsPaused(), "probing waits for the next heartbeat response")

	c.intercept = nil
	c.tickAll(1)
	require.Equal(t, tracker.StateReplicate, pr.State)
	require.Equal(t, leader.r().raftLog.lastIndex(), c.nodes[3].r().raftLog.lastIndex())
}

// A snapshot reported as delivered moves the follower to probing after
// it, and a lost MsgSnap that nobody reports is given up on after the
// snapshot timeout: no stall either way.
func TestSnapshotLostWithoutReportDoesNotStall(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) { cfg.SnapshotTimeout = 30 })
	c.campaign(1)
	compactLeader(t, c, 3, 10)
	c.heal()
	lost := 0
	c.intercept = func(m *pb.Message) bool {
		if m.Type == pb.MsgSnap && lost == 0 {
			lost++
			return false
		}
		return true
	}
	leader := c.nodes[1]
	pr := leader.r().trk.Progress[3]
	c.tickAll(1)
	require.Equal(t, tracker.StateSnapshot, pr.State)
	c.tickAll(28)
	require.Equal(t, tracker.StateSnapshot, pr.State, "waits for the snapshot timeout")
	require.Equal(t, 1, lost)
	c.tickAll(3)
	require.Equal(t, 2, c.delivered[pb.MsgSnap]+lost, "a second snapshot was sent")
	require.Equal(t, tracker.StateReplicate, pr.State)
	require.Equal(t, leader.r().raftLog.lastIndex(), c.nodes[3].r().raftLog.lastIndex())
}

// Without the timeout, the same loss would leave the follower behind
// forever: the leader sends nothing else to a peer in StateSnapshot.
func TestSnapshotStateSendsNothingElse(t *testing.T) {
	c := newTestCluster(t, 3)
	c.campaign(1)
	compactLeader(t, c, 3, 10)
	c.heal()
	c.intercept = func(m *pb.Message) bool { return m.Type != pb.MsgSnap }
	c.tickAll(1)
	leader := c.nodes[1]
	require.NoError(t, leader.rn.Propose([]byte("x")))
	msgs := leader.ready()
	require.Empty(t, filterMsgs(msgs, pb.MsgApp, 3), "no appends to a peer in StateSnapshot")
	require.NotEmpty(t, filterMsgs(msgs, pb.MsgApp, 2))
}

// While the application is still building a snapshot
// (ErrSnapshotTemporarilyUnavailable), the leader sends none and tries
// again later.
func TestSnapshotTemporarilyUnavailable(t *testing.T) {
	c := newTestCluster(t, 3)
	c.campaign(1)
	compactLeader(t, c, 3, 10)
	c.heal()
	leader := c.nodes[1]
	leader.storage.SetSnapshotUnavailableForTest(true)
	c.tickAll(3)
	require.Zero(t, c.delivered[pb.MsgSnap])
	pr := leader.r().trk.Progress[3]
	require.NotEqual(t, tracker.StateSnapshot, pr.State)

	leader.storage.SetSnapshotUnavailableForTest(false)
	c.tickAll(1)
	require.Equal(t, 1, c.delivered[pb.MsgSnap])
	require.Equal(t, leader.r().raftLog.lastIndex(), c.nodes[3].r().raftLog.lastIndex())
}

// A follower in StateSnapshot that catches up by other means (an
// acknowledgement past the compaction point) leaves it.
func TestSnapshotStateLeftOnAck(t *testing.T) {
	n := newTestNode(t, 1, []uint64{1, 2})
	n.makeLeader()
	for i := 0; i < 5; i++ {
		require.NoError(t, n.rn.Propose([]byte("x")))
	}
	n.ready()
	pr := n.r().trk.Progress[2]
	pr.BecomeSnapshot(3)
	n.step(pb.Message{From: 2, To: 1, Type: pb.MsgAppResp, Term: 1, Index: n.r().raftLog.lastIndex()})
	require.Equal(t, tracker.StateReplicate, pr.State)
	require.Zero(t, pr.PendingSnapshot)
}

// Compaction while a follower is probing or has appends in flight: the
// leader switches to a snapshot for it instead of failing.
func TestCompactionWithAppendsInFlight(t *testing.T) {
	for _, probing := range []bool{false, true} {
		c := newTestCluster(t, 3)
		c.campaign(1)
		leader := c.nodes[1]
		c.isolate(3) // appends to 3 are lost in flight
		for i := 0; i < 10; i++ {
			require.NoError(t, leader.rn.Propose([]byte{byte(i)}))
		}
		c.stabilize()
		pr := leader.r().trk.Progress[3]
		if probing {
			leader.rn.ReportUnreachable(3)
			require.Equal(t, tracker.StateProbe, pr.State)
		} else {
			require.Equal(t, tracker.StateReplicate, pr.State)
			require.Positive(t, pr.Inflights.Count())
		}
		applied := leader.r().raftLog.applied
		cs := pb.ConfState{Voters: c.ids}
		_, err := leader.storage.CreateSnapshot(applied, &cs, nil)
		require.NoError(t, err)
		require.NoError(t, leader.storage.Compact(applied))
		c.heal()
		c.tickAll(3)
		require.Equal(t, leader.r().raftLog.lastIndex(), c.nodes[3].r().raftLog.lastIndex(), "probing=%v", probing)
		require.Equal(t, tracker.StateReplicate, pr.State)
	}
}

// snapMsg is a MsgSnap from leader 1 at term 2 with a snapshot at index of
// term term and the given voters.
func snapMsg(index, term uint64, voters ...uint64) pb.Message {
	return pb.Message{From: 1, To: 2, Type: pb.MsgSnap, Term: 2, Snapshot: &pb.Snapshot{Metadata: pb.SnapshotMetadata{
		Index: index, Term: term, ConfState: pb.ConfState{Voters: voters},
	}}}
}

// A follower takes a snapshot only if it moves it forward; a stale or
// duplicate one changes nothing but is answered with the commit index.
func TestFollowerIgnoresStaleSnapshot(t *testing.T) {
	n := newTestNode(t, 2, []uint64{1, 2, 3}, withLog(2, 1, 1, 2, 2, 2))
	n.step(pb.Message{From: 1, To: 2, Type: pb.MsgApp, Term: 2, Index: 5, LogTerm: 2, Commit: 4})
	n.ready()
	require.Equal(t, uint64(4), n.r().raftLog.committed)
	before := nodeState(n)

	for _, index := range []uint64{3, 4} {
		require.NoError(t, n.rn.Step(snapMsg(index, 2, 1, 2, 3)))
		require.Equal(t, before, nodeState(n))
		require.False(t, n.r().raftLog.hasNextUnstableSnapshot())
		resp := filterMsgs(n.ready(), pb.MsgAppResp, 1)
		require.Len(t, resp, 1)
		require.Equal(t, uint64(4), resp[0].Index)
	}
}

// If the log already holds the snapshot's last entry, the follower only
// moves its commit index and keeps the log after it.
func TestFollowerSnapshotFastForwardsCommit(t *testing.T) {
	n := newTestNode(t, 2, []uint64{1, 2, 3}, withLog(2, 1, 1, 2, 2, 2))
	require.NoError(t, n.rn.Step(snapMsg(4, 2, 1, 2, 3)))
	require.Equal(t, uint64(4), n.r().raftLog.committed)
	require.Equal(t, []uint64{1, 1, 2, 2, 2}, n.logTerms(), "the log is kept")
	require.False(t, n.r().raftLog.hasNextUnstableSnapshot())
}

// Otherwise the follower restores the snapshot: it comes out in
// Ready.Snapshot (before the entries after it), the log restarts after
// it and the configuration is the snapshot's.
func TestFollowerRestoresSnapshot(t *testing.T) {
	n := newTestNode(t, 2, []uint64{1, 2, 3}, withLog(2, 1, 1))
	require.NoError(t, n.rn.Step(snapMsg(10, 2, 1, 2, 3, 4)))
	require.NoError(t, n.rn.Step(pb.Message{From: 1, To: 2, Type: pb.MsgApp, Term: 2, Index: 10, LogTerm: 2, Commit: 11, Entries: entsFrom(11, 2)}))
	rd := n.rn.Ready()
	require.Equal(t, uint64(10), rd.Snapshot.Metadata.Index)
	require.Equal(t, []pb.Entry{entsFrom(11, 2)[0]}, rd.Entries)
	require.Empty(t, rd.CommittedEntries, "entries after a snapshot are applied only once it is")
	require.NoError(t, n.storage.ApplySnapshot(rd.Snapshot))
	require.NoError(t, n.storage.Append(rd.Entries))
	n.rn.Advance(rd)
	require.Equal(t, uint64(10), n.r().raftLog.applied, "the snapshot counts as applied")
	rd = n.rn.Ready()
	require.Equal(t, []pb.Entry{entsFrom(11, 2)[0]}, rd.CommittedEntries, "then the entries after it")
	n.rn.Advance(rd)
	require.Equal(t, []uint64{1, 2, 3, 4}, n.r().conf.voterIDs())
	require.Equal(t, uint64(11), n.r().raftLog.applied)
	first, err := n.storage.FirstIndex()
	require.NoError(t, err)
	require.Equal(t, uint64(11), first)
}

// A snapshot whose configuration leaves this node out (it predates the
// node's addition, or follows its removal) is still installed: the node
// holds the committed state, does not campaign, and learns of its
// membership from later entries. Refusing it would make the leader resend
// it forever. One that makes the node a learner is installed too.
func TestFollowerSnapshotMembership(t *testing.T) {
	n := newTestNode(t, 2, []uint64{1, 2, 3})
	n.ready()
	require.NoError(t, n.rn.Step(snapMsg(10, 2, 1, 3, 4)))
	n.ready()
	require.Equal(t, uint64(10), n.r().raftLog.committed)
	require.Equal(t, []uint64{1, 3, 4}, n.r().conf.voterIDs())
	n.tick(5 * n.r().electionTimeout)
	require.Equal(t, StateFollower, n.r().state, "not a member: no campaign")
	require.Equal(t, uint64(2), n.r().Term)

	// The entry that adds it arrives after the snapshot.
	add, err := (&pb.ConfChange{Type: pb.ConfChangeAddNode, NodeID: 2}).Marshal()
	require.NoError(t, err)
	require.NoError(t, n.rn.Step(pb.Message{From: 1, To: 2, Type: pb.MsgApp, Term: 2, Index: 10, LogTerm: 2, Commit: 11,
		Entries: []pb.Entry{{Index: 11, Term: 2, Type: pb.EntryConfChange, Data: add}}}))
	n.ready()
	require.Equal(t, []uint64{1, 2, 3, 4}, n.r().conf.voterIDs())
	require.True(t, n.r().promotable())

	m := snapMsg(20, 2, 1, 3)
	m.Snapshot.Metadata.ConfState.Learners = []uint64{2}
	require.NoError(t, n.rn.Step(m))
	n.ready()
	require.True(t, n.r().isLearner())
	n.tick(5 * n.r().electionTimeout)
	require.Equal(t, StateFollower, n.r().state)
}

// A node restarts from a snapshot plus later entries in its storage,
// resuming application right after Config.Applied (or the snapshot),
// neither reapplying nor skipping entries.
func TestRestartFromSnapshotAndEntries(t *testing.T) {
	s := NewMemoryStorage()
	require.NoError(t, s.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{
		Index: 5, Term: 2, ConfState: pb.ConfState{Voters: []uint64{1, 2, 3}},
	}}))
	require.NoError(t, s.Append(entsFrom(6, 2, 2, 3, 3, 3)))
	require.NoError(t, s.SetHardState(pb.HardState{Term: 3, Vote: 2, Commit: 9}))
	for _, tt := range []struct {
		applied     uint64
		first, last uint64
	}{
		{applied: 0, first: 6, last: 9},
		{applied: 5, first: 6, last: 9},
		{applied: 7, first: 8, last: 9},
		{applied: 9},
	} {
		cfg := testConfig(1, s)
		cfg.Applied = tt.applied
		rn, err := NewRawNode(cfg)
		require.NoError(t, err)
		require.Equal(t, []uint64{1, 2, 3}, rn.raft.conf.voterIDs())
		require.Equal(t, uint64(10), rn.raft.raftLog.lastIndex())
		if tt.first == 0 {
			require.False(t, rn.HasReady(), "applied %d", tt.applied)
			continue
		}
		rd := rn.Ready()
		require.True(t, IsEmptySnap(rd.Snapshot), "the stored snapshot is not handed out again")
		require.Equal(t, tt.first, rd.CommittedEntries[0].Index, "applied %d", tt.applied)
		require.Equal(t, tt.last, rd.CommittedEntries[len(rd.CommittedEntries)-1].Index)
	}
}
