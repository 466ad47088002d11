package wal_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/wal"
	"github.com/raftcore/raft/wal/crashfs"
)

// TestMultiSaveSyncsOnce counts the file system's operations during
// Saves of 64 groups: one write and one sync when any group's part must
// be durable, no sync for commit-only changes; and a power failure right
// after a synced Save loses nothing of any group.
func TestMultiSaveSyncsOnce(t *testing.T) {
	const groups = 64
	fs := crashfs.New()
	opts := wal.Options{SegmentSize: 1 << 20, FS: fs}
	ml, err := wal.OpenMulti("/data/once", opts)
	require.NoError(t, err)
	ops := []crashfs.Op{crashfs.OpWrite, crashfs.OpSync, crashfs.OpSyncDir, crashfs.OpCreate, crashfs.OpRename}
	counted := func(save func() error) map[crashfs.Op]int {
		t.Helper()
		before := map[crashfs.Op]int{}
		for _, op := range ops {
			before[op] = fs.Count(op)
		}
		require.NoError(t, save())
		made := map[crashfs.Op]int{}
		for _, op := range ops {
			if n := fs.Count(op) - before[op]; n > 0 {
				made[op] = n
			}
		}
		return made
	}
	update := func(id, last, commit uint64, n int) wal.GroupUpdate {
		u := wal.GroupUpdate{GroupID: id, HardState: pb.HardState{Term: 1, Vote: 1, Commit: commit}}
		for i := range n {
			idx := last + 1 + uint64(i)
			u.Entries = append(u.Entries, pb.Entry{Index: idx, Term: 1, Data: fmt.Appendf(nil, "group %d entry %d", id, idx)})
		}
		return u
	}
	var ups []wal.GroupUpdate
	for id := uint64(1); id <= groups; id++ {
		ups = append(ups, update(id, 0, 0, 3))
	}
	one := map[crashfs.Op]int{crashfs.OpWrite: 1, crashfs.OpSync: 1}
	require.Equal(t, one, counted(func() error { return ml.Save(ups) }), "entries of %d groups", groups)

	ups = ups[:0]
	for id := uint64(1); id <= groups; id++ {
		ups = append(ups, update(id, 3, 2, 0))
	}
	require.Equal(t, map[crashfs.Op]int{crashfs.OpWrite: 1}, counted(func() error { return ml.Save(ups) }), "commit-only changes")

	ups = ups[:0]
	for id := uint64(1); id <= groups; id++ {
		n := 0
		if id == groups {
			n = 2 // one group's entries make the whole Save durable
		}
		ups = append(ups, update(id, 3, 3, n))
	}
	require.Equal(t, one, counted(func() error { return ml.Save(ups) }), "commit-only changes and one group's entries")

	fs.Crash(crashfs.DropUnsynced, 1)
	ml, err = wal.OpenMulti("/data/once", opts)
	require.NoError(t, err)
	defer ml.Close()
	for id := uint64(1); id <= groups; id++ {
		g, err := ml.Group(id)
		require.NoError(t, err)
		last, err := g.LastIndex()
		require.NoError(t, err)
		want := uint64(3)
		if id == groups {
			want = 5
		}
		require.Equal(t, want, last, "group %d", id)
		require.Equal(t, pb.HardState{Term: 1, Vote: 1, Commit: 3}, g.HardState(), "group %d: the synced Save made every group's commit durable", id)
	}
}
