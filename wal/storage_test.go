package wal

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
)

// TestBadInputsMatchMemoryStorage runs the same invalid calls against a
// MemoryStorage and a Storage holding the same log: both refuse them with
// the same errors, and neither changes.
func TestBadInputsMatchMemoryStorage(t *testing.T) {
	ents := func(idx ...uint64) []pb.Entry {
		var out []pb.Entry
		for _, i := range idx {
			out = append(out, pb.Entry{Index: i, Term: 2, Data: []byte{byte(i)}})
		}
		return out
	}
	snap := func(i uint64) pb.Snapshot {
		return pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: i, Term: 2}}
	}
	type store interface {
		raft.Storage
		Append([]pb.Entry) error
		ApplySnapshot(pb.Snapshot) error
		CreateSnapshot(uint64, *pb.ConfState, []byte) (pb.Snapshot, error)
		Compact(uint64) error
	}
	tests := []struct {
		name string
		call func(s store) error
		want error // a sentinel both errors must wrap, or nil for "an error"
	}{
		{"entries not contiguous", func(s store) error { return s.Append(ents(21, 23)) }, nil},
		{"entries leave a gap", func(s store) error { return s.Append(ents(22, 23)) }, raft.ErrUnavailable},
		{"compact at the compaction point", func(s store) error { return s.Compact(5) }, raft.ErrCompacted},
		{"compact below it", func(s store) error { return s.Compact(3) }, raft.ErrCompacted},
		{"compact past the last index", func(s store) error { return s.Compact(21) }, raft.ErrUnavailable},
		{"apply an older snapshot", func(s store) error { return s.ApplySnapshot(snap(3)) }, raft.ErrSnapOutOfDate},
		{"apply the same snapshot", func(s store) error { return s.ApplySnapshot(snap(5)) }, raft.ErrSnapOutOfDate},
		{"create an older snapshot", func(s store) error { _, err := s.CreateSnapshot(4, nil, nil); return err }, raft.ErrSnapOutOfDate},
		{"create past the last index", func(s store) error { _, err := s.CreateSnapshot(21, nil, nil); return err }, raft.ErrUnavailable},
		{"entries before lo", func(s store) error { _, err := s.Entries(5, 7, math.MaxUint64); return err }, raft.ErrCompacted},
		{"entries past the end", func(s store) error { _, err := s.Entries(19, 22, math.MaxUint64); return err }, raft.ErrUnavailable},
		{"entries lo > hi", func(s store) error { _, err := s.Entries(9, 8, math.MaxUint64); return err }, raft.ErrUnavailable},
		{"term before the compaction point", func(s store) error { _, err := s.Term(4); return err }, raft.ErrCompacted},
		{"term past the end", func(s store) error { _, err := s.Term(21); return err }, raft.ErrUnavailable},
	}
	setup := func(t *testing.T, s store) {
		require.NoError(t, s.ApplySnapshot(snap(5)))
		require.NoError(t, s.Append(ents(6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20)))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms := raft.NewMemoryStorage()
			setup(t, ms)
			ws, err := Open(t.TempDir(), Options{})
			require.NoError(t, err)
			defer ws.Close()
			setup(t, ws)
			memErr, walErr := tt.call(ms), tt.call(ws)
			require.Error(t, memErr)
			require.Error(t, walErr)
			if tt.want != nil {
				require.ErrorIs(t, memErr, tt.want)
				require.ErrorIs(t, walErr, tt.want)
			}
			for _, s := range []store{ms, ws} {
				first, _ := s.FirstIndex()
				last, _ := s.LastIndex()
				require.Equal(t, [2]uint64{6, 20}, [2]uint64{first, last})
				got, err := s.Entries(6, 21, math.MaxUint64)
				require.NoError(t, err)
				require.Equal(t, ents(6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20), got)
			}
		})
	}
}

