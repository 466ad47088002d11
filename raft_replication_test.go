package raft

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/tracker"
)

// Raft §5.4.2: a new leader appends an empty entry of its own term, and
// sends it to every follower, so that committing it commits everything
// before it.
func TestLeaderAppendsEmptyEntryOnElection(t *testing.T) {
	n := newTestNode(t, 1, []uint64{1, 2, 3}, withLog(2, 1, 2))
	msgs := n.makeLeader()
	last := n.r().raftLog.lastEntryID()
	require.Equal(t, entryID{term: 3, index: 3}, last)
	ents := n.r().raftLog.allEntries()
	require.Empty(t, ents[2].Data)
	require.Equal(t, pb.EntryNormal, ents[2].Type)

	apps := filterMsgs(msgs, pb.MsgApp, 0)
	require.Len(t, apps, 2, "one append per follower")
	for _, m := range apps {
		require.Equal(t, uint64(2), m.Index, "probe starts after the leader's old last entry")
		require.Equal(t, uint64(2), m.LogTerm)
		require.Equal(t, []pb.Entry{{Term: 3, Index: 3}}, m.Entries)
	}
}

// Raft §5.3: the leader appends a proposal to its log, hands it out for
// persisting, and sends it to followers with the index and term of the
// entry before it and its commit index.
func TestLeaderReplicatesProposal(t *testing.T) {
	c := newTestCluster(t, 3)
	c.campaign(1)
	leader := c.nodes[1]
	last := leader.r().raftLog.lastIndex()
	commit := leader.r().raftLog.committed

	require.NoError(t, leader.rn.Propose([]byte("x")))
	rd := leader.rn.Ready()
	want := pb.Entry{Term: leader.r().Term, Index: last + 1, Data: []byte("x")}
	require.Equal(t, []pb.Entry{want}, rd.Entries, "the proposal is persisted by the leader")
	require.Empty(t, rd.CommittedEntries, "nothing commits before a quorum acknowledges")
	apps := filterMsgs(rd.Messages, pb.MsgApp, 0)
	require.Len(t, apps, 2)
	for _, m := range apps {
		require.Equal(t, last, m.Index)
		require.Equal(t, leader.r().Term, m.LogTerm)
		require.Equal(t, commit, m.Commit)
		require.Equal(t, []pb.Entry{want}, m.Entries)
	}
	require.NoError(t, leader.storage.Append(rd.Entries))
	leader.rn.Advance(rd)
}

// Raft §5.3: an entry is committed once the leader has it replicated on a
// majority of voters (counting itself), and not before.
func TestLeaderCommitRequiresQuorum(t *testing.T) {
	for _, tt := range []struct {
		voters int
		acks   int
		commit bool
	}{
		{1, 0, true},
		{2, 0, false}, {2, 1, true},
		{3, 0, false}, {3, 1, true}, {3, 2, true},
		{4, 1, false}, {4, 2, true},
		{5, 1, false}, {5, 2, true}, {5, 4, true},
	} {
		var voters []uint64
		for i := 1; i <= tt.voters; i++ {
			voters = append(voters, uint64(i))
		}
		n := newTestNode(t, 1, voters)
		n.makeLeader()
		last := n.r().raftLog.lastIndex()
		for i := 0; i < tt.acks; i++ {
			n.step(pb.Message{From: uint64(i + 2), To: 1, Type: pb.MsgAppResp, Term: n.r().Term, Index: last})
		}
		if tt.commit {
			require.Equal(t, last, n.r().raftLog.committed, "%d voters, %d acks", tt.voters, tt.acks)
		} else {
			require.Zero(t, n.r().raftLog.committed, "%d voters, %d acks", tt.voters, tt.acks)
		}
	}
}

