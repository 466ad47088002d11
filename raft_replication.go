package raft

import (
	"fmt"
	"slices"

	"github.com/raftcore/raft/invariants"
	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/tracker"
)

// handleProposal appends a proposal on the leader and replicates it.
func (r *raft) handleProposal(m pb.Message) error {
	if len(m.Entries) == 0 {
		return fmt.Errorf("%w: proposal from %x carries no entries", ErrInvalidMessage, m.From)
	}
	if r.trk.Progress[r.id] == nil {
		// This leader was removed from the configuration; it only keeps
		// leading until the change that removed it is applied.
		return ErrProposalNodeRemoved
	}
	if r.leadTransferee != None {
		r.logger().Debugf("node %x (term %d): handing leadership to %x, dropping proposal", r.id, r.Term, r.leadTransferee)
		return ErrProposalLeaderTransfer
	}
	if r.leavingConfig() && !r.acceptableLeaveJoint(m.Entries) {
		// A leader on its way out of the configuration takes nothing but
		// the change that completes its exit. Entries it appended after
		// that change could never commit without it, yet would make it
		// refuse its vote to the members that remain (their logs would be
		// shorter), and once it stops leading it never campaigns: a joint
		// configuration that still needs its vote would be stuck.
		r.logger().Debugf("node %x (term %d): leaving the configuration, dropping proposal", r.id, r.Term)
		return ErrProposalNodeRemoved
	}
	if id, ok := confChangeLocalThread(m.Entries); ok {
		return &confChangeRefused{reason: fmt.Sprintf("names the local storage thread ID %x as a node", id)}
	}
	if err := r.refuseConfChanges(m.Entries); err != nil {
		r.logger().Infof("node %x: %v (config %s)", r.id, err, r.trk.Config)
		return err
	}
	for i := range m.Entries {
		r.vetConfChange(&m.Entries[i], r.raftLog.lastIndex()+uint64(i)+1)
	}
	if !r.appendEntry(m.Entries...) {
		return ErrProposalTooLarge
	}
	r.bcastAppend()
	return nil
}

// appendEntry appends entries of the current term to the leader's log. It
// returns false (and appends nothing) if they would exceed the
// uncommitted-size limit. The leader acknowledges the entries to itself
// once they are durable. es is not written: the log's copies get their
// index and term.
func (r *raft) appendEntry(es ...pb.Entry) bool {
	if !r.increaseUncommittedSize(es) {
		r.logger().Warningf("node %x: uncommitted-size limit reached, dropping proposal", r.id)
		return false
	}
	last := r.raftLog.appendNew(r.Term, es)
	r.send(pb.Message{To: r.id, Type: pb.MsgAppResp, Index: last})
	return true
}

// increaseUncommittedSize accounts for ents in the uncommitted size, unless
// that would pass the limit. An empty payload is always accepted (the
// leader's empty entry), and so is any batch while nothing is uncommitted,
// so that a single large proposal cannot be refused forever.
func (r *raft) increaseUncommittedSize(ents []pb.Entry) bool {
	s := pb.PayloadsSize(ents)
	if r.uncommittedSize > 0 && s > 0 && r.uncommittedSize+s > r.maxUncommittedSize {
		return false
	}
	r.uncommittedSize += s
	return true
}

// reduceUncommittedSize releases s bytes of payload that committed; it is
// called with the payload size of the entries handed out for applying.
func (r *raft) reduceUncommittedSize(s uint64) {
	if r.leaderState == nil {
		return // only a leader counts what is uncommitted
	}
	r.uncommittedSize -= min(s, r.uncommittedSize)
}

// maybeCommit advances the commit index to what a quorum has acknowledged,
// if that entry is of the current term. It reports whether it moved.
func (r *raft) maybeCommit() bool {
	at := entryID{term: r.Term, index: r.trk.Committed()}
	if r.state != StateLeader {
		return r.raftLog.maybeCommit(at)
	}
	// The leader knows where its term starts in its log, so the term of the
	// entry at the quorum's index needs no lookup (Storage's, often).
	if at.index <= r.raftLog.committed {
		return false
	}
	ofTerm := at.index >= r.termStart && at.index <= r.raftLog.lastIndex()
	if invariants.Enabled && ofTerm != r.raftLog.matchTerm(at) {
		panic(fmt.Sprintf("raft: invariant: leader of term %d starting at index %d: entry %d of this term is %t by termStart, %t in the log",
			r.Term, r.termStart, at.index, ofTerm, !ofTerm))
	}
	if !ofTerm {
		return false
	}
	r.raftLog.commitTo(at.index)
	return true
}

