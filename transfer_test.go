package raft

import (
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
)

// Transfer to an up-to-date follower: it campaigns at once (skipping
// PreVote and leases) and wins in the next term, with a single election.
func TestTransferToUpToDateFollower(t *testing.T) {
	for _, opts := range [][]func(*Config){nil, {withPreVote, withCheckQuorum}} {
		c := newTestCluster(t, 3, opts...)
		c.campaign(1)
		c.load(1, 3, "w")
		term := c.nodes[1].r().Term
		c.nodes[1].rn.TransferLeader(3)
		c.stabilize()
		require.Equal(t, []uint64{3}, c.leaders())
		require.Equal(t, term+1, c.nodes[3].r().Term, "one election, no term gap")
		require.Equal(t, 1, c.delivered[pb.MsgTimeoutNow])
		require.Equal(t, uint64(3), c.nodes[1].r().lead)
		c.load(3, 2, "after")
	}
}

// Transfer to a lagging follower: the leader first brings its log up to
// date, then sends MsgTimeoutNow.
func TestTransferToLaggingFollower(t *testing.T) {
	c := newTestCluster(t, 3)
	c.campaign(1)
	c.isolate(3)
	c.load(1, 10, "w")
	c.heal()
	leader := c.nodes[1]
	require.Less(t, leader.r().trk.Progress[3].Match, leader.r().raftLog.lastIndex())
	var order []pb.MessageType
	c.intercept = func(m *pb.Message) bool {
		if m.To == 3 && (m.Type == pb.MsgApp || m.Type == pb.MsgTimeoutNow) {
			order = append(order, m.Type)
		}
		return true
	}
	leader.rn.TransferLeader(3)
	require.Equal(t, uint64(3), leader.r().transferee())
	requireDropped(t, leader.rn.Propose([]byte("x")), ErrProposalLeaderTransfer, "no proposals during a transfer")
	c.stabilize()
	require.Equal(t, []uint64{3}, c.leaders())
	require.Equal(t, pb.MsgTimeoutNow, order[len(order)-1], "timeout-now only after the catch-up appends")
	require.Contains(t, order, pb.MsgApp)
}

// A transfer to a node that does not answer aborts after an election
// timeout, and the leader takes proposals again.
func TestTransferToPartitionedFollowerAborts(t *testing.T) {
	c := newTestCluster(t, 3)
	c.campaign(1)
	c.isolate(3)
	leader := c.nodes[1]
	leader.rn.TransferLeader(3)
	require.Equal(t, uint64(3), leader.r().transferee())
	require.Equal(t, uint64(3), leader.rn.BasicStatus().LeadTransferee)
	c.tickAll(leader.r().electionTimeout)
	require.Equal(t, None, leader.r().transferee())
	require.Equal(t, StateLeader, leader.r().state)
	require.NoError(t, leader.rn.Propose([]byte("resumed")))
}

// Transfers to the leader itself or to a learner are ignored; a second
// transfer replaces the first; removing the transferee aborts it.
func TestTransferRequestsIgnoredOrReplaced(t *testing.T) {
	c := newBootstrappedCluster(t, 3)
	c.campaign(1)
	leader := c.nodes[1]
	c.addNode(4)
	c.proposeCC(1, v1(pb.ConfChangeAddLearnerNode, 4))

	leader.rn.TransferLeader(1)
	require.Equal(t, None, leader.r().transferee(), "to itself")
	leader.rn.TransferLeader(4)
	require.Equal(t, None, leader.r().transferee(), "to a learner")

	c.isolate(2)
	c.isolate(3)
	leader.rn.TransferLeader(2)
	require.Equal(t, uint64(2), leader.r().transferee())
	c.stabilize() // its timeout-now is lost
	leader.rn.TransferLeader(3)
	require.Equal(t, uint64(3), leader.r().transferee(), "the second request wins")
	c.stabilize() // and so is this one
	c.heal()
	c.stabilize()
	require.Equal(t, StateLeader, c.nodes[1].r().state, "the timeout-now was lost")
	// The next heartbeat response from the caught-up transferee brings
	// another.
	c.tickAll(1)
	require.Equal(t, []uint64{3}, c.leaders())
}

// Removing the transferee, or demoting it to learner, aborts the transfer:
// a learner ignores the timeout-now, and the leader would refuse proposals
// until the election timeout ended it.
func TestTransferAbortedWhenTransfereeNoLongerVotes(t *testing.T) {
	for _, tt := range []struct {
		name string
		cc   pb.ConfChange
		want pb.ConfState
	}{
		{"removed", v1(pb.ConfChangeRemoveNode, 3), pb.ConfState{Voters: []uint64{1, 2}}},
		{"demoted to learner", v1(pb.ConfChangeAddLearnerNode, 3), pb.ConfState{Voters: []uint64{1, 2}, Learners: []uint64{3}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newBootstrappedCluster(t, 3)
			c.campaign(1)
			leader := c.nodes[1]
			// The change is proposed and held back; then a transfer to 3
			// starts (3 lags, so the leader catches it up first).
			c.intercept = func(m *pb.Message) bool { return m.Type != pb.MsgApp }
			require.NoError(t, leader.rn.ProposeConfChange(tt.cc))
			c.stabilize()
			leader.rn.TransferLeader(3)
			require.Equal(t, uint64(3), leader.r().transferee())
			// The change commits and applies before 3 gets its timeout-now.
			c.intercept = func(m *pb.Message) bool { return m.Type != pb.MsgTimeoutNow }
			c.stabilize()
			require.Equal(t, tt.want, c.config(1))
			require.Equal(t, None, leader.r().transferee())
			require.Equal(t, StateLeader, leader.r().state)
			require.NoError(t, leader.rn.Propose([]byte("resumed")))
		})
	}
}

