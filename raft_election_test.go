package raft

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
)

// Raft §5.1: a node that sees a higher term adopts it and becomes a
// follower, whatever its role.
func TestHigherTermMakesFollower(t *testing.T) {
	for _, role := range []StateType{StateFollower, StateCandidate, StateLeader, StatePreCandidate} {
		t.Run(role.String(), func(t *testing.T) {
			n := newTestNode(t, 1, []uint64{1, 2, 3})
			n.r().Term = 2
			switch role {
			case StateCandidate:
				n.r().becomeCandidate()
			case StatePreCandidate:
				n.r().becomePreCandidate()
			case StateLeader:
				n.r().becomeCandidate()
				n.r().becomeLeader()
			}
			n.step(pb.Message{From: 2, To: 1, Type: pb.MsgApp, Term: 10})
			require.Equal(t, StateFollower, n.r().state)
			require.Equal(t, uint64(10), n.r().Term)
			require.Equal(t, uint64(2), n.r().lead, "an append names the leader")
			require.Equal(t, None, n.r().Vote, "a new term starts without a vote")
		})
	}
}

// Raft §5.1: messages of an earlier term are ignored.
func TestLowerTermMessageIgnored(t *testing.T) {
	n := newTestNode(t, 1, []uint64{1, 2, 3})
	n.r().becomeFollower(5, 2)
	n.step(pb.Message{From: 3, To: 1, Type: pb.MsgApp, Term: 4, Index: 0, LogTerm: 0, Entries: entsFrom(1, 4)})
	require.Equal(t, uint64(5), n.r().Term)
	require.Equal(t, uint64(0), n.r().raftLog.lastIndex(), "a stale append must not touch the log")
	require.Equal(t, uint64(2), n.r().lead)
}

// A stale leader sending appends is told the current term when CheckQuorum
// or PreVote is on, so it steps down instead of being stuck.
func TestLowerTermAppendAnsweredWithTerm(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts []func(*Config)
		want int
	}{
		{name: "neither", want: 0},
		{name: "check quorum", opts: []func(*Config){withCheckQuorum}, want: 1},
		{name: "pre-vote", opts: []func(*Config){withPreVote}, want: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := newTestNode(t, 1, []uint64{1, 2, 3}, tt.opts...)
			n.r().becomeFollower(5, 2)
			n.ready()
			n.step(pb.Message{From: 3, To: 1, Type: pb.MsgApp, Term: 4})
			msgs := n.ready()
			require.Len(t, msgs, tt.want)
			if tt.want == 1 {
				require.Equal(t, pb.MsgAppResp, msgs[0].Type)
				require.Equal(t, uint64(5), msgs[0].Term)
			}
		})
	}
}

// Raft §5.2: a follower that hears nothing for an election timeout becomes
// a candidate of the next term, votes for itself (durably) and asks every
// other voter.
func TestFollowerStartsElectionAfterTimeout(t *testing.T) {
	n := newTestNode(t, 1, []uint64{1, 2, 3})
	n.r().becomeFollower(1, 2)
	n.ready()
	n.tick(2 * n.r().electionTimeout)
	require.Equal(t, StateCandidate, n.r().state)
	require.Equal(t, uint64(2), n.r().Term)
	require.Equal(t, uint64(1), n.r().Vote)
	rd := n.rn.Ready()
	require.Equal(t, uint64(1), rd.HardState.Vote, "the vote is persisted with the requests")
	require.True(t, rd.MustSync)
	var to []uint64
	for _, m := range rd.Messages {
		require.Equal(t, pb.MsgVote, m.Type)
		require.Equal(t, uint64(2), m.Term)
		to = append(to, m.To)
	}
	require.ElementsMatch(t, []uint64{2, 3}, to)
	n.rn.Advance(rd)
}

