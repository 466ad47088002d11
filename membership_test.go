package raft

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/tracker"
)

// addNode starts a fresh node id with empty storage (no configuration: it
// learns it from the log) and connects it to the cluster.
func (c *testCluster) addNode(id uint64, opts ...func(*Config)) *testNode {
	n := newTestNode(c.t, id, nil, opts...)
	c.nodes[id] = n
	c.ids = append(c.ids, id)
	return n
}

// proposeCC proposes cc through node id and stabilizes.
func (c *testCluster) proposeCC(id uint64, cc pb.ConfChangeI) {
	c.t.Helper()
	require.NoError(c.t, c.nodes[id].rn.ProposeConfChange(cc))
	c.stabilize()
}

// load proposes k commands through node id and stabilizes.
func (c *testCluster) load(id uint64, k int, tag string) {
	c.t.Helper()
	for i := 0; i < k; i++ {
		require.NoError(c.t, c.nodes[id].rn.Propose([]byte(fmt.Sprintf("%s-%d", tag, i))))
	}
	c.stabilize()
}

// config returns node id's configuration as a ConfState.
func (c *testCluster) config(id uint64) pb.ConfState { return c.nodes[id].r().confState() }

// requireSameApplied checks that the given nodes applied the same data
// sequence (ignoring the entries before the first one each applied).
func (c *testCluster) requireConverged(ids ...uint64) {
	c.t.Helper()
	ref := c.nodes[ids[0]]
	for _, id := range ids[1:] {
		n := c.nodes[id]
		require.Equal(c.t, ref.r().raftLog.committed, n.r().raftLog.committed, "node %d commit", id)
		require.Equal(c.t, ref.logTerms(), n.logTerms(), "node %d log", id)
	}
}

func v1(typ pb.ConfChangeType, id uint64) pb.ConfChange { return pb.ConfChange{Type: typ, NodeID: id} }

// A node joins a loaded 3-voter cluster as a learner (it receives the log
// but neither votes nor counts), then is promoted to voter.
func TestAddLearnerThenPromote(t *testing.T) {
	c := newBootstrappedCluster(t, 3)
	c.campaign(1)
	c.load(1, 20, "a")
	c.addNode(4)
	c.proposeCC(1, v1(pb.ConfChangeAddLearnerNode, 4))
	c.load(1, 20, "b")
	require.Equal(t, pb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}}, c.config(1))
	require.Equal(t, c.config(1), c.config(4), "the learner applied the change too")
	require.True(t, c.nodes[4].r().isLearner())
	c.requireConverged(1, 2, 3, 4)

	// A learner never counts: with two voters down nothing commits.
	c.isolate(2)
	c.isolate(3)
	before := c.nodes[1].r().raftLog.committed
	require.NoError(t, c.nodes[1].rn.Propose([]byte("stuck")))
	c.stabilize()
	require.Equal(t, before, c.nodes[1].r().raftLog.committed, "the learner's ack is not a quorum")
	c.heal()
	c.tickAll(1)

	c.proposeCC(1, v1(pb.ConfChangeAddNode, 4))
	require.Equal(t, pb.ConfState{Voters: []uint64{1, 2, 3, 4}}, c.config(1))
	require.False(t, c.nodes[4].r().isLearner())
	c.load(1, 10, "c")
	c.requireConverged(1, 2, 3, 4)
	// The promoted node can now win an election.
	c.campaign(4)
	require.Equal(t, []uint64{4}, c.leaders())
}

// Removing a follower: its progress disappears, and the rest go on with
// the smaller quorum; the removed node no longer campaigns.
func TestRemoveFollower(t *testing.T) {
	c := newBootstrappedCluster(t, 3)
	c.campaign(1)
	c.proposeCC(1, v1(pb.ConfChangeRemoveNode, 3))
	require.Equal(t, pb.ConfState{Voters: []uint64{1, 2}}, c.config(1))
	require.NotContains(t, c.nodes[1].r().trk.Progress, uint64(3))
	c.isolate(3)
	c.load(1, 5, "x")
	require.Equal(t, c.nodes[1].r().raftLog.lastIndex(), c.nodes[1].r().raftLog.committed)

	removed := c.nodes[3]
	term := removed.r().Term
	removed.tick(5 * removed.r().electionTimeout)
	require.Equal(t, StateFollower, removed.r().state, "a removed node does not campaign")
	require.Equal(t, term, removed.r().Term)
}

// A removed follower that missed the commit index of its own removal
// (the leader sends nothing to a peer it no longer has) learns it when it
// campaigns: the leader answers a pre-vote from a peer outside its
// configuration with an append up to its commit index, and the removed node
// applies its removal instead of campaigning forever.
func TestRemovedFollowerThatMissedTheCommitLearnsIt(t *testing.T) {
	c := newBootstrappedCluster(t, 3, withPreVote, withCheckQuorum)
	c.campaign(1)
	removal := c.nodes[1].r().raftLog.lastIndex() + 1
	c.intercept = func(m *pb.Message) bool { return m.To != 3 || m.Commit < removal }
	c.proposeCC(1, v1(pb.ConfChangeRemoveNode, 3))
	require.Equal(t, pb.ConfState{Voters: []uint64{1, 2}}, c.config(1))
	removed := c.nodes[3]
	require.Equal(t, removal, removed.r().raftLog.lastIndex(), "it holds its removal")
	require.Less(t, removed.r().raftLog.committed, removal, "but never heard it committed")
	require.Equal(t, pb.ConfState{Voters: []uint64{1, 2, 3}}, c.config(3))

	c.intercept = nil
	c.tickAll(3 * removed.r().electionTimeout)
	require.Equal(t, pb.ConfState{Voters: []uint64{1, 2}}, c.config(3), "the removed node applied its removal")
	require.Equal(t, c.nodes[1].r().raftLog.committed, removed.r().raftLog.committed)
	require.Equal(t, []uint64{1}, c.leaders(), "the leader kept leading")
	term := removed.r().Term
	removed.tick(5 * removed.r().electionTimeout)
	require.Empty(t, removed.ready(), "a node that applied its removal does not campaign")
	require.Equal(t, term, removed.r().Term)
}

