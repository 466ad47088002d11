package raft

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	pb "github.com/raftcore/raft/raftpb"
)

// ErrCompacted is returned by Storage.Entries and Storage.Term when the
// requested index lies before the first index still available, because the
// log was compacted up to a snapshot. The leader answers a follower that
// needs such entries with a snapshot.
var ErrCompacted = errors.New("raft: requested index is unavailable due to compaction")

// ErrSnapOutOfDate is returned by Storage.CreateSnapshot-style calls when the
// requested snapshot is older than the one the storage already has.
var ErrSnapOutOfDate = errors.New("raft: requested index is older than the existing snapshot")

// ErrUnavailable is returned by Storage when the requested entries are not
// available yet: the index is past the last index of the log.
var ErrUnavailable = errors.New("raft: requested entry at index is unavailable")

// ErrSnapshotTemporarilyUnavailable is returned by Storage.Snapshot when the
// snapshot is being built and cannot be handed out now. The leader tries
// again later instead of stalling.
var ErrSnapshotTemporarilyUnavailable = errors.New("raft: snapshot is temporarily unavailable")

// Storage is how the core reads the stable (persisted) part of the log and
// state. The application writes to it from the Ready loop (persisting
// entries, hard state and snapshots); the core only reads.
//
// Indexes: the log held by a Storage covers [FirstIndex(), LastIndex()], and
// the term of FirstIndex()-1 (the index of the last snapshot, or 0) is always
// known. A Storage that holds no entries has LastIndex() == FirstIndex()-1.
//
// If any method returns an error other than the documented ones, the core
// cannot go on safely and panics: the storage is broken.
//
// A Storage must allow the core to call it while the application writes to
// it when the application persists from another goroutine (AsyncStorageWrites).
type Storage interface {
	// InitialState returns the saved HardState and ConfState, the state a
	// node restarts from.
	InitialState() (pb.HardState, pb.ConfState, error)

	// Entries returns the entries in [lo, hi), limited in total encoded
	// size to maxSize, but always at least the entry at lo when lo < hi.
	// It returns ErrCompacted when lo < FirstIndex(), and ErrUnavailable
	// when hi > LastIndex()+1.
	//
	// The returned slice may be shared with the storage: the caller must
	// not modify it.
	Entries(lo, hi, maxSize uint64) ([]pb.Entry, error)

	// Term returns the term of the entry at index i, for i in
	// [FirstIndex()-1, LastIndex()]. It returns ErrCompacted for a smaller i
	// and ErrUnavailable for a larger one.
	Term(i uint64) (uint64, error)

	// LastIndex returns the index of the last entry in the log (or of the
	// snapshot when the log holds no later entry).
	LastIndex() (uint64, error)

	// FirstIndex returns the index of the first entry that can be read with
	// Entries; older entries were compacted into the snapshot.
	FirstIndex() (uint64, error)

	// Snapshot returns the most recent snapshot. It may return
	// ErrSnapshotTemporarilyUnavailable while a snapshot is being built; the
	// core then tries again later.
	Snapshot() (pb.Snapshot, error)
}

// MemoryStorage is a Storage that keeps everything in memory, for tests,
// examples and applications that rebuild their log from elsewhere. The
// application writes to it from the Ready loop (SetHardState, Append,
// ApplySnapshot) and compacts it (CreateSnapshot, Compact). It is safe for
// concurrent use.
type MemoryStorage struct {
	// Mutex guards every field; each method holds it while it runs. A
	// caller may hold it too (Lock, Unlock, TryLock), e.g. to make several
	// reads see one state: the methods then wait until it is released, so
	// do not call them while holding it.
	sync.Mutex

	hardState pb.HardState
	// snapshot is the latest snapshot applied or created, nil until there
	// is one (or a test makes Snapshot fail, or a long log is compacted):
	// a group that never had one does not carry an empty Snapshot.
	snapshot *storedSnapshot
	// compacted is the compaction point: the last entry folded into a
	// snapshot or discarded (zero at first), whose term stays known.
	// Invariant: compacted.index is the snapshot index or a later index.
	compacted entryID
	// ents[i] has index compacted.index+1+i. It is nil while empty: a
	// group whose log holds nothing past the compaction point keeps no
	// array.
	ents []pb.Entry
}