// Raft §5.2: the election timeout is drawn from [et, 2et), and different
// nodes draw different values.
func TestElectionTimeoutRandomized(t *testing.T) {
	n := newTestNode(t, 1, []uint64{1, 2, 3})
	et := n.r().electionTimeout
	seen := map[int]bool{}
	for i := 0; i < 200; i++ {
		n.r().becomeFollower(n.r().Term+1, None)
		rt := n.r().randomizedElectionTimeout
		require.GreaterOrEqual(t, rt, et)
		require.Less(t, rt, 2*et)
		seen[rt] = true
	}
	require.Greater(t, len(seen), et/2, "the timeout should vary over its range")
}

// A single voter elects itself: the self-vote counts once persisted.
func TestSingleVoterElectsItself(t *testing.T) {
	n := newTestNode(t, 1, []uint64{1})
	require.NoError(t, n.rn.Campaign())
	require.Equal(t, StateCandidate, n.r().state, "the self-vote waits for the vote to be durable")
	n.ready()
	require.Equal(t, StateLeader, n.r().state)
	require.Equal(t, uint64(1), n.r().Term)
}

// Raft §5.2: a candidate wins with a majority, loses with a majority of
// rejections, and waits otherwise.
func TestCandidateElectionOutcome(t *testing.T) {
	tests := []struct {
		name    string
		size    int
		granted []uint64
		reject  []uint64
		want    StateType
	}{
		{name: "3 nodes, one grant wins", size: 3, granted: []uint64{2}, want: StateLeader},
		{name: "3 nodes, one reject waits", size: 3, reject: []uint64{2}, want: StateCandidate},
		{name: "3 nodes, two rejects lose", size: 3, reject: []uint64{2, 3}, want: StateFollower},
		{name: "5 nodes, two grants win", size: 5, granted: []uint64{2, 3}, want: StateLeader},
		{name: "5 nodes, one grant waits", size: 5, granted: []uint64{2}, reject: []uint64{3}, want: StateCandidate},
		{name: "5 nodes, three rejects lose", size: 5, granted: []uint64{2}, reject: []uint64{3, 4, 5}, want: StateFollower},
		{name: "4 nodes, one grant waits", size: 4, granted: []uint64{2}, want: StateCandidate},
		{name: "4 nodes, two grants win", size: 4, granted: []uint64{2, 3}, want: StateLeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var voters []uint64
			for i := 1; i <= tt.size; i++ {
				voters = append(voters, uint64(i))
			}
			n := newTestNode(t, 1, voters)
			require.NoError(t, n.rn.Campaign())
			n.ready()
			term := n.r().Term
			for _, id := range tt.granted {
				n.step(pb.Message{From: id, To: 1, Term: term, Type: pb.MsgVoteResp})
			}
			for _, id := range tt.reject {
				n.step(pb.Message{From: id, To: 1, Term: term, Type: pb.MsgVoteResp, Reject: true})
			}
			require.Equal(t, tt.want, n.r().state)
			require.Equal(t, term, n.r().Term, "the outcome does not change the term")
		})
	}
}

// A vote from the same node counts once, however often it arrives.
func TestDuplicateVoteCountsOnce(t *testing.T) {
	n := newTestNode(t, 1, []uint64{1, 2, 3, 4, 5})
	require.NoError(t, n.rn.Campaign())
	n.ready()
	for i := 0; i < 3; i++ {
		n.step(pb.Message{From: 2, To: 1, Term: n.r().Term, Type: pb.MsgVoteResp})
	}
	require.Equal(t, StateCandidate, n.r().state, "self + node 2 is not a majority of 5")
}

