package raft

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/raftcore/raft/invariants"
	pb "github.com/raftcore/raft/raftpb"
)

// noLimit means no size limit when slicing the log.
const noLimit = math.MaxUint64

// entryID names a log position: an index and the term of the entry there.
// By the log matching property two logs that hold the same entryID hold the
// same entries up to it.
type entryID struct {
	term  uint64
	index uint64
}

// errCommittedConflict reports an append that would replace committed
// entries. A correct leader never sends one, so it comes from a faulty or
// malicious peer (or points at lost local storage); the append is refused.
var errCommittedConflict = errors.New("raft: append conflicts with committed entries")

// raftLog is the log as the core sees it: the stable part, read through
// Storage, followed by the unstable tail not yet persisted.
//
//	snapshot/compacted | stable (Storage)   | unstable (not persisted)
//	... firstIndex-1   | firstIndex ...     | unstable.offset ... lastIndex
//	               applied <= applying <= committed <= lastIndex
type raftLog struct {
	storage  Storage
	unstable unstable

	// committed is the highest index known to be committed by a quorum.
	// Invariant: committed <= lastIndex(), and it never decreases.
	committed uint64
	// applying is the highest index handed to the application to apply.
	// Invariant: applied <= applying <= committed.
	applying uint64
	// applied is the highest index the application reported as applied.
	applied uint64
	// maxApplyingEntsSize caps the total size of entries handed out for
	// applying and not yet reported applied (MaxCommittedSizePerReady).
	maxApplyingEntsSize uint64
	// applyingEntsSize is the size of entries in (applied, applying].
	applyingEntsSize uint64
	// applyingEntsPaused stops handing out committed entries until some
	// are reported applied: the size budget is used up.
	applyingEntsPaused bool
	// The log logs through unstable.logger: one copy serves both.
}

// newLog returns a log over storage that hands out committed entries without
// a size limit.
func newLog(storage Storage, logger Logger) *raftLog {
	return newLogWithSize(storage, logger, noLimit)
}

// newLogWithSize returns a log over storage, positioned after its last entry,
// with committed and applied at the storage's snapshot (the caller restores
// them from HardState and Config.Applied).
func newLogWithSize(storage Storage, logger Logger, maxApplyingEntsSize uint64) *raftLog {
	if storage == nil {
		panic("raft: newLog needs a non-nil Storage")
	}
	first, err := storage.FirstIndex()
	if err != nil {
		logger.Panicf("raft: storage.FirstIndex failed: %v", err)
	}
	last, err := storage.LastIndex()
	if err != nil {
		logger.Panicf("raft: storage.LastIndex failed: %v", err)
	}
	return &raftLog{
		storage: storage,
		unstable: unstable{
			offset:           last + 1,
			offsetInProgress: last + 1,
			logger:           logger,
		},
		committed:           first - 1,
		applying:            first - 1,
		applied:             first - 1,
		maxApplyingEntsSize: maxApplyingEntsSize,
	}
}

func (l *raftLog) String() string {
	return fmt.Sprintf("committed=%d applied=%d applying=%d unstable.offset=%d unstable.offsetInProgress=%d len(unstable.entries)=%d",
		l.committed, l.applied, l.applying, l.unstable.offset, l.unstable.offsetInProgress, len(l.unstable.entries))
}

// maybeAppend handles entries from the leader: ents follow prev in the
// leader's log, and committed is the leader's commit index. If the log holds
// prev, ents are merged in (conflicting entries and everything after them
// are replaced; matching ones are kept), the commit index advances to what
// is known to match, and it returns the last index known to match the
// leader and true. If the log does not hold prev it returns false and
// changes nothing. An append that would replace committed entries is
// refused with errCommittedConflict and changes nothing.
func (l *raftLog) maybeAppend(prev entryID, committed uint64, ents []pb.Entry) (uint64, bool, error) {
	if !l.matchTerm(prev) {
		return 0, false, nil
	}
	lastNew := prev.index + uint64(len(ents))
	conflict := l.findConflict(ents)
	switch {
	case conflict == 0:
		// Every entry is already in the log.
	case conflict <= l.committed:
		return 0, false, fmt.Errorf("%w: entry %d (committed %d)", errCommittedConflict, conflict, l.committed)
	default:
		l.append(ents[conflict-ents[0].Index:]...)
	}
	l.commitTo(min(committed, lastNew))
	return lastNew, true, nil
}

