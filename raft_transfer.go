package raft

import (
	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/tracker"
)

// handleTransferLeader starts a leadership transfer to m.From (the
// transferee), or restarts one aimed elsewhere.
func (r *raft) handleTransferLeader(m pb.Message, pr *tracker.Progress) {
	if pr.IsLearner {
		r.logger().Debugf("node %x: learners cannot take leadership, ignoring transfer", r.id)
		return
	}
	transferee := m.From
	if last := r.leadTransferee; last != None {
		if last == transferee {
			r.logger().Infof("node %x (term %d): transfer to %x already under way (request for %x)",
				r.id, r.Term, transferee, transferee)
			return
		}
		r.abortLeaderTransfer()
		r.logger().Infof("node %x (term %d): abandoning transfer to %x for a new one", r.id, r.Term, last)
	}
	if transferee == r.id {
		r.logger().Debugf("node %x: transfer to the current leader itself, nothing to do", r.id)
		return
	}
	r.logger().Infof("node %x (term %d): handing leadership to %x", r.id, r.Term, transferee)
	// The transfer must finish within an election timeout.
	r.electionElapsed = 0
	r.leadTransferee = transferee
	if pr.Match == r.raftLog.lastIndex() {
		r.sendTimeoutNow(transferee)
		r.logger().Infof("node %x: %x is caught up, sending it timeout-now", r.id, transferee)
	} else {
		r.sendAppend(transferee)
	}
}

// sendTimeoutNow tells the transferee to campaign at once. Its campaign
// ignores the followers' promises, and may start however late the message
// arrives: no lease for the rest of this term (leaseGivenUp).
func (r *raft) sendTimeoutNow(to uint64) {
	r.leaseGivenUp = true
	r.leaseAcks = nil
	r.send(pb.Message{To: to, Type: pb.MsgTimeoutNow})
}

// abortLeaderTransfer ends the transfer under way, if any. A node that
// does not lead has none: its leaderState is gone.
func (r *raft) abortLeaderTransfer() {
	if r.leaderState == nil || r.leadTransferee == None {
		return
	}
	// If a timeout-now went out, the lease stays given up
	// (leaseGivenUp): the transferee may have it yet, or get another, and
	// win votes that ignore leases.
	r.leadTransferee = None
}

// transferee returns the node the leader is handing leadership to, or None
// (always None when this node does not lead).
func (r *raft) transferee() uint64 {
	if r.leaderState == nil {
		return None
	}
	return r.leadTransferee
}

// forgetLeader makes a follower forget its leader, so that (with
// CheckQuorum) it may grant votes at once instead of waiting for the lease
// to run out.
func (r *raft) forgetLeader() {
	if r.state != StateFollower {
		return
	}
	if r.leaseReads {
		// The leader serves reads from its lease, trusting that no
		// follower votes within an election timeout of hearing from it:
		// forgetting it would let a new leader be elected behind its
		// back.
		r.logger().Infof("node %x: not forgetting leader %x with lease-based reads", r.id, r.lead)
		return
	}
	r.voteLease = 0
	if r.lead == None {
		return
	}
	r.logger().Infof("node %x: forgetting leader %x at term %d", r.id, r.lead, r.Term)
	r.lead = None
}
