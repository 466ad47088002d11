package raft

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
)

// newStorageAt returns a MemoryStorage compacted at snap, holding entries
// snap.index+1... with the given terms.
func newStorageAt(t *testing.T, snap entryID, terms ...uint64) *MemoryStorage {
	t.Helper()
	s := NewMemoryStorage()
	if snap.index > 0 {
		require.NoError(t, s.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: snap.index, Term: snap.term}}))
	}
	require.NoError(t, s.Append(entsFrom(snap.index+1, terms...)))
	return s
}

func TestMemoryStorageTerm(t *testing.T) {
	s := newStorageAt(t, entryID{term: 3, index: 3}, 4, 5) // 3@3 | 4:4 5:5
	tests := []struct {
		name    string
		index   uint64
		want    uint64
		wantErr error
	}{
		{name: "compacted", index: 2, wantErr: ErrCompacted},
		{name: "compaction point", index: 3, want: 3},
		{name: "first", index: 4, want: 4},
		{name: "last", index: 5, want: 5},
		{name: "past the end", index: 6, wantErr: ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			term, err := s.Term(tt.index)
			require.ErrorIs(t, err, tt.wantErr)
			require.Equal(t, tt.want, term)
		})
	}
}

func TestMemoryStorageEntries(t *testing.T) {
	s := newStorageAt(t, entryID{term: 3, index: 3}, 4, 5, 6) // entries 4..6
	size := uint64(entsFrom(4, 4)[0].Size())
	tests := []struct {
		name     string
		lo, hi   uint64
		maxSize  uint64
		wantIdxs []uint64
		wantErr  error
	}{
		{name: "compacted lo", lo: 3, hi: 5, maxSize: noLimit, wantErr: ErrCompacted},
		{name: "hi past the end", lo: 4, hi: 8, maxSize: noLimit, wantErr: ErrUnavailable},
		{name: "lo above hi", lo: 6, hi: 5, maxSize: noLimit, wantErr: ErrUnavailable},
		{name: "empty range", lo: 5, hi: 5, maxSize: noLimit},
		{name: "all", lo: 4, hi: 7, maxSize: noLimit, wantIdxs: []uint64{4, 5, 6}},
		{name: "zero limit returns one", lo: 4, hi: 7, maxSize: 0, wantIdxs: []uint64{4}},
		{name: "limit fits exactly two", lo: 4, hi: 7, maxSize: 2 * size, wantIdxs: []uint64{4, 5}},
		{name: "limit one byte short of two", lo: 4, hi: 7, maxSize: 2*size - 1, wantIdxs: []uint64{4}},
		{name: "limit fits all", lo: 4, hi: 7, maxSize: 3 * size, wantIdxs: []uint64{4, 5, 6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ents, err := s.Entries(tt.lo, tt.hi, tt.maxSize)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			var idxs []uint64
			for _, e := range ents {
				idxs = append(idxs, e.Index)
			}
			require.Equal(t, tt.wantIdxs, idxs)
		})
	}
}

func TestMemoryStorageAppend(t *testing.T) {
	tests := []struct {
		name      string
		appendEnt []pb.Entry
		wantTerms []uint64 // terms of entries 4.. after the append
		wantErr   bool
	}{
		{name: "empty batch", wantTerms: []uint64{4, 5}},
		{name: "continue", appendEnt: entsFrom(6, 6), wantTerms: []uint64{4, 5, 6}},
		{name: "identical", appendEnt: entsFrom(4, 4, 5), wantTerms: []uint64{4, 5}},
		{name: "truncate the last", appendEnt: entsFrom(5, 6, 6), wantTerms: []uint64{4, 6, 6}},
		{name: "replace from the first", appendEnt: entsFrom(4, 6), wantTerms: []uint64{6}},
		{name: "overlap the compacted part", appendEnt: entsFrom(2, 3, 3, 6, 6), wantTerms: []uint64{6, 6}},
		{name: "entirely compacted", appendEnt: entsFrom(1, 1, 1), wantTerms: []uint64{4, 5}},
		{name: "gap", appendEnt: entsFrom(7, 6), wantErr: true, wantTerms: []uint64{4, 5}},
		{
			name: "not contiguous", appendEnt: []pb.Entry{{Index: 6, Term: 6}, {Index: 8, Term: 6}},
			wantErr: true, wantTerms: []uint64{4, 5},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStorageAt(t, entryID{term: 3, index: 3}, 4, 5)
			err := s.Append(tt.appendEnt)
			if tt.wantErr {
				require.Error(t, err)
			} else {
				require.NoError(t, err)
			}
			last, _ := s.LastIndex()
			ents, err := s.Entries(4, last+1, noLimit)
			require.NoError(t, err)
			var terms []uint64
			for _, e := range ents {
				terms = append(terms, e.Term)
			}
			require.Equal(t, tt.wantTerms, terms)
		})
	}
}