// append adds ents to the unstable tail, replacing any entries at and after
// ents[0].Index, and returns the new last index. The caller guarantees that
// ents are contiguous and start at most one past the last index, after the
// committed index.
func (l *raftLog) append(ents ...pb.Entry) uint64 {
	if len(ents) == 0 {
		return l.lastIndex()
	}
	if after := ents[0].Index - 1; after < l.committed {
		l.unstable.logger.Panicf("raft: append after index %d would replace committed entries (committed %d)", after, l.committed)
	}
	l.unstable.truncateAndAppend(ents)
	if invariants.Enabled {
		l.checkInvariants()
	}
	return l.lastIndex()
}

// bootstrap makes ents, the membership entries of a fresh log, its unstable
// tail. ents is an array the caller gives up, exactly as long as the
// entries: the tail takes it as its own array rather than copying them
// into one with room to grow, so that once they are stable no spare room
// is left to keep and the array goes (see unstable.shrinkEntries). A group
// bootstrapped and never ticked holds no tail array.
func (l *raftLog) bootstrap(ents []pb.Entry) {
	if invariants.Enabled {
		l.unstable.checkAppend(ents)
	}
	if l.lastIndex() != 0 || len(l.unstable.entries) != 0 || ents[0].Index != 1 {
		l.unstable.logger.Panicf("raft: bootstrap of a nonempty log (last index %d)", l.lastIndex())
	}
	l.unstable.entries = ents[:len(ents):len(ents)]
	l.unstable.arrayLen = int32(min(len(ents), math.MaxInt32))
	if invariants.Enabled {
		l.checkInvariants()
	}
}

// appendNew appends ents as the leader's new entries of term after the
// last index, setting their index and term on the log's copies (ents is
// not written), and returns the new last index.
func (l *raftLog) appendNew(term uint64, ents []pb.Entry) uint64 {
	if len(ents) == 0 {
		return l.lastIndex()
	}
	if invariants.Enabled && l.unstable.snapshot == nil && len(l.unstable.entries) == 0 {
		// The tail is empty: the next index follows the stable log.
		l.checkStableLast()
	}
	last := l.unstable.appendNew(term, ents)
	if invariants.Enabled {
		l.checkInvariants()
	}
	return last
}

// findConflict returns the index of the first entry of ents that is not in
// the log (a different term at its index, or past the end), or 0 when every
// entry of ents is already in the log. ents must be contiguous.
func (l *raftLog) findConflict(ents []pb.Entry) uint64 {
	for i := range ents {
		if id := (entryID{term: ents[i].Term, index: ents[i].Index}); !l.matchTerm(id) {
			if id.index <= l.lastIndex() {
				l.unstable.logger.Infof("log: entry %d has term %d here but %d in the append; replacing from there",
					id.index, l.zeroTermOnOutOfBounds(l.term(id.index)), id.term)
			}
			return id.index
		}
	}
	return 0
}

// findConflictByTerm returns the last entry at or before index whose term is
// at most term. A leader that was told "index does not match" uses it to
// skip every entry of the follower's log that cannot match in one step: a
// follower entry of a higher term than the leader's entry at the same index
// cannot be in the leader's log. If index is past the last entry, the
// search starts at the last entry. When the search reaches an index whose
// term is no longer known (compacted), it returns that index and term 0,
// meaning "unknown": the caller must not match on it.
//
// The search stops at floor, an index below which the two logs are known
// to agree (a follower's commit index, a leader's Match for the peer), and
// returns floor with its term: a correct peer's message never makes it go
// that far (its term at an index at or above floor is at least the term at
// floor), and one claiming a term too low makes it walk no further than
// that, rather than down the whole log.
func (l *raftLog) findConflictByTerm(index, term, floor uint64) (uint64, uint64) {
	index = min(index, l.lastIndex())
	for ; index > floor; index-- {
		t, err := l.term(index)
		if err != nil {
			// Compacted (or not available): the caller learns nothing more.
			return index, 0
		}
		if t <= term {
			return index, t
		}
	}
	if index == 0 {
		return 0, 0
	}
	return index, l.zeroTermOnOutOfBounds(l.term(index))
}

// nextUnstableEnts returns the entries to be written next: the unstable
// entries not yet handed out.
func (l *raftLog) nextUnstableEnts() []pb.Entry { return l.unstable.nextEntries() }

