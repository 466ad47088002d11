package tracker

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/raftcore/raft/invariants"
)

// Progress is the leader's view of one peer's log and how replication to it
// is paced. The leader owns it; the fields are exported for inspection and
// tests, and callers should change them only through the methods below,
// which keep the invariants.
type Progress struct {
	// Match is the highest index known to be identical in the peer's log.
	// Next is the index of the next entry to send.
	// Invariant: Match < Next, i.e. Next >= Match+1.
	Match, Next uint64

	// State decides how appends are paced; see StateType.
	State StateType

	// PendingSnapshot is the index of the snapshot in flight to the peer.
	// Meaningful only in StateSnapshot; 0 in the other states.
	PendingSnapshot uint64

	// RecentActive is true if the leader heard from the peer during the
	// current check-quorum interval. The leader clears it at the start of
	// each interval.
	RecentActive bool

	// MsgAppFlowPaused stops further appends to a peer in StateProbe: a
	// probe was sent and the leader waits for its response or the next
	// heartbeat. In StateReplicate the pause is Inflights.Full() itself, so
	// the flag cannot disagree with the window.
	MsgAppFlowPaused bool

	// Inflights holds the unacknowledged appends. Used in StateReplicate and
	// empty in the other states. Only a leader needs them: a follower's or
	// candidate's Progress has nil, and the leader creates them when it
	// takes office. Invariant: non-nil in StateReplicate.
	Inflights *Inflights

	// IsLearner is true if the peer is a learner: it receives the log but
	// neither votes nor counts toward commit.
	IsLearner bool

	// SnapshotTicks counts the leader's ticks since the snapshot in flight
	// was sent (StateSnapshot only), so that a lost snapshot or a missing
	// ReportSnapshot cannot stall the peer forever.
	SnapshotTicks int

	// sentCommit is the highest commit index the leader has sent the peer
	// in an append or heartbeat since this Progress was created; see
	// SentCommit and CanBumpCommit.
	sentCommit uint64
}

// SentCommit records that a message carrying commit index commit was just
// sent to the peer. The Progress keeps the highest index sent, so a message
// with a lower commit index (a heartbeat only carries what the peer is known
// to hold) does not lower it.
func (pr *Progress) SentCommit(commit uint64) {
	pr.sentCommit = max(pr.sentCommit, commit)
}

// CanBumpCommit reports whether sending commit index index could move the
// peer's commit index forward, i.e. whether index is above every commit index
// already sent to it. A leader whose commit index moved while the peer was
// paused uses it to decide that the peer needs an append carrying the new
// index now, rather than waiting for the next heartbeat.
func (pr *Progress) CanBumpCommit(index uint64) bool {
	return index > pr.sentCommit
}

// ResetState moves the peer to state and forgets everything tied to the
// previous state: the pause, the pending snapshot and the appends in flight.
// Match and Next are left alone; the BecomeX methods set Next.
func (pr *Progress) ResetState(state StateType) {
	pr.MsgAppFlowPaused = false
	pr.PendingSnapshot = 0
	pr.SnapshotTicks = 0
	pr.State = state
	pr.Inflights.Reset()
}

// BecomeProbe moves the peer to StateProbe, to search for where its log
// matches. Coming from StateSnapshot it assumes the snapshot was applied if
// it lies above Match, and continues after it.
func (pr *Progress) BecomeProbe() {
	next := pr.Match + 1
	if pr.State == StateSnapshot {
		next = max(next, pr.PendingSnapshot+1)
	}
	pr.ResetState(StateProbe)
	pr.Next = next
	if invariants.Enabled {
		pr.checkInvariants()
	}
}

// BecomeReplicate moves the peer to StateReplicate, streaming from Match+1.
func (pr *Progress) BecomeReplicate() {
	if invariants.Enabled && pr.State == StateReplicate {
		// Restarting the stream would forget the appends in flight.
		pr.panicTransition(StateReplicate)
	}
	pr.ResetState(StateReplicate)
	pr.Next = pr.Match + 1
	if invariants.Enabled {
		pr.checkInvariants()
	}
}

// BecomeSnapshot moves the peer to StateSnapshot for a snapshot at
// snapshotIndex that the caller is about to send; after it, replication
// resumes at snapshotIndex+1.
func (pr *Progress) BecomeSnapshot(snapshotIndex uint64) {
	if invariants.Enabled && pr.State == StateSnapshot {
		// A snapshot is already in flight: no append or snapshot may be
		// sent until it is answered.
		pr.panicTransition(StateSnapshot)
	}
	pr.ResetState(StateSnapshot)
	pr.PendingSnapshot = snapshotIndex
	pr.Next = snapshotIndex + 1
	if invariants.Enabled {
		pr.checkInvariants()
	}
}

// SentEntries records that an append carrying entries entries (starting at
// Next) and bytes payload bytes was just sent. In StateReplicate it records
// the append in Inflights, moves Next past it and pauses when the window is
// full; in StateProbe it pauses until a response or the next heartbeat. It
// panics in StateSnapshot, where appends must not be sent (check IsPaused),
// and for a negative count.
func (pr *Progress) SentEntries(entries int, bytes uint64) {
	if entries < 0 {
		panic(fmt.Sprintf("raft: SentEntries with negative entry count %d", entries))
	}
	switch pr.State {
	case StateReplicate:
		if entries > 0 {
			last := pr.Next + uint64(entries) - 1
			pr.Inflights.Add(last, bytes)
			pr.Next = last + 1
		}
	case StateProbe:
		pr.MsgAppFlowPaused = true
	default:
		panic(fmt.Sprintf("raft: SentEntries in %s: no appends may be sent while a snapshot is in flight", pr.State))
	}
	if invariants.Enabled {
		pr.checkInvariants()
	}
}