// Raft §5.2 and §5.4.1: a node grants at most one vote per term, only to a
// candidate whose log is at least as up to date, and may grant the same
// candidate again.
func TestVoteGranting(t *testing.T) {
	// The voter's log: 1@1, 2@2 (last entry term 2, index 2).
	tests := []struct {
		name       string
		priorVote  uint64
		candidate  uint64
		lastTerm   uint64
		lastIndex  uint64
		wantReject bool
	}{
		{name: "longer log same term", candidate: 2, lastTerm: 2, lastIndex: 3},
		{name: "same log", candidate: 2, lastTerm: 2, lastIndex: 2},
		{name: "shorter log same term", candidate: 2, lastTerm: 2, lastIndex: 1, wantReject: true},
		{name: "higher last term shorter log", candidate: 2, lastTerm: 3, lastIndex: 1},
		{name: "lower last term longer log", candidate: 2, lastTerm: 1, lastIndex: 10, wantReject: true},
		{name: "already voted for another", priorVote: 3, candidate: 2, lastTerm: 2, lastIndex: 5, wantReject: true},
		{name: "already voted for this one", priorVote: 2, candidate: 2, lastTerm: 2, lastIndex: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newTestNode(t, 1, []uint64{1, 2, 3})
			require.NoError(t, n.storage.Append(entsFrom(1, 1, 2)))
			n.r().raftLog = newLog(n.storage, DiscardLogger)
			n.r().becomeFollower(5, None)
			n.r().Vote = tt.priorVote
			n.ready()
			n.step(pb.Message{From: tt.candidate, To: 1, Term: 5, Type: pb.MsgVote, LogTerm: tt.lastTerm, Index: tt.lastIndex})
			msgs := n.ready()
			require.Len(t, msgs, 1)
			require.Equal(t, pb.MsgVoteResp, msgs[0].Type)
			require.Equal(t, tt.wantReject, msgs[0].Reject)
			if !tt.wantReject {
				require.Equal(t, tt.candidate, n.r().Vote)
				hs, _, err := n.storage.InitialState()
				require.NoError(t, err)
				require.Equal(t, tt.candidate, hs.Vote, "the vote is persisted before the response leaves")
			} else {
				require.Equal(t, tt.priorVote, n.r().Vote, "a rejection changes no vote")
			}
		})
	}
}

// Raft §5.2: in a cluster exactly one leader emerges, and every node
// agrees on it.
func TestClusterElectsOneLeader(t *testing.T) {
	for _, size := range []int{1, 3, 5} {
		for _, opts := range []struct {
			name string
			o    []func(*Config)
		}{{name: "plain"}, {name: "prevote+checkquorum", o: []func(*Config){withPreVote, withCheckQuorum}}} {
			t.Run(opts.name, func(t *testing.T) {
				c := newTestCluster(t, size, opts.o...)
				for i := 0; i < 50 && len(c.leaders()) == 0; i++ {
					c.tickAll(1)
				}
				leaders := c.leaders()
				require.Len(t, leaders, 1)
				lead := leaders[0]
				for _, id := range c.ids {
					require.Equal(t, lead, c.nodes[id].r().lead, "node %d", id)
					require.Equal(t, c.nodes[lead].r().Term, c.nodes[id].r().Term)
				}
			})
		}
	}
}

// Raft thesis §9.6: with PreVote a node that cannot win does not raise its
// term, so rejoining after a partition does not disrupt the leader.
func TestPreVoteDoesNotBumpTerm(t *testing.T) {
	c := newTestCluster(t, 3, withPreVote)
	c.campaign(1)
	require.Equal(t, []uint64{1}, c.leaders())
	term := c.nodes[1].r().Term

	c.isolate(3)
	c.tickAll(5 * c.nodes[3].r().electionTimeout)
	require.Equal(t, term, c.nodes[3].r().Term, "an isolated pre-candidate keeps its term")
	require.Equal(t, StatePreCandidate, c.nodes[3].r().state)

	c.heal()
	c.tickAll(2)
	require.Equal(t, []uint64{1}, c.leaders(), "the leader is undisturbed")
	require.Equal(t, term, c.nodes[1].r().Term)
	require.Equal(t, StateFollower, c.nodes[3].r().state)
}

// Without PreVote, the same rejoin forces an election at a higher term: the
// contrast shows the PreVote test above checks something real.
func TestWithoutPreVoteRejoinDisrupts(t *testing.T) {
	c := newTestCluster(t, 3)
	c.campaign(1)
	term := c.nodes[1].r().Term
	c.isolate(3)
	c.tickAll(5 * c.nodes[3].r().electionTimeout)
	require.Greater(t, c.nodes[3].r().Term, term)
	c.heal()
	c.tickAll(2 * c.nodes[1].r().electionTimeout)
	require.Greater(t, c.nodes[1].r().Term, term, "the rejoining node forced a new term")
}

