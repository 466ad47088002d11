package raft

import (
	"github.com/raftcore/raft/quorum"
	pb "github.com/raftcore/raft/raftpb"
)

// hup starts an election (or pre-election) if this node may campaign.
func (r *raft) hup(t CampaignType) {
	if r.state == StateLeader {
		r.logger().Debugf("node %x: already leader, no election needed", r.id)
		return
	}
	if !r.promotable() {
		r.logger().Warningf("node %x: not a voter (or a snapshot is pending), not campaigning", r.id)
		return
	}
	if t != campaignTransfer && r.leaseReads && r.voteLease > 0 {
		// The leader serves reads from its lease, trusting that no voter
		// votes within an election timeout of hearing from it (or of
		// restarting: it may have promised before); this node's own
		// vote for itself would break that (and with another voter whose
		// promise has run out, elect a leader behind the old one's
		// back). The election timer never fires this early. Not even a
		// sole voter: a leader of an older configuration, which has not
		// applied the change that left this node alone, may still count
		// on its promise.
		r.logger().Infof("node %x: with lease-based reads, not campaigning within its promise to the last leader it heard from (%d ticks left)", r.id, r.voteLease)
		return
	}
	if r.hasUnappliedConfChanges() {
		// A committed but unapplied conf change may change who votes:
		// campaigning under the old config could elect a leader the new
		// config does not accept.
		r.logger().Warningf("node %x: committed conf changes await applying, not campaigning at term %d", r.id, r.Term)
		return
	}
	r.logger().Infof("node %x: election timeout at term %d, campaigning", r.id, r.Term)
	r.campaign(t)
}

// hasUnappliedConfChanges reports whether a conf change entry lies in
// (applied, committed].
//
// The application may compact entries it applied before reporting them
// applied (Advance, or the MsgStorageApplyResp): the rule is only to
// compact what it applied, and it applied their conf changes with
// ApplyConfChange. So the scan starts at the first entry storage still
// holds when that is later than applied+1.
func (r *raft) hasUnappliedConfChanges() bool {
	if r.raftLog.hasNextOrInProgressSnapshot() {
		return false
	}
	lo, hi := r.unappliedFrom(), r.raftLog.committed+1
	found := false
	err := r.scanLog(lo, hi, func(ents []pb.Entry) bool {
		for i := range ents {
			if ents[i].Type == pb.EntryConfChange || ents[i].Type == pb.EntryConfChangeV2 {
				found = true
				return false
			}
		}
		return true
	})
	if err != nil {
		// Storage contradicts itself (its first index is at or before
		// lo, yet lo is compacted): refuse to campaign rather than guess.
		r.logger().Errorf("node %x: reading committed entries [%d,%d) to look for conf changes: %v", r.id, lo, hi, err)
		return true
	}
	return found
}

// unappliedFrom is the first entry not yet applied that the log still
// holds: the application may compact what it applied before reporting it
// (see hasUnappliedConfChanges).
func (r *raft) unappliedFrom() uint64 {
	return max(r.raftLog.applied+1, r.raftLog.firstIndex())
}

// scanLog calls fn with the entries of [lo, hi) in order, a page at a
// time so that a long backlog is not loaded at once, until fn returns
// false.
func (r *raft) scanLog(lo, hi uint64, fn func(ents []pb.Entry) bool) error {
	const pageSize = 64 << 10
	for lo < hi {
		ents, err := r.raftLog.slice(lo, hi, pageSize)
		if err != nil {
			return err
		}
		if !fn(ents) {
			return nil
		}
		lo += uint64(len(ents))
	}
	return nil
}

// campaign asks every voter for its vote; this node votes for itself
// through the same path as the others, once its vote is durable.
func (r *raft) campaign(t CampaignType) {
	if r.Term >= maxTerm-1 {
		// The campaign's term (a pre-vote's too) would be one its peers
		// refuse, and near the end of the range Term+1 would wrap to 0.
		// Only a term read from local storage gets here: the network
		// cannot raise the term this far (validateMessage).
		r.logger().Errorf("node %x: term %d leaves no room for another campaign (terms stop below %d), not campaigning", r.id, r.Term, maxTerm)
		return
	}
	var term uint64
	var voteMsg pb.MessageType
	if t == campaignPreElection {
		r.becomePreCandidate()
		voteMsg = pb.MsgPreVote
		// A pre-vote asks about the term we would campaign in.
		term = r.Term + 1
	} else {
		r.becomeCandidate()
		voteMsg = pb.MsgVote
		term = r.Term
	}
	last := r.raftLog.lastEntryID()
	var ctx []byte
	if t == campaignTransfer {
		ctx = []byte(t)
	}
	for _, id := range r.trk.VoterNodes() {
		if id == r.id {
			r.send(pb.Message{To: id, Term: term, Type: voteRespMsgType(voteMsg)})
			continue
		}
		r.logger().Infof("node %x (last term %d index %d): asking for %s from %x at term %d",
			r.id, last.term, last.index, voteMsg, id, r.Term)
		r.send(pb.Message{To: id, Term: term, Type: voteMsg, Index: last.index, LogTerm: last.term, Context: ctx})
	}
}

