package raft

import (
	"math"

	"github.com/raftcore/raft/invariants"
	pb "github.com/raftcore/raft/raftpb"
)

// unstable is the tail of the log that the application has not persisted
// yet: possibly an incoming snapshot, followed by entries. Entries and the
// snapshot move through three stages: new (to be handed out in the next
// Ready), in progress (handed out, being written) and stable (the write was
// acknowledged, they leave unstable and are read from Storage from then on).
//
//	snapshot?   entries[0] ............................. entries[len-1]
//	            offset         offsetInProgress
//	            |-- in progress --|------- new ----------|
type unstable struct {
	// snapshot is an incoming snapshot not yet persisted, or nil.
	// Invariant: snapshot == nil || offset == snapshot.Metadata.Index+1.
	snapshot *pb.Snapshot
	// entries[i] has index offset+i.
	entries []pb.Entry
	// offset is the index of entries[0], or of the next entry to arrive
	// when entries is empty.
	offset uint64
	// arrayLen is the length of the array entries lives in (0 when nil);
	// entries starts arrayLen-cap(entries) elements into it. It saturates
	// at math.MaxInt32, which only makes shrinkEntries keep an array it
	// could have dropped. The three small fields share one word: a group
	// holds a raftLog, and this keeps it in the 144-byte size class.
	arrayLen int32
	// nextLen is the least length of the next array: it doubles at each
	// new array, up to maxRetainedEntries, so a node that keeps appending
	// allocates ever more rarely while one that appended a few entries
	// (and went idle) holds a small array. release resets it.
	nextLen uint16
	// snapshotInProgress is true while the snapshot has been handed out for
	// writing and the write is not yet acknowledged.
	// Invariant: snapshotInProgress implies snapshot != nil.
	snapshotInProgress bool

	// offsetInProgress is the index after the last entry handed out for
	// writing: entries [offset, offsetInProgress) are being written.
	// Invariant: offset <= offsetInProgress <= offset+len(entries).
	offsetInProgress uint64

	// prevTerm is the term of the entry right before the tail (index
	// offset-1) when it is known, else 0 (every entry after index 0 has a
	// term): the last entry acknowledged as written, the snapshot the
	// tail started with, or what Storage answered for that index. The
	// application writes only what the tail hands out, at offset or later,
	// so the entry before it does not change while offset stays; compacting
	// it away in Storage does not make its term wrong, and the log keeps
	// answering with it. Only the term is kept (the index is offset-1), so
	// every change of offset sets it or clears it.
	prevTerm uint64

	logger Logger
}

// maybeFirstIndex returns the first log index when the unstable tail starts
// with a snapshot (the index after it); otherwise the answer is in Storage.
func (u *unstable) maybeFirstIndex() (uint64, bool) {
	if u.snapshot != nil {
		return u.snapshot.Metadata.Index + 1, true
	}
	return 0, false
}

// maybeLastIndex returns the last index of the log if the unstable tail
// holds it (an entry or a snapshot).
func (u *unstable) maybeLastIndex() (uint64, bool) {
	if n := len(u.entries); n != 0 {
		return u.offset + uint64(n) - 1, true
	}
	if u.snapshot != nil {
		return u.snapshot.Metadata.Index, true
	}
	return 0, false
}

// maybeTerm returns the term of index i if the unstable tail knows it:
// its entries, its snapshot and the entry right before it.
func (u *unstable) maybeTerm(i uint64) (uint64, bool) {
	if i < u.offset {
		if u.snapshot != nil && u.snapshot.Metadata.Index == i {
			return u.snapshot.Metadata.Term, true
		}
		if u.prevTerm != 0 && i == u.offset-1 {
			return u.prevTerm, true
		}
		return 0, false
	}
	if i-u.offset >= uint64(len(u.entries)) {
		return 0, false
	}
	return u.entries[i-u.offset].Term, true
}

// setPrev records id, the entry at offset-1 as Storage holds it.
func (u *unstable) setPrev(id entryID) {
	if id.index+1 == u.offset {
		u.prevTerm = id.term
	}
}

// nextEntries returns the entries not yet handed out for writing.
func (u *unstable) nextEntries() []pb.Entry {
	inProgress := int(u.offsetInProgress - u.offset)
	if len(u.entries) == inProgress {
		return nil
	}
	// Capped, so that an append to the returned slice by the application
	// cannot overwrite entries that arrive later.
	return u.entries[inProgress:len(u.entries):len(u.entries)]
}

// nextSnapshot returns the snapshot if it has not been handed out yet.
func (u *unstable) nextSnapshot() *pb.Snapshot {
	if u.snapshot == nil || u.snapshotInProgress {
		return nil
	}
	return u.snapshot
}

