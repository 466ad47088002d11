package raft

import (
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
)

// A safe read on the leader is answered only after a quorum acknowledged a
// heartbeat carrying it, with an index covering every acknowledged write.
func TestReadIndexSafeOnLeader(t *testing.T) {
	c := newTestCluster(t, 3)
	c.campaign(1)
	leader := c.nodes[1]
	c.load(1, 5, "w")
	written := leader.r().raftLog.committed

	leader.rn.ReadIndex([]byte("r1"))
	rd := leader.rn.Ready()
	require.Empty(t, rd.ReadStates, "not before a heartbeat round")
	hbs := filterMsgs(rd.Messages, pb.MsgHeartbeat, 0)
	require.Len(t, hbs, 2)
	require.Equal(t, []byte("r1"), hbs[0].Context)
	leader.rn.Advance(rd)
	// One acknowledgement plus the leader's own make a quorum.
	require.NoError(t, leader.rn.Step(pb.Message{From: 2, To: 1, Type: pb.MsgHeartbeatResp, Term: 1, Context: []byte("r1")}))
	rd = leader.rn.Ready()
	require.Equal(t, []ReadState{{Index: written, RequestCtx: []byte("r1")}}, rd.ReadStates)
	leader.rn.Advance(rd)
}

// A read on a follower goes to the leader and comes back with the leader's
// commit index.
func TestReadIndexOnFollower(t *testing.T) {
	c := newTestCluster(t, 3)
	c.campaign(1)
	c.load(1, 5, "w")
	c.nodes[2].rn.ReadIndex([]byte("f1"))
	c.stabilize()
	require.Equal(t, []ReadState{{Index: c.nodes[1].r().raftLog.committed, RequestCtx: []byte("f1")}}, c.nodes[2].reads)
	require.Empty(t, c.nodes[1].reads, "the answer goes to the follower that asked")
	require.Equal(t, 1, c.delivered[pb.MsgReadIndex])
	require.Equal(t, 1, c.delivered[pb.MsgReadIndexResp])
}

// A leader cut off from the others never answers a safe read, even while
// it still believes it leads: a new leader may have committed writes.
func TestReadIndexDeposedLeader(t *testing.T) {
	c := newTestCluster(t, 3)
	c.campaign(1)
	c.isolate(1)
	c.campaign(2)
	c.load(2, 3, "new")
	old := c.nodes[1]
	require.Equal(t, StateLeader, old.r().state)
	old.rn.ReadIndex([]byte("stale?"))
	c.tickAll(30)
	require.Empty(t, old.reads)
}

// With ReadOnlyLeaseBased the leader answers from its commit index at once,
// without a heartbeat round, while its lease holds: a quorum acknowledged
// a heartbeat it sent less than an election timeout ago.
func TestReadIndexLeaseBased(t *testing.T) {
	c := newTestCluster(t, 3, withCheckQuorum, func(cfg *Config) { cfg.ReadOnlyOption = ReadOnlyLeaseBased })
	c.campaign(1)
	leader := c.nodes[1]
	c.tickAll(1) // a heartbeat round starts the lease
	require.True(t, leader.r().leaseValid())
	leader.rn.ReadIndex([]byte("lease"))
	rd := leader.rn.Ready()
	require.Equal(t, []ReadState{{Index: leader.r().raftLog.committed, RequestCtx: []byte("lease")}}, rd.ReadStates)
	require.Empty(t, filterMsgs(rd.Messages, pb.MsgHeartbeat, 0), "no round needed")
	leader.rn.Advance(rd)

	// Cut off, the leader's lease runs out within an election timeout,
	// before the others may elect anyone; reads then need a round, which
	// cannot succeed.
	c.isolate(1)
	c.tickAll(leader.r().electionTimeout)
	require.False(t, leader.r().leaseValid())
	leader.reads = nil
	leader.rn.ReadIndex([]byte("expired"))
	c.tickAll(3)
	require.Empty(t, leader.reads)
}

