package main

import (
	"bytes"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/wal"
)

func TestRunInMemory(t *testing.T) {
	var out bytes.Buffer
	kv, err := run("", &out)
	require.NoError(t, err)
	require.Equal(t, 30, kv.commands)
	require.Equal(t, "v28", kv.data["k0"])
	require.Contains(t, out.String(), "  k6 = v27\n")
}

// TestRunOnWAL runs the example twice on one WAL directory: the second run
// recovers the first run's log, re-applies its 30 commands, then adds 30.
func TestRunOnWAL(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	kv, err := run(dir, &out)
	require.NoError(t, err)
	require.Equal(t, 30, kv.commands)
	require.NotContains(t, out.String(), "recovered")
	first := kv.applied

	out.Reset()
	kv, err = run(dir, &out)
	require.NoError(t, err)
	require.Contains(t, out.String(), "recovered a log of 32 entries")
	require.Equal(t, 60, kv.commands, "30 re-applied, 30 new")
	require.Greater(t, kv.applied, first+30)
	require.Equal(t, "v28", kv.data["k0"])
}

// TestHandleReadyAppliesSnapshot: a Ready carrying a snapshot (sent by a
// leader to a node far behind) replaces the store's state and moves its
// applied index, before any committed entry is applied.
func TestHandleReadyAppliesSnapshot(t *testing.T) {
	ms := raft.NewMemoryStorage()
	node, err := raft.NewRawNode(&raft.Config{ID: nodeID, ElectionTick: 10, HeartbeatTick: 1, Storage: ms, MaxInflightMsgs: 256})
	require.NoError(t, err)
	snap := pb.Snapshot{Data: []byte("k0=v9\nk1=v3\n"), Metadata: pb.SnapshotMetadata{
		Index: 10, Term: 1, ConfState: pb.ConfState{Voters: []uint64{1, 2}},
	}}
	require.NoError(t, node.Step(pb.Message{Type: pb.MsgSnap, From: 2, To: nodeID, Term: 1, Snapshot: &snap}))
	rd := node.Ready()
	require.False(t, raft.IsEmptySnap(rd.Snapshot))
	rd.Messages = nil // the answer to the leader: a transport would send it

	var out bytes.Buffer
	kv := &kvStore{out: &out, data: map[string]string{"stale": "x"}}
	require.NoError(t, handleReady(node, memStorage(ms), kv, rd))
	require.Equal(t, map[string]string{"k0": "v9", "k1": "v3"}, kv.data)
	require.Equal(t, uint64(10), kv.applied)
	require.Equal(t, uint64(10), node.Status().Applied)
}

// TestRunRestoresStoredSnapshot: restarted on a log compacted after a
// snapshot, the node starts from the snapshot's state, not from an empty
// store.
func TestRunRestoresStoredSnapshot(t *testing.T) {
	dir := t.TempDir()
	kv, err := run(dir, io.Discard)
	require.NoError(t, err)
	ws, err := wal.Open(dir, wal.Options{})
	require.NoError(t, err)
	_, err = ws.CreateSnapshot(kv.applied, &pb.ConfState{Voters: []uint64{nodeID}}, []byte("only=snapshot\n"))
	require.NoError(t, err)
	require.NoError(t, ws.Compact(kv.applied))
	require.NoError(t, ws.Close())

	var out bytes.Buffer
	kv, err = run(dir, &out)
	require.NoError(t, err)
	require.Contains(t, out.String(), "restored a snapshot of 1 keys")
	require.Equal(t, "snapshot", kv.data["only"])
	require.Equal(t, 30, kv.commands, "nothing before the snapshot is re-applied")
}
