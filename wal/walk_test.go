package wal

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
)

// walkErr walks dir and returns its error, with the kinds of the records
// reported.
func walkErr(dir string) (kinds []string, err error) {
	err = Walk(dir, func(r Record) error {
		kinds = append(kinds, r.Kind)
		return nil
	})
	return kinds, err
}

// TestWalkRefusesWhatOpenRefuses: damage that only shows across files (a
// missing segment, a log that does not continue its snapshot, a segment
// without a header) fails Walk with the error Open returns.
func TestWalkRefusesWhatOpenRefuses(t *testing.T) {
	// build returns a log of entries 1...100 in several segments, with a
	// snapshot at 50 if snapshot, and the segment holding entry 51.
	build := func(t *testing.T, snapshot bool) (string, uint64) {
		dir := t.TempDir()
		s, err := Open(dir, Options{SegmentSize: 4096})
		require.NoError(t, err)
		for i := uint64(1); i <= 100; i++ {
			e := pb.Entry{Index: i, Term: 1, Data: make([]byte, 100)}
			require.NoError(t, s.Save(pb.HardState{Term: 1, Commit: i}, []pb.Entry{e}, pb.Snapshot{}))
		}
		if snapshot {
			_, err = s.CreateSnapshot(50, &pb.ConfState{Voters: []uint64{1}}, nil)
			require.NoError(t, err)
		}
		seq := s.loc(51).seq
		require.NoError(t, s.Close())
		return dir, seq
	}
	// small returns a log of one segment.
	small := func(t *testing.T) string {
		dir := t.TempDir()
		s, err := Open(dir, Options{SegmentSize: 4096})
		require.NoError(t, err)
		require.NoError(t, s.Save(pb.HardState{Term: 1}, []pb.Entry{{Index: 1, Term: 1}}, pb.Snapshot{}))
		require.NoError(t, s.Close())
		return dir
	}
	remove := func(t *testing.T, dir string, seqs ...uint64) {
		for _, seq := range seqs {
			require.NoError(t, os.Remove(filepath.Join(dir, segmentName(seq))))
		}
	}
	cut := func(t *testing.T, dir string, size int64) {
		require.NoError(t, os.Truncate(filepath.Join(dir, segmentName(1)), size))
	}
	for _, tt := range []struct {
		name   string
		damage func(t *testing.T) string
		reason string
	}{
		{"middle segment missing", func(t *testing.T) string { d, _ := build(t, true); remove(t, d, 2); return d }, "missing segment between 1 and 3"},
		{"first segment missing", func(t *testing.T) string { d, _ := build(t, false); remove(t, d, 1); return d }, "but the snapshot ends at 0"},
		{"segment after the snapshot missing", func(t *testing.T) string {
			d, seq := build(t, true)
			for i := uint64(1); i <= seq; i++ {
				remove(t, d, i)
			}
			return d
		}, "but the snapshot ends at 50"},
		{"only segment empty", func(t *testing.T) string { d := small(t); cut(t, d, 0); return d }, "segment without a header"},
		{"only segment of 5 bytes", func(t *testing.T) string { d := small(t); cut(t, d, 5); return d }, "segment without a header"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.damage(t)
			kinds, werr := walkErr(dir)
			require.ErrorIs(t, werr, ErrCorrupt)
			require.Contains(t, werr.Error(), tt.reason)
			require.NotContains(t, kinds, "torn-tail")
			_, oerr := Open(dir, Options{SegmentSize: 4096})
			require.Error(t, oerr)
			require.Equal(t, oerr.Error(), werr.Error())
		})
	}
}

// TestWalkMultiRefusesWhatOpenMultiRefuses: the same for a MultiLog, whose
// groups each continue their own snapshot.
func TestWalkMultiRefusesWhatOpenMultiRefuses(t *testing.T) {
	build := func(t *testing.T) string {
		dir := t.TempDir()
		ml, err := OpenMulti(dir, Options{SegmentSize: 4096, NoSync: true})
		require.NoError(t, err)
		for i := uint64(1); i <= 40; i++ {
			require.NoError(t, ml.Save([]GroupUpdate{
				{GroupID: 1, HardState: pb.HardState{Term: 1, Commit: i}, Entries: []pb.Entry{{Index: i, Term: 1, Data: make([]byte, 400)}}},
			}))
		}
		require.NoError(t, ml.Close())
		return dir
	}
	t.Run("middle segment missing", func(t *testing.T) {
		dir := build(t)
		require.NoError(t, os.Remove(filepath.Join(dir, segmentName(2))))
		_, werr := walkErr(dir)
		require.ErrorIs(t, werr, ErrCorrupt)
		_, oerr := OpenMulti(dir, Options{SegmentSize: 4096, NoSync: true})
		require.Error(t, oerr)
		require.Equal(t, oerr.Error(), werr.Error())
	})
	t.Run("first segment missing", func(t *testing.T) {
		// Group 1's log then starts after its first entries, with no
		// snapshot to cover them.
		dir := build(t)
		require.NoError(t, os.Remove(filepath.Join(dir, segmentName(1))))
		_, werr := walkErr(dir)
		require.ErrorIs(t, werr, ErrCorrupt)
		require.Contains(t, werr.Error(), "group 1: ")
		_, oerr := OpenMulti(dir, Options{SegmentSize: 4096, NoSync: true})
		require.Error(t, oerr)
		require.Equal(t, oerr.Error(), werr.Error())
	})
}