func voteRespMsgType(t pb.MessageType) pb.MessageType {
	if t == pb.MsgPreVote {
		return pb.MsgPreVoteResp
	}
	return pb.MsgVoteResp
}

// handleVoteRequest grants or rejects a (pre-)vote. The term rules have
// already run: m.Term >= r.Term, and for a real vote m.Term == r.Term.
func (r *raft) handleVoteRequest(m pb.Message) {
	// We may vote for the candidate if we already voted for it (a retried
	// request), or if we have not voted and know no leader this term. A
	// pre-vote for a later term may always be granted: it changes nothing
	// here.
	// Within a leader's lease nothing is granted (the term rules dropped
	// such a request from a later term; one of this term is refused).
	canVote := mutationDoubleVote || !r.inVoteLease(m) && (r.Vote == m.From ||
		(r.Vote == None && r.lead == None) ||
		(m.Type == pb.MsgPreVote && m.Term > r.Term))
	candidateLast := entryID{term: m.LogTerm, index: m.Index}
	if canVote && (mutationAnyLog || r.raftLog.isUpToDate(candidateLast)) {
		r.logger().Infof("node %x (last term %d index %d, vote %x): granting %s to %x (last term %d index %d) at term %d",
			r.id, r.raftLog.lastEntryID().term, r.raftLog.lastIndex(), r.Vote, m.Type, m.From, m.LogTerm, m.Index, r.Term)
		// The response carries the candidate's term, not ours: for a
		// pre-vote ours may be lower, and the pre-candidate must not take
		// the response as stale.
		r.send(pb.Message{To: m.From, Term: m.Term, Type: voteRespMsgType(m.Type)})
		if m.Type == pb.MsgVote {
			r.electionElapsed = 0
			r.Vote = m.From
		}
		return
	}
	r.logger().Infof("node %x (last term %d index %d, vote %x): refusing %s to %x (last term %d index %d) at term %d",
		r.id, r.raftLog.lastEntryID().term, r.raftLog.lastIndex(), r.Vote, m.Type, m.From, m.LogTerm, m.Index, r.Term)
	if r.Term == 0 {
		// Only a pre-vote reaches a node still at term 0 (storage with a
		// snapshot or entries but no HardState) without raising its term.
		// A refusal carries the refuser's term, and one below the
		// pre-candidate's is ignored there anyway; term 0 cannot be sent.
		return
	}
	r.send(pb.Message{To: m.From, Term: r.Term, Type: voteRespMsgType(m.Type), Reject: true})
}

// inVoteLease reports whether this node, with CheckQuorum, must not grant
// m, a vote or pre-vote request: it leads, or it heard from a leader less
// than an election timeout ago (voteLease). Knowing a leader (lead) is not
// the test: a node forgets its leader when a message of a later term
// arrives (even a late refusal of its own pre-vote) or when it starts a
// pre-election, and a vote granted then, within the leader's lease, could
// elect another leader while the first still answers reads from its lease.
// A leader transfer's campaign is granted all the same: the leader asked
// for it, and holds no lease for the rest of its term (leaseValid).
func (r *raft) inVoteLease(m pb.Message) bool {
	if !r.checkQuorum || string(m.Context) == string(campaignTransfer) {
		return false
	}
	return r.state == StateLeader || r.voteLease > 0
}

// handleVoteResponse counts a vote; a won pre-election starts the real
// election, a won election makes this node leader, a lost one a follower.
func (r *raft) handleVoteResponse(m pb.Message) {
	want := pb.MsgVoteResp
	if r.state == StatePreCandidate {
		want = pb.MsgPreVoteResp
	}
	if m.Type != want {
		return // a response to a round that is over
	}
	r.trk.RecordVote(m.From, !m.Reject)
	granted, rejected, res := r.trk.TallyVotes()
	r.logger().Infof("node %x: %d granted and %d refused so far (%s)", r.id, granted, rejected, m.Type)
	switch res {
	case quorum.VoteWon:
		if r.state == StatePreCandidate {
			r.campaign(campaignElection)
			return
		}
		r.becomeLeader()
		r.bcastAppend()
	case quorum.VoteLost:
		// A rejecting pre-vote at a higher term also lands here with our
		// own term: we stay in our term and wait for the leader.
		r.becomeFollower(r.Term, None)
	}
}

// CampaignType tells how an election was started. It is a string so that
// it can ride in a vote request's Context as is: a vote request whose
// Context is the transfer campaign's name was started by a leader transfer.
type CampaignType string

const (
	// campaignPreElection runs a pre-vote round first (PreVote).
	campaignPreElection CampaignType = "CampaignPreElection"
	// campaignElection is a normal election.
	campaignElection CampaignType = "CampaignElection"
	// campaignTransfer is an election forced by a leader transfer: voters
	// grant it even within a leader lease. The type rides in the vote
	// request's Context.
	campaignTransfer CampaignType = "CampaignTransfer"
)