// The leader's answer to a removed node's pre-vote starts where the
// node's log can only hold the leader's entry: at its last index, or at
// the leader's commit index if its log goes further (entries past it may
// differ); a node never removed gets no such answer, nor one whose log
// ends past the leader's (it may hold a change adding it back: its
// request is handled as any other).
func TestRemovedCampaignerAppendStartsAtCommitOrItsLast(t *testing.T) {
	c := newBootstrappedCluster(t, 3, withPreVote, withCheckQuorum)
	c.campaign(1)
	c.load(1, 5, "a")
	c.proposeCC(1, v1(pb.ConfChangeRemoveNode, 3))
	leader := c.nodes[1]
	committed := leader.r().raftLog.committed
	// Entries past the commit index: 2, the other voter, does not get them.
	c.isolate(2)
	c.load(1, 5, "b")
	require.Equal(t, committed+5, leader.r().raftLog.lastIndex())
	require.Equal(t, committed, leader.r().raftLog.committed)
	termAt := func(i uint64) uint64 { t, _ := leader.r().raftLog.term(i); return t }
	for _, tt := range []struct {
		name                   string
		from, lastIdx, lastTrm uint64
		wantPrev               uint64
		wantEntries            int
	}{
		{"behind the commit index", 3, committed - 3, termAt(committed - 3), committed - 3, 3},
		{"past the commit index, ending where our log ends", 3, committed + 5, termAt(committed + 5), committed, 0},
		{"past our log", 3, committed + 6, termAt(committed + 5), 0, -1},
		{"never a member", 9, committed, termAt(committed), 0, -1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			leader.ready()
			err := leader.rn.Step(pb.Message{Type: pb.MsgPreVote, From: tt.from, To: 1, Term: leader.r().Term + 1, Index: tt.lastIdx, LogTerm: tt.lastTrm})
			require.NoError(t, err)
			apps := filterMsgs(leader.ready(), pb.MsgApp, tt.from)
			if tt.wantEntries < 0 {
				require.Empty(t, apps)
				return
			}
			require.Len(t, apps, 1)
			m := apps[0]
			require.Equal(t, tt.wantPrev, m.Index)
			require.Equal(t, termAt(tt.wantPrev), m.LogTerm)
			require.Len(t, m.Entries, tt.wantEntries)
			require.Equal(t, committed, m.Commit)
		})
	}
}

// Nodes that applied a removal refuse the removed node's votes without
// changing their term: without PreVote or CheckQuorum, a removed node that
// campaigns would otherwise depose the leader again and again.
func TestRemovedCampaignerDoesNotDisrupt(t *testing.T) {
	c := newBootstrappedCluster(t, 3)
	c.campaign(1)
	c.isolate(3)
	c.proposeCC(1, v1(pb.ConfChangeRemoveNode, 3))
	require.Equal(t, pb.ConfState{Voters: []uint64{1, 2}}, c.config(2))
	term := c.nodes[1].r().Term
	c.heal()
	removed := c.nodes[3]
	require.Equal(t, pb.ConfState{Voters: []uint64{1, 2, 3}}, c.config(3), "it missed its removal")
	for range 3 {
		require.NoError(t, removed.rn.Campaign())
		c.stabilize()
	}
	require.Greater(t, removed.r().Term, term, "it campaigned")
	require.Equal(t, []uint64{1}, c.leaders()[:1])
	require.Equal(t, term, c.nodes[1].r().Term, "the leader's term did not move")
	require.Equal(t, term, c.nodes[2].r().Term)
	require.NotEqual(t, StateLeader, removed.r().state)
}

// Removing the leader with StepDownOnRemoval: it leads until the change is
// applied, then steps down; the others elect a new leader and nothing
// committed is lost.
func TestRemoveLeaderStepsDown(t *testing.T) {
	c := newBootstrappedCluster(t, 3, func(cfg *Config) { cfg.StepDownOnRemoval = true })
	c.campaign(1)
	c.load(1, 10, "before")
	committed := c.nodes[1].r().raftLog.committed
	c.proposeCC(1, v1(pb.ConfChangeRemoveNode, 1))
	require.Equal(t, pb.ConfState{Voters: []uint64{2, 3}}, c.config(2))
	require.Equal(t, StateFollower, c.nodes[1].r().state, "stepped down once the removal applied")
	c.isolate(1)
	c.tickAll(3 * c.nodes[2].r().electionTimeout)
	leaders := c.leaders()
	require.Len(t, leaders, 1)
	require.NotEqual(t, uint64(1), leaders[0])
	c.load(leaders[0], 5, "after")
	for _, id := range []uint64{2, 3} {
		n := c.nodes[id]
		require.GreaterOrEqual(t, n.r().raftLog.committed, committed+5)
		require.Equal(t, c.nodes[1].logTerms()[:committed], n.logTerms()[:committed], "committed entries kept on %d", id)
	}
}