// Raft §5.4.2 and Figure 8: a leader never commits an entry of an earlier
// term by counting replicas, even a majority; it becomes committed only
// when an entry of the current term after it is.
func TestLeaderNeverCommitsOldTermByCounting(t *testing.T) {
	n := newTestNode(t, 1, []uint64{1, 2, 3, 4, 5}, withLog(3, 1, 2))
	n.makeLeader() // term 4, empty entry at index 3
	require.Equal(t, uint64(4), n.r().Term)

	// A majority (1, 2, 3) holds index 2, of term 2.
	n.step(pb.Message{From: 2, To: 1, Type: pb.MsgAppResp, Term: 4, Index: 2})
	n.step(pb.Message{From: 3, To: 1, Type: pb.MsgAppResp, Term: 4, Index: 2})
	require.Zero(t, n.r().raftLog.committed, "an old-term entry is not committed by counting")

	// Once a majority holds the term-4 entry, everything up to it commits.
	n.step(pb.Message{From: 2, To: 1, Type: pb.MsgAppResp, Term: 4, Index: 3})
	require.Zero(t, n.r().raftLog.committed)
	n.step(pb.Message{From: 3, To: 1, Type: pb.MsgAppResp, Term: 4, Index: 3})
	require.Equal(t, uint64(3), n.r().raftLog.committed)
}

// Figure 8 end to end: the old-term entry a leader replicated to a majority
// without committing is later overwritten by a leader that never had it,
// and no node ever applies it.
func TestFigure8OldTermEntryOverwritten(t *testing.T) {
	voters := []uint64{1, 2, 3, 4, 5}
	oneEntryPerMsg := func(c *Config) { c.MaxSizePerMsg = 1 }
	// (a)/(b) of the figure, as logs: 1 led term 2 and got index 2 to 2
	// only; 5 led term 3 and wrote its own index 2.
	c := newTestClusterOf(t,
		newTestNode(t, 1, voters, withLog(3, 1, 2), oneEntryPerMsg),
		newTestNode(t, 2, voters, withLog(2, 1, 2)),
		newTestNode(t, 3, voters, withLog(2, 1)),
		newTestNode(t, 4, voters, withLog(2, 1)),
		newTestNode(t, 5, voters, withLog(4, 1, 3)),
	)
	for _, id := range c.ids {
		c.nodes[id].r().raftLog.committed = 1
		c.nodes[id].ready()
	}
	// (c) 1 is elected in term 4 by 2 and 3 while 4 and 5 are out of
	// reach, and gets index 2 onto 3: a majority holds it. Its own term-4
	// entry reaches no one.
	c.isolate(5)
	c.cut[[2]uint64{1, 4}] = true
	c.cut[[2]uint64{4, 1}] = true
	c.intercept = func(m *pb.Message) bool {
		for i, e := range m.Entries {
			if e.Term == 4 {
				m.Entries = m.Entries[:i]
				break
			}
		}
		return true
	}
	c.campaign(1)
	require.Equal(t, StateLeader, c.nodes[1].r().state)
	require.Equal(t, uint64(4), c.nodes[1].r().Term)
	for _, id := range []uint64{1, 2, 3} {
		n := c.nodes[id]
		require.Equal(t, uint64(2), n.r().raftLog.zeroTermOnOutOfBounds(n.r().raftLog.term(2)), "node %d holds index 2 of term 2", id)
		require.Equal(t, uint64(1), n.r().raftLog.committed, "node %d must not commit index 2", id)
	}

	// (d) 1 fails; 5 (last term 3) is elected by 2, 3 and 4 and overwrites
	// index 2 everywhere. Had 1 committed index 2, this would lose it.
	c.intercept = nil
	c.heal()
	c.isolate(1)
	c.campaign(5)
	require.Equal(t, StateLeader, c.nodes[5].r().state)
	for _, id := range []uint64{2, 3, 4, 5} {
		n := c.nodes[id]
		require.Equal(t, uint64(3), n.r().raftLog.zeroTermOnOutOfBounds(n.r().raftLog.term(2)), "node %d", id)
		require.Equal(t, uint64(3), n.r().raftLog.committed, "node %d", id)
	}
	for _, id := range c.ids {
		for _, e := range c.nodes[id].applied {
			require.False(t, e.Index == 2 && e.Term == 2, "node %d applied the overwritten entry", id)
		}
	}
}