// hasNextUnstableEnts reports whether there are entries to hand out for
// writing.
func (l *raftLog) hasNextUnstableEnts() bool { return len(l.nextUnstableEnts()) > 0 }

// nextUnstableSnapshot returns the snapshot to be written next, or nil.
func (l *raftLog) nextUnstableSnapshot() *pb.Snapshot { return l.unstable.nextSnapshot() }

// hasNextUnstableSnapshot reports whether a snapshot is to be handed out.
func (l *raftLog) hasNextUnstableSnapshot() bool { return l.unstable.nextSnapshot() != nil }

// hasNextOrInProgressSnapshot reports whether a snapshot is not yet durable.
func (l *raftLog) hasNextOrInProgressSnapshot() bool { return l.unstable.snapshot != nil }

// maxAppliableIndex is the highest index that may be handed out for
// applying: committed entries, and with allowUnstable false only those
// already durable locally.
func (l *raftLog) maxAppliableIndex(allowUnstable bool) uint64 {
	hi := l.committed
	if !allowUnstable {
		hi = min(hi, l.unstable.offset-1)
	}
	return hi
}

// nextCommittedEnts returns the committed entries to apply next, within the
// size budget. While a snapshot is pending nothing is handed out: the
// snapshot must be applied first.
func (l *raftLog) nextCommittedEnts(allowUnstable bool) []pb.Entry {
	if l.applyingEntsPaused || l.hasNextOrInProgressSnapshot() {
		return nil
	}
	lo, hi := l.applying+1, l.maxAppliableIndex(allowUnstable)+1
	if lo >= hi {
		return nil
	}
	budget := l.maxApplyingEntsSize - min(l.applyingEntsSize, l.maxApplyingEntsSize)
	ents, err := l.slice(lo, hi, max(budget, 1))
	if err != nil {
		l.unstable.logger.Panicf("raft: unexpected error reading committed entries [%d,%d): %v", lo, hi, err)
	}
	return ents
}

// hasNextCommittedEnts reports whether nextCommittedEnts would return
// entries, without reading them.
func (l *raftLog) hasNextCommittedEnts(allowUnstable bool) bool {
	if l.applyingEntsPaused || l.hasNextOrInProgressSnapshot() {
		return false
	}
	return l.applying < l.maxAppliableIndex(allowUnstable)
}

// snapshot returns the unstable snapshot if there is one, else the
// storage's.
func (l *raftLog) snapshot() (pb.Snapshot, error) {
	if l.unstable.snapshot != nil {
		return *l.unstable.snapshot, nil
	}
	return l.storage.Snapshot()
}

// firstIndex is the first index whose entry can be read.
func (l *raftLog) firstIndex() uint64 {
	if i, ok := l.unstable.maybeFirstIndex(); ok {
		return i
	}
	i, err := l.storage.FirstIndex()
	if err != nil {
		l.unstable.logger.Panicf("raft: storage.FirstIndex failed: %v", err)
	}
	return i
}

// lastIndex is the index of the last entry (or of the snapshot if the log
// holds no later entry). With the unstable tail empty the stable log ends
// right before its offset: every entry before it was acknowledged as
// written, and the application writes nothing else, so Storage is not
// asked (it sits on the path of every message the node handles).
func (l *raftLog) lastIndex() uint64 {
	if i, ok := l.unstable.maybeLastIndex(); ok {
		return i
	}
	if invariants.Enabled {
		l.checkStableLast()
	}
	return l.unstable.offset - 1
}

// checkStableLast panics, naming the invariant, if Storage's last index is
// not the one before the unstable offset while the tail is empty.
func (l *raftLog) checkStableLast() {
	last, err := l.storage.LastIndex()
	if err != nil {
		l.unstable.logger.Panicf("raft: storage.LastIndex failed: %v", err)
	}
	if last+1 != l.unstable.offset {
		l.unstable.logger.Panicf("raft: invariant: the unstable tail is empty but storage's last index %d is not before its offset %d",
			last, l.unstable.offset)
	}
}

// checkPrevTerm panics, naming the invariant, if Storage still holds the
// entry before the unstable tail with a term other than the remembered one.
func (l *raftLog) checkPrevTerm(i, t uint64) {
	st, err := l.storage.Term(i)
	if err == nil && st != t {
		l.unstable.logger.Panicf("raft: invariant: remembered term %d of index %d (before the unstable tail) but storage holds term %d",
			t, i, st)
	}
}