// TestMemoryStorageReturnedSliceIsolated: a caller appending to a slice
// returned by Entries, or holding it across a truncating Append, never sees
// or causes corruption.
func TestMemoryStorageReturnedSliceIsolated(t *testing.T) {
	s := newStorageAt(t, entryID{}, 1, 1, 1)
	held, err := s.Entries(1, 3, noLimit)
	require.NoError(t, err)
	_ = append(held, pb.Entry{Index: 3, Term: 9})
	term, err := s.Term(3)
	require.NoError(t, err)
	require.Equal(t, uint64(1), term, "append to a returned slice wrote into storage")

	limited, err := s.Entries(1, 4, 0) // one entry, cut by the size limit
	require.NoError(t, err)
	require.Len(t, limited, 1)
	_ = append(limited, pb.Entry{Index: 2, Term: 9})
	term, err = s.Term(2)
	require.NoError(t, err)
	require.Equal(t, uint64(1), term, "append to a size-limited slice wrote into storage")

	require.NoError(t, s.Append(entsFrom(2, 2, 2)))
	require.Equal(t, uint64(1), held[1].Term, "a truncating append changed a slice handed out earlier")
}

func TestMemoryStorageCompact(t *testing.T) {
	tests := []struct {
		name      string
		compact   uint64
		wantErr   error
		wantFirst uint64
		wantTerm  uint64 // term of the compaction point afterwards
	}{
		{name: "at the compaction point", compact: 3, wantErr: ErrCompacted, wantFirst: 4, wantTerm: 3},
		{name: "before it", compact: 2, wantErr: ErrCompacted, wantFirst: 4, wantTerm: 3},
		{name: "past the end", compact: 7, wantErr: ErrUnavailable, wantFirst: 4, wantTerm: 3},
		{name: "middle", compact: 5, wantFirst: 6, wantTerm: 5},
		{name: "last", compact: 6, wantFirst: 7, wantTerm: 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStorageAt(t, entryID{term: 3, index: 3}, 4, 5, 6)
			err := s.Compact(tt.compact)
			require.ErrorIs(t, err, tt.wantErr)
			first, _ := s.FirstIndex()
			require.Equal(t, tt.wantFirst, first)
			term, err := s.Term(first - 1)
			require.NoError(t, err)
			require.Equal(t, tt.wantTerm, term)
			last, _ := s.LastIndex()
			require.Equal(t, uint64(6), last, "compaction keeps the last index")
		})
	}
}

func TestMemoryStorageCreateSnapshot(t *testing.T) {
	cs := &pb.ConfState{Voters: []uint64{1, 2, 3}}
	tests := []struct {
		name    string
		index   uint64
		cs      *pb.ConfState
		wantErr error
		wantCS  pb.ConfState
	}{
		{name: "older than current", index: 3, cs: cs, wantErr: ErrSnapOutOfDate},
		{name: "past the end", index: 7, cs: cs, wantErr: ErrUnavailable},
		{name: "with conf state", index: 5, cs: cs, wantCS: *cs},
		{name: "nil conf state keeps the previous", index: 5, wantCS: pb.ConfState{Voters: []uint64{1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewMemoryStorage()
			require.NoError(t, s.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{
				Index: 3, Term: 3, ConfState: pb.ConfState{Voters: []uint64{1}},
			}}))
			require.NoError(t, s.Append(entsFrom(4, 4, 5, 6)))
			snap, err := s.CreateSnapshot(tt.index, tt.cs, []byte("data"))
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.index, snap.Metadata.Index)
			require.Equal(t, uint64(5), snap.Metadata.Term)
			require.Equal(t, tt.wantCS, snap.Metadata.ConfState)
			stored, err := s.Snapshot()
			require.NoError(t, err)
			require.Equal(t, snap, stored)
			first, _ := s.FirstIndex()
			require.Equal(t, uint64(4), first, "CreateSnapshot does not compact")
		})
	}
}