// A leader does not read from its lease while handing leadership over:
// the transferee's campaign ignores the followers' leases.
func TestReadIndexLeaseNotDuringTransfer(t *testing.T) {
	c := newTestCluster(t, 3, withCheckQuorum, func(cfg *Config) { cfg.ReadOnlyOption = ReadOnlyLeaseBased })
	c.campaign(1)
	c.tickAll(1)
	leader := c.nodes[1]
	require.True(t, leader.r().leaseValid())
	c.intercept = func(m *pb.Message) bool { return m.Type != pb.MsgTimeoutNow }
	leader.rn.TransferLeader(2)
	require.False(t, leader.r().leaseValid())
}

// A node restarting with lease-based reads honours a lease that may be
// running: it refuses votes for its first election timeout.
func TestStartupLease(t *testing.T) {
	s := NewMemoryStorage()
	require.NoError(t, s.Append(entsFrom(1, 1, 2)))
	require.NoError(t, s.SetHardState(pb.HardState{Term: 2, Commit: 2}))
	for _, lease := range []bool{false, true} {
		cfg := testConfig(1, s)
		cfg.CheckQuorum = true
		if lease {
			cfg.ReadOnlyOption = ReadOnlyLeaseBased
		}
		rn, err := NewRawNode(cfg)
		require.NoError(t, err)
		require.NoError(t, rn.raft.restoreConfState(pb.ConfState{Voters: []uint64{1, 2, 3}}))
		require.NoError(t, rn.Step(pb.Message{From: 2, To: 1, Type: pb.MsgVote, Term: 3, LogTerm: 2, Index: 2}))
		if lease {
			require.Equal(t, uint64(2), rn.raft.Term, "vote ignored during the startup lease")
			for i := 0; i < cfg.ElectionTick; i++ {
				rn.Tick()
			}
			require.NoError(t, rn.Step(pb.Message{From: 2, To: 1, Type: pb.MsgVote, Term: 3, LogTerm: 2, Index: 2}))
		}
		require.Equal(t, uint64(3), rn.raft.Term)
		require.Equal(t, uint64(2), rn.raft.Vote)
	}
}

// A new leader holds reads until an entry of its term commits: before
// that, its commit index may lag what the previous leader acknowledged.
func TestReadIndexWaitsForCommitInTerm(t *testing.T) {
	c := newTestCluster(t, 3)
	c.campaign(1)
	c.load(1, 3, "w")
	n := c.nodes[2]
	// Win the election but hold back the appends of the empty entry.
	c.intercept = func(m *pb.Message) bool { return m.Type != pb.MsgApp }
	c.campaign(2)
	require.Equal(t, StateLeader, n.r().state)
	require.False(t, n.r().committedEntryInCurrentTerm())
	t.Logf("state %s term %d start %d committed %d last %d", n.r().state, n.r().Term, n.r().termStart, n.r().raftLog.committed, n.r().raftLog.lastIndex())
	n.rn.ReadIndex([]byte("early"))
	c.stabilize()
	require.Empty(t, n.reads, "held until an entry of the term commits")

	c.intercept = nil
	c.tickAll(2)
	require.True(t, n.r().committedEntryInCurrentTerm())
	require.Len(t, n.reads, 1)
	require.Equal(t, []byte("early"), n.reads[0].RequestCtx)
	require.GreaterOrEqual(t, n.reads[0].Index, n.r().raftLog.lastIndex(), "covers the new term's entry")
}

// Concurrent reads are answered in the order they were made, with
// non-decreasing indexes.
func TestReadIndexConcurrentInOrder(t *testing.T) {
	c := newTestCluster(t, 3)
	c.campaign(1)
	leader := c.nodes[1]
	c.intercept = func(m *pb.Message) bool { return m.Type != pb.MsgHeartbeatResp }
	for _, ctx := range []string{"a", "b", "c"} {
		leader.rn.ReadIndex([]byte(ctx))
		require.NoError(t, leader.rn.Propose([]byte("w-"+ctx)))
		c.stabilize()
	}
	c.intercept = nil
	c.tickAll(1) // a heartbeat carrying the latest read confirms all three
	got := leader.reads
	require.Len(t, got, 3)
	for i, ctx := range []string{"a", "b", "c"} {
		require.Equal(t, []byte(ctx), got[i].RequestCtx)
		if i > 0 {
			require.GreaterOrEqual(t, got[i].Index, got[i-1].Index)
		}
	}
}