// lastEntryID is the position of the last entry.
func (l *raftLog) lastEntryID() entryID {
	index := l.lastIndex()
	t, err := l.term(index)
	if err != nil {
		l.unstable.logger.Panicf("raft: term of the last index %d unavailable: %v", index, err)
	}
	return entryID{term: t, index: index}
}

// term returns the term of the entry at index i, valid for
// i in [firstIndex()-1, lastIndex()]. It returns ErrCompacted for an earlier
// index and ErrUnavailable for a later one.
func (l *raftLog) term(i uint64) (uint64, error) {
	if t, ok := l.unstable.maybeTerm(i); ok {
		if invariants.Enabled && i+1 == l.unstable.offset && l.unstable.snapshot == nil {
			l.checkPrevTerm(i, t)
		}
		return t, nil
	}
	// From the unstable offset on, an index the tail does not hold is past
	// the last index. Below it the index is at most the last index (the
	// stable log reaches offset-1), and only the compaction point, which
	// the application moves without telling the log, is left to check.
	if i >= l.unstable.offset {
		return 0, ErrUnavailable
	}
	if i+1 < l.firstIndex() {
		return 0, ErrCompacted
	}
	t, err := l.storage.Term(i)
	if err == nil {
		l.unstable.setPrev(entryID{term: t, index: i})
		return t, nil
	}
	if errors.Is(err, ErrCompacted) || errors.Is(err, ErrUnavailable) {
		return 0, err
	}
	l.unstable.logger.Panicf("raft: storage.Term(%d) failed: %v", i, err)
	return 0, err
}

// zeroTermOnOutOfBounds turns a term lookup that failed because the index
// is compacted or unavailable into term 0; other errors are fatal.
func (l *raftLog) zeroTermOnOutOfBounds(t uint64, err error) uint64 {
	if err == nil {
		return t
	}
	if errors.Is(err, ErrCompacted) || errors.Is(err, ErrUnavailable) {
		return 0
	}
	l.unstable.logger.Panicf("raft: unexpected error looking up a term: %v", err)
	return 0
}

// matchTerm reports whether the log holds entry id.
func (l *raftLog) matchTerm(id entryID) bool {
	t, err := l.term(id.index)
	return err == nil && t == id.term
}

// isUpToDate reports whether a log ending at last is at least as up to date
// as this one (Raft §5.4.1): a later last term, or the same last term and a
// last index at least as large.
func (l *raftLog) isUpToDate(last entryID) bool {
	mine := l.lastEntryID()
	return last.term > mine.term || (last.term == mine.term && last.index >= mine.index)
}

// maybeCommit advances the commit index to at.index if that entry is in the
// log with term at.term; the leader passes the quorum-acked index and its
// own term, so only entries of the current term are committed by counting
// (Raft §5.4.2). It reports whether the commit index moved.
func (l *raftLog) maybeCommit(at entryID) bool {
	if at.index > l.committed && l.matchTerm(at) {
		l.commitTo(at.index)
		return true
	}
	return false
}

// commitTo advances the commit index; it never moves it back. The caller
// guarantees tocommit <= lastIndex().
func (l *raftLog) commitTo(tocommit uint64) {
	if tocommit <= l.committed {
		return
	}
	if last := l.lastIndex(); tocommit > last {
		l.unstable.logger.Panicf("raft: commit index %d is past the last index %d; was the log corrupted, truncated or lost?", tocommit, last)
	}
	l.committed = tocommit
	if invariants.Enabled {
		l.checkInvariants()
	}
}

// acceptApplying records that entries up to index i, of total size size,
// were handed to the application for applying.
func (l *raftLog) acceptApplying(i, size uint64, allowUnstable bool) {
	if l.committed < i {
		l.unstable.logger.Panicf("raft: applying index %d is past the committed index %d", i, l.committed)
	}
	l.applying = i
	l.applyingEntsSize += size
	// Pause when the budget is spent, or when the batch stopped short of
	// what could be applied: only the size limit cuts a batch short, so the
	// entries handed out must be applied before more are read. Without the
	// second rule every Ready would hand out one more entry over the budget.
	l.applyingEntsPaused = l.applyingEntsSize >= l.maxApplyingEntsSize ||
		i < l.maxAppliableIndex(allowUnstable)
	if invariants.Enabled {
		l.checkInvariants()
	}
}