// storedSnapshot is MemoryStorage's snapshot. The test hook and the
// growth hint live here, not in MemoryStorage: a process may hold
// thousands of MemoryStorages (one per group), and a field beside the
// others would move each into the next size class. An empty Snapshot here
// is the same as none.
type storedSnapshot struct {
	pb.Snapshot
	// unavailable makes Snapshot fail (SetSnapshotUnavailableForTest).
	unavailable bool
	// regrow is how long the log was when Compact last ran on a log of
	// minDoublingEntries entries or more (0 otherwise): how long it will
	// likely grow again before the next compaction (see appendEntries).
	regrow int
}

// NewMemoryStorage returns an empty MemoryStorage: FirstIndex 1, LastIndex 0.
func NewMemoryStorage() *MemoryStorage {
	return &MemoryStorage{}
}

// snapshotValue returns the latest snapshot, or an empty one.
func (ms *MemoryStorage) snapshotValue() pb.Snapshot {
	if ms.snapshot == nil {
		return pb.Snapshot{}
	}
	return ms.snapshot.Snapshot
}

// snapshotIndex returns the index of the latest snapshot, 0 if none.
func (ms *MemoryStorage) snapshotIndex() uint64 {
	if ms.snapshot == nil {
		return 0
	}
	return ms.snapshot.Metadata.Index
}

// InitialState implements Storage.
func (ms *MemoryStorage) InitialState() (pb.HardState, pb.ConfState, error) {
	ms.Lock()
	defer ms.Unlock()
	return ms.hardState, ms.snapshotValue().Metadata.ConfState, nil
}

// SetHardState saves the hard state.
func (ms *MemoryStorage) SetHardState(st pb.HardState) error {
	ms.Lock()
	defer ms.Unlock()
	ms.hardState = st
	return nil
}

func (ms *MemoryStorage) firstIndex() uint64 { return ms.compacted.index + 1 }
func (ms *MemoryStorage) lastIndex() uint64 {
	return ms.compacted.index + uint64(len(ms.ents))
}

// term returns the term of entry i, which must lie in
// [compacted.index, lastIndex()].
func (ms *MemoryStorage) term(i uint64) uint64 {
	if i == ms.compacted.index {
		return ms.compacted.term
	}
	return ms.ents[i-ms.firstIndex()].Term
}

// Entries implements Storage. The returned slice is shared with the storage
// but capped: appending to it never writes into the storage.
func (ms *MemoryStorage) Entries(lo, hi, maxSize uint64) ([]pb.Entry, error) {
	ms.Lock()
	defer ms.Unlock()
	switch {
	case lo > hi:
		return nil, fmt.Errorf("%w: invalid range [%d,%d)", ErrUnavailable, lo, hi)
	case lo < ms.firstIndex():
		return nil, ErrCompacted
	case hi > ms.lastIndex()+1:
		return nil, fmt.Errorf("%w: entries [%d,%d) past the last index %d", ErrUnavailable, lo, hi, ms.lastIndex())
	}
	off := ms.firstIndex()
	ents := ms.ents[lo-off : hi-off : hi-off]
	return limitSize(ents, maxSize), nil
}

// Term implements Storage.
func (ms *MemoryStorage) Term(i uint64) (uint64, error) {
	ms.Lock()
	defer ms.Unlock()
	if i < ms.compacted.index {
		return 0, ErrCompacted
	}
	if i > ms.lastIndex() {
		return 0, ErrUnavailable
	}
	return ms.term(i), nil
}

// LastIndex implements Storage.
func (ms *MemoryStorage) LastIndex() (uint64, error) {
	ms.Lock()
	defer ms.Unlock()
	return ms.lastIndex(), nil
}

// FirstIndex implements Storage.
func (ms *MemoryStorage) FirstIndex() (uint64, error) {
	ms.Lock()
	defer ms.Unlock()
	return ms.firstIndex(), nil
}

// Snapshot implements Storage.
func (ms *MemoryStorage) Snapshot() (pb.Snapshot, error) {
	ms.Lock()
	defer ms.Unlock()
	if ms.snapshot != nil && ms.snapshot.unavailable {
		return pb.Snapshot{}, ErrSnapshotTemporarilyUnavailable
	}
	return ms.snapshotValue(), nil
}

// SetSnapshotUnavailableForTest makes Snapshot return
// ErrSnapshotTemporarilyUnavailable while unavailable is true.
func (ms *MemoryStorage) SetSnapshotUnavailableForTest(unavailable bool) {
	ms.Lock()
	defer ms.Unlock()
	if ms.snapshot == nil {
		if !unavailable {
			return
		}
		ms.snapshot = &storedSnapshot{}
	}
	ms.snapshot.unavailable = unavailable
}