// Raft §5.3: a follower accepts an append only if its log holds the entry
// before the new ones (same index and term); otherwise it refuses, with a
// hint the leader can use to skip back.
func TestFollowerConsistencyCheck(t *testing.T) {
	for _, tt := range []struct {
		name          string
		index, term   uint64
		reject        bool
		hint, hintTrm uint64
	}{
		{name: "matches last", index: 3, term: 2},
		{name: "matches earlier", index: 1, term: 1},
		{name: "matches empty log start", index: 0, term: 0},
		{name: "term differs", index: 3, term: 3, reject: true, hint: 3, hintTrm: 2},
		{name: "term differs earlier", index: 2, term: 2, reject: true, hint: 2, hintTrm: 1},
		{name: "past the end", index: 5, term: 2, reject: true, hint: 3, hintTrm: 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := newTestNode(t, 2, []uint64{1, 2, 3}, withLog(3, 1, 1, 2))
			n.step(pb.Message{From: 1, To: 2, Type: pb.MsgApp, Term: 3, Index: tt.index, LogTerm: tt.term,
				Entries: []pb.Entry{{Index: tt.index + 1, Term: 3, Data: []byte("new")}}})
			resp := filterMsgs(n.ready(), pb.MsgAppResp, 1)
			require.Len(t, resp, 1)
			require.Equal(t, tt.reject, resp[0].Reject)
			if tt.reject {
				require.Equal(t, tt.index, resp[0].Index)
				require.Equal(t, tt.hint, resp[0].RejectHint)
				require.Equal(t, tt.hintTrm, resp[0].LogTerm)
				require.Equal(t, []uint64{1, 1, 2}, n.logTerms(), "a refused append changes nothing")
			} else {
				require.Equal(t, tt.index+1, resp[0].Index)
				require.Equal(t, tt.index+1, n.r().raftLog.lastIndex())
				require.Equal(t, uint64(3), n.r().raftLog.lastEntryID().term)
			}
		})
	}
}

// Raft §5.3: entries that conflict with the leader's (same index, other
// term) are deleted with everything after them; entries that agree are
// kept, even when a stale append carries only a prefix of them.
func TestFollowerTruncatesConflictingSuffix(t *testing.T) {
	n := newTestNode(t, 2, []uint64{1, 2, 3}, withLog(3, 1, 1, 2, 2))
	// A stale, shorter append that agrees: nothing is lost.
	n.step(pb.Message{From: 1, To: 2, Type: pb.MsgApp, Term: 3, Index: 1, LogTerm: 1, Entries: entsFrom(2, 1)})
	n.ready()
	require.Equal(t, []uint64{1, 1, 2, 2}, n.logTerms())

	// A conflict at index 3: 3 and 4 go, the leader's entry takes 3.
	n.step(pb.Message{From: 1, To: 2, Type: pb.MsgApp, Term: 3, Index: 2, LogTerm: 1, Entries: entsFrom(3, 3)})
	n.ready()
	require.Equal(t, []uint64{1, 1, 3}, n.logTerms())
	// The storage agrees after the Ready was handled.
	last, err := n.storage.LastIndex()
	require.NoError(t, err)
	require.Equal(t, uint64(3), last)
}

// A committed entry is never truncated: an append from before the
// follower's commit index is answered with the commit index and changes
// nothing.
func TestFollowerNeverTruncatesCommitted(t *testing.T) {
	n := newTestNode(t, 2, []uint64{1, 2, 3}, withLog(3, 1, 1, 2))
	n.step(pb.Message{From: 1, To: 2, Type: pb.MsgApp, Term: 3, Index: 3, LogTerm: 2, Commit: 3})
	n.ready()
	require.Equal(t, uint64(3), n.r().raftLog.committed)

	n.step(pb.Message{From: 1, To: 2, Type: pb.MsgApp, Term: 3, Index: 1, LogTerm: 1, Entries: entsFrom(2, 3)})
	resp := filterMsgs(n.ready(), pb.MsgAppResp, 1)
	require.Len(t, resp, 1)
	require.False(t, resp[0].Reject)
	require.Equal(t, uint64(3), resp[0].Index, "answered with the commit index")
	require.Equal(t, []uint64{1, 1, 2}, n.logTerms())
}