// A single voter whose term's entry has committed answers at once; a
// follower without a leader drops the request (the application retries).
func TestReadIndexSingleVoterAndNoLeader(t *testing.T) {
	n := newTestNode(t, 1, []uint64{1})
	require.NoError(t, n.rn.Campaign())
	n.ready()
	n.rn.ReadIndex([]byte("solo"))
	rd := n.rn.Ready()
	require.Equal(t, []ReadState{{Index: n.r().raftLog.committed, RequestCtx: []byte("solo")}}, rd.ReadStates)
	n.rn.Advance(rd)

	f := newTestNode(t, 2, []uint64{1, 2, 3})
	f.rn.ReadIndex([]byte("nobody"))
	require.False(t, f.rn.HasReady(), "dropped: nothing to send, nothing to answer")
}

// A single voter's read asked right after its election waits for its
// term's entry to commit, and no longer: it is answered in the Ready after
// the one that persists that entry.
func TestReadIndexSingleVoterWaitsOnlyForItsTermEntry(t *testing.T) {
	n := newTestNode(t, 1, []uint64{1})
	require.NoError(t, n.rn.Campaign())
	persist := func() Ready {
		rd := n.rn.Ready()
		require.NoError(t, n.storage.Save(rd.HardState, rd.Entries, rd.Snapshot))
		n.rn.Advance(rd)
		return rd
	}
	for n.r().state != StateLeader {
		persist() // its vote
	}
	start := n.r().termStart
	require.Less(t, n.r().raftLog.committed, start)
	n.rn.ReadIndex([]byte("early"))
	rd := persist()
	require.Empty(t, rd.ReadStates, "not before the term's entry commits")
	require.Equal(t, start, n.r().raftLog.committed, "durable, so committed")
	rd = persist()
	require.Equal(t, []ReadState{{Index: start, RequestCtx: []byte("early")}}, rd.ReadStates)
}

// A retried read with the same context is answered with the commit index
// at the retry, never with the index of the earlier attempt: writes
// acknowledged in between must be visible.
func TestReadIndexRetryNeverStale(t *testing.T) {
	c := newTestCluster(t, 3)
	c.campaign(1)
	leader := c.nodes[1]
	c.intercept = func(m *pb.Message) bool { return m.Type != pb.MsgHeartbeatResp }
	leader.rn.ReadIndex([]byte("r"))
	c.stabilize()
	first := leader.r().readOnly.pending["r"].index
	c.load(1, 5, "w")
	written := leader.r().raftLog.committed
	require.Greater(t, written, first)

	c.intercept = nil
	leader.rn.ReadIndex([]byte("r"))
	c.stabilize()
	require.Len(t, leader.reads, 1)
	require.Equal(t, written, leader.reads[0].Index)
}

// A leader whose removal was applied (no StepDownOnRemoval) is not the
// voter its single-voter configuration names: the remaining voter elects
// itself and commits past it. Its reads must not come from its own commit
// index; it drops them (and sends no heartbeats to confirm any).
func TestRemovedLeaderServesNoReads(t *testing.T) {
	for _, lease := range []bool{false, true} {
		t.Run(map[bool]string{false: "safe", true: "lease"}[lease], func(t *testing.T) {
			c := newBootstrappedCluster(t, 2, withCheckQuorum, func(cfg *Config) {
				if lease {
					cfg.ReadOnlyOption = ReadOnlyLeaseBased
				}
			})
			c.campaign(1)
			c.proposeCC(1, v1(pb.ConfChangeRemoveNode, 1))
			old, next := c.nodes[1], c.nodes[2]
			require.True(t, old.r().trk.IsSingleton())
			for next.r().state != StateLeader {
				c.tickAll(1)
			}
			require.NoError(t, next.rn.Propose([]byte("w")))
			c.stabilize()
			written := next.r().raftLog.committed
			require.Equal(t, StateLeader, old.r().state, "the old leader has not heard of the new one")

			old.rn.ReadIndex([]byte("r"))
			c.stabilize()
			for _, rs := range old.reads {
				require.GreaterOrEqual(t, rs.Index, written, "a read answered below a committed write")
			}
			require.Empty(t, old.reads)
		})
	}
}