func TestMemoryStorageApplySnapshot(t *testing.T) {
	s := newStorageAt(t, entryID{term: 2, index: 5}, 3, 3)
	require.ErrorIs(t, s.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 4, Term: 2}}), ErrSnapOutOfDate)
	require.ErrorIs(t, s.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 5, Term: 2}}), ErrSnapOutOfDate)
	last, _ := s.LastIndex()
	require.Equal(t, uint64(7), last, "a refused snapshot changes nothing")

	cs := pb.ConfState{Voters: []uint64{1, 2}}
	require.NoError(t, s.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 10, Term: 4, ConfState: cs}}))
	first, _ := s.FirstIndex()
	last, _ = s.LastIndex()
	require.Equal(t, uint64(11), first)
	require.Equal(t, uint64(10), last)
	term, err := s.Term(10)
	require.NoError(t, err)
	require.Equal(t, uint64(4), term)
	_, gotCS, err := s.InitialState()
	require.NoError(t, err)
	require.Equal(t, cs, gotCS)
}

func TestMemoryStorageInitialStateAndSnapshotUnavailable(t *testing.T) {
	s := NewMemoryStorage()
	hs := pb.HardState{Term: 3, Vote: 2, Commit: 0}
	require.NoError(t, s.SetHardState(hs))
	got, cs, err := s.InitialState()
	require.NoError(t, err)
	require.Equal(t, hs, got)
	require.Equal(t, pb.ConfState{}, cs)

	s.SetSnapshotUnavailableForTest(true)
	_, err = s.Snapshot()
	require.ErrorIs(t, err, ErrSnapshotTemporarilyUnavailable)
	s.SetSnapshotUnavailableForTest(false)
	_, err = s.Snapshot()
	require.NoError(t, err)
}