// MaybeUpdate handles the peer's acknowledgement of index n. It returns true
// if n raised Match; then it also unpauses the peer and frees the
// acknowledged Inflights. Next never moves backwards: it becomes at least
// n+1. A stale acknowledgement (n <= Match) returns false.
func (pr *Progress) MaybeUpdate(n uint64) bool {
	updated := n > pr.Match
	if updated {
		pr.Match = n
		pr.MsgAppFlowPaused = false
		pr.Inflights.FreeLE(n)
	}
	pr.Next = max(pr.Next, n+1)
	if invariants.Enabled {
		pr.checkInvariants()
	}
	return updated
}

// MaybeDecrTo handles the peer's rejection of the append whose preceding
// entry had index rejected; matchHint is the largest index at which the
// peer's log might still match the leader's. It returns false for a stale
// rejection, which the caller must ignore. Otherwise it moves Next back and
// returns true:
//
//   - StateReplicate: Next = Match+1; the caller should move the peer to
//     StateProbe. Stale if rejected <= Match.
//   - StateProbe: Next = max(min(rejected, matchHint+1), Match+1) and the
//     pause is lifted so the next probe can go out. Stale unless rejected is
//     Next-1, i.e. answers the probe in flight.
//   - StateSnapshot: always stale, since no appends are in flight.
//
// Next never drops below Match+1, whatever the peer claims.
func (pr *Progress) MaybeDecrTo(rejected, matchHint uint64) bool {
	switch pr.State {
	case StateReplicate:
		if rejected <= pr.Match {
			return false
		}
		pr.Next = pr.Match + 1
		return true
	case StateProbe:
		if rejected != pr.Next-1 {
			return false
		}
		next := rejected
		if matchHint < rejected { // written this way so matchHint+1 cannot overflow
			next = matchHint + 1
		}
		pr.Next = max(next, pr.Match+1)
		pr.MsgAppFlowPaused = false
		if invariants.Enabled {
			pr.checkInvariants()
		}
		return true
	default:
		return false
	}
}

// IsPaused reports whether the leader must hold appends to this peer: in
// StateProbe and StateReplicate when MsgAppFlowPaused is set, always in
// StateSnapshot. Heartbeats are not affected.
func (pr *Progress) IsPaused() bool {
	switch pr.State {
	case StateProbe:
		return pr.MsgAppFlowPaused
	case StateReplicate:
		return pr.Inflights.Full()
	default:
		return true
	}
}

// String renders the state compactly, e.g.
// "StateReplicate match=5 next=7 learner paused pendingSnap=3 inflight=2[full] inactive";
// parts after next appear only when they differ from the common case.
func (pr *Progress) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s match=%d next=%d", pr.State, pr.Match, pr.Next)
	if pr.IsLearner {
		b.WriteString(" learner")
	}
	if pr.State != StateSnapshot && pr.IsPaused() {
		b.WriteString(" paused")
	}
	if pr.PendingSnapshot > 0 {
		fmt.Fprintf(&b, " pendingSnap=%d", pr.PendingSnapshot)
	}
	if n := pr.Inflights.Count(); n > 0 {
		fmt.Fprintf(&b, " inflight=%d", n)
		if pr.Inflights.Full() {
			b.WriteString("[full]")
		}
	}
	if !pr.RecentActive {
		b.WriteString(" inactive")
	}
	return b.String()
}

// ProgressMap is the Progress of every peer, voters and learners, by ID.
type ProgressMap map[uint64]*Progress

// String renders one "id: progress" line per peer in ascending ID order.
func (m ProgressMap) String() string {
	ids := make([]uint64, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var b strings.Builder
	for _, id := range ids {
		b.WriteString(strconv.FormatUint(id, 10))
		b.WriteString(": ")
		b.WriteString(m[id].String())
		b.WriteByte('\n')
	}
	return b.String()
}

// checkInvariants panics, naming the invariant, if the fields disagree:
// Match < Next, a pending snapshot (and its tick count) exactly in
// StateSnapshot, appends in flight only in StateReplicate, and a
// consistent Inflights. It takes time in the number of appends in flight.
func (pr *Progress) checkInvariants() {
	if pr.Match >= pr.Next {
		panic(fmt.Sprintf("raft: invariant: progress match(%d) >= next(%d) (%s)", pr.Match, pr.Next, pr))
	}
	switch pr.State {
	case StateProbe, StateReplicate:
		if pr.PendingSnapshot != 0 || pr.SnapshotTicks != 0 {
			panic(fmt.Sprintf("raft: invariant: pending snapshot(%d) or snapshot ticks(%d) outside StateSnapshot (%s)",
				pr.PendingSnapshot, pr.SnapshotTicks, pr))
		}
	case StateSnapshot:
		if pr.PendingSnapshot == 0 {
			panic(fmt.Sprintf("raft: invariant: StateSnapshot without a pending snapshot (%s)", pr))
		}
	default:
		panic(fmt.Sprintf("raft: invariant: progress in unknown %s", pr.State))
	}
	if pr.Inflights == nil {
		if pr.State == StateReplicate {
			panic(fmt.Sprintf("raft: invariant: StateReplicate without Inflights (%s)", pr))
		}
		return
	}
	if pr.State != StateReplicate && pr.Inflights.Count() != 0 {
		panic(fmt.Sprintf("raft: invariant: %d appends in flight outside StateReplicate (%s)", pr.Inflights.Count(), pr))
	}
	pr.Inflights.checkInvariants()
}

// panicTransition panics for a state change the protocol never makes.
func (pr *Progress) panicTransition(to StateType) {
	panic(fmt.Sprintf("raft: invariant: illegal progress transition %s -> %s (%s)", pr.State, to, pr))
}