// Heartbeats acknowledged while a transfer was under way build no lease
// once it is abandoned: the transferee, with its timeout-now, may have won
// votes that ignore leases and committed writes the old leader never saw.
func TestLeaseNotFromTransferAcks(t *testing.T) {
	c := newTestCluster(t, 3, withCheckQuorum, func(cfg *Config) { cfg.ReadOnlyOption = ReadOnlyLeaseBased })
	c.campaign(1)
	c.tickAll(2)
	old := c.nodes[1]
	// The transfer starts, but its timeout-now is held back while
	// heartbeats are acknowledged.
	c.intercept = func(m *pb.Message) bool { return m.Type != pb.MsgTimeoutNow }
	old.rn.TransferLeader(2)
	c.stabilize()
	c.tickAll(5)
	c.intercept = nil
	// Then the timeout-now gets through, and the old leader is cut off.
	old.r().sendTimeoutNow(2)
	msgs := old.ready()
	c.isolate(1)
	for _, m := range msgs {
		if m.Type == pb.MsgTimeoutNow {
			require.NoError(t, c.nodes[2].rn.Step(m))
		}
	}
	c.stabilize()
	require.Equal(t, StateLeader, c.nodes[2].r().state)
	require.NoError(t, c.nodes[2].rn.Propose([]byte("w")))
	c.stabilize()
	written := c.nodes[2].r().raftLog.committed
	// The old leader abandons the transfer at its timeout, still leading.
	for old.r().transferee() != None {
		old.tick(1)
		old.ready()
	}
	require.Equal(t, StateLeader, old.r().state)
	require.False(t, old.r().leaseValid())
	old.rn.ReadIndex([]byte("r"))
	old.ready()
	for _, rs := range old.reads {
		require.GreaterOrEqual(t, rs.Index, written, "a read answered below a committed write")
	}
}

// An acknowledgement arriving after the transfer was abandoned, of a
// heartbeat sent before, builds no lease either.
func TestLeaseNotFromLateTransferAcks(t *testing.T) {
	c := newTestCluster(t, 3, withCheckQuorum, func(cfg *Config) { cfg.ReadOnlyOption = ReadOnlyLeaseBased })
	c.campaign(1)
	c.tickAll(2)
	old := c.nodes[1]
	c.intercept = func(m *pb.Message) bool { return m.Type != pb.MsgTimeoutNow }
	old.rn.TransferLeader(2)
	c.stabilize()
	c.isolate(1)
	var sentDuring uint64
	for old.r().transferee() != None {
		sentDuring = old.r().ticks
		old.tick(1)
		old.ready()
	}
	for _, id := range []uint64{2, 3} {
		require.NoError(t, old.rn.Step(pb.Message{Type: pb.MsgHeartbeatResp, From: id, To: 1, Term: old.r().Term,
			Context: leaseCtx(sentDuring)}))
	}
	require.Equal(t, StateLeader, old.r().state)
	require.False(t, old.r().leaseValid())
	require.Empty(t, old.r().leaseAcks, "acknowledgements kept in a term without lease")
}

// Reads waiting for a heartbeat round when the leader's own removal
// applies are dropped with it: a leader that is not a voter sends no
// heartbeats to confirm them.
func TestRemovedLeaderDropsPendingReads(t *testing.T) {
	c := newBootstrappedCluster(t, 3)
	c.campaign(1)
	leader := c.nodes[1]
	c.intercept = func(m *pb.Message) bool { return m.Type != pb.MsgHeartbeatResp }
	leader.rn.ReadIndex([]byte("r"))
	c.stabilize()
	require.Len(t, leader.r().readOnly.queue, 1)
	c.proposeCC(1, v1(pb.ConfChangeRemoveNode, 1))
	require.Equal(t, StateLeader, leader.r().state)
	require.Empty(t, leader.r().readOnly.queue)
	require.Empty(t, leader.reads)
}

