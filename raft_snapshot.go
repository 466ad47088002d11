package raft

import (
	"errors"

	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/tracker"
)

// maybeSendSnapshot sends the storage's snapshot to a peer whose entries
// were compacted away. It reports whether it sent one.
func (r *raft) maybeSendSnapshot(to uint64, pr *tracker.Progress) bool {
	if !pr.RecentActive {
		r.logger().Debugf("node %x: %x has been silent, holding its snapshot back", r.id, to)
		return false
	}
	snap, err := r.raftLog.snapshot()
	if errors.Is(err, ErrSnapshotTemporarilyUnavailable) {
		r.logger().Debugf("node %x: storage has no snapshot for %x yet, will retry", r.id, to)
		return false
	}
	if err != nil {
		r.logger().Panicf("raft: reading the snapshot for %x: %v", to, err)
	}
	if IsEmptySnap(snap) {
		r.logger().Panicf("raft: need a non-empty snapshot for %x", to)
	}
	r.logger().Infof("node %x (first %d, commit %d): entries compacted, sending snapshot index %d term %d to %x (%s)",
		r.id, r.raftLog.firstIndex(), r.raftLog.committed, snap.Metadata.Index, snap.Metadata.Term, to, pr)
	pr.BecomeSnapshot(snap.Metadata.Index)
	r.send(pb.Message{To: to, Type: pb.MsgSnap, Snapshot: &snap})
	return true
}

// handleSnapshot installs a snapshot from the leader if it moves this node
// forward, and acknowledges where the log now ends.
func (r *raft) handleSnapshot(m pb.Message) {
	s := *m.Snapshot
	sindex, sterm := s.Metadata.Index, s.Metadata.Term
	if r.restore(s) {
		r.logger().Infof("node %x: installed snapshot, commit now %d (snapshot index %d term %d)", r.id, r.raftLog.committed, sindex, sterm)
		r.send(pb.Message{To: m.From, Type: pb.MsgAppResp, Index: r.raftLog.lastIndex()})
		return
	}
	r.logger().Infof("node %x: snapshot no newer than commit %d, keeping the log (snapshot index %d term %d)", r.id, r.raftLog.committed, sindex, sterm)
	r.send(pb.Message{To: m.From, Type: pb.MsgAppResp, Index: r.raftLog.committed})
}

// restore installs snapshot s if it is ahead of the commit index. If the
// log already holds the snapshot's last entry, only the commit index moves
// (the log after it is kept). It reports whether the log was replaced.
func (r *raft) restore(s pb.Snapshot) bool {
	if s.Metadata.Index <= r.raftLog.committed {
		return false
	}
	if r.state != StateFollower {
		// Only followers install snapshots (a candidate that receives one
		// becomes a follower first, and a leader never receives one for
		// its own term).
		r.logger().Warningf("node %x: not installing a snapshot as %s", r.id, r.state)
		return false
	}
	if !isMember(s.Metadata.ConfState, r.id) {
		// The snapshot predates this node's addition (or follows its
		// removal). Installing it is still right: the node holds the
		// committed state, stays out of elections, and learns of its
		// membership from the entries after the snapshot. Refusing it
		// would make the leader resend it forever.
		r.logger().Infof("node %x: snapshot at %d has config %s without this node; installing it, membership comes with later entries",
			r.id, s.Metadata.Index, s.Metadata.ConfState.Describe())
	}
	id := entryID{term: s.Metadata.Term, index: s.Metadata.Index}
	if r.raftLog.matchTerm(id) {
		// We have the snapshot's last entry: fast-forward the commit index
		// and keep the log after it.
		r.logger().Infof("node %x: log already holds the snapshot point, commit %d -> %d (term %d)",
			r.id, r.raftLog.committed, id.index, id.term)
		r.raftLog.commitTo(id.index)
		return false
	}
	applied, applying := r.raftLog.applied, r.raftLog.applying
	r.noteSupersededWrite()
	r.raftLog.restore(s)
	r.newWriteEpoch()
	if err := r.restoreConfState(s.Metadata.ConfState); err != nil {
		// The snapshot came over the network with an invalid config, but
		// the log is already replaced: this cannot be undone safely.
		r.logger().Panicf("raft: unable to restore config %s: %v", s.Metadata.ConfState.Describe(), err)
	}
	r.noteRestored(s.Metadata.Index, applied, applying)
	return true
}