// TestMemoryStorageConcurrentUse: readers see a consistent log while a
// writer appends and compacts (run under -race).
func TestMemoryStorageConcurrentUse(t *testing.T) {
	s := NewMemoryStorage()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(stop)
		for i := uint64(1); i <= 2000; i++ {
			if err := s.Append(entsFrom(i, i)); err != nil {
				t.Errorf("append %d: %v", i, err)
				return
			}
			if i%100 == 0 {
				if err := s.Compact(i - 50); err != nil {
					t.Errorf("compact %d: %v", i-50, err)
					return
				}
			}
		}
	}()
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				first, _ := s.FirstIndex()
				last, _ := s.LastIndex()
				ents, err := s.Entries(first, last+1, noLimit)
				if err != nil {
					continue // compacted between the calls
				}
				for i, e := range ents {
					if e.Index != first+uint64(i) || e.Term != e.Index {
						t.Errorf("inconsistent entry %v at offset %d from %d", e, i, first)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}

func ExampleMemoryStorage() {
	s := NewMemoryStorage()
	_ = s.Append([]pb.Entry{{Index: 1, Term: 1}, {Index: 2, Term: 1}, {Index: 3, Term: 2}, {Index: 4, Term: 2}})
	snap, _ := s.CreateSnapshot(3, &pb.ConfState{Voters: []uint64{1}}, []byte("state at 3"))
	_ = s.Compact(3)
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	term, _ := s.Term(3)
	ents, _ := s.Entries(first, last+1, 0)
	_, err := s.Entries(2, 4, 0)
	fmt.Printf("snapshot at %d (term %d), log [%d, %d], term(3)=%d\n", snap.Metadata.Index, snap.Metadata.Term, first, last, term)
	fmt.Printf("entries: %d/%d\n", ents[0].Term, ents[0].Index)
	fmt.Println("reading compacted entries:", err)
	// Output:
	// snapshot at 3 (term 2), log [4, 4], term(3)=2
	// entries: 2/4
	// reading compacted entries: raft: requested index is unavailable due to compaction
}

// MemoryStorage's methods use the mutex it exports: while a caller holds
// Lock, a concurrent Entries waits, and it sees what the caller wrote under
// the lock once Unlock is called. (Under -race, a method guarded by another
// mutex is also reported as a data race on the storage's fields.)
func TestMemoryStorageExportedLockGuardsMethods(t *testing.T) {
	ms := NewMemoryStorage()
	require.NoError(t, ms.Append([]pb.Entry{{Index: 1, Term: 1}, {Index: 2, Term: 1}}))

	ms.Lock()
	require.False(t, ms.TryLock(), "already held")
	started := make(chan struct{})
	type result struct {
		ents []pb.Entry
		err  error
	}
	done := make(chan result)
	go func() {
		close(started)
		ents, err := ms.Entries(1, 4, noLimit)
		done <- result{ents, err}
	}()
	<-started
	// Give Entries every chance to run: it must not return while the
	// lock is held.
	for i := 0; i < 1000; i++ {
		select {
		case r := <-done:
			t.Fatalf("Entries returned while the storage was locked: %v, %v", r.ents, r.err)
		default:
			runtime.Gosched()
		}
	}
	// A write made under the caller's lock, as an application holding the
	// lock across several steps would.
	ms.ents = append(ms.ents, pb.Entry{Index: 3, Term: 1})
	ms.Unlock()
	r := <-done
	require.NoError(t, r.err)
	require.Len(t, r.ents, 3, "Entries ran after Unlock and saw entry 3")

	require.True(t, ms.TryLock())
	ms.Unlock()
}

// Save writes a Ready's snapshot, entries and hard state in that order, or
// changes nothing when any of them is refused.
func TestMemoryStorageSave(t *testing.T) {
	snapAt := func(index, term uint64) pb.Snapshot {
		return pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: index, Term: term, ConfState: pb.ConfState{Voters: []uint64{1}}}}
	}
	tests := []struct {
		name      string
		hs        pb.HardState
		ents      []pb.Entry
		snap      pb.Snapshot
		wantErr   error
		wantFirst uint64
		wantLast  uint64
		wantHS    pb.HardState
	}{
		{name: "nothing", wantFirst: 4, wantLast: 5, wantHS: pb.HardState{Term: 5, Commit: 4}},
		{name: "entries and hard state", hs: pb.HardState{Term: 6, Vote: 2, Commit: 5}, ents: entsFrom(6, 6, 6),
			wantFirst: 4, wantLast: 7, wantHS: pb.HardState{Term: 6, Vote: 2, Commit: 5}},
		{name: "entries replace a suffix", ents: entsFrom(5, 6),
			wantFirst: 4, wantLast: 5, wantHS: pb.HardState{Term: 5, Commit: 4}},
		{name: "snapshot then the entries after it", hs: pb.HardState{Term: 7, Commit: 10}, snap: snapAt(10, 7), ents: entsFrom(11, 7),
			wantFirst: 11, wantLast: 11, wantHS: pb.HardState{Term: 7, Commit: 10}},
		{name: "stale snapshot", hs: pb.HardState{Term: 9}, snap: snapAt(3, 3), ents: entsFrom(6, 6), wantErr: ErrSnapOutOfDate,
			wantFirst: 4, wantLast: 5, wantHS: pb.HardState{Term: 5, Commit: 4}},
		{name: "entries leave a gap after the snapshot", hs: pb.HardState{Term: 9}, snap: snapAt(10, 7), ents: entsFrom(12, 7), wantErr: ErrUnavailable,
			wantFirst: 4, wantLast: 5, wantHS: pb.HardState{Term: 5, Commit: 4}},
		{name: "entries leave a gap", hs: pb.HardState{Term: 9}, ents: entsFrom(7, 6), wantErr: ErrUnavailable,
			wantFirst: 4, wantLast: 5, wantHS: pb.HardState{Term: 5, Commit: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStorageAt(t, entryID{term: 3, index: 3}, 4, 5) // 3@3 | 4:4 5:5
			require.NoError(t, s.SetHardState(pb.HardState{Term: 5, Commit: 4}))
			err := s.Save(tt.hs, tt.ents, tt.snap)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
			} else {
				require.NoError(t, err)
			}
			first, _ := s.FirstIndex()
			last, _ := s.LastIndex()
			hs, _, _ := s.InitialState()
			require.Equal(t, tt.wantFirst, first)
			require.Equal(t, tt.wantLast, last)
			require.Equal(t, tt.wantHS, hs)
		})
	}
	s := NewMemoryStorage()
	require.Error(t, s.Save(pb.HardState{}, []pb.Entry{{Index: 1, Term: 1}, {Index: 3, Term: 1}}, pb.Snapshot{}), "entries not contiguous")
}