// A follower forwards a transfer request to its leader.
func TestTransferRequestForwardedByFollower(t *testing.T) {
	c := newTestCluster(t, 3)
	c.campaign(1)
	c.nodes[2].rn.TransferLeader(2)
	c.stabilize()
	require.Equal(t, []uint64{2}, c.leaders())
	require.Equal(t, 1, c.delivered[pb.MsgTransferLeader])
}

// A follower asked to hand leadership to the current leader does nothing
// (as the leader itself does): forwarded, the request would reach the
// leader claiming to come from it, and be refused as invalid.
func TestTransferToLeaderAskedOfFollower(t *testing.T) {
	c := newTestCluster(t, 3)
	c.campaign(1)
	c.nodes[2].rn.TransferLeader(1)
	require.Empty(t, filterMsgs(c.nodes[2].ready(), pb.MsgTransferLeader, 0))
	c.stabilize()
	require.Equal(t, []uint64{1}, c.leaders())
	require.Zero(t, c.delivered[pb.MsgTransferLeader])
}

// TransferLeader(None) names no transferee: every node does nothing with
// it. A follower forwarding it would make itself the transferee (the
// forwarded request's sender).
func TestTransferToNoneDoesNothing(t *testing.T) {
	c := newTestCluster(t, 3)
	c.campaign(1)
	term := c.nodes[1].r().Term
	for _, id := range []uint64{2, 1} {
		c.nodes[id].rn.TransferLeader(None)
		require.Empty(t, filterMsgs(c.nodes[id].ready(), pb.MsgTransferLeader, 0), "node %x", id)
		c.stabilize()
		require.Equal(t, []uint64{1}, c.leaders())
		require.Equal(t, term, c.nodes[2].r().Term)
		require.Equal(t, None, c.nodes[1].r().transferee())
	}
	require.Zero(t, c.delivered[pb.MsgTransferLeader])
	require.Zero(t, c.delivered[pb.MsgTimeoutNow])
}

// ForgetLeader: with CheckQuorum a follower refuses votes while it has a
// leader (the lease); once it forgets the leader it grants them at once.
func TestForgetLeader(t *testing.T) {
	for _, tt := range []struct {
		name       string
		opts       []func(*Config)
		leaseBlock bool
	}{
		{"plain", nil, false},
		{"check quorum", []func(*Config){withCheckQuorum}, true},
		{"pre-vote and check quorum", []func(*Config){withPreVote, withCheckQuorum}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCluster(t, 3, tt.opts...)
			c.campaign(1)
			term := c.nodes[1].r().Term
			// 3 campaigns while 2 has a live leader.
			c.isolate(1)
			c.campaign(3)
			if tt.leaseBlock {
				require.NotEqual(t, StateLeader, c.nodes[3].r().state, "the lease holds on 2")
				require.NoError(t, c.nodes[2].rn.ForgetLeader())
				require.Equal(t, None, c.nodes[2].r().lead)
				c.campaign(3)
			}
			require.Equal(t, StateLeader, c.nodes[3].r().state)
			require.Greater(t, c.nodes[3].r().Term, term)
		})
	}
}

// ForgetLeader does nothing on leaders and candidates.
func TestForgetLeaderNoOpOnLeaderAndCandidate(t *testing.T) {
	c := newTestCluster(t, 3)
	c.campaign(1)
	require.NoError(t, c.nodes[1].rn.ForgetLeader())
	require.Equal(t, StateLeader, c.nodes[1].r().state)
	require.Equal(t, uint64(1), c.nodes[1].r().lead)

	n := newTestNode(t, 1, []uint64{1, 2, 3})
	require.NoError(t, n.rn.Campaign())
	require.NoError(t, n.rn.ForgetLeader())
	require.Equal(t, StateCandidate, n.r().state)
}

// The transferee's vote requests carry the transfer CampaignType in their
// Context, the value etcd raft nodes look for too, so that voters in a
// mixed cluster grant them within a leader lease.
func TestTransferVoteCarriesCampaignType(t *testing.T) {
	c := newTestCluster(t, 3, withCheckQuorum)
	c.campaign(1)
	var contexts []string
	c.intercept = func(m *pb.Message) bool {
		if m.Type == pb.MsgVote {
			contexts = append(contexts, string(m.Context))
		}
		return true
	}
	c.nodes[1].rn.TransferLeader(3)
	c.stabilize()
	require.Equal(t, []uint64{3}, c.leaders())
	require.Equal(t, []string{"CampaignTransfer", "CampaignTransfer"}, contexts)
	var typ CampaignType = campaignTransfer
	require.Equal(t, CampaignType("CampaignTransfer"), typ)
}

// With ReadOnlyLeaseBased, ForgetLeader does nothing: the leader answers
// reads from its lease, which relies on followers refusing votes for an
// election timeout after hearing from it.
func TestForgetLeaderKeepsLeaseBasedReadsSafe(t *testing.T) {
	c := newTestCluster(t, 3, withPreVote, withCheckQuorum, func(cfg *Config) { cfg.ReadOnlyOption = ReadOnlyLeaseBased })
	c.campaign(1)
	c.tickAll(1) // a heartbeat round starts the lease
	require.True(t, c.nodes[1].r().leaseValid())

	c.isolate(1)
	require.NoError(t, c.nodes[2].rn.ForgetLeader())
	require.Equal(t, uint64(1), c.nodes[2].r().lead, "the leader is not forgotten")
	c.campaign(3)
	require.NotEqual(t, StateLeader, c.nodes[3].r().state, "no new leader while the old one's lease may hold")
	require.True(t, c.nodes[1].r().leaseValid())
}