// spentApplyingBudget reports whether the entries handed out and not yet
// applied use up the size budget. With none outstanding it is never spent,
// even with a budget of 0 (MaxSizePerMsg 0: one entry per Ready).
func (l *raftLog) spentApplyingBudget() bool {
	return l.applyingEntsSize > 0 && l.applyingEntsSize >= l.maxApplyingEntsSize
}

// appliedTo records that the application applied every entry up to index i;
// size is the size of the entries it applied since the last call. It
// reports false, changing nothing but the size budget, for a batch that a
// snapshot applied since it was handed out has superseded: snapApplied is
// the index of the newest snapshot applied (0 if none), which the node
// keeps (see seldomState).
func (l *raftLog) appliedTo(i, size, snapApplied uint64) bool {
	if i < snapApplied && i <= l.applied && !mutationStaleApplyPanics {
		l.applyingEntsSize -= min(size, l.applyingEntsSize)
		l.applyingEntsPaused = l.spentApplyingBudget()
		return false
	}
	if l.committed < i || i < l.applied {
		l.unstable.logger.Panicf("raft: applied index %d out of range [prevApplied(%d), committed(%d)]", i, l.applied, l.committed)
	}
	l.applied = i
	l.applying = max(l.applying, i)
	l.applyingEntsSize -= min(size, l.applyingEntsSize)
	l.applyingEntsPaused = l.spentApplyingBudget()
	if invariants.Enabled {
		l.checkInvariants()
	}
	return true
}

// appliedSnapshotTo records that the snapshot at index i was applied.
func (l *raftLog) appliedSnapshotTo(i uint64) {
	if i > l.applied {
		l.appliedTo(i, 0, i)
	}
}

// stableTo records that entries up to id are durable.
func (l *raftLog) stableTo(id entryID) {
	l.unstable.stableTo(id)
	if invariants.Enabled {
		l.checkInvariants()
	}
}

// stableSnapTo records that the snapshot at index i is durable.
func (l *raftLog) stableSnapTo(i uint64) {
	l.unstable.stableSnapTo(i)
	if invariants.Enabled {
		l.checkInvariants()
	}
}

// acceptUnstable records that everything returned by nextUnstableEnts and
// nextUnstableSnapshot was handed out for writing.
func (l *raftLog) acceptUnstable() {
	l.unstable.acceptInProgress()
	if invariants.Enabled {
		l.checkInvariants()
	}
}

// restore resets the log to snapshot s: the log now starts after it, and
// the commit index moves to its index.
func (l *raftLog) restore(s pb.Snapshot) {
	l.unstable.logger.Infof("log (%s): restoring snapshot index %d term %d", l, s.Metadata.Index, s.Metadata.Term)
	l.committed = s.Metadata.Index
	l.unstable.restore(s)
	if invariants.Enabled {
		l.checkInvariants()
	}
}

// checkInvariants panics, naming the invariant, if the log's indexes
// disagree: committed <= lastIndex, applied <= applying <= committed, the
// unstable tail consistent in itself and, when it holds no snapshot,
// continuing the stable log without a gap, and the term it keeps for the
// entry before the tail storage's. It takes constant time (and two calls
// to Storage).
func (l *raftLog) checkInvariants() {
	l.unstable.checkInvariants()
	if last := l.lastIndex(); l.committed > last {
		l.unstable.logger.Panicf("raft: invariant: committed(%d) > lastIndex(%d)", l.committed, last)
	}
	if l.applied > l.applying || l.applying > l.committed {
		l.unstable.logger.Panicf("raft: invariant: applied(%d) <= applying(%d) <= committed(%d) does not hold",
			l.applied, l.applying, l.committed)
	}
	if l.unstable.snapshot == nil {
		stableLast, err := l.storage.LastIndex()
		if err == nil && l.unstable.offset > stableLast+1 {
			l.unstable.logger.Panicf("raft: invariant: unstable offset(%d) > stable lastIndex(%d)+1: a gap between the stable and unstable entries",
				l.unstable.offset, stableLast)
		}
		if u := &l.unstable; u.prevTerm != 0 {
			if t, err := l.storage.Term(u.offset - 1); err == nil && t != u.prevTerm {
				u.logger.Panicf("raft: invariant: the term %d kept for index %d before the unstable tail differs from storage's %d",
					u.prevTerm, u.offset-1, t)
			}
		}
	}
}