// ApplySnapshot replaces the storage's contents with snap: the log then
// starts after it. It returns ErrSnapOutOfDate for a snapshot that is not
// newer than the current one.
func (ms *MemoryStorage) ApplySnapshot(snap pb.Snapshot) error {
	ms.Lock()
	defer ms.Unlock()
	if snap.Metadata.Index <= ms.snapshotIndex() {
		return ErrSnapOutOfDate
	}
	ms.applySnapshot(snap)
	return nil
}

func (ms *MemoryStorage) applySnapshot(snap pb.Snapshot) {
	old := ms.snapshot
	ms.snapshot = &storedSnapshot{Snapshot: snap}
	if old != nil {
		ms.snapshot.unavailable, ms.snapshot.regrow = old.unavailable, old.regrow
	}
	ms.compacted = entryID{term: snap.Metadata.Term, index: snap.Metadata.Index}
	ms.ents = nil
}

// Save persists what a Ready hands out, as the Ready contract orders it:
// the snapshot (unless empty), then the entries, then the hard state
// (unless empty). It is the in-memory counterpart of wal.Storage.Save, so a
// Ready loop written for one works with the other. It returns the error
// ApplySnapshot or Append would (a snapshot not newer than the stored one,
// entries not contiguous or leaving a gap), and then changes nothing.
func (ms *MemoryStorage) Save(hs pb.HardState, ents []pb.Entry, snap pb.Snapshot) error {
	if err := checkContiguous(ents); err != nil {
		return err
	}
	ms.Lock()
	defer ms.Unlock()
	last := ms.lastIndex()
	if !IsEmptySnap(snap) {
		if snap.Metadata.Index <= ms.snapshotIndex() {
			return ErrSnapOutOfDate
		}
		last = snap.Metadata.Index
	}
	if n := len(ents); n > 0 && ents[0].Index > last+1 {
		return fmt.Errorf("%w: save: entry %d leaves a gap after the last index %d", ErrUnavailable, ents[0].Index, last)
	}
	if !IsEmptySnap(snap) {
		ms.applySnapshot(snap)
	}
	ms.append(ents)
	if !IsEmptyHardState(hs) {
		ms.hardState = hs
	}
	return nil
}

// CreateSnapshot records a snapshot of the state machine at applied index
// i, with configuration cs (nil keeps the previous one) and data, and
// returns it. The log is not compacted: call Compact for that. It returns
// ErrSnapOutOfDate when i is not newer than the current snapshot, and an
// error wrapping ErrUnavailable when i is past the last index.
func (ms *MemoryStorage) CreateSnapshot(i uint64, cs *pb.ConfState, data []byte) (pb.Snapshot, error) {
	ms.Lock()
	defer ms.Unlock()
	if i <= ms.snapshotIndex() {
		return pb.Snapshot{}, ErrSnapOutOfDate
	}
	if i > ms.lastIndex() {
		return pb.Snapshot{}, fmt.Errorf("%w: snapshot index %d past the last index %d", ErrUnavailable, i, ms.lastIndex())
	}
	if i < ms.compacted.index {
		return pb.Snapshot{}, ErrCompacted
	}
	if ms.snapshot == nil {
		ms.snapshot = &storedSnapshot{}
	}
	ms.snapshot.Metadata.Index = i
	ms.snapshot.Metadata.Term = ms.term(i)
	if cs != nil {
		ms.snapshot.Metadata.ConfState = *cs
	}
	ms.snapshot.Data = data
	return ms.snapshot.Snapshot, nil
}

// Compact discards the entries before compactIndex; the term of
// compactIndex stays known, so FirstIndex becomes compactIndex+1. Only
// compact what the application has applied (and snapshotted). It returns
// ErrCompacted when compactIndex is not past the current compaction point
// and an error wrapping ErrUnavailable when it is past the last index.
func (ms *MemoryStorage) Compact(compactIndex uint64) error {
	ms.Lock()
	defer ms.Unlock()
	if compactIndex <= ms.compacted.index {
		return ErrCompacted
	}
	if compactIndex > ms.lastIndex() {
		return fmt.Errorf("%w: compact %d past the last index %d", ErrUnavailable, compactIndex, ms.lastIndex())
	}
	rest := ms.ents[compactIndex+1-ms.firstIndex():]
	ms.compacted = entryID{term: ms.term(compactIndex), index: compactIndex}
	ms.noteCompactedLength(len(ms.ents))
	// A new array: the compacted entries (and their payloads) are freed,
	// and a reader holding an earlier Entries result keeps its view.
	ms.ents = nil
	if len(rest) > 0 {
		ms.ents = slices.Clone(rest)
	}
	return nil
}