// Raft §5.3: a follower commits up to the leader's commit index, but never
// past the last entry this append proved to match the leader's log.
func TestFollowerCommitFromAppend(t *testing.T) {
	for _, tt := range []struct {
		name       string
		log        []uint64
		index      uint64
		logTerm    uint64
		ents       []pb.Entry
		commit     uint64
		wantCommit uint64
	}{
		{name: "leader commit below new entries", index: 0, ents: entsFrom(1, 1, 1, 1), commit: 2, wantCommit: 2},
		{name: "leader commit past new entries", index: 0, ents: entsFrom(1, 1, 1), commit: 5, wantCommit: 2},
		{name: "unverified tail not committed", log: []uint64{1, 1, 1}, index: 1, logTerm: 1, commit: 3, wantCommit: 1},
		{name: "verified prefix", log: []uint64{1, 1, 1}, index: 3, logTerm: 1, commit: 3, wantCommit: 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := newTestNode(t, 2, []uint64{1, 2, 3}, withLog(1, tt.log...))
			n.step(pb.Message{From: 1, To: 2, Type: pb.MsgApp, Term: 1, Index: tt.index, LogTerm: tt.logTerm, Entries: tt.ents, Commit: tt.commit})
			n.ready()
			require.Equal(t, tt.wantCommit, n.r().raftLog.committed)
			require.Equal(t, tt.wantCommit, n.r().raftLog.applied, "committed entries are handed out for applying")
		})
	}
}

// A heartbeat carries a commit index no larger than what the follower is
// known to hold, since its log beyond Match may differ from the leader's.
func TestHeartbeatCommitCappedAtMatch(t *testing.T) {
	n := newTestNode(t, 1, []uint64{1, 2, 3})
	n.makeLeader()
	for i := 0; i < 3; i++ {
		require.NoError(t, n.rn.Propose([]byte("x")))
	}
	n.ready()
	last := n.r().raftLog.lastIndex()
	n.step(pb.Message{From: 3, To: 1, Type: pb.MsgAppResp, Term: 1, Index: last})
	n.step(pb.Message{From: 2, To: 1, Type: pb.MsgAppResp, Term: 1, Index: 1})
	n.ready()
	require.Equal(t, last, n.r().raftLog.committed)

	n.tick(n.r().heartbeatTimeout)
	hbs := filterMsgs(n.ready(), pb.MsgHeartbeat, 0)
	require.Len(t, hbs, 2)
	for _, m := range hbs {
		switch m.To {
		case 2:
			require.Equal(t, uint64(1), m.Commit, "capped at node 2's match")
		case 3:
			require.Equal(t, last, m.Commit)
		}
	}
}

// A follower takes the commit index of a heartbeat (never moving it back),
// and refuses one past its last index instead of committing entries it
// does not have.
func TestFollowerHeartbeatCommit(t *testing.T) {
	n := newTestNode(t, 2, []uint64{1, 2, 3}, withLog(2, 1, 1, 2))
	require.NoError(t, n.rn.Step(pb.Message{From: 1, To: 2, Type: pb.MsgHeartbeat, Term: 2, Commit: 2}))
	require.Equal(t, uint64(2), n.r().raftLog.committed)
	resp := filterMsgs(n.ready(), pb.MsgHeartbeatResp, 1)
	require.Len(t, resp, 1)

	require.NoError(t, n.rn.Step(pb.Message{From: 1, To: 2, Type: pb.MsgHeartbeat, Term: 2, Commit: 1}))
	require.Equal(t, uint64(2), n.r().raftLog.committed, "commit never moves back")
	n.ready()

	err := n.rn.Step(pb.Message{From: 1, To: 2, Type: pb.MsgHeartbeat, Term: 2, Commit: 4})
	require.ErrorIs(t, err, ErrInvalidMessage)
	require.Equal(t, uint64(2), n.r().raftLog.committed)
	require.Empty(t, filterMsgs(n.ready(), pb.MsgHeartbeatResp, 0), "a refused heartbeat is not answered")

	// The core refuses it too, without RawNode.Step's validation in front,
	// before it changes anything: a candidate stays one.
	require.NotPanics(t, func() {
		err = n.r().Step(pb.Message{From: 1, To: 2, Type: pb.MsgHeartbeat, Term: 2, Commit: 4})
	})
	require.ErrorIs(t, err, ErrInvalidMessage)
	require.Equal(t, uint64(2), n.r().raftLog.committed)
	n.r().becomeCandidate()
	term := n.r().Term
	require.ErrorIs(t, n.r().Step(pb.Message{From: 1, To: 2, Type: pb.MsgHeartbeat, Term: term, Commit: 4}), ErrInvalidMessage)
	require.Equal(t, StateCandidate, n.r().state)
	require.Equal(t, None, n.r().lead)
}