// CheckQuorum: a leader that cannot reach a quorum for an election timeout
// steps down; the others elect a new leader.
func TestCheckQuorumLeaderStepsDown(t *testing.T) {
	c := newTestCluster(t, 3, withCheckQuorum, withPreVote)
	c.campaign(1)
	require.Equal(t, []uint64{1}, c.leaders())
	term := c.nodes[1].r().Term
	c.isolate(1)
	c.tickAll(4 * c.nodes[1].r().electionTimeout)
	require.NotEqual(t, StateLeader, c.nodes[1].r().state, "the isolated leader stepped down")
	require.Equal(t, term, c.nodes[1].r().Term, "with PreVote, campaigning alone does not raise the term")
	leaders := c.leaders()
	require.Len(t, leaders, 1)
	require.NotEqual(t, uint64(1), leaders[0])
}

// CheckQuorum gives followers a lease: a vote request arriving while they
// recently heard from a leader is ignored (no term change, no vote).
func TestCheckQuorumLeaseIgnoresVotes(t *testing.T) {
	n := newTestNode(t, 2, []uint64{1, 2, 3}, withCheckQuorum)
	n.step(pb.Message{From: 1, To: 2, Type: pb.MsgHeartbeat, Term: 3})
	n.ready()
	n.step(pb.Message{From: 3, To: 2, Type: pb.MsgVote, Term: 4, LogTerm: 3, Index: 10})
	require.Equal(t, uint64(3), n.r().Term, "term unchanged within the lease")
	require.Equal(t, None, n.r().Vote)
	require.Empty(t, n.ready(), "no answer within the lease")

	// A transfer-forced campaign is granted even within the lease.
	n.step(pb.Message{From: 3, To: 2, Type: pb.MsgVote, Term: 4, LogTerm: 3, Index: 10, Context: []byte(campaignTransfer)})
	require.Equal(t, uint64(3), n.r().Vote)

	// After the lease expires a normal vote is considered.
	m := newTestNode(t, 2, []uint64{1, 2, 3}, withCheckQuorum)
	m.step(pb.Message{From: 1, To: 2, Type: pb.MsgHeartbeat, Term: 3})
	m.ready()
	m.tick(m.r().electionTimeout)
	require.Equal(t, StateFollower, m.r().state)
	m.step(pb.Message{From: 3, To: 2, Type: pb.MsgVote, Term: 4, LogTerm: 3, Index: 10})
	require.Equal(t, uint64(4), m.r().Term)
	require.Equal(t, uint64(3), m.r().Vote)
}

// With CheckQuorum the promise made by hearing from a leader outlasts
// knowing it: a node that a later term's message made forget its leader
// (here a late refusal of a pre-vote it sent before the leader's heartbeat
// came) refuses votes of that term and pre-votes of the next until an
// election timeout has passed since the heartbeat, and grants them then,
// not later.
func TestCheckQuorumLeaseOutlastsLeader(t *testing.T) {
	vote := pb.Message{From: 3, To: 2, Type: pb.MsgVote, Term: 4, LogTerm: 3, Index: 10}
	preVote := pb.Message{From: 3, To: 2, Type: pb.MsgPreVote, Term: 5, LogTerm: 3, Index: 10}
	n := newTestNode(t, 2, []uint64{1, 2, 3}, withCheckQuorum, withPreVote)
	n.step(pb.Message{From: 1, To: 2, Type: pb.MsgHeartbeat, Term: 3})
	n.ready()
	n.tick(2)
	n.step(pb.Message{From: 3, To: 2, Type: pb.MsgPreVoteResp, Term: 4, Reject: true})
	require.Equal(t, uint64(4), n.r().Term)
	require.Equal(t, None, n.r().lead, "the leader is forgotten")

	n.step(preVote)
	require.Empty(t, n.ready(), "a pre-vote of a later term is dropped")
	n.step(vote)
	resp := n.ready()
	require.Len(t, resp, 1)
	require.True(t, resp[0].Reject, "a vote of this term is refused")
	require.Equal(t, None, n.r().Vote)

	// The promise ends an election timeout after the heartbeat.
	n.tick(n.r().electionTimeout - 3)
	n.step(vote)
	require.True(t, n.ready()[0].Reject, "one tick before the end")
	n.tick(1)
	require.Equal(t, StateFollower, n.r().state)
	n.step(preVote)
	resp = n.ready()
	require.Len(t, resp, 1)
	require.False(t, resp[0].Reject, "pre-vote granted once the promise ends")
	n.step(vote)
	require.Equal(t, uint64(3), n.r().Vote)
}