// bcastAppend sends appends to every peer that is not paused.
func (r *raft) bcastAppend() {
	r.reserveMsgs(len(r.trk.Progress) - 1)
	r.trk.Visit(func(id uint64, _ *tracker.Progress) {
		if id != r.id {
			r.sendAppend(id)
		}
	})
}

// sendAppend sends to peer `to` the entries it is missing, or a snapshot if
// they were compacted away. It sends an empty append (carrying the commit
// index) when there is nothing new. It reports whether a message was sent.
func (r *raft) sendAppend(to uint64) bool { return r.maybeSendAppend(to, true) }

func (r *raft) maybeSendAppend(to uint64, sendIfEmpty bool) bool {
	pr := r.trk.Progress[to]
	if pr == nil || pr.IsPaused() {
		return false
	}
	prevIndex := pr.Next - 1
	prevTerm, errt := r.raftLog.term(prevIndex)
	ents, erre := r.raftLog.entries(pr.Next, r.maxMsgSize)
	if errt != nil || erre != nil {
		// The entries the peer needs were compacted away.
		return r.maybeSendSnapshot(to, pr)
	}
	if len(ents) == 0 && !sendIfEmpty {
		return false
	}
	if !r.coalesceAppend(to, pr, prevIndex, prevTerm, ents) {
		r.send(pb.Message{
			To:      to,
			Type:    pb.MsgApp,
			Index:   prevIndex,
			LogTerm: prevTerm,
			Entries: ents,
			Commit:  r.raftLog.committed,
		})
		if pr.State == tracker.StateReplicate && len(ents) > 0 {
			r.noteQueuedAppend(to, ents)
		}
	}
	// Recorded as its own append even when merged (see raft_coalesce.go).
	pr.SentEntries(len(ents), pb.PayloadsSize(ents))
	pr.SentCommit(r.raftLog.committed)
	return true
}

// bcastHeartbeat sends heartbeats to every peer. A leader that is no
// longer a voter (its removal or demotion was applied, without
// StepDownOnRemoval) sends none: the change is committed, and letting the
// followers time out elects a leader of the new configuration instead of
// leaving them with one that refuses proposals.
func (r *raft) bcastHeartbeat() {
	// The latest pending read rides along, so that a read whose
	// heartbeats were lost is confirmed by the next round; otherwise, with
	// lease-based reads, the send tick that renews the lease (unless the
	// lease was given up for this term).
	ctx := r.readOnly.last()
	if ctx == nil && r.leaseReads && !r.leaseGivenUp {
		ctx = leaseCtx(r.ticks)
	}
	r.bcastHeartbeatWithCtx(ctx)
}

func (r *raft) bcastHeartbeatWithCtx(ctx []byte) {
	if !r.leaderIsVoter() {
		r.logger().Debugf("node %x: no longer a voter, not sending heartbeats", r.id)
		return
	}
	r.reserveMsgs(len(r.trk.Progress) - 1)
	r.trk.Visit(func(id uint64, _ *tracker.Progress) {
		if id != r.id {
			r.sendHeartbeat(id, ctx)
		}
	})
}

// sendHeartbeat sends a heartbeat carrying a commit index the peer can use
// safely: no more than what it is known to hold, since its log beyond Match
// may not match the leader's.
func (r *raft) sendHeartbeat(to uint64, ctx []byte) {
	pr := r.trk.Progress[to]
	commit := min(pr.Match, r.raftLog.committed)
	pr.SentCommit(commit)
	r.send(pb.Message{To: to, Type: pb.MsgHeartbeat, Commit: commit, Context: ctx})
}