// Raft Figure 7: whatever a follower's log looks like (missing entries,
// extra uncommitted entries, both), the leader brings it in line with its
// own, and logs that agree at an index agree on everything before it (Log
// Matching).
func TestLeaderSyncsFollowerLog(t *testing.T) {
	leaderLog := []uint64{1, 1, 1, 4, 4, 5, 5, 6, 6, 6}
	for _, tt := range []struct {
		name string
		log  []uint64
	}{
		{"a", []uint64{1, 1, 1, 4, 4, 5, 5, 6, 6}},
		{"b", []uint64{1, 1, 1, 4}},
		{"c", []uint64{1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6}},
		{"d", []uint64{1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7}},
		{"e", []uint64{1, 1, 1, 4, 4, 4, 4}},
		{"f", []uint64{1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3}},
		{"empty", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			voters := []uint64{1, 2, 3}
			c := newTestClusterOf(t,
				newTestNode(t, 1, voters, withLog(7, leaderLog...)),
				newTestNode(t, 2, voters, withLog(7, tt.log...)),
				newTestNode(t, 3, voters, withLog(7, leaderLog...)),
			)
			c.campaign(1)
			require.Equal(t, StateLeader, c.nodes[1].r().state)
			want := append(append([]uint64{}, leaderLog...), 8)
			for _, id := range c.ids {
				require.Equal(t, want, c.nodes[id].logTerms(), "node %d", id)
				require.Equal(t, uint64(len(want)), c.nodes[id].r().raftLog.committed, "node %d", id)
			}
			// Same index and term means the same entry, data included.
			for i, e := range c.nodes[2].r().raftLog.allEntries() {
				le := c.nodes[1].r().raftLog.allEntries()[i]
				require.True(t, bytes.Equal(e.Data, le.Data), "entry %d", e.Index)
			}
		})
	}
}

// Fast backtracking: a follower whose log diverges over hundreds of
// entries is found in a number of round trips bounded by the terms
// involved, not the entries.
func TestFastBacktrackingRoundTrips(t *testing.T) {
	var leaderLog, followerLog []uint64
	for i := 0; i < 50; i++ {
		leaderLog = append(leaderLog, 1)
		followerLog = append(followerLog, 1)
	}
	for i := 0; i < 300; i++ {
		leaderLog = append(leaderLog, 4)
	}
	for i := 0; i < 200; i++ {
		followerLog = append(followerLog, 2)
	}
	for i := 0; i < 200; i++ {
		followerLog = append(followerLog, 3)
	}
	for _, tt := range []struct {
		name     string
		leader   []uint64
		follower []uint64
		max      int
	}{
		{"follower has extra terms", leaderLog, followerLog, 2},
		{"follower far behind", leaderLog, followerLog[:50], 1},
		{"follower longer in the leader's term", leaderLog[:100], leaderLog, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			voters := []uint64{1, 2, 3}
			leader := newTestNode(t, 1, voters, withLog(4, tt.leader...))
			follower := newTestNode(t, 2, voters, withLog(4, tt.follower...))
			msgs := leader.makeLeader()
			rejections, rounds := 0, 0
			for len(msgs) > 0 {
				rounds++
				require.Less(t, rounds, 100, "no convergence")
				var back []pb.Message
				for _, m := range msgs {
					if m.To == 2 {
						follower.step(m)
					}
				}
				for _, m := range follower.ready() {
					if m.Type == pb.MsgAppResp && m.Reject {
						rejections++
					}
					back = append(back, m)
				}
				for _, m := range back {
					leader.step(m)
				}
				msgs = filterMsgs(leader.ready(), pb.MsgApp, 2)
			}
			require.Equal(t, leader.logTerms(), follower.logTerms())
			require.LessOrEqual(t, rejections, tt.max, "rejections")
			t.Logf("%d rejections, %d round trips", rejections, rounds)
		})
	}
}