// entries returns the entries from index i to the end, limited to maxSize
// bytes (but at least one entry).
func (l *raftLog) entries(i, maxSize uint64) ([]pb.Entry, error) {
	if i > l.lastIndex() {
		return nil, nil
	}
	return l.slice(i, l.lastIndex()+1, maxSize)
}

// allEntries returns every entry still in the log, for tests.
func (l *raftLog) allEntries() []pb.Entry {
	ents, err := l.entries(l.firstIndex(), noLimit)
	if errors.Is(err, ErrCompacted) { // compacted while reading: try again
		return l.allEntries()
	}
	if err != nil {
		l.unstable.logger.Panicf("raft: reading all entries: %v", err)
	}
	return ents
}

// slice returns entries [lo, hi), limited to maxSize bytes in total but at
// least one entry when lo < hi. An empty range returns nothing; otherwise
// Storage's ErrCompacted tells that lo is before the first index, and
// ErrUnavailable that hi is past lastIndex()+1.
//
// The result may share memory with Storage and the unstable tail: the
// caller must not modify it.
func (l *raftLog) slice(lo, hi, maxSize uint64) ([]pb.Entry, error) {
	if err := l.checkBounds(lo, hi); err != nil {
		return nil, err
	}
	if lo == hi {
		return nil, nil
	}
	var ents []pb.Entry
	if lo < l.unstable.offset {
		stored, err := l.storedSlice(lo, min(hi, l.unstable.offset), maxSize)
		if err != nil || hi <= l.unstable.offset || uint64(len(stored)) < min(hi, l.unstable.offset)-lo {
			// Done: an error, nothing unstable wanted, or the size limit
			// was reached inside the stable part.
			return stored, err
		}
		ents = stored
	}
	if hi > l.unstable.offset {
		tail := l.unstable.slice(max(lo, l.unstable.offset), hi)
		if len(ents) == 0 {
			ents = tail
		} else {
			// Clip: never append into a slice Storage handed out.
			ents = append(slices.Clip(ents), tail...)
		}
	}
	return limitSize(ents, maxSize), nil
}

// storedSlice reads [lo, hi) from Storage, hi <= unstable.offset.
func (l *raftLog) storedSlice(lo, hi, maxSize uint64) ([]pb.Entry, error) {
	ents, err := l.storage.Entries(lo, hi, maxSize)
	switch {
	case errors.Is(err, ErrCompacted):
		return nil, err
	case errors.Is(err, ErrUnavailable):
		l.unstable.logger.Panicf("raft: entries [%d,%d) unavailable from storage", lo, hi)
	case err != nil:
		l.unstable.logger.Panicf("raft: storage.Entries(%d, %d) failed: %v", lo, hi, err)
	}
	if uint64(len(ents)) > hi-lo || (len(ents) == 0 && lo < hi) {
		l.unstable.logger.Panicf("raft: storage.Entries(%d, %d) returned %d entries", lo, hi, len(ents))
	}
	return ents, nil
}

// checkBounds validates a slice request: lo <= hi, lo after a pending
// snapshot and hi <= lastIndex()+1.
func (l *raftLog) checkBounds(lo, hi uint64) error {
	if lo > hi {
		l.unstable.logger.Panicf("raft: invalid slice %d > %d", lo, hi)
	}
	// The tail's entries are never compacted, and a pending snapshot
	// replaces everything before it. Otherwise a read that starts in
	// Storage learns from Storage.Entries itself whether lo was compacted
	// (ErrCompacted, as the Storage contract says), without first asking
	// where the log starts.
	if lo < l.unstable.offset && l.unstable.snapshot != nil {
		return ErrCompacted
	}
	if last := l.lastIndex(); hi > last+1 {
		return fmt.Errorf("%w: slice [%d,%d) past the last index %d", ErrUnavailable, lo, hi, last)
	}
	return nil
}

// limitSize returns the longest prefix of ents whose total encoded size is
// at most maxSize, but at least one entry.
func limitSize(ents []pb.Entry, maxSize uint64) []pb.Entry {
	if len(ents) == 0 || maxSize == noLimit {
		return ents
	}
	size := uint64(ents[0].Size())
	n := 1
	for ; n < len(ents); n++ {
		size += uint64(ents[n].Size())
		if size > maxSize {
			break
		}
	}
	// Capped, so that appending to the result cannot write into the
	// entries after it (which may belong to Storage).
	return ents[:n:n]
}
