package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/wal"
)

func TestDump(t *testing.T) {
	dir := t.TempDir()
	s, err := wal.Open(dir, wal.Options{SegmentSize: 4096})
	require.NoError(t, err)
	for i := uint64(1); i <= 40; i++ {
		e := pb.Entry{Index: i, Term: 2, Data: []byte("put k" + strings.Repeat("v", 100))}
		require.NoError(t, s.Save(pb.HardState{Term: 2, Vote: 1, Commit: i}, []pb.Entry{e}, pb.Snapshot{}))
	}
	_, err = s.CreateSnapshot(30, &pb.ConfState{Voters: []uint64{1, 2, 3}}, []byte("state"))
	require.NoError(t, err)
	require.NoError(t, s.Close())

	var out bytes.Buffer
	require.NoError(t, dump(&out, dir, true))
	text := out.String()
	require.Contains(t, text, "0000000000000001.wal@0        segment-header term=0 vote=0 commit=0\n")
	require.Contains(t, text, `entry index=1 term=2 EntryNormal 105 bytes "put kvvvv`)
	require.Contains(t, text, "hard-state term=2 vote=1 commit=40\n")
	require.Contains(t, text, "000000000000001e.snap@0        snapshot-file index=30 term=2\n")
	require.Contains(t, text, "40 entry records (4200 payload bytes), indexes 1...40\n")
	require.Contains(t, text, "snapshot: index=30 term=2 voters=[1 2 3] learners=[], 5 bytes\n")
	require.NotContains(t, text, "torn")

	// Damage in the first segment: the records before it are printed, then
	// the error names the file.
	p := filepath.Join(dir, "0000000000000001.wal")
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	b[200] ^= 0xff
	require.NoError(t, os.WriteFile(p, b, 0o600))
	out.Reset()
	err = dump(&out, dir, false)
	require.ErrorIs(t, err, wal.ErrCorrupt)
	require.Contains(t, err.Error(), p)
	require.Contains(t, out.String(), "entry index=1 term=2 EntryNormal 105 bytes\n")
}

// TestDumpRefusesWhatOpenRefuses: damage across files that wal.Open
// refuses is damage to waldump too (it exits 1), and no torn tail is
// claimed for a segment without a header.
func TestDumpRefusesWhatOpenRefuses(t *testing.T) {
	build := func(t *testing.T) string {
		dir := t.TempDir()
		s, err := wal.Open(dir, wal.Options{SegmentSize: 4096})
		require.NoError(t, err)
		for i := uint64(1); i <= 40; i++ {
			e := pb.Entry{Index: i, Term: 2, Data: []byte(strings.Repeat("v", 200))}
			require.NoError(t, s.Save(pb.HardState{Term: 2, Vote: 1, Commit: i}, []pb.Entry{e}, pb.Snapshot{}))
		}
		require.NoError(t, s.Close())
		return dir
	}
	seg := func(dir string, n int) string { return filepath.Join(dir, fmt.Sprintf("%016x.wal", n)) }
	for _, tt := range []struct {
		name   string
		damage func(dir string) error
		reason string
	}{
		{"middle segment missing", func(dir string) error { return os.Remove(seg(dir, 2)) }, "missing segment between 1 and 3"},
		{"first segment missing", func(dir string) error { return os.Remove(seg(dir, 1)) }, "but the snapshot ends at 0"},
		{"only segment empty", func(dir string) error {
			for n := 2; ; n++ {
				if err := os.Remove(seg(dir, n)); err != nil {
					return os.Truncate(seg(dir, 1), 0)
				}
			}
		}, "segment without a header"},
		{"only segment of 5 bytes", func(dir string) error {
			for n := 2; ; n++ {
				if err := os.Remove(seg(dir, n)); err != nil {
					return os.Truncate(seg(dir, 1), 5)
				}
			}
		}, "segment without a header"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := build(t)
			require.NoError(t, tt.damage(dir))
			var out bytes.Buffer
			err := dump(&out, dir, false)
			require.ErrorIs(t, err, wal.ErrCorrupt)
			require.Contains(t, err.Error(), tt.reason)
			require.NotContains(t, out.String(), "torn")
		})
	}
}