// TestWalkBesideCompaction: files a server beside Walk removes after Walk
// listed them are reported as vanished, not as damage, and the checks
// across files are skipped; so is a snapshot file written after the
// listing whose record Walk then reads.
func TestWalkBesideCompaction(t *testing.T) {
	open := func(t *testing.T) *Storage {
		s, err := Open(t.TempDir(), Options{SegmentSize: 4096, NoSync: true})
		require.NoError(t, err)
		for i := uint64(1); i <= 100; i++ {
			e := pb.Entry{Index: i, Term: 1, Data: make([]byte, 100)}
			require.NoError(t, s.Save(pb.HardState{Term: 1, Commit: i}, []pb.Entry{e}, pb.Snapshot{}))
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	t.Run("compacted", func(t *testing.T) {
		s := open(t)
		_, err := s.CreateSnapshot(50, nil, nil)
		require.NoError(t, err)
		once := false
		var kinds []string
		err = Walk(s.Dir(), func(r Record) error {
			if !once && r.Kind == "segment-header" {
				once = true
				_, err := s.CreateSnapshot(90, nil, nil)
				require.NoError(t, err)
				require.NoError(t, s.Compact(90))
			}
			kinds = append(kinds, r.Kind)
			return nil
		})
		require.NoError(t, err)
		require.Contains(t, kinds, "vanished")
		require.Equal(t, "directory-changed", kinds[len(kinds)-1])
	})
	t.Run("snapshot received", func(t *testing.T) {
		s := open(t)
		once := false
		var kinds []string
		err := Walk(s.Dir(), func(r Record) error {
			if !once && r.Kind == "segment-header" {
				once = true
				snap := pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 200, Term: 2}}
				require.NoError(t, s.Save(pb.HardState{Term: 2, Commit: 200}, nil, snap))
			}
			kinds = append(kinds, r.Kind)
			return nil
		})
		require.NoError(t, err)
		require.NotContains(t, kinds, "vanished")
		require.Equal(t, "directory-changed", kinds[len(kinds)-1])
	})
	t.Run("unchanged", func(t *testing.T) {
		s := open(t)
		kinds, err := walkErr(s.Dir())
		require.NoError(t, err)
		require.NotContains(t, kinds, "directory-changed")
	})
}

// TestWalkGoesOnPastAVanishedSnapshotFile: a snapshot file removed after
// Walk listed the directory (the server snapshotted that group again) is
// reported gone, and the snapshot files after it are still reported.
func TestWalkGoesOnPastAVanishedSnapshotFile(t *testing.T) {
	dir := t.TempDir()
	ml, err := OpenMulti(dir, Options{NoSync: true})
	require.NoError(t, err)
	defer ml.Close()
	for id := uint64(1); id <= 3; id++ {
		g, err := ml.Group(id)
		require.NoError(t, err)
		for i := uint64(1); i <= 3; i++ {
			require.NoError(t, g.Save(pb.HardState{Term: 1, Commit: i}, []pb.Entry{{Index: i, Term: 1}}, pb.Snapshot{}))
		}
		_, err = g.CreateSnapshot(2, &pb.ConfState{Voters: []uint64{1}}, nil)
		require.NoError(t, err)
	}
	reported := map[uint64]bool{}
	vanished := 0
	require.NoError(t, Walk(dir, func(r Record) error {
		switch r.Kind {
		case "snapshot-file":
			reported[r.GroupID] = true
			if r.GroupID == 1 { // meanwhile, group 2 snapshots again
				g, err := ml.Group(2)
				require.NoError(t, err)
				_, err = g.CreateSnapshot(3, nil, nil)
				require.NoError(t, err)
			}
		case "vanished":
			vanished++
		}
		return nil
	}))
	require.Equal(t, 1, vanished, "group 2's older snapshot file")
	require.True(t, reported[3], "group 3's snapshot file was not reported")
}