// Without StepDownOnRemoval a removed leader keeps leading once the
// change applies, but refuses proposals, does not count itself and stops
// heartbeating, so that the cluster moves on to a leader of the new
// configuration.
func TestRemovedLeaderWithoutStepDown(t *testing.T) {
	c := newBootstrappedCluster(t, 3)
	c.campaign(1)
	c.proposeCC(1, v1(pb.ConfChangeRemoveNode, 1))
	require.Equal(t, StateLeader, c.nodes[1].r().state)
	requireDropped(t, c.nodes[1].rn.Propose([]byte("x")), ErrProposalNodeRemoved)
	// The change is committed by the new config {2, 3}: both acked.
	require.Equal(t, c.nodes[1].r().raftLog.lastIndex(), c.nodes[2].r().raftLog.committed)

	// It sends no more heartbeats, so the others elect a leader of the new
	// configuration. (Nobody talks to the removed node any more; with
	// CheckQuorum it would also step down, having heard from no one.)
	c.nodes[1].tick(c.nodes[1].r().heartbeatTimeout)
	require.Empty(t, filterMsgs(c.nodes[1].ready(), pb.MsgHeartbeat, 0))
	c.tickAll(4 * c.nodes[2].r().electionTimeout)
	var newLeaders []uint64
	for _, id := range []uint64{2, 3} {
		if c.nodes[id].r().state == StateLeader {
			newLeaders = append(newLeaders, id)
		}
	}
	require.Len(t, newLeaders, 1)
	require.Greater(t, c.nodes[newLeaders[0]].r().Term, c.nodes[1].r().Term)
}

// With CheckQuorum, the removed leader that stopped heartbeating also steps
// down once it has heard from no voter for an election timeout.
func TestRemovedLeaderStepsDownWithCheckQuorum(t *testing.T) {
	c := newBootstrappedCluster(t, 3, withCheckQuorum)
	c.campaign(1)
	c.proposeCC(1, v1(pb.ConfChangeRemoveNode, 1))
	require.Equal(t, StateLeader, c.nodes[1].r().state)
	c.tickAll(4 * c.nodes[2].r().electionTimeout)
	require.Equal(t, StateFollower, c.nodes[1].r().state)
	require.Len(t, c.leaders(), 1)
}

// Replacing a voter in one ConfChangeV2: the cluster passes through a
// joint configuration and leaves it on its own (auto-leave).
func TestReplaceVoterThroughAutoJoint(t *testing.T) {
	for _, tr := range []pb.ConfChangeTransition{pb.ConfChangeTransitionAuto, pb.ConfChangeTransitionJointImplicit} {
		t.Run(tr.String(), func(t *testing.T) {
			c := newBootstrappedCluster(t, 3)
			c.campaign(1)
			c.addNode(4)
			cc := pb.ConfChangeV2{Transition: tr, Changes: []pb.ConfChangeSingle{
				{Type: pb.ConfChangeAddNode, NodeID: 4}, {Type: pb.ConfChangeRemoveNode, NodeID: 3},
			}}
			// Watch the configurations node 2 goes through.
			require.NoError(t, c.nodes[1].rn.ProposeConfChange(cc))
			var seen []pb.ConfState
			for round := 0; round < 50; round++ {
				cs := c.config(2)
				if len(seen) == 0 || cs.Equivalent(seen[len(seen)-1]) != nil {
					seen = append(seen, cs)
				}
				c.stabilizeOnce()
			}
			c.stabilize()
			require.Len(t, seen, 3, "old, joint, new: %v", seen)
			require.Equal(t, []uint64{1, 2, 4}, seen[1].Voters)
			require.Equal(t, []uint64{1, 2, 3}, seen[1].VotersOutgoing)
			require.True(t, seen[1].AutoLeave)
			require.Equal(t, pb.ConfState{Voters: []uint64{1, 2, 4}}, c.config(1))
			require.Equal(t, c.config(1), c.config(4))
			c.load(1, 5, "x")
			c.requireConverged(1, 2, 4)
		})
	}
}

// An explicit joint configuration stays until the application proposes
// leaving it.
func TestExplicitJointManualLeave(t *testing.T) {
	c := newBootstrappedCluster(t, 3)
	c.campaign(1)
	c.addNode(4)
	c.proposeCC(1, pb.ConfChangeV2{Transition: pb.ConfChangeTransitionJointExplicit, Changes: []pb.ConfChangeSingle{
		{Type: pb.ConfChangeAddNode, NodeID: 4}, {Type: pb.ConfChangeRemoveNode, NodeID: 3},
	}})
	c.tickAll(20)
	cs := c.config(1)
	require.Equal(t, []uint64{1, 2, 3}, cs.VotersOutgoing, "still joint")
	require.False(t, cs.AutoLeave)

	// Entering joint again or a simple change while joint is refused, with
	// the reason, and nothing is appended.
	leader := c.nodes[1]
	last := leader.r().raftLog.lastIndex()
	err := leader.rn.ProposeConfChange(v1(pb.ConfChangeAddNode, 5))
	requireDropped(t, err, ErrProposalConfChangeRefused)
	require.ErrorContains(t, err, "must transition out of joint config first")
	err = leader.rn.ProposeConfChange(pb.ConfChangeV2{Changes: []pb.ConfChangeSingle{{Type: pb.ConfChangeAddNode, NodeID: 5}}, Transition: pb.ConfChangeTransitionJointExplicit})
	requireDropped(t, err, ErrProposalConfChangeRefused)
	require.Equal(t, last, leader.r().raftLog.lastIndex(), "a refused change appends nothing")
	c.stabilize()
	require.Equal(t, cs, c.config(1))

	c.proposeCC(1, pb.ConfChangeV2{})
	require.Equal(t, pb.ConfState{Voters: []uint64{1, 2, 4}}, c.config(1))
	// Leaving when not joint is refused too.
	err = leader.rn.ProposeConfChange(pb.ConfChangeV2{})
	requireDropped(t, err, ErrProposalConfChangeRefused)
	require.ErrorContains(t, err, "not in joint state")
	c.stabilize()
	require.Equal(t, pb.ConfState{Voters: []uint64{1, 2, 4}}, c.config(1))
}