// The promise starts with an append or heartbeat of the leader of the
// node's term, heard as a follower or as a candidate of that term.
func TestVoteLeaseFromEveryRole(t *testing.T) {
	for _, typ := range []pb.MessageType{pb.MsgApp, pb.MsgHeartbeat} {
		for _, candidate := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s candidate=%t", typ, candidate), func(t *testing.T) {
				n := newTestNode(t, 2, []uint64{1, 2, 3}, withCheckQuorum)
				term := uint64(3)
				if candidate {
					require.NoError(t, n.rn.Campaign())
					n.ready()
					require.Equal(t, StateCandidate, n.r().state)
					term = n.r().Term
				}
				n.step(pb.Message{From: 1, To: 2, Type: typ, Term: term})
				n.ready()
				require.Equal(t, uint64(1), n.r().lead)
				// A late refusal of a later term makes it forget its leader.
				n.step(pb.Message{From: 3, To: 2, Type: pb.MsgVoteResp, Term: term + 1, Reject: true})
				require.Equal(t, None, n.r().lead)
				n.step(pb.Message{From: 3, To: 2, Type: pb.MsgVote, Term: term + 1, LogTerm: 3, Index: 10})
				require.Equal(t, None, n.r().Vote)
			})
		}
	}
}

// Quiesced ticks count toward the end of the promise, as toward the
// election timeout.
func TestVoteLeaseCountsQuiescedTicks(t *testing.T) {
	n := newTestNode(t, 2, []uint64{1, 2, 3}, withCheckQuorum)
	n.step(pb.Message{From: 1, To: 2, Type: pb.MsgHeartbeat, Term: 3})
	n.ready()
	for range n.r().electionTimeout {
		n.rn.TickQuiesced()
	}
	n.step(pb.Message{From: 3, To: 2, Type: pb.MsgVote, Term: 4, LogTerm: 3, Index: 10})
	require.Equal(t, uint64(3), n.r().Vote)
}

// Without lease-based reads, ForgetLeader ends the promise too: the
// follower may grant votes at once.
func TestForgetLeaderEndsVoteLease(t *testing.T) {
	n := newTestNode(t, 2, []uint64{1, 2, 3}, withCheckQuorum)
	n.step(pb.Message{From: 1, To: 2, Type: pb.MsgHeartbeat, Term: 3})
	n.ready()
	require.NoError(t, n.rn.ForgetLeader())
	n.step(pb.Message{From: 3, To: 2, Type: pb.MsgVote, Term: 4, LogTerm: 3, Index: 10})
	require.Equal(t, uint64(3), n.r().Vote)
}

// Learners never campaign.
func TestLearnerDoesNotCampaign(t *testing.T) {
	n := newTestNode(t, 2, []uint64{1})
	require.NoError(t, n.r().restoreConfState(pb.ConfState{Voters: []uint64{1}, Learners: []uint64{2}}))
	require.True(t, n.r().isLearner())
	n.tick(5 * n.r().electionTimeout)
	require.Equal(t, StateFollower, n.r().state)
	require.NoError(t, n.rn.Campaign())
	require.Equal(t, StateFollower, n.r().state)
	require.Equal(t, uint64(0), n.r().Term)
}

