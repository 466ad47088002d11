package raft

import (
	"errors"

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