// TestWalkReportsDamagedOlderSnapshotFiles: a damaged snapshot file older
// than its log's newest (left by a crash between writing the newest and
// removing it) is reported, not refused: Open reads only the newest and
// removes the others unread, so Walk accepts what Open accepts. Damage in
// the newest is refused by both.
func TestWalkReportsDamagedOlderSnapshotFiles(t *testing.T) {
	// A log: build writes it with snapshot files at 20 and 30, calling
	// snap after each; name names its snapshot file at an index; open
	// opens it; group is its group ID (0 for a single log).
	type log struct {
		build func(t *testing.T, dir string, snap func(index uint64))
		name  func(index uint64) string
		open  func(dir string) error
		group uint64
	}
	single := log{
		build: func(t *testing.T, dir string, snap func(uint64)) {
			s, err := Open(dir, Options{NoSync: true})
			require.NoError(t, err)
			for i := uint64(1); i <= 40; i++ {
				require.NoError(t, s.Save(pb.HardState{Term: 1, Commit: i}, []pb.Entry{{Index: i, Term: 1}}, pb.Snapshot{}))
			}
			for _, index := range []uint64{20, 30} {
				_, err = s.CreateSnapshot(index, &pb.ConfState{Voters: []uint64{1}}, []byte("state"))
				require.NoError(t, err)
				snap(index)
			}
			require.NoError(t, s.Close())
		},
		name: snapshotName,
		open: func(dir string) error {
			s, err := Open(dir, Options{NoSync: true})
			if err == nil {
				s.Close()
			}
			return err
		},
	}
	multi := log{
		build: func(t *testing.T, dir string, snap func(uint64)) {
			ml, err := OpenMulti(dir, Options{NoSync: true})
			require.NoError(t, err)
			g, err := ml.Group(7)
			require.NoError(t, err)
			for i := uint64(1); i <= 40; i++ {
				require.NoError(t, g.Save(pb.HardState{Term: 1, Commit: i}, []pb.Entry{{Index: i, Term: 1}}, pb.Snapshot{}))
			}
			for _, index := range []uint64{20, 30} {
				_, err = g.CreateSnapshot(index, &pb.ConfState{Voters: []uint64{1}}, []byte("state"))
				require.NoError(t, err)
				snap(index)
			}
			require.NoError(t, ml.Close())
		},
		name: func(index uint64) string { return groupSnapshotName(7, index) },
		open: func(dir string) error {
			ml, err := OpenMulti(dir, Options{NoSync: true})
			if err == nil {
				ml.Close()
			}
			return err
		},
		group: 7,
	}
	for _, tt := range []struct {
		name   string
		log    log
		newest bool
	}{
		{"single log, older damaged", single, false},
		{"multi log, older damaged", multi, false},
		{"single log, newest damaged", single, true},
		{"multi log, newest damaged", multi, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			// Keep each snapshot file as written: writing the next one
			// removes it.
			kept := map[uint64][]byte{}
			tt.log.build(t, dir, func(index uint64) {
				b, err := os.ReadFile(filepath.Join(dir, tt.log.name(index)))
				require.NoError(t, err)
				kept[index] = b
			})
			damaged := uint64(20)
			if tt.newest {
				damaged = 30
			}
			for index, b := range kept {
				if index == damaged {
					b = b[:len(b)-1]
				}
				require.NoError(t, os.WriteFile(filepath.Join(dir, tt.log.name(index)), b, 0o644))
			}
			var stale []Record
			var snaps []uint64
			werr := Walk(dir, func(r Record) error {
				switch r.Kind {
				case "stale-snapshot-file":
					stale = append(stale, r)
				case "snapshot-file":
					snaps = append(snaps, r.Snapshot.Metadata.Index)
				}
				return nil
			})
			if tt.newest {
				require.ErrorIs(t, werr, ErrCorrupt)
				require.ErrorIs(t, tt.log.open(dir), ErrCorrupt)
				return
			}
			require.NoError(t, werr)
			require.Equal(t, []Record{{File: tt.log.name(20), Kind: "stale-snapshot-file", GroupID: tt.log.group}}, stale)
			require.Equal(t, []uint64{30}, snaps)
			require.NoError(t, tt.log.open(dir))
		})
	}
}