// acceptInProgress marks everything handed out so far as being written.
func (u *unstable) acceptInProgress() {
	if len(u.entries) > 0 {
		u.offsetInProgress = u.offset + uint64(len(u.entries))
	}
	if u.snapshot != nil {
		u.snapshotInProgress = true
	}
}

// stableTo records that entries up to and including id are durable. The
// acknowledgement is ignored when the entry at id.index has since been
// replaced (its term differs) or was never in the unstable tail: a late
// acknowledgement must not drop entries that were not written.
func (u *unstable) stableTo(id entryID) {
	term, ok := u.maybeTerm(id.index)
	if !ok || term != id.term || id.index < u.offset {
		// Unknown or replaced, or it is the snapshot's own index (handled
		// by stableSnapTo).
		return
	}
	n := int(id.index + 1 - u.offset)
	u.entries = u.entries[n:]
	u.offset = id.index + 1
	u.prevTerm = id.term
	u.offsetInProgress = max(u.offsetInProgress, u.offset)
	u.shrinkEntries()
}

// The backing array of the tail. Entries are appended into its spare
// capacity, which was never handed out (every path that replaces entries
// moves to a new array), and handed out capped; stable entries leave from
// the front. A new array is allocated only when the spare capacity runs
// out, twice as large as what it must hold and at least
// minUnstableEntries long, so that a node appending one entry per Ready
// allocates once per many Readys rather than every time: arrays start at
// minUnstableEntries and double, up to maxRetainedEntries, while the node
// keeps appending.
//
// The array also pins the stable entries before the live ones (and their
// payloads) until it is dropped: an array longer than maxRetainedEntries is
// dropped as soon as most of it is dead, so only a small one is kept
// for reuse.
const (
	minUnstableEntries = 4
	maxRetainedEntries = 256
)

// reserve makes room for k more entries after the live ones, moving them
// to a new array if the spare capacity is short.
func (u *unstable) reserve(k int) {
	if cap(u.entries)-len(u.entries) >= k {
		return
	}
	u.reallocate(len(u.entries) + k)
}

// reallocate moves the live entries to a new array with room for n in all.
func (u *unstable) reallocate(n int) {
	c := max(2*n, minUnstableEntries, int(u.nextLen))
	ents := make([]pb.Entry, len(u.entries), c)
	copy(ents, u.entries)
	u.entries = ents
	u.arrayLen = int32(min(c, math.MaxInt32))
	u.nextLen = uint16(min(2*c, maxRetainedEntries))
}

// shrinkEntries releases a large backing array once most of it lies
// before the live entries, so a long-lived node does not pin every entry
// it ever appended, and a full one whose entries are all stable. The live
// entries are copied; payloads are shared.
func (u *unstable) shrinkEntries() {
	if len(u.entries) == 0 && cap(u.entries) == 0 {
		// Every slot of the array is stable and none is spare: the next
		// entry needs a new array anyway, so this one is dropped now
		// rather than pinned (with its entries' payloads) until then.
		u.entries = nil
		u.arrayLen = 0
		return
	}
	if u.arrayLen <= maxRetainedEntries {
		return // small: kept, its spare capacity takes the next entries
	}
	dead := int(u.arrayLen) - cap(u.entries)
	if dead <= len(u.entries) {
		return
	}
	if len(u.entries) == 0 {
		u.entries = nil
		u.arrayLen = 0
		return
	}
	u.reallocate(len(u.entries))
}

// release drops the backing array when no live entry is in it, so an idle
// node pins neither the array nor the stable entries' payloads.
func (u *unstable) release() {
	if len(u.entries) == 0 {
		u.entries = nil
		u.arrayLen = 0
		u.nextLen = 0
	}
}

// stableSnapTo records that the snapshot at index i is durable.
func (u *unstable) stableSnapTo(i uint64) {
	if u.snapshot != nil && u.snapshot.Metadata.Index == i {
		u.prevTerm = u.snapshot.Metadata.Term // offset is i+1
		u.snapshot = nil
		u.snapshotInProgress = false
	}
}

// restore replaces the unstable tail with snapshot s: the log now starts
// after s and every unstable entry is dropped.
func (u *unstable) restore(s pb.Snapshot) {
	u.offset = s.Metadata.Index + 1
	u.offsetInProgress = u.offset
	u.entries = nil
	u.arrayLen = 0
	u.snapshot = &s
	u.snapshotInProgress = false
	u.prevTerm = s.Metadata.Term
}

