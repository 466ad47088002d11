package main

import (
	"bytes"
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