// TestDumpMultiGroup: each record of a multi-group log names its group,
// entries print with their record's kind, and the summary is per group.
func TestDumpMultiGroup(t *testing.T) {
	dir := t.TempDir()
	ml, err := wal.OpenMulti(dir, wal.Options{SegmentSize: 4096, NoSync: true})
	require.NoError(t, err)
	require.NoError(t, ml.Save([]wal.GroupUpdate{
		{GroupID: 1, HardState: pb.HardState{Term: 3, Vote: 1, Commit: 2}, Entries: []pb.Entry{{Index: 1, Term: 3, Data: []byte("a")}, {Index: 2, Term: 3, Data: []byte("bc")}}},
		{GroupID: 2, Snapshot: pb.Snapshot{Data: []byte("snap"), Metadata: pb.SnapshotMetadata{Index: 5, Term: 1, ConfState: pb.ConfState{Voters: []uint64{1}}}}},
		{GroupID: 3, HardState: pb.HardState{Term: 1}, Entries: []pb.Entry{{Index: 1, Term: 1}}},
	}))
	require.NoError(t, ml.Save([]wal.GroupUpdate{
		{GroupID: 2, HardState: pb.HardState{Term: 1, Commit: 6}, Entries: []pb.Entry{{Index: 6, Term: 1, Data: []byte("d")}}},
	}))
	require.NoError(t, ml.RemoveGroup(3))
	require.NoError(t, ml.Close())

	var out bytes.Buffer
	require.NoError(t, dump(&out, dir, true))
	text := out.String()
	for _, want := range []string{
		"group=1 group-entry index=1 term=3 EntryNormal 1 bytes \"a\"\n",
		"group=1 group-hard-state term=3 vote=1 commit=2\n",
		"group=2 group-snapshot index=5 term=1\n",
		"group=2 group-entry index=6 term=1 EntryNormal 1 bytes \"d\"\n",
		"group=3 group-removed\n",
		"0000000000000002-0000000000000005.snap@0        group=2 snapshot-file index=5 term=1\n",
		"\n1 segments, 4 entry records (4 payload bytes)\n",
		"group 1: 2 entry records (3 payload bytes), indexes 1...2\ngroup 1: hard state: term=3 vote=1 commit=2\n",
		"group 2: 1 entry records (1 payload bytes), indexes 6...6\ngroup 2: hard state: term=1 vote=0 commit=6\n" +
			"group 2: snapshot: index=5 term=1 voters=[1] learners=[], 4 bytes\n",
		"group 3: removed\n",
	} {
		require.Contains(t, text, want)
	}
}

// TestDumpBesideCompaction: segments a server removes while waldump reads
// the directory are mentioned and skipped, not reported as damage.
func TestDumpBesideCompaction(t *testing.T) {
	dir := t.TempDir()
	s, err := wal.Open(dir, wal.Options{SegmentSize: 4096, NoSync: true})
	require.NoError(t, err)
	defer s.Close()
	for i := uint64(1); i <= 100; i++ {
		e := pb.Entry{Index: i, Term: 1, Data: make([]byte, 100)}
		require.NoError(t, s.Save(pb.HardState{Term: 1, Commit: i}, []pb.Entry{e}, pb.Snapshot{}))
	}
	defer func(w func(string, func(wal.Record) error) error) { walk = w }(walk)
	walk = func(dir string, fn func(wal.Record) error) error {
		compacted := false
		return wal.Walk(dir, func(r wal.Record) error {
			if !compacted && r.Kind == "segment-header" {
				compacted = true
				_, err := s.CreateSnapshot(90, nil, nil)
				require.NoError(t, err)
				require.NoError(t, s.Compact(90))
			}
			return fn(r)
		})
	}
	var out bytes.Buffer
	require.NoError(t, dump(&out, dir, false))
	require.Contains(t, out.String(), "0000000000000002.wal removed after it was listed (the log was compacted): skipped\n")
	require.Contains(t, out.String(), "files removed while they were read (the log was compacted), skipped: [0000000000000002.wal")
	require.Contains(t, out.String(), "the checks across files were not made\n")
}

// TestDumpAcceptsDamagedOlderSnapshotFile: a damaged snapshot file older
// than the newest, which wal.Open removes without reading it, is printed
// and summed up but is not damage: waldump exits 0 where Open opens the
// log.
func TestDumpAcceptsDamagedOlderSnapshotFile(t *testing.T) {
	dir := t.TempDir()
	s, err := wal.Open(dir, wal.Options{NoSync: true})
	require.NoError(t, err)
	for i := uint64(1); i <= 40; i++ {
		require.NoError(t, s.Save(pb.HardState{Term: 2, Commit: i}, []pb.Entry{{Index: i, Term: 2}}, pb.Snapshot{}))
	}
	_, err = s.CreateSnapshot(20, &pb.ConfState{Voters: []uint64{1}}, []byte("state"))
	require.NoError(t, err)
	older := filepath.Join(dir, "0000000000000014.snap")
	b, err := os.ReadFile(older)
	require.NoError(t, err)
	_, err = s.CreateSnapshot(30, &pb.ConfState{Voters: []uint64{1}}, []byte("state"))
	require.NoError(t, err)
	require.NoError(t, s.Close())
	// As a crash between writing the newest and removing the older one
	// may leave it, cut short.
	require.NoError(t, os.WriteFile(older, b[:len(b)-1], 0o600))

	var out bytes.Buffer
	require.NoError(t, dump(&out, dir, false))
	text := out.String()
	require.Contains(t, text, "0000000000000014.snap damaged, older than the newest snapshot file: opening the directory removes it unread\n")
	require.Contains(t, text, "000000000000001e.snap@0        snapshot-file index=30 term=2\n")
	require.Contains(t, text, "1 damaged snapshot files older than their log's newest; opening the directory removes them unread: [0000000000000014.snap]\n")
	s, err = wal.Open(dir, wal.Options{NoSync: true})
	require.NoError(t, err)
	require.NoError(t, s.Close())
}