// A second conf change proposed while the first is not yet applied is
// refused with ErrProposalConfChangeRefused (nothing appended);
// DisableConfChangeValidation lets it through.
func TestConfChangeWhilePending(t *testing.T) {
	for _, disable := range []bool{false, true} {
		c := newBootstrappedCluster(t, 3, func(cfg *Config) { cfg.DisableConfChangeValidation = disable })
		c.campaign(1)
		leader := c.nodes[1]
		require.NoError(t, leader.rn.ProposeConfChange(v1(pb.ConfChangeAddLearnerNode, 4)))
		last := leader.r().raftLog.lastIndex()
		err := leader.rn.ProposeConfChange(v1(pb.ConfChangeAddLearnerNode, 5))
		if disable {
			require.NoError(t, err)
		} else {
			requireDropped(t, err, ErrProposalConfChangeRefused)
			require.ErrorContains(t, err, "possible unapplied conf change")
			require.Equal(t, last, leader.r().raftLog.lastIndex(), "a refused change appends nothing")
		}
		c.stabilize()
		want := []uint64{4}
		if disable {
			want = []uint64{4, 5}
		}
		require.Equal(t, want, c.config(1).Learners, "validation disabled: %v", disable)
		require.Equal(t, c.config(1), c.config(2))
	}
}

// In a joint configuration an entry commits only with a majority of both
// the incoming and the outgoing voters.
func TestJointConfigNeedsBothMajorities(t *testing.T) {
	c := newBootstrappedCluster(t, 3)
	c.campaign(1)
	c.addNode(4)
	c.addNode(5)
	c.proposeCC(1, pb.ConfChangeV2{Transition: pb.ConfChangeTransitionJointExplicit, Changes: []pb.ConfChangeSingle{
		{Type: pb.ConfChangeAddNode, NodeID: 4}, {Type: pb.ConfChangeAddNode, NodeID: 5},
		{Type: pb.ConfChangeRemoveNode, NodeID: 2}, {Type: pb.ConfChangeRemoveNode, NodeID: 3},
	}})
	require.Equal(t, []uint64{1, 4, 5}, c.config(1).Voters)
	require.Equal(t, []uint64{1, 2, 3}, c.config(1).VotersOutgoing)
	leader := c.nodes[1]

	for _, tt := range []struct {
		name   string
		cut    []uint64
		commit bool
	}{
		{"outgoing majority only", []uint64{4, 5}, false},
		{"incoming majority only", []uint64{2, 3}, false},
		{"both majorities", []uint64{3, 5}, true},
	} {
		for _, id := range tt.cut {
			c.isolate(id)
		}
		before := leader.r().raftLog.committed
		require.NoError(t, leader.rn.Propose([]byte(tt.name)))
		c.stabilize()
		if tt.commit {
			require.Greater(t, leader.r().raftLog.committed, before, tt.name)
		} else {
			require.Equal(t, before, leader.r().raftLog.committed, tt.name)
		}
		c.heal()
		c.tickAll(2)
	}
	// Votes need both majorities as well: 2 and 3 (and 1, cut off) can't
	// elect anyone without the incoming voters 4 and 5.
	for _, id := range []uint64{1, 4, 5} {
		c.isolate(id)
	}
	c.tickAll(5 * leader.r().electionTimeout)
	for _, id := range []uint64{2, 3} {
		require.NotEqual(t, StateLeader, c.nodes[id].r().state, "node %d can't lead without the incoming majority", id)
	}
	c.heal()
	c.isolate(1)
	c.tickAll(5 * leader.r().electionTimeout)
	require.Len(t, c.leaders(), 2, "with both majorities reachable a new leader is elected (1 is cut off and still thinks it leads)")
}

// A node restarting mid-joint restores the joint configuration from the
// ConfState in its storage.
func TestRestartMidJoint(t *testing.T) {
	cs := pb.ConfState{Voters: []uint64{1, 2, 4}, VotersOutgoing: []uint64{1, 2, 3}, LearnersNext: []uint64{3}, AutoLeave: true}
	s := NewMemoryStorage()
	require.NoError(t, s.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 10, Term: 2, ConfState: cs}}))
	rn, err := NewRawNode(testConfig(1, s))
	require.NoError(t, err)
	require.Equal(t, cs, rn.raft.confState())
	require.Equal(t, "voters=(1 2 4)&&(1 2 3) learners_next=(3) autoleave", rn.Status().Config.String())
}