// Proposals: a follower forwards them to its leader; without a leader, or
// with forwarding disabled, they are dropped with an error that says why
// and matches ErrProposalDropped.
func TestProposalRouting(t *testing.T) {
	t.Run("forwarded to the leader", func(t *testing.T) {
		n := newTestNode(t, 2, []uint64{1, 2, 3})
		n.r().becomeFollower(1, 1)
		require.NoError(t, n.rn.Propose([]byte("x")))
		props := filterMsgs(n.ready(), pb.MsgProp, 1)
		require.Len(t, props, 1)
		require.Equal(t, []byte("x"), props[0].Entries[0].Data)
		require.Zero(t, props[0].Term, "a forwarded proposal travels without a term")
		require.Zero(t, n.r().raftLog.lastIndex(), "a follower does not append it itself")
	})
	t.Run("forwarding disabled", func(t *testing.T) {
		n := newTestNode(t, 2, []uint64{1, 2, 3}, func(c *Config) { c.DisableProposalForwarding = true })
		n.r().becomeFollower(1, 1)
		requireDropped(t, n.rn.Propose([]byte("x")), ErrProposalForwardingDisabled)
		require.Empty(t, n.ready())
	})
	t.Run("follower without leader", func(t *testing.T) {
		n := newTestNode(t, 2, []uint64{1, 2, 3})
		requireDropped(t, n.rn.Propose([]byte("x")), ErrProposalNoLeader)
	})
	t.Run("candidate", func(t *testing.T) {
		n := newTestNode(t, 2, []uint64{1, 2, 3})
		require.NoError(t, n.rn.Campaign())
		require.Equal(t, StateCandidate, n.r().state)
		requireDropped(t, n.rn.Propose([]byte("x")), ErrProposalNoLeader)
	})
	t.Run("pre-candidate", func(t *testing.T) {
		n := newTestNode(t, 2, []uint64{1, 2, 3}, withPreVote)
		require.NoError(t, n.rn.Campaign())
		require.Equal(t, StatePreCandidate, n.r().state)
		requireDropped(t, n.rn.Propose([]byte("x")), ErrProposalNoLeader)
	})
	t.Run("leader transfer under way", func(t *testing.T) {
		c := newTestCluster(t, 3)
		c.campaign(1)
		c.isolate(2) // keep the transfer from finishing
		c.nodes[1].rn.TransferLeader(2)
		require.Equal(t, uint64(2), c.nodes[1].r().transferee())
		before := c.nodes[1].r().raftLog.lastIndex()
		requireDropped(t, c.nodes[1].rn.Propose([]byte("x")), ErrProposalLeaderTransfer)
		require.Equal(t, before, c.nodes[1].r().raftLog.lastIndex())
	})
	t.Run("forwarded proposal commits", func(t *testing.T) {
		c := newTestCluster(t, 3)
		c.campaign(1)
		require.NoError(t, c.nodes[3].rn.Propose([]byte("via 3")))
		c.stabilize()
		for _, id := range c.ids {
			last := c.nodes[id].applied[len(c.nodes[id].applied)-1]
			require.Equal(t, []byte("via 3"), last.Data, "node %d", id)
		}
	})
}

// MaxUncommittedEntriesSize: the leader drops proposals that would take the
// payload of its uncommitted entries past the limit, and takes them again
// once entries commit and are applied.
func TestMaxUncommittedEntriesSize(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) { cfg.MaxUncommittedEntriesSize = 100 })
	c.campaign(1)
	leader := c.nodes[1]
	c.isolate(1) // nothing commits
	data := make([]byte, 40)
	require.NoError(t, leader.rn.Propose(data))
	require.NoError(t, leader.rn.Propose(data))
	requireDropped(t, leader.rn.Propose(data), ErrProposalTooLarge, "120 bytes would pass the 100-byte limit")
	require.NoError(t, leader.rn.Propose(data[:20]), "exactly at the limit is allowed")
	requireDropped(t, leader.rn.Propose(data[:1]), ErrProposalTooLarge)
	// An empty proposal carries no payload and is always taken.
	require.NoError(t, leader.rn.Propose(nil))

	c.heal()
	c.tickAll(1)
	c.stabilize()
	require.Equal(t, leader.r().raftLog.lastIndex(), leader.r().raftLog.applied)
	require.Zero(t, leader.r().uncommittedSize, "applying releases the budget")
	require.NoError(t, leader.rn.Propose(data))
	require.NoError(t, leader.rn.Propose(data))
}