func isMember(cs pb.ConfState, id uint64) bool {
	for _, set := range [][]uint64{cs.Voters, cs.Learners, cs.VotersOutgoing} {
		for _, m := range set {
			if m == id {
				return true
			}
		}
	}
	return false
}

// handleSnapStatus takes the application's report on a snapshot it sent.
func (r *raft) handleSnapStatus(m pb.Message, pr *tracker.Progress) {
	if pr.State != tracker.StateSnapshot {
		return
	}
	if m.Reject {
		// The snapshot did not arrive: forget it and probe from scratch.
		pr.PendingSnapshot = 0
	}
	pr.BecomeProbe()
	r.logger().Debugf("node %x: snapshot to %x %s, probing again (%s)", r.id, m.From, snapStatusWord(m.Reject), pr)
	// Wait for the next heartbeat response before probing, so a slow
	// follower still applying the snapshot is not flooded.
	pr.MsgAppFlowPaused = true
}

func snapStatusWord(reject bool) string {
	if reject {
		return "failed"
	}
	return "succeeded"
}

// checkSnapshotStalls gives up on snapshots that got no answer within the
// snapshot timeout: the MsgSnap was lost or the application never called
// ReportSnapshot. The peer is probed again, which sends a new snapshot if it
// still needs one.
func (r *raft) checkSnapshotStalls() {
	r.trk.Visit(func(id uint64, pr *tracker.Progress) {
		if pr.State != tracker.StateSnapshot {
			return
		}
		pr.SnapshotTicks++
		if pr.SnapshotTicks < r.snapshotTimeout {
			return
		}
		r.logger().Warningf("node %x: no news of the snapshot at %d sent to %x for %d ticks, probing it again",
			r.id, pr.PendingSnapshot, id, pr.SnapshotTicks)
		pr.PendingSnapshot = 0 // it may never have arrived
		pr.BecomeProbe()
		r.sendAppend(id)
	})
}

// appliedSnapshot records that the snapshot at index was applied.
func (r *raft) appliedSnapshot(index uint64) {
	s := r.rare()
	s.snapApplied = max(s.snapApplied, index)
	r.raftLog.appliedSnapshotTo(index)
	// A superseded write at or below what is applied now has nothing left
	// to report.
	k := 0
	for k < len(s.supersededWrites) && s.supersededWrites[k].index <= r.raftLog.applied {
		k++
	}
	s.supersededWrites = s.supersededWrites[k:]
}

// noteSupersededWrite records, before a snapshot from a leader replaces
// the log, the snapshot it replaces if that one was handed out for
// writing. The application still writes it and installs it in its state
// machine (with AsyncStorageWrites its MsgStorageAppend is already on the
// append thread's queue), so the write's response reports it applied:
// the node's applied index must not stay below the state machine's until
// the newer snapshot's write is reported.
func (r *raft) noteSupersededWrite() {
	u := &r.raftLog.unstable
	if u.snapshot == nil || !u.snapshotInProgress {
		return
	}
	s := r.rare()
	s.supersededWrites = append(s.supersededWrites, entryID{term: u.snapshot.Metadata.Term, index: u.snapshot.Metadata.Index})
}

// takeSupersededWrite reports whether id is a snapshot handed out for
// writing that a newer one superseded (noteSupersededWrite), whose write
// is reported now; it forgets id and the superseded writes before it
// (the append thread reports its writes in order).
func (r *raft) takeSupersededWrite(id entryID) bool {
	if r.seldom == nil {
		return false
	}
	s := r.seldom
	for k, w := range s.supersededWrites {
		if w == id {
			s.supersededWrites = s.supersededWrites[k+1:]
			return true
		}
	}
	return false
}

// snapApplied returns the index of the newest snapshot applied, 0 if none.
func (r *raft) snapApplied() uint64 {
	if r.seldom == nil {
		return 0
	}
	return r.seldom.snapApplied
}

// restoredSnapshot is what a node remembers of the last snapshot it
// installed from a leader's message, so that it can tell the conf changes
// the application applies from entries handed out before the snapshot
// (stale: the snapshot's configuration already holds their effect) from
// those after it.
type restoredSnapshot struct {
	// index is the snapshot's index.
	index uint64
	// staleApplying is the last index of the entries handed out for
	// applying before the snapshot was installed whose application the
	// application has not reported yet, 0 when there are none.
	staleApplying uint64
	// heldTicks counts the ticks since committed entries started waiting
	// for that report (applyHeldBack), to warn once if it never comes.
	heldTicks int
}