// ConfChange v1 UpdateNode is accepted and changes nothing in the
// configuration; v1 and v2 entries are both applied.
func TestConfChangeV1UpdateNode(t *testing.T) {
	c := newBootstrappedCluster(t, 3)
	c.campaign(1)
	before := c.config(1)
	c.proposeCC(1, pb.ConfChange{Type: pb.ConfChangeUpdateNode, NodeID: 2, Context: []byte("new address")})
	require.Equal(t, before, c.config(1))
	ents := c.nodes[2].applied
	last := ents[len(ents)-1]
	require.Equal(t, pb.EntryConfChange, last.Type, "a v1 change travels as a v1 entry")
	c.proposeCC(1, pb.ConfChangeV2{Changes: []pb.ConfChangeSingle{{Type: pb.ConfChangeAddLearnerNode, NodeID: 7}}})
	require.Equal(t, []uint64{7}, c.config(2).Learners)
	require.Equal(t, tracker.StateProbe, c.nodes[1].r().trk.Progress[7].State, "progress appears for an added node")
}

// A leader on its way out of the configuration (a pending or applied
// change leaves it out of the incoming voters) takes no proposals but the
// leave-joint change that completes its exit. Entries appended after that
// change would make it refuse its vote to the remaining members (their
// logs would be shorter) while a joint configuration still needs it.
func TestLeavingLeaderTakesNoProposals(t *testing.T) {
	c := newBootstrappedCluster(t, 3)
	c.campaign(1)
	c.addNode(4)
	c.proposeCC(1, pb.ConfChangeV2{Transition: pb.ConfChangeTransitionJointExplicit, Changes: []pb.ConfChangeSingle{
		{Type: pb.ConfChangeAddNode, NodeID: 4}, {Type: pb.ConfChangeRemoveNode, NodeID: 1},
	}})
	leader := c.nodes[1]
	require.Equal(t, []uint64{2, 3, 4}, c.config(1).Voters)
	require.Equal(t, StateLeader, leader.r().state)
	last := leader.r().raftLog.lastIndex()
	requireDropped(t, leader.rn.Propose([]byte("x")), ErrProposalNodeRemoved)
	requireDropped(t, leader.rn.ProposeConfChange(v1(pb.ConfChangeAddLearnerNode, 5)), ErrProposalNodeRemoved)
	require.Equal(t, last, leader.r().raftLog.lastIndex(), "nothing appended")

	// Leaving the joint configuration is accepted, once.
	require.NoError(t, leader.rn.ProposeConfChange(pb.ConfChangeV2{}))
	requireDropped(t, leader.rn.ProposeConfChange(pb.ConfChangeV2{}), ErrProposalNodeRemoved, "a second leave would only be an empty entry")
	require.Equal(t, last+1, leader.r().raftLog.lastIndex())
	c.stabilize()
	require.Equal(t, pb.ConfState{Voters: []uint64{2, 3, 4}}, c.config(2))
}

// The same holds while the change that removes the leader is only
// pending: proposals after it are refused until it applies.
func TestLeaderWithPendingRemovalTakesNoProposals(t *testing.T) {
	c := newBootstrappedCluster(t, 3)
	c.campaign(1)
	leader := c.nodes[1]
	require.NoError(t, leader.rn.ProposeConfChange(v1(pb.ConfChangeRemoveNode, 1)))
	requireDropped(t, leader.rn.Propose([]byte("x")), ErrProposalNodeRemoved)
	c.stabilize()
	require.Equal(t, pb.ConfState{Voters: []uint64{2, 3}}, c.config(2))

	// A leader whose pending change keeps it in does take proposals.
	c2 := newBootstrappedCluster(t, 3)
	c2.campaign(1)
	require.NoError(t, c2.nodes[1].rn.ProposeConfChange(v1(pb.ConfChangeRemoveNode, 3)))
	require.NoError(t, c2.nodes[1].rn.Propose([]byte("x")))
}

// A leader contacts a member as soon as the conf change adding it is
// applied: the next Ready carries an append to it, without waiting for a
// tick (and the heartbeat it would bring).
func TestLeaderContactsNewMemberAtOnce(t *testing.T) {
	for _, tt := range []struct {
		name string
		typ  pb.ConfChangeType
	}{
		{"voter", pb.ConfChangeAddNode},
		{"learner", pb.ConfChangeAddLearnerNode},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCluster(t, 3)
			c.campaign(1)
			leader := c.nodes[1]
			require.False(t, leader.rn.HasReady())

			leader.rn.ApplyConfChange(pb.ConfChange{Type: tt.typ, NodeID: 4})
			require.True(t, leader.rn.HasReady())
			rd := leader.rn.Ready()
			apps := filterMsgs(rd.Messages, pb.MsgApp, 4)
			require.Len(t, apps, 1, "messages: %v", rd.Messages)
			last := leader.r().raftLog.lastIndex()
			require.Equal(t, last, apps[0].Index, "a probe at the leader's last index")
			require.Empty(t, filterMsgs(rd.Messages, pb.MsgApp, 2), "caught-up peers get nothing new")
			leader.rn.Advance(rd)
		})
	}
}

// A proposal carrying a conf change the leader cannot take is refused
// whole, with the reason: one that does not decode, or a second conf change
// in the same proposal.
func TestConfChangeProposalRefusedWhole(t *testing.T) {
	c := newBootstrappedCluster(t, 3)
	c.campaign(1)
	leader := c.nodes[1]
	last := leader.r().raftLog.lastIndex()
	add := func(id uint64) pb.Entry {
		data, err := (&pb.ConfChange{Type: pb.ConfChangeAddLearnerNode, NodeID: id}).Marshal()
		require.NoError(t, err)
		return pb.Entry{Type: pb.EntryConfChange, Data: data}
	}
	for _, tt := range []struct {
		name string
		ents []pb.Entry
		want string
	}{
		{"undecodable", []pb.Entry{{Type: pb.EntryConfChangeV2, Data: []byte{0xff, 0xff}}}, "does not decode"},
		{"two in one proposal", []pb.Entry{{Data: []byte("x")}, add(4), add(5)}, "earlier in the same proposal"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := leader.rn.Step(pb.Message{Type: pb.MsgProp, From: 1, To: 1, Entries: tt.ents})
			requireDropped(t, err, ErrProposalConfChangeRefused)
			require.ErrorContains(t, err, tt.want)
			require.Equal(t, last, leader.r().raftLog.lastIndex(), "nothing of the proposal is appended")
		})
	}
}