// A single proposal larger than the limit is still taken when nothing is
// uncommitted, or it could never be proposed.
func TestMaxUncommittedEntriesSizeLargeProposal(t *testing.T) {
	n := newTestNode(t, 1, []uint64{1, 2, 3}, func(cfg *Config) { cfg.MaxUncommittedEntriesSize = 10 })
	n.makeLeader()
	require.NoError(t, n.rn.Propose(make([]byte, 50)))
	requireDropped(t, n.rn.Propose(make([]byte, 1)), ErrProposalTooLarge)
}

// Probe state: the leader sends one append to a peer whose log position it
// does not know, then waits for an answer or the next heartbeat response
// before sending another.
func TestProbeSendsOneAppendAtATime(t *testing.T) {
	n := newTestNode(t, 1, []uint64{1, 2})
	msgs := n.makeLeader()
	require.Len(t, filterMsgs(msgs, pb.MsgApp, 2), 1)
	require.Equal(t, tracker.StateProbe, n.r().trk.Progress[2].State)

	for i := 0; i < 3; i++ {
		require.NoError(t, n.rn.Propose([]byte("x")))
	}
	require.Empty(t, filterMsgs(n.ready(), pb.MsgApp, 2), "a paused probe sends nothing more")

	// A heartbeat response (the peer is alive) lets one more probe out.
	n.step(pb.Message{From: 2, To: 1, Type: pb.MsgHeartbeatResp, Term: 1})
	require.Len(t, filterMsgs(n.ready(), pb.MsgApp, 2), 1)
	require.NoError(t, n.rn.Propose([]byte("x")))
	require.Empty(t, filterMsgs(n.ready(), pb.MsgApp, 2))

	// A successful answer switches to the replicate state.
	n.step(pb.Message{From: 2, To: 1, Type: pb.MsgAppResp, Term: 1, Index: 1})
	require.Equal(t, tracker.StateReplicate, n.r().trk.Progress[2].State)
	require.NotEmpty(t, filterMsgs(n.ready(), pb.MsgApp, 2), "the rest follows at once")
}

// Replicate state: appends are pipelined without waiting for answers, up to
// MaxInflightMsgs; each acknowledgement frees room for more.
func TestReplicatePipelinesUpToMaxInflightMsgs(t *testing.T) {
	n := newTestNode(t, 1, []uint64{1, 2}, func(c *Config) { c.MaxInflightMsgs = 3 })
	n.makeLeader()
	n.step(pb.Message{From: 2, To: 1, Type: pb.MsgAppResp, Term: 1, Index: 1})
	n.ready()
	require.Equal(t, tracker.StateReplicate, n.r().trk.Progress[2].State)

	var sent []pb.Message
	for i := 0; i < 5; i++ {
		require.NoError(t, n.rn.Propose([]byte{byte(i)}))
		sent = append(sent, filterMsgs(n.ready(), pb.MsgApp, 2)...)
	}
	require.Len(t, sent, 3, "the window holds three appends")
	require.True(t, n.r().trk.Progress[2].IsPaused())

	// Acknowledging the first frees one slot: the next append carries every
	// entry not yet sent.
	n.step(pb.Message{From: 2, To: 1, Type: pb.MsgAppResp, Term: 1, Index: sent[0].Entries[0].Index})
	more := filterMsgs(n.ready(), pb.MsgApp, 2)
	require.Len(t, more, 1)
	require.Len(t, more[0].Entries, 2)
}

// MaxInflightBytes bounds the payload in flight to a peer as well.
func TestReplicateBoundedByMaxInflightBytes(t *testing.T) {
	n := newTestNode(t, 1, []uint64{1, 2}, func(c *Config) {
		c.MaxSizePerMsg = 100
		c.MaxInflightBytes = 250
	})
	n.makeLeader()
	n.step(pb.Message{From: 2, To: 1, Type: pb.MsgAppResp, Term: 1, Index: 1})
	n.ready()
	var sent int
	for i := 0; i < 6; i++ {
		require.NoError(t, n.rn.Propose(make([]byte, 100)))
		sent += len(filterMsgs(n.ready(), pb.MsgApp, 2))
	}
	require.Equal(t, 3, sent, "three 100-byte appends reach 250 bytes in flight")
	require.True(t, n.r().trk.Progress[2].IsPaused())
}