// A read request whose context has the form of a lease heartbeat's is
// dropped, and an acknowledgement naming a tick still to come builds no
// lease: otherwise the leader's heartbeats would carry the read's context
// and their acknowledgements would extend its lease to any tick the
// request chose, and a deposed leader would answer reads from it.
func TestLeaseNotFromForgedContexts(t *testing.T) {
	c := newTestCluster(t, 3, withCheckQuorum, func(cfg *Config) { cfg.ReadOnlyOption = ReadOnlyLeaseBased })
	c.campaign(1)
	leader := c.nodes[1]
	future := leader.r().ticks + 1<<40
	require.NoError(t, leader.rn.Step(pb.Message{Type: pb.MsgReadIndex, From: 2, To: 1,
		Entries: []pb.Entry{{Data: leaseCtx(future)}}}))
	leader.rn.ReadIndex(leaseCtx(future))
	c.stabilize()
	require.Empty(t, leader.reads)
	require.NoError(t, leader.rn.Step(pb.Message{Type: pb.MsgHeartbeatResp, From: 3, To: 1, Term: leader.r().Term,
		Context: leaseCtx(future)}))
	for id, tick := range leader.r().leaseAcks {
		require.LessOrEqual(t, tick, leader.r().ticks, "lease acknowledgement of %x", id)
	}
	// Cut off, the leader's lease runs out within an election timeout.
	c.isolate(1)
	for range leader.r().electionTimeout {
		leader.tick(1)
		leader.ready()
	}
	require.False(t, leader.r().leaseValid())
}

// A read held until the leader commits an entry of its term is released
// when that commit comes from applying a conf change that shrinks the
// quorum, not only from an acknowledgement: on an idle cluster no later
// commit would come.
func TestReadIndexReleasedWhenConfChangeCommits(t *testing.T) {
	cc := v1(pb.ConfChangeRemoveNode, 4)
	removal, err := cc.Marshal()
	require.NoError(t, err)
	n := newTestNode(t, 1, []uint64{1, 2, 3, 4}, func(c *Config) {
		s := c.Storage.(*MemoryStorage)
		ents := []pb.Entry{{Index: 1, Term: 1}, {Index: 2, Term: 1, Type: pb.EntryConfChange, Data: removal}}
		require.NoError(t, s.Append(ents))
		require.NoError(t, s.SetHardState(pb.HardState{Term: 1, Commit: 2}))
		c.MaxCommittedSizePerReady = 1 // one committed entry per Ready
	})
	r := n.r()
	r.becomeCandidate()
	r.becomeLeader() // its empty entry at index 3
	// The first Ready: the leader's entry written, entry 1 applied.
	rd := n.rn.Ready()
	require.Len(t, rd.CommittedEntries, 1)
	require.NoError(t, n.storage.Save(rd.HardState, rd.Entries, rd.Snapshot))
	n.rn.Advance(rd)
	n.step(pb.Message{Type: pb.MsgAppResp, From: 2, To: 1, Term: r.Term, Index: 3})
	require.Equal(t, uint64(3), r.trk.Progress[1].Match)
	require.Equal(t, uint64(2), r.raftLog.committed, "two of four voters: nothing of the term commits")
	n.rn.ReadIndex([]byte("rd"))
	require.Len(t, r.pendingReadIndexMessages, 1, "held until an entry of the term commits")

	// Applying the removal of 4 leaves {1, 2, 3}, of which 1 and 2 hold
	// index 3: it commits, and the read goes on to its heartbeat round.
	msgs := n.ready()
	require.Equal(t, pb.ConfState{Voters: []uint64{1, 2, 3}}, r.confState())
	require.Equal(t, uint64(3), r.raftLog.committed)
	var beats []pb.Message
	for _, m := range filterMsgs(msgs, pb.MsgHeartbeat, 0) {
		if string(m.Context) == "rd" {
			beats = append(beats, m)
		}
	}
	require.Len(t, beats, 2, "a heartbeat round for the read, to 2 and 3")
	n.step(pb.Message{Type: pb.MsgHeartbeatResp, From: 2, To: 1, Term: r.Term, Context: []byte("rd")})
	n.ready()
	require.Len(t, n.reads, 1)
	require.Equal(t, uint64(3), n.reads[0].Index)
}