// noteCompactedLength records the length n of a log being compacted, for
// appendEntries to size the array the log grows into next. A log shorter
// than minDoublingEntries records nothing unless it had a hint already.
func (ms *MemoryStorage) noteCompactedLength(n int) {
	if n < minDoublingEntries {
		n = 0
		if ms.snapshot == nil {
			return
		}
	}
	if ms.snapshot == nil {
		ms.snapshot = &storedSnapshot{}
	}
	ms.snapshot.regrow = min(n, maxDoublingEntries)
}

// regrow returns the length the log had at its last compaction, if it
// was long (see noteCompactedLength), else 0.
func (ms *MemoryStorage) regrow() int {
	if ms.snapshot == nil {
		return 0
	}
	return ms.snapshot.regrow
}

// Append adds entries to the log. An entry at index i replaces every stored
// entry at i or later. Entries before FirstIndex are ignored (they are
// already compacted). The entries must be contiguous and must not leave a
// gap after the last index; otherwise an error is returned and nothing
// changes. Payloads are shared, not copied.
func (ms *MemoryStorage) Append(entries []pb.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	if err := checkContiguous(entries); err != nil {
		return err
	}
	ms.Lock()
	defer ms.Unlock()
	if entries[0].Index > ms.lastIndex()+1 {
		return fmt.Errorf("%w: append: entry %d leaves a gap after the last index %d", ErrUnavailable, entries[0].Index, ms.lastIndex())
	}
	ms.append(entries)
	return nil
}

// checkContiguous reports entries whose indexes do not follow each other.
func checkContiguous(entries []pb.Entry) error {
	for i := 1; i < len(entries); i++ {
		if entries[i].Index != entries[i-1].Index+1 {
			return fmt.Errorf("raft: append: entries not contiguous: index %d follows %d", entries[i].Index, entries[i-1].Index)
		}
	}
	return nil
}

// append adds contiguous entries that leave no gap, skipping those already
// compacted. The caller holds the lock.
func (ms *MemoryStorage) append(entries []pb.Entry) {
	if len(entries) == 0 {
		return
	}
	first := ms.firstIndex()
	if entries[len(entries)-1].Index < first {
		return // all compacted
	}
	if entries[0].Index < first {
		entries = entries[first-entries[0].Index:]
	}
	keep := entries[0].Index - first
	if keep < uint64(len(ms.ents)) {
		// Truncating: copy rather than overwrite entries a reader may
		// still hold from an earlier Entries call.
		ms.ents = appendEntries(slices.Clip(ms.ents[:keep]), entries, ms.regrow())
		return
	}
	ms.ents = appendEntries(ms.ents, entries, ms.regrow())
}

// How MemoryStorage grows its array when it runs out of room. A log of
// at most maxExactEntries entries gets an array of exactly its length:
// that is the log of a group that was bootstrapped and elected a leader or
// two, and an idle group keeps it for good, so spare room would be held
// by thousands of groups (append would give a log of 4 entries room for
// 6). A busy log pays a few more small copies, after each compaction at
// most. Logs of between minDoublingEntries and maxDoublingEntries entries
// double their array; between the two ranges append already doubles,
// and above them append's own growth (about 1.25x) keeps the spare room
// of a large log small. A log that was compacted at a length of
// minDoublingEntries or more will likely grow as long again before the
// next compaction: once it reaches minDoublingEntries, it gets an array
// for that length (and an eighth more) at once, instead of doubling its
// way there with a copy of every entry at each step. That array is 9/8 of
// the length the log had, where the doubled array it had before the
// compaction was up to twice that length.
const (
	maxExactEntries    = 8
	minDoublingEntries = 256
	maxDoublingEntries = 1 << 16
)

// appendEntries appends src to dst, growing dst's array as the constants
// above say. append alone grows a slice of minDoublingEntries or more by
// a quarter at a time, so a log that grows from a compaction to the next
// one (thousands of entries) would be copied and reallocated several times
// over; doubling copies each entry about once.
//
// regrow is the log's length at its last compaction (0 if unknown).
func appendEntries(dst, src []pb.Entry, regrow int) []pb.Entry {
	n := len(dst) + len(src)
	if n <= cap(dst) {
		return append(dst, src...)
	}
	var c int
	switch {
	case n <= maxExactEntries:
		c = n
	case n >= minDoublingEntries && n <= maxDoublingEntries:
		c = max(2*n, regrow+regrow/8)
	default:
		return append(dst, src...)
	}
	grown := make([]pb.Entry, len(dst), c)
	copy(grown, dst)
	return append(grown, src...)
}