// MaxSizePerMsg limits the entries of one append, but every append carries
// at least one entry, however large.
func TestMaxSizePerMsg(t *testing.T) {
	n := newTestNode(t, 1, []uint64{1, 2}, func(c *Config) { c.MaxSizePerMsg = 300 })
	n.makeLeader()
	for i := 0; i < 10; i++ {
		require.NoError(t, n.rn.Propose(make([]byte, 100)))
	}
	require.NoError(t, n.rn.Propose(make([]byte, 1000)))
	n.ready()
	var got []pb.Entry
	n.step(pb.Message{From: 2, To: 1, Type: pb.MsgAppResp, Term: 1, Index: 1})
	for {
		apps := filterMsgs(n.ready(), pb.MsgApp, 2)
		if len(apps) == 0 {
			break
		}
		for _, m := range apps {
			if len(m.Entries) == 0 {
				continue // only tells the commit index
			}
			if len(m.Entries) > 1 {
				require.LessOrEqual(t, pb.EntriesSize(m.Entries), uint64(300))
			}
			got = append(got, m.Entries...)
			n.step(pb.Message{From: 2, To: 1, Type: pb.MsgAppResp, Term: 1, Index: m.Entries[len(m.Entries)-1].Index})
		}
	}
	require.Len(t, got, 11)
	require.Len(t, got[10].Data, 1000, "an oversized entry travels alone")
}

// MaxCommittedSizePerReady splits committed entries across Readys, in
// order, each batch within the limit unless a single entry is larger.
// TestZeroMaxSizePerMsgAppliesOneEntryPerReady: MaxSizePerMsg 0 (the zero
// Config), which also makes MaxCommittedSizePerReady 0, hands out one
// committed entry per Ready: a budget of 0 with nothing outstanding is not
// spent. A node paused for good after its first entry applied nothing more,
// and a bootstrapped cluster, its configuration entries unapplied, never
// campaigned.
func TestZeroMaxSizePerMsgAppliesOneEntryPerReady(t *testing.T) {
	n := newTestNode(t, 1, []uint64{1}, func(c *Config) { c.MaxSizePerMsg = 0 })
	require.NoError(t, n.rn.Campaign())
	n.ready()
	require.Equal(t, StateLeader, n.r().state)
	for i := 0; i < 5; i++ {
		require.NoError(t, n.rn.Propose([]byte("x")))
	}
	applied, readys := n.r().raftLog.applied, 0
	for n.rn.HasReady() && readys < 100 {
		rd := n.rn.Ready()
		readys++
		require.LessOrEqual(t, len(rd.CommittedEntries), 1)
		for _, e := range rd.CommittedEntries {
			require.Equal(t, applied+1, e.Index)
			applied = e.Index
		}
		require.NoError(t, n.storage.Append(rd.Entries))
		n.rn.Advance(rd)
	}
	require.Equal(t, n.r().raftLog.committed, applied, "every committed entry applied")
	require.Equal(t, n.r().raftLog.lastIndex(), applied)
}

func TestMaxCommittedSizePerReady(t *testing.T) {
	n := newTestNode(t, 1, []uint64{1}, func(c *Config) { c.MaxCommittedSizePerReady = 250 })
	require.NoError(t, n.rn.Campaign())
	n.ready()
	require.Equal(t, StateLeader, n.r().state)
	start := n.r().raftLog.applied
	for i := 0; i < 10; i++ {
		require.NoError(t, n.rn.Propose(make([]byte, 100)))
	}
	// Persist the proposals; they commit at Advance.
	rd := n.rn.Ready()
	require.NoError(t, n.storage.Append(rd.Entries))
	n.rn.Advance(rd)

	var batches int
	next := start + 1
	for n.rn.HasReady() {
		rd := n.rn.Ready()
		if len(rd.CommittedEntries) > 0 {
			batches++
			require.LessOrEqual(t, pb.EntriesSize(rd.CommittedEntries), uint64(250))
			for _, e := range rd.CommittedEntries {
				require.Equal(t, next, e.Index)
				next++
			}
		}
		require.NoError(t, n.storage.Append(rd.Entries))
		n.rn.Advance(rd)
	}
	require.Equal(t, start+11, next, "all ten applied")
	require.GreaterOrEqual(t, batches, 5, "two 100-byte entries per 250-byte Ready")
}