// truncateAndAppend appends ents, whose first index may be at or before the
// end of the tail: the entries from that index on are replaced. The caller
// guarantees ents is non-empty and contiguous, and that ents[0].Index is
// after the snapshot (if any) and at most one past the last index.
func (u *unstable) truncateAndAppend(ents []pb.Entry) {
	from := ents[0].Index
	if invariants.Enabled {
		u.checkAppend(ents)
	}
	switch {
	case from == u.offset+uint64(len(u.entries)):
		// The common case: ents continue the tail.
		u.reserve(len(ents))
		u.entries = append(u.entries, ents...)
	case from <= u.offset:
		// Everything unstable is replaced. Entries before offset are in
		// Storage; the application truncates them when it writes ents.
		// A new array: the old one may have been handed out.
		if from < u.offset {
			u.prevTerm = 0 // not known for the new offset-1
		}
		u.offset = from
		u.offsetInProgress = from
		u.entries = nil
		u.reallocate(len(ents))
		u.entries = append(u.entries, ents...)
	default:
		// Keep [offset, from) and replace the rest, in a new array: the
		// entries replaced may have been handed out.
		u.entries = u.entries[:from-u.offset]
		u.reallocate(len(u.entries) + len(ents))
		u.entries = append(u.entries, ents...)
		u.offsetInProgress = min(u.offsetInProgress, from)
	}
}

// appendNew appends ents as the leader's new entries of term, right after
// the last index, and returns the index of the last one. The index and
// term are set on the tail's copies: ents itself (which may be a message's,
// and so the application's) is not written.
func (u *unstable) appendNew(term uint64, ents []pb.Entry) uint64 {
	from := u.offset + uint64(len(u.entries))
	if invariants.Enabled && len(u.entries) > 0 && u.entries[len(u.entries)-1].Term > term {
		u.logger.Panicf("raft: invariant: appending entries of term %d after term %d", term, u.entries[len(u.entries)-1].Term)
	}
	u.reserve(len(ents))
	n := len(u.entries)
	u.entries = append(u.entries, ents...)
	for i := range ents {
		u.entries[n+i].Term = term
		u.entries[n+i].Index = from + uint64(i)
	}
	return from + uint64(len(ents)) - 1
}

// slice returns entries [lo, hi) of the tail. The caller guarantees
// offset <= lo <= hi <= offset+len(entries).
func (u *unstable) slice(lo, hi uint64) []pb.Entry {
	if lo > hi || lo < u.offset || hi > u.offset+uint64(len(u.entries)) {
		u.logger.Panicf("unstable.slice[%d,%d) out of bounds [%d,%d]",
			lo, hi, u.offset, u.offset+uint64(len(u.entries)))
	}
	// Capped, so an append by the caller cannot overwrite later entries.
	return u.entries[lo-u.offset : hi-u.offset : hi-u.offset]
}

// checkInvariants panics, naming the invariant, if the tail's fields
// disagree. It takes constant time.
func (u *unstable) checkInvariants() {
	if u.snapshot != nil && u.offset != u.snapshot.Metadata.Index+1 {
		u.logger.Panicf("raft: invariant: unstable offset(%d) != snapshot index(%d)+1",
			u.offset, u.snapshot.Metadata.Index)
	}
	if u.snapshotInProgress && u.snapshot == nil {
		u.logger.Panicf("raft: invariant: unstable snapshot in progress but no snapshot")
	}
	n := uint64(len(u.entries))
	if u.offsetInProgress < u.offset || u.offsetInProgress > u.offset+n {
		u.logger.Panicf("raft: invariant: unstable offsetInProgress(%d) outside [offset(%d), offset+len(entries)(%d)]",
			u.offsetInProgress, u.offset, u.offset+n)
	}
	if n > 0 && (u.entries[0].Index != u.offset || u.entries[n-1].Index != u.offset+n-1) {
		u.logger.Panicf("raft: invariant: unstable entries not contiguous from offset(%d): first index %d, last index %d, len %d",
			u.offset, u.entries[0].Index, u.entries[n-1].Index, n)
	}
}

// checkAppend panics, naming the invariant, if ents (about to be appended
// to the tail) are not contiguous with non-decreasing terms, leave a gap
// after the tail, or carry a lower term than the entry they follow. It
// takes time in len(ents).
func (u *unstable) checkAppend(ents []pb.Entry) {
	for i := 1; i < len(ents); i++ {
		if prev, e := ents[i-1], ents[i]; e.Index != prev.Index+1 || e.Term < prev.Term {
			u.logger.Panicf("raft: invariant: appended entries not contiguous: (index %d, term %d) followed by (index %d, term %d)",
				prev.Index, prev.Term, e.Index, e.Term)
		}
	}
	from, next := ents[0].Index, u.offset+uint64(len(u.entries))
	if from > next {
		u.logger.Panicf("raft: invariant: appended entries start at %d, leaving a gap after the last index %d",
			from, next-1)
	}
	if from <= u.offset {
		return // replaces the whole tail; what it follows is in Storage
	}
	if prev := u.entries[from-u.offset-1]; ents[0].Term < prev.Term {
		u.logger.Panicf("raft: invariant: appended entry (index %d, term %d) follows (index %d, term %d): terms must not decrease",
			from, ents[0].Term, prev.Index, prev.Term)
	}
}