// An application may compact the entries it applied before it reports
// them applied (with AsyncStorageWrites, before stepping the
// MsgStorageApplyResp). Their conf changes were applied with
// ApplyConfChange, so an election then looks only at what storage still
// holds instead of failing to read the compacted entries.
func TestCampaignAfterCompactingAppliedUnreportedAsync(t *testing.T) {
	s := NewMemoryStorage()
	cfg := testConfig(1, s)
	cfg.AsyncStorageWrites = true
	rn, err := NewRawNode(cfg)
	require.NoError(t, err)
	require.NoError(t, rn.Bootstrap([]Peer{{ID: 1}, {ID: 2}, {ID: 3}}))
	var apply pb.Message
	for apply.Type != pb.MsgStorageApply {
		for _, m := range rn.Ready().Messages {
			switch m.To {
			case LocalAppendThread:
				require.NoError(t, saveStorageAppend(s, m))
				for _, resp := range m.Responses {
					require.NoError(t, rn.Step(resp))
				}
			case LocalApplyThread:
				apply = m
			}
		}
	}
	var cs pb.ConfState
	for _, e := range apply.Entries {
		cc, err := pb.UnmarshalConfChange(e)
		require.NoError(t, err)
		cs = *rn.ApplyConfChange(cc)
	}
	_, err = s.CreateSnapshot(3, &cs, nil)
	require.NoError(t, err)
	require.NoError(t, s.Compact(3))

	require.NoError(t, rn.Campaign())
	require.Equal(t, StateCandidate, rn.raft.state)
	require.NoError(t, rn.Step(apply.Responses[0]))
	require.Equal(t, uint64(3), rn.raft.raftLog.applied)
}

// The same without AsyncStorageWrites: a follower applies a Ready's
// committed entry, compacts up to it and is ticked past its election
// timeout before it calls Advance.
func TestCampaignAfterCompactingAppliedUnreportedSync(t *testing.T) {
	rn, s, rd := newFollowerApplyingEntry4(t)
	require.NoError(t, s.Compact(4)) // entry 4 applied, not yet reported
	for i := 0; i < 2*rn.raft.electionTimeout && rn.raft.state == StateFollower; i++ {
		rn.Tick()
	}
	require.Equal(t, StateCandidate, rn.raft.state)
	rn.Advance(rd)
	require.Equal(t, uint64(4), rn.raft.raftLog.applied)
}

// newFollowerApplyingEntry4 returns follower 1 of voters 1-3 (leader 2,
// term 2) with entries 1-4 stored, and the Ready that hands out the
// committed entry 4 for applying, not yet advanced.
func newFollowerApplyingEntry4(t *testing.T) (*RawNode, *MemoryStorage, Ready) {
	t.Helper()
	s := NewMemoryStorage()
	rn, err := NewRawNode(testConfig(1, s))
	require.NoError(t, err)
	require.NoError(t, rn.Bootstrap([]Peer{{ID: 1}, {ID: 2}, {ID: 3}}))
	rd := rn.Ready()
	require.NoError(t, s.Append(rd.Entries))
	for _, e := range rd.CommittedEntries {
		cc, err := pb.UnmarshalConfChange(e)
		require.NoError(t, err)
		rn.ApplyConfChange(cc)
	}
	rn.Advance(rd)

	require.NoError(t, rn.Step(pb.Message{From: 2, To: 1, Type: pb.MsgApp, Term: 2, Index: 3, LogTerm: 1, Commit: 3,
		Entries: []pb.Entry{{Index: 4, Term: 2, Data: []byte("x")}}}))
	rd = rn.Ready()
	require.NoError(t, s.Append(rd.Entries))
	require.NoError(t, s.SetHardState(rd.HardState))
	rn.Advance(rd)
	require.NoError(t, rn.Step(pb.Message{From: 2, To: 1, Type: pb.MsgHeartbeat, Term: 2, Commit: 4}))
	rd = rn.Ready()
	require.NoError(t, s.SetHardState(rd.HardState))
	require.Len(t, rd.CommittedEntries, 1)
	require.Equal(t, uint64(4), rd.CommittedEntries[0].Index)
	return rn, s, rd
}