// A node remembers the last maxRemembered peers it saw removed, no more:
// the memory of removals stays bounded however many a long-lived node
// applies.
func TestRemovedPeersRememberedAreBounded(t *testing.T) {
	var voters []uint64
	for id := uint64(1); id <= maxRemembered+5; id++ {
		voters = append(voters, id)
	}
	n := newTestNode(t, 1, voters)
	for _, id := range voters[1:] {
		n.rn.ApplyConfChange(v1(pb.ConfChangeRemoveNode, id))
	}
	require.Len(t, n.r().seldom.removed, maxRemembered)
	for _, id := range voters[1:] {
		require.Equal(t, id > 5, n.r().wasRemoved(id), "peer %d", id)
	}
}

// A peer removed and re-added is a voter again from the re-adding entry
// on. A node that holds that entry but never heard it committed still has
// the configuration without the peer, and remembers the removal: it must
// not refuse the peer's votes for it, or the peer (whose log is the most
// up to date) and this node, the two that are left, could never elect a
// leader.
func TestReAddedPeerGetsTheVoteOfANodeHoldingItsReAdd(t *testing.T) {
	c := newBootstrappedCluster(t, 3, withPreVote)
	c.campaign(1)
	c.load(1, 2, "a")
	c.proposeCC(1, v1(pb.ConfChangeRemoveNode, 3))
	reAdd := c.nodes[1].r().raftLog.lastIndex() + 1
	// Node 2 gets the re-adding entry, never its commit.
	c.intercept = func(m *pb.Message) bool { return !(m.From == 1 && m.To == 2 && m.Commit >= reAdd) }
	c.proposeCC(1, v1(pb.ConfChangeAddNode, 3))
	c.load(1, 3, "b")
	all := pb.ConfState{Voters: []uint64{1, 2, 3}}
	require.Equal(t, all, c.config(1))
	require.Equal(t, all, c.config(3))
	require.Equal(t, pb.ConfState{Voters: []uint64{1, 2}}, c.config(2))
	require.GreaterOrEqual(t, c.nodes[2].r().raftLog.lastIndex(), reAdd, "node 2 holds the re-adding entry")
	require.Less(t, c.nodes[2].r().raftLog.committed, reAdd, "but not its commit")
	require.Contains(t, c.nodes[2].r().seldom.removed, uint64(3), "and remembers the removal")

	c.intercept = nil
	c.isolate(1)
	c.tickAll(10 * c.nodes[3].r().electionTimeout)
	require.Contains(t, c.leaders(), uint64(3), "node 3 leads with node 2's vote (node 1, cut off, still thinks it leads)")
	c.load(3, 2, "c")
	require.Equal(t, all, c.config(2), "node 2 applied the re-adding entry")
}

// A node that saw a peer removed, and lags behind the change that added it
// back, grants the re-added peer's vote when the peer's log ends past its
// own (it may hold the re-adding entry). Refusing it left three of four
// voters unable to elect anyone: 3 holds the longest log but 2 refused it
// as removed, 4 was refused by 3 (its log is longer) and 2 by 4.
func TestReAddedPeerGetsTheVoteOfANodeLackingItsReAdd(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts []func(*Config)
	}{
		{"plain", nil},
		{"pre-vote", []func(*Config){withPreVote}},
		{"pre-vote and check quorum", []func(*Config){withPreVote, withCheckQuorum}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newBootstrappedCluster(t, 4, tt.opts...)
			c.campaign(1)
			c.proposeCC(1, v1(pb.ConfChangeRemoveNode, 3))
			without3 := pb.ConfState{Voters: []uint64{1, 2, 4}}
			require.Equal(t, without3, c.config(2))
			c.isolate(2)
			c.proposeCC(1, v1(pb.ConfChangeAddNode, 3))
			c.tickAll(c.nodes[1].r().heartbeatTimeout) // the commit reaches 3
			all := pb.ConfState{Voters: []uint64{1, 2, 3, 4}}
			require.Equal(t, all, c.config(3))
			require.Equal(t, all, c.config(4))
			require.Equal(t, without3, c.config(2), "2 lacks the re-adding entry")
			require.Contains(t, c.nodes[2].r().seldom.removed, uint64(3))
			// One more entry reaches 3 only; then 1 is gone for good.
			c.cut[[2]uint64{1, 4}] = true
			require.NoError(t, c.nodes[1].rn.Propose([]byte("x")))
			c.stabilize()
			last := func(id uint64) uint64 { return c.nodes[id].r().raftLog.lastIndex() }
			require.Less(t, last(2), last(4))
			require.Less(t, last(4), last(3))
			c.heal()
			c.isolate(1)

			// Without PreVote, split votes may take a few rounds.
			var leaders []uint64
			for i := 0; i < 50*c.nodes[2].r().electionTimeout && len(leaders) == 0; i++ {
				c.tickAll(1)
				for _, id := range []uint64{2, 3, 4} {
					if c.nodes[id].r().state == StateLeader {
						leaders = append(leaders, id)
					}
				}
			}
			require.Equal(t, []uint64{3}, leaders, "only 3's log is up to date enough to win")
			c.load(3, 2, "after")
			for _, id := range []uint64{2, 4} {
				require.Equal(t, all, c.config(id), "node %d", id)
				require.Equal(t, c.nodes[3].r().raftLog.committed, c.nodes[id].r().raftLog.committed, "node %d", id)
			}
		})
	}
}