// A log that grows one entry at a time doubles its array: appending 16384
// entries allocates about twice the final array in all, where append's
// own growth (a quarter at a time past 256 entries) allocates and copies
// about five times as much.
func TestMemoryStorageAppendDoubles(t *testing.T) {
	const n = 16384
	ents := make([]pb.Entry, 1)
	ms := NewMemoryStorage()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := uint64(1); i <= n; i++ {
		ents[0] = pb.Entry{Index: i, Term: 1}
		if err := ms.Append(ents); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	perEntry := float64(after.TotalAlloc-before.TotalAlloc) / n / float64(unsafe.Sizeof(pb.Entry{}))
	t.Logf("%.2f entries' worth allocated per entry appended", perEntry)
	require.Less(t, perEntry, 3.0)
}

// A log compacted at a length of minDoublingEntries or more grows, the next
// time it reaches minDoublingEntries, straight into an array for that
// length (and an eighth): one copy of 256 entries instead of a copy of
// every entry at each doubling up to it. A log compacted short grows as
// before, and the hint changes nothing Snapshot returns.
func TestMemoryStorageRegrowsToItsCompactedLength(t *testing.T) {
	// grow appends entries one at a time from index first to last and
	// returns the capacities the array had as it grew past
	// minDoublingEntries entries.
	grow := func(ms *MemoryStorage, first, last uint64) []int {
		var caps []int
		for i := first; i <= last; i++ {
			require.NoError(t, ms.Append([]pb.Entry{{Index: i, Term: 1}}))
			if c := cap(ms.ents); len(ms.ents) >= minDoublingEntries && (len(caps) == 0 || caps[len(caps)-1] != c) {
				caps = append(caps, c)
			}
		}
		return caps
	}
	t.Run("long", func(t *testing.T) {
		const n = 4096
		ms := NewMemoryStorage()
		fresh := grow(ms, 1, n)
		require.Greater(t, len(fresh), 2, "a fresh log doubles its way up")
		require.NoError(t, ms.Compact(n))
		snap, err := ms.Snapshot()
		require.NoError(t, err)
		require.True(t, IsEmptySnap(snap))
		// The array append grew below minDoublingEntries, then one for
		// the whole length.
		again := grow(ms, n+1, 2*n)
		require.Equal(t, []int{fresh[0], n + n/8}, again)
	})
	t.Run("short", func(t *testing.T) {
		const n = minDoublingEntries - 1
		ms := NewMemoryStorage()
		grow(ms, 1, n)
		require.NoError(t, ms.Compact(n))
		require.Nil(t, ms.snapshot)
		require.Equal(t, grow(NewMemoryStorage(), 1, 2000), grow(ms, n+1, n+2000))
	})
}

// A small log (a group's bootstrap entries, then a leader's empty entry)
// keeps an array of exactly its length: 4 entries in a 192-byte array, not
// the 6 that append would give them (288 bytes) and every idle group would
// hold.
func TestMemoryStorageSmallLogKeepsNoSpareRoom(t *testing.T) {
	ms := NewMemoryStorage()
	require.NoError(t, ms.Append(entsFrom(1, 1, 1, 1)))
	require.NoError(t, ms.Append(entsFrom(4, 2)))
	require.Equal(t, 4, cap(ms.ents))
	for i := uint64(5); i <= maxExactEntries; i++ {
		require.NoError(t, ms.Append(entsFrom(i, 2)))
		require.Equal(t, int(i), cap(ms.ents))
	}
	ents, err := ms.Entries(1, maxExactEntries+1, noLimit)
	require.NoError(t, err)
	require.Len(t, ents, maxExactEntries)
	require.Equal(t, uint64(maxExactEntries), ents[maxExactEntries-1].Index)
}

// Snapshot stays unavailable, as a test asked, while snapshots are applied
// and created, and returns the latest once available again.
func TestMemoryStorageSnapshotUnavailableForTest(t *testing.T) {
	s := NewMemoryStorage()
	s.SetSnapshotUnavailableForTest(true)
	snap := pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 5, Term: 2, ConfState: pb.ConfState{Voters: []uint64{1}}}}
	require.NoError(t, s.ApplySnapshot(snap))
	_, err := s.Snapshot()
	require.ErrorIs(t, err, ErrSnapshotTemporarilyUnavailable)
	require.NoError(t, s.Append([]pb.Entry{{Index: 6, Term: 2}}))
	_, err = s.CreateSnapshot(6, nil, []byte("d"))
	require.NoError(t, err)
	_, err = s.Snapshot()
	require.ErrorIs(t, err, ErrSnapshotTemporarilyUnavailable)
	s.SetSnapshotUnavailableForTest(false)
	got, err := s.Snapshot()
	require.NoError(t, err)
	require.Equal(t, uint64(6), got.Metadata.Index)
	require.Equal(t, []byte("d"), got.Data)
}

// One MemoryStorage per group: it must stay in the 80-byte size class.
func TestMemoryStorageSize(t *testing.T) {
	if got := unsafe.Sizeof(MemoryStorage{}); got > 80 {
		t.Fatalf("MemoryStorage is %d bytes, want at most 80", got)
	}
}