// compactedEntriesStorage answers every Entries call with ErrCompacted,
// while its FirstIndex says nothing was compacted.
type compactedEntriesStorage struct{ *MemoryStorage }

func (compactedEntriesStorage) Entries(lo, hi, maxSize uint64) ([]pb.Entry, error) {
	return nil, ErrCompacted
}

// A storage that says an entry is compacted and also that it starts at or
// before it gives no way to look for unapplied conf changes: the node
// does not campaign, and does not panic either.
func TestNoCampaignWhenStorageContradictsItself(t *testing.T) {
	rn, s, rd := newFollowerApplyingEntry4(t)
	rn.raft.raftLog.storage = compactedEntriesStorage{s}
	for i := 0; i < 2*rn.raft.electionTimeout; i++ {
		rn.Tick()
	}
	require.Equal(t, StateFollower, rn.raft.state)
	rn.raft.raftLog.storage = s
	rn.Advance(rd)
	require.NoError(t, rn.Campaign())
	require.Equal(t, StateCandidate, rn.raft.state)
}

// Learners' votes never count toward an election.
func TestLearnerVotesDoNotCount(t *testing.T) {
	n := newTestNode(t, 1, []uint64{1, 2, 3})
	require.NoError(t, n.r().restoreConfState(pb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4, 5}}))
	require.NoError(t, n.rn.Campaign())
	n.ready()
	term := n.r().Term
	n.step(pb.Message{From: 4, To: 1, Type: pb.MsgVoteResp, Term: term})
	n.step(pb.Message{From: 5, To: 1, Type: pb.MsgVoteResp, Term: term})
	require.Equal(t, StateCandidate, n.r().state, "two learner grants are not a majority")
	n.step(pb.Message{From: 2, To: 1, Type: pb.MsgVoteResp, Term: term})
	require.Equal(t, StateLeader, n.r().state)
}

// Learners receive the log, but their acknowledgements never commit.
func TestLearnerAcksDoNotCommit(t *testing.T) {
	n := newTestNode(t, 1, []uint64{1, 2, 3})
	require.NoError(t, n.r().restoreConfState(pb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4, 5}}))
	msgs := n.makeLeader()
	require.Len(t, filterMsgs(msgs, pb.MsgApp, 4), 1, "learners are replicated to")
	last := n.r().raftLog.lastIndex()
	n.step(pb.Message{From: 4, To: 1, Type: pb.MsgAppResp, Term: n.r().Term, Index: last})
	n.step(pb.Message{From: 5, To: 1, Type: pb.MsgAppResp, Term: n.r().Term, Index: last})
	require.Zero(t, n.r().raftLog.committed)
	n.step(pb.Message{From: 3, To: 1, Type: pb.MsgAppResp, Term: n.r().Term, Index: last})
	require.Equal(t, last, n.r().raftLog.committed)
}

// A node whose storage holds a snapshot but no HardState starts at term 0.
// A pre-vote from a candidate with an older log is refused there without
// a reply (a refusal cannot carry term 0), and nothing changes.
func TestTermZeroNodeRefusesStalePreVote(t *testing.T) {
	n := newTermZeroNode(t)
	require.Equal(t, uint64(0), n.r().Term)
	require.NotPanics(t, func() {
		require.NoError(t, n.rn.Step(pb.Message{Type: pb.MsgPreVote, From: 2, To: 1, Term: 1, Index: 3, LogTerm: 1}))
	})
	require.Empty(t, n.ready(), "no refusal at term 0")
	require.Equal(t, uint64(0), n.r().Term)

	// A pre-vote from an up-to-date candidate is granted at its term.
	require.NoError(t, n.rn.Step(pb.Message{Type: pb.MsgPreVote, From: 2, To: 1, Term: 4, Index: 5, LogTerm: 3}))
	msgs := n.ready()
	require.Len(t, msgs, 1)
	require.Equal(t, pb.MsgPreVoteResp, msgs[0].Type)
	require.False(t, msgs[0].Reject)
	require.Equal(t, uint64(4), msgs[0].Term)
}