// noteRestored records that the snapshot at index replaced the log and the
// configuration when entries up to applying were handed out for applying
// and those up to applied reported applied.
func (r *raft) noteRestored(index, applied, applying uint64) {
	s := &r.rare().restored
	s.index = index
	if applying > applied {
		s.staleApplying = max(s.staleApplying, applying)
		s.heldTicks = 0
	}
}

// tickApplyHeldBack warns, once, when committed entries have waited an
// election timeout for the report of a batch a snapshot superseded: an
// application that drops such a batch instead of reporting it applied
// would otherwise stall with no sign (with AsyncStorageWrites every
// MsgStorageApply must be answered, superseded or not).
func (r *raft) tickApplyHeldBack() {
	if !r.applyHeldBack() {
		return
	}
	s := &r.seldom.restored
	s.heldTicks++
	if s.heldTicks == r.electionTimeout {
		r.logger().Warningf("node %x: committed entries wait for the report that the entries up to %d, handed out before the snapshot at %d, were applied: answer every MsgStorageApply, also one a snapshot superseded",
			r.id, s.staleApplying, s.index)
	}
}

// staleApplyReported takes the application's report (Advance, or a
// MsgStorageApplyResp) that it applied the entries up to index.
func (r *raft) staleApplyReported(index uint64) {
	if r.seldom != nil && r.seldom.restored.staleApplying != 0 && index >= r.seldom.restored.staleApplying {
		r.seldom.restored.staleApplying = 0
	}
}

// applyHeldBack reports whether committed entries must not be handed out
// for applying yet: entries handed out before the last installed snapshot
// are still being applied. The application applies them before anything
// handed out later (in order, on one apply thread), and a conf change among
// them is ignored (see staleConfChange); handing out the entries after the
// snapshot only once they are reported keeps every conf change of those out
// of that window. Without AsyncStorageWrites the pending snapshot holds
// back as much: the Advance of the Ready that handed the earlier entries
// out comes before the Ready carrying the snapshot is advanced.
func (r *raft) applyHeldBack() bool {
	return r.seldom != nil && r.seldom.restored.staleApplying != 0
}

// nextCommittedEnts returns the committed entries to hand out for applying
// next (see raftLog.nextCommittedEnts and applyHeldBack).
func (r *raft) nextCommittedEnts(allowUnstable bool) []pb.Entry {
	if r.applyHeldBack() {
		return nil
	}
	return r.raftLog.nextCommittedEnts(allowUnstable)
}

// hasNextCommittedEnts reports whether nextCommittedEnts would return
// entries, without reading them.
func (r *raft) hasNextCommittedEnts(allowUnstable bool) bool {
	return !r.applyHeldBack() && r.raftLog.hasNextCommittedEnts(allowUnstable)
}

// staleConfChange reports whether a conf change the application applies now
// comes from entries handed out before the last snapshot installed from a
// leader, and names the reason in the log if so. Those entries are older
// than the snapshot, whose configuration already holds their changes and
// any later ones: applied on top of it, a change would give this node a
// configuration no other node has (an old enter-joint change could even
// take it back into a joint configuration it has left). It is the case
// while the snapshot is not applied yet (no entry after it is handed out
// before), and while entries handed out before it are not reported applied
// (applyHeldBack keeps later ones back).
func (r *raft) staleConfChange(cc pb.ConfChangeV2) bool {
	if r.seldom == nil {
		return false
	}
	s := r.seldom.restored
	switch {
	case s.staleApplying != 0:
		r.logger().Warningf("node %x: ignoring conf change %s from entries up to %d, handed out before the snapshot at %d was installed (applied %d): the snapshot's configuration %s already holds it",
			r.id, pb.ConfChangesToString(cc.Changes), s.staleApplying, s.index, r.raftLog.applied, r.confState().Describe())
		return true
	case s.index > r.snapApplied():
		r.logger().Warningf("node %x: ignoring conf change %s from entries before the snapshot at %d, not yet applied (applied %d): the snapshot's configuration %s already holds it",
			r.id, pb.ConfChangesToString(cc.Changes), s.index, r.raftLog.applied, r.confState().Describe())
		return true
	}
	return false
}