// TestReadsDuringSaves reads from several goroutines while one goroutine
// saves, truncates and compacts: every read sees a consistent log (run
// under -race by make test).
func TestReadsDuringSaves(t *testing.T) {
	s, err := Open(t.TempDir(), Options{SegmentSize: 16 << 10, CacheSize: 2000})
	require.NoError(t, err)
	defer s.Close()
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; !stop.Load(); n++ {
				first, _ := s.FirstIndex()
				last, _ := s.LastIndex()
				if last < first {
					continue
				}
				lo := first + uint64(n*(r+1))%(last-first+1)
				ents, err := s.Entries(lo, last+1, 4096)
				if errors.Is(err, raft.ErrCompacted) || errors.Is(err, raft.ErrUnavailable) {
					continue // compacted or truncated since
				}
				if err != nil {
					errs <- err
					return
				}
				for i, e := range ents {
					// Data names the entry's index and term.
					if e.Index != lo+uint64(i) || string(e.Data) != entryData(e.Index, e.Term) {
						errs <- errors.New("inconsistent entry " + string(e.Data))
						return
					}
				}
			}
		}()
	}
	term := uint64(1)
	next := uint64(1)
	for step := range 400 {
		if step%37 == 36 && next > 10 {
			next -= 5 // replace a suffix
			term++
		}
		var ents []pb.Entry
		for range 1 + step%7 {
			ents = append(ents, pb.Entry{Index: next, Term: term, Data: []byte(entryData(next, term))})
			next++
		}
		require.NoError(t, s.Save(pb.HardState{Term: term, Commit: next - 6}, ents, pb.Snapshot{}))
		if step%50 == 49 {
			c := next - 20
			_, err := s.CreateSnapshot(c, nil, nil)
			require.NoError(t, err)
			require.NoError(t, s.Compact(c-10))
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func entryData(index, term uint64) string { return fmt.Sprintf("entry %d of term %d", index, term) }

// TestCompactDeletesSegments: once the snapshot and the compaction point
// cover them, whole segments are deleted, and the log reopens at the
// snapshot with everything after it.
func TestCompactDeletesSegments(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: 4096}
	s, err := Open(dir, opts)
	require.NoError(t, err)
	var all []pb.Entry
	for i := uint64(1); i <= 300; i++ {
		e := pb.Entry{Index: i, Term: 1, Data: []byte(entryData(i, 1))}
		all = append(all, e)
		require.NoError(t, s.Save(pb.HardState{Term: 1, Commit: i}, []pb.Entry{e}, pb.Snapshot{}))
	}
	before, err := listNumbered(osFS{}, dir, segmentExt)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(before), 5)

	// Compacting without a snapshot deletes nothing: a restart replays
	// the log from its start.
	require.NoError(t, s.Compact(100))
	segs, _ := listNumbered(osFS{}, dir, segmentExt)
	require.Equal(t, before, segs)

	_, err = s.CreateSnapshot(250, &pb.ConfState{Voters: []uint64{1}}, []byte("state at 250"))
	require.NoError(t, err)
	require.NoError(t, s.Compact(240))
	after, _ := listNumbered(osFS{}, dir, segmentExt)
	require.Less(t, len(after), len(before))
	require.Equal(t, before[len(before)-1], after[len(after)-1], "the last segment stays")
	first, _ := s.FirstIndex()
	require.Equal(t, uint64(241), first)
	got, err := s.Entries(241, 301, math.MaxUint64)
	require.NoError(t, err)
	require.Equal(t, all[240:], got)
	require.NoError(t, s.Close())

	s, err = Open(dir, opts)
	require.NoError(t, err)
	defer s.Close()
	first, _ = s.FirstIndex()
	require.Equal(t, uint64(251), first, "the log reopens at the snapshot")
	got, err = s.Entries(251, 301, math.MaxUint64)
	require.NoError(t, err)
	require.Equal(t, all[250:], got)
	snap, err := s.Snapshot()
	require.NoError(t, err)
	require.Equal(t, []byte("state at 250"), snap.Data)
}