// A removed peer that a later configuration has again is forgotten, so
// that only a change that removes it again makes it removed; so is one
// that a snapshot's configuration brings back (a snapshot that then
// removes it does not count: only applied changes do).
func TestReAddedPeerIsForgotten(t *testing.T) {
	n := newTestNode(t, 1, []uint64{1, 2, 3})
	n.rn.ApplyConfChange(v1(pb.ConfChangeRemoveNode, 3))
	require.True(t, n.r().wasRemoved(3))
	n.rn.ApplyConfChange(v1(pb.ConfChangeAddNode, 3))
	require.Empty(t, n.r().seldom.removed, "re-added by a change")

	n.rn.ApplyConfChange(v1(pb.ConfChangeRemoveNode, 3))
	require.True(t, n.r().wasRemoved(3))
	require.NoError(t, n.r().restoreConfState(pb.ConfState{Voters: []uint64{1, 2, 3}}))
	require.Empty(t, n.r().seldom.removed, "re-added by a snapshot's configuration")
	require.NoError(t, n.r().restoreConfState(pb.ConfState{Voters: []uint64{1, 2}}))
	require.False(t, n.r().wasRemoved(3), "removed by a snapshot's configuration only")
}

// ApplyConfChange with a change the configuration cannot take leaves it
// as it was and returns it, where etcd raft panics (MIGRATING.md).
func TestApplyConfChangeInvalidLeavesConfig(t *testing.T) {
	n := newTestNode(t, 1, []uint64{1})
	before := n.r().confState()
	cs := n.rn.ApplyConfChange(v1(pb.ConfChangeRemoveNode, 1)) // no voter would be left
	require.Equal(t, before, *cs)
	require.Equal(t, before, n.r().confState())
}

// A node whose storage holds a configuration with members but no voter
// (learners only, or joint without incoming voters) does not start, as
// confchange.Restore refuses it; an empty one waits to learn its own.
func TestStartRefusesConfigWithoutVoters(t *testing.T) {
	for _, tt := range []struct {
		name string
		cs   pb.ConfState
	}{
		{"learners only", pb.ConfState{Learners: []uint64{1, 2}}},
		{"joint without incoming voters", pb.ConfState{VotersOutgoing: []uint64{1, 2}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := NewMemoryStorage()
			require.NoError(t, s.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 5, Term: 1, ConfState: tt.cs}}))
			_, err := NewRawNode(testConfig(1, s))
			require.Error(t, err)
		})
	}
	_, err := NewRawNode(testConfig(1, NewMemoryStorage()))
	require.NoError(t, err, "an empty configuration")
}

// A leader elected while a change that removes it is still unapplied in its
// log (here its own proposal from an earlier term) takes no proposals, as
// if it had proposed the change in this term: once the change applies and
// it steps down, the remaining voter must be able to win its vote. Had it
// appended a proposal that the other voter never received, it would refuse
// that voter as out of date, and never campaign itself: no leader for good.
func TestReelectedLeaderWithUnappliedRemovalLeavesAnElectableVoter(t *testing.T) {
	c := newBootstrappedCluster(t, 2, func(cfg *Config) { cfg.StepDownOnRemoval = true })
	n1, n2 := c.nodes[1], c.nodes[2]
	c.campaign(1)
	// 1 proposes its own removal; the append to 2 is lost.
	require.NoError(t, n1.rn.ProposeConfChange(v1(pb.ConfChangeRemoveNode, 1)))
	rm := n1.r().raftLog.lastIndex()
	c.intercept = func(*pb.Message) bool { return false }
	c.stabilize()
	c.intercept = nil
	// 2 campaigns and loses for its shorter log; 1 is elected again, its
	// appends to 2 held back.
	require.NoError(t, n2.rn.Campaign())
	c.stabilize()
	c.intercept = func(m *pb.Message) bool { return m.Type != pb.MsgApp }
	c.campaign(1)
	require.Equal(t, StateLeader, n1.r().state)
	require.Less(t, n1.r().raftLog.applied, rm, "the removal is not applied yet")
	proposeErr := n1.rn.Propose([]byte("x"))

	// 2 receives the log up to the new term's empty entry (after the
	// removal), and no commit index past the removal: it acknowledges, 1
	// commits and applies its removal and steps down.
	c.intercept = func(m *pb.Message) bool {
		if m.To != 2 || (m.Type != pb.MsgApp && m.Type != pb.MsgHeartbeat) {
			return true
		}
		if m.Type == pb.MsgApp {
			if m.Index > rm+1 {
				return false
			}
			m.Entries = m.Entries[:min(uint64(len(m.Entries)), rm+1-m.Index)]
		}
		m.Commit = min(m.Commit, rm-1)
		return true
	}
	for i := 0; i < 10 && n1.r().raftLog.applied < rm; i++ {
		c.tickAll(1)
	}
	require.GreaterOrEqual(t, n1.r().raftLog.applied, rm, "1 applied its removal")
	require.Equal(t, StateFollower, n1.r().state)
	require.Equal(t, []uint64{1, 2}, c.config(2).Voters, "2 has not applied the removal: it needs 1's vote")

	c.intercept = nil
	c.tickAll(5 * 2 * 10) // five times the longest election timeout
	require.Equal(t, StateLeader, n2.r().state, "the remaining voter is elected")
	requireDropped(t, proposeErr, ErrProposalNodeRemoved)
}