// handleAppendEntries merges the leader's entries into a follower's log and
// answers with the last matching index, or a rejection with a hint.
func (r *raft) handleAppendEntries(m pb.Message) error {
	if m.Index < r.raftLog.committed {
		// Everything up to our commit index matches the leader's log
		// already; tell the leader so it moves on.
		r.send(pb.Message{To: m.From, Type: pb.MsgAppResp, Index: r.raftLog.committed})
		return nil
	}
	prev := entryID{term: m.LogTerm, index: m.Index}
	inProgress := r.raftLog.unstable.offsetInProgress
	lastNew, ok, err := r.raftLog.maybeAppend(prev, m.Commit, m.Entries)
	if r.raftLog.unstable.offsetInProgress < inProgress {
		// Entries handed out for writing were replaced.
		r.newWriteEpoch()
	}
	if err != nil {
		r.logger().Errorf("node %x: dropping append from %x at term %d: %v", r.id, m.From, m.Term, err)
		return fmt.Errorf("%w: %v", ErrInvalidMessage, err)
	}
	if ok {
		r.forwarded().noteAppended(m.Entries)
		r.send(pb.Message{To: m.From, Type: pb.MsgAppResp, Index: lastNew})
		return nil
	}
	// Rejected: point the leader at the last entry of ours that might
	// match. Entries of a term higher than the leader's term at m.Index
	// cannot be in the leader's log, so they are skipped in one step.
	hintIndex, hintTerm := r.raftLog.findConflictByTerm(m.Index, m.LogTerm, r.raftLog.committed)
	r.logger().Debugf("node %x: our term %d at %d does not match append (term %d at %d) from %x; hint index %d term %d",
		r.id, r.raftLog.zeroTermOnOutOfBounds(r.raftLog.term(m.Index)), m.Index, m.LogTerm, m.Index, m.From, hintIndex, hintTerm)
	r.send(pb.Message{
		To:         m.From,
		Type:       pb.MsgAppResp,
		Index:      m.Index,
		Reject:     true,
		RejectHint: hintIndex,
		LogTerm:    hintTerm,
	})
	return nil
}

// handleHeartbeat advances a follower's commit index and answers; the
// caller has checked it (checkHeartbeat).
func (r *raft) handleHeartbeat(m pb.Message) {
	r.raftLog.commitTo(m.Commit)
	r.send(pb.Message{To: m.From, Type: pb.MsgHeartbeatResp, Context: m.Context})
}

// checkHeartbeat refuses a heartbeat committing past our last index (a
// leader sends at most what it knows we hold) before anything changes.
// RawNode.Step refuses it already; checked here too so that the core
// never trusts a peer with its commit index.
func (r *raft) checkHeartbeat(m pb.Message) error {
	if last := r.raftLog.lastIndex(); m.Commit > last {
		return fmt.Errorf("%w: heartbeat from %x commits index %d past our last index %d", ErrInvalidMessage, m.From, m.Commit, last)
	}
	return nil
}

// handleAppendResponse updates a follower's progress from its answer to an
// append, and sends what comes next.
func (r *raft) handleAppendResponse(m pb.Message, pr *tracker.Progress) error {
	if last := r.raftLog.lastIndex(); !m.Reject && m.Index > last {
		// A peer cannot hold entries this leader never had.
		return fmt.Errorf("%w: %x acknowledges index %d past our last index %d", ErrInvalidMessage, m.From, m.Index, last)
	}
	pr.RecentActive = true
	if m.Reject {
		r.handleAppendRejection(m, pr)
		return nil
	}
	if !pr.MaybeUpdate(m.Index) && (pr.State != tracker.StateProbe || m.Index != pr.Match) {
		// A stale or duplicate acknowledgement. (A probe answered at the
		// match index, from a follower put back in probe with nothing
		// missing, goes on: it replicates again.)
		return nil
	}
	switch {
	case pr.State == tracker.StateProbe:
		pr.BecomeReplicate()
	case pr.State == tracker.StateSnapshot && pr.Match+1 >= r.raftLog.firstIndex():
		// The follower has caught up far enough (through the snapshot or
		// otherwise) to continue from the log.
		r.logger().Debugf("node %x: %x caught up past the compaction point, replicating again (%s)", r.id, m.From, pr)
		pr.BecomeProbe()
		pr.BecomeReplicate()
	case pr.State == tracker.StateReplicate:
		pr.Inflights.FreeLE(m.Index)
	}
	// An acknowledgement at or below the commit index moves no quorum past
	// it: the quorum's index is recomputed only for one above.
	if pr.Match > r.raftLog.committed && r.maybeCommit() {
		// Tell everyone the new commit index, and answer the reads that
		// waited for a commit in this term.
		r.releasePendingReadIndexMessages()
		r.bcastAppend()
	}
	if m.From != r.id {
		// Send whatever the follower is still missing, as many messages as
		// flow control allows (after the commit's broadcast too, which
		// sent it one).
		for r.maybeSendAppend(m.From, false) {
		}
		if pr.CanBumpCommit(r.raftLog.committed) {
			// The peer missed the current commit index (it was paused
			// when the index moved): tell it now rather than at the next
			// heartbeat.
			r.sendAppend(m.From)
		}
	}
	if m.From == r.leadTransferee && pr.Match == r.raftLog.lastIndex() {
		r.logger().Infof("node %x: transferee %x caught up, sending timeout-now", r.id, m.From)
		r.sendTimeoutNow(m.From)
	}
	return nil
}