// A leader elected while a conf change is unapplied in its log refuses
// proposals exactly when a leader that proposed that change itself would:
// when the change leaves it out of the incoming voters (removed, demoted,
// or only an outgoing voter of a joint configuration).
func TestElectedLeaderWithUnappliedChangeTakesProposalsAsItsProposer(t *testing.T) {
	enter := func(tr pb.ConfChangeTransition, ccs ...pb.ConfChangeSingle) pb.ConfChangeV2 {
		return pb.ConfChangeV2{Transition: tr, Changes: ccs}
	}
	single := func(typ pb.ConfChangeType, id uint64) pb.ConfChangeV2 {
		return pb.ConfChangeV2{Changes: []pb.ConfChangeSingle{{Type: typ, NodeID: id}}}
	}
	add4, rm1, rm3 := pb.ConfChangeSingle{Type: pb.ConfChangeAddNode, NodeID: 4},
		pb.ConfChangeSingle{Type: pb.ConfChangeRemoveNode, NodeID: 1},
		pb.ConfChangeSingle{Type: pb.ConfChangeRemoveNode, NodeID: 3}
	tests := []struct {
		name string
		cs   pb.ConfState // the configuration; {1, 2, 3} if empty
		// changes are in the log, unapplied, when 1 is elected.
		changes []pb.ConfChangeI
		refused bool
	}{
		{name: "its removal (v1)", changes: []pb.ConfChangeI{v1(pb.ConfChangeRemoveNode, 1)}, refused: true},
		{name: "its demotion", changes: []pb.ConfChangeI{single(pb.ConfChangeAddLearnerNode, 1)}, refused: true},
		{name: "auto-leave joint without it in the incoming half", changes: []pb.ConfChangeI{enter(pb.ConfChangeTransitionAuto, add4, rm1)}, refused: true},
		{name: "explicit joint without it, and its leave", changes: []pb.ConfChangeI{enter(pb.ConfChangeTransitionJointExplicit, add4, rm1), pb.ConfChangeV2{}}, refused: true},
		{name: "its removal, then another node's", changes: []pb.ConfChangeI{v1(pb.ConfChangeRemoveNode, 1), v1(pb.ConfChangeRemoveNode, 3)}, refused: true},
		{name: "its removal, then its return (refused until the removal applies)", changes: []pb.ConfChangeI{v1(pb.ConfChangeRemoveNode, 1), v1(pb.ConfChangeAddNode, 1)}, refused: true},
		{name: "another node's removal (v1)", changes: []pb.ConfChangeI{v1(pb.ConfChangeRemoveNode, 3)}},
		{name: "another node's demotion", changes: []pb.ConfChangeI{single(pb.ConfChangeAddLearnerNode, 3)}},
		{name: "auto-leave joint keeping it", changes: []pb.ConfChangeI{enter(pb.ConfChangeTransitionAuto, add4, rm3)}},
		{
			// The application applied the change already (before the
			// Advance or apply report that moves the applied index): it
			// fails on replay and changes nothing.
			name:    "joint change the configuration holds already",
			cs:      pb.ConfState{Voters: []uint64{1, 2, 4}, VotersOutgoing: []uint64{1, 2, 3}},
			changes: []pb.ConfChangeI{enter(pb.ConfChangeTransitionJointExplicit, add4, rm3)},
		},
	}
	newLeader := func(t *testing.T, cs pb.ConfState, changes []pb.ConfChangeI) *testNode {
		s := NewMemoryStorage()
		require.NoError(t, s.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 1, Term: 1, ConfState: cs}}))
		for i, cc := range changes {
			typ, data, err := pb.MarshalConfChange(cc)
			require.NoError(t, err)
			require.NoError(t, s.Append([]pb.Entry{{Index: uint64(2 + i), Term: 1, Type: typ, Data: data}}))
		}
		rn, err := NewRawNode(testConfig(1, s))
		require.NoError(t, err)
		n := &testNode{t: t, rn: rn, storage: s}
		t.Cleanup(func() { checkNodeInvariants(t, n) })
		n.makeLeader()
		return n
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := tt.cs
			if len(cs.Voters) == 0 {
				cs = pb.ConfState{Voters: []uint64{1, 2, 3}}
			}
			n := newLeader(t, cs, tt.changes)
			require.Less(t, n.r().raftLog.applied, uint64(1+len(tt.changes)), "the changes are not applied")
			err := n.rn.Propose([]byte("x"))
			if tt.refused {
				requireDropped(t, err, ErrProposalNodeRemoved)
			} else {
				require.NoError(t, err)
			}
			if len(tt.changes) != 1 || len(tt.cs.Voters) > 0 {
				return
			}
			// The leader that proposes the change itself answers the same.
			p := newLeader(t, cs, nil)
			require.NoError(t, p.rn.ProposeConfChange(tt.changes[0]))
			err = p.rn.Propose([]byte("x"))
			if tt.refused {
				requireDropped(t, err, ErrProposalNodeRemoved, "proposed by the leader itself")
			} else {
				require.NoError(t, err, "proposed by the leader itself")
			}
		})
	}
}