// handleAppendRejection moves a follower's Next back after a rejection,
// using the follower's hint to skip whole terms, and probes again.
func (r *raft) handleAppendRejection(m pb.Message, pr *tracker.Progress) {
	r.logger().Debugf("node %x: hint index %d term %d from %x after it refused index %d",
		r.id, m.RejectHint, m.LogTerm, m.From, m.Index)
	if m.Index <= pr.Match {
		// The peer acknowledged this index in this term: a correct peer
		// never refuses it later (acknowledgements follow its writes, and
		// it keeps entries that match the leader's). Probing again would
		// only be refused again, one round trip after another.
		r.logger().Debugf("node %x: ignoring %x's refusal of index %d at or below its match %d", r.id, m.From, m.Index, pr.Match)
		return
	}
	next := m.RejectHint
	if m.LogTerm > 0 {
		// The follower has term m.LogTerm at m.RejectHint; our log cannot
		// match it at any index whose term is higher, so skip those too.
		next, _ = r.raftLog.findConflictByTerm(m.RejectHint, m.LogTerm, pr.Match)
	}
	if !pr.MaybeDecrTo(m.Index, next) {
		return // stale
	}
	r.logger().Debugf("node %x: probing %x further back (%s)", r.id, m.From, pr)
	if pr.State == tracker.StateReplicate {
		pr.BecomeProbe()
	}
	r.sendAppend(m.From)
}

// handleHeartbeatResponse resumes a paused probe and catches the follower
// up if it is behind.
func (r *raft) handleHeartbeatResponse(m pb.Message, pr *tracker.Progress) {
	pr.RecentActive = true
	pr.MsgAppFlowPaused = false
	if pr.State == tracker.StateReplicate && pr.Inflights.Full() {
		// The peer is alive but the window is still full: its
		// acknowledgements may have been lost. Let one more append out; the
		// peer will acknowledge it or reject the gap, and either way
		// replication moves again.
		pr.Inflights.FreeFirstOne()
	}
	if pr.Match < r.raftLog.lastIndex() || pr.State == tracker.StateProbe {
		r.sendAppend(m.From)
	}
	if len(m.Context) > 0 {
		r.readIndexAcked(m)
		if r.leaseReads {
			r.leaseAcked(m)
		}
	}
	if m.From == r.leadTransferee && pr.Match == r.raftLog.lastIndex() {
		// The transferee is caught up but has not taken over: the
		// timeout-now may have been lost. Send it again.
		r.sendTimeoutNow(m.From)
	}
}

// forwardProposal sends a follower's proposal to the leader.
func (r *raft) forwardProposal(m pb.Message) error {
	if r.lead == None {
		r.logger().Infof("node %x: no leader known at term %d, dropping proposal", r.id, r.Term)
		return ErrProposalNoLeader
	}
	if r.disableProposalForwarding {
		r.logger().Infof("node %x: forwarding disabled (leader %x, term %d), dropping proposal", r.id, r.lead, r.Term)
		return ErrProposalForwardingDisabled
	}
	m.To = r.lead
	if len(m.Entries) > 0 && r.seldom != nil && &m.Entries[0] == &r.seldom.propScratch[0] {
		// The message is handed out: it needs entries of its own.
		m.Entries = slices.Clone(m.Entries)
	}
	r.send(m)
	return nil
}

// appliedTo records that entries up to index were applied; size is their
// encoded size and payloads their payload size. A batch a snapshot has
// superseded meanwhile (the apply thread lagging the append thread) only
// returns its size budget.
func (r *raft) appliedTo(index, size, payloads uint64) {
	if !r.raftLog.appliedTo(index, size, r.snapApplied()) {
		r.logger().Debugf("node %x: applied batch up to %d superseded by the snapshot at %d", r.id, index, r.snapApplied())
		return
	}
	r.reduceUncommittedSize(payloads)
	r.maybeAutoLeave()
}
