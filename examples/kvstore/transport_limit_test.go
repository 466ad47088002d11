package main

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/raftcore/raft"
	mrpb "github.com/raftcore/raft/multiraft/multiraftpb"
	pb "github.com/raftcore/raft/raftpb"
)

// bigSnap is a MsgSnap from 2 to 1 (of group 0) with n bytes of data.
func bigSnap(n int) pb.Message {
	return pb.Message{Type: pb.MsgSnap, From: 2, To: 1, Term: 4, Snapshot: &pb.Snapshot{
		Data: bytes.Repeat([]byte("s"), n), Metadata: pb.SnapshotMetadata{Index: 9, Term: 3},
	}}
}

// wantSnapshotFailures waits for n snapshot reports on reports, for peer
// 1 (and group), every one a failure.
func wantSnapshotFailures(t *testing.T, reports <-chan report, n int, group uint64) {
	t.Helper()
	for n > 0 {
		select {
		case r := <-reports:
			if r.snapshot == nil {
				continue
			}
			require.Equal(t, uint64(1), r.to)
			require.Equal(t, group, r.group)
			require.Equal(t, raft.SnapshotFailure, *r.snapshot, "a snapshot over the frame limit is reported failed, not sent")
			n--
		case <-time.After(10 * time.Second):
			t.Fatal("no snapshot report")
		}
	}
}

// TestOversizedSnapshotIsNotSent: a snapshot whose frame is over the limit
// the peer refuses is not sent (the peer would close the connection, and
// the leader, told it was sent, send it again for ever): it is reported
// failed and logged once at error level with its size and the limit; the
// connection goes on carrying the rest.
func TestOversizedSnapshotIsNotSent(t *testing.T) {
	rx, got := testTransport(t)
	var logs lockedBuffer
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	reports := make(chan report, 64)
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	tx := newTransport(2, "127.0.0.1:2", ln, nil, func(pb.Message) {}, reports, newMetrics(), log)
	t.Cleanup(tx.close)
	tx.sendLimit = 64 << 10
	tx.setPeer(1, rx.ln.Addr().String())

	for range 2 {
		tx.send([]pb.Message{bigSnap(128 << 10)})
	}
	wantSnapshotFailures(t, reports, 2, 0)
	tx.send([]pb.Message{{Type: pb.MsgHeartbeat, From: 2, To: 1, Term: 4}})
	select {
	case m := <-got:
		require.Equal(t, pb.MsgHeartbeat, m.Type, "the snapshot was not sent")
	case <-time.After(10 * time.Second):
		t.Fatal("the heartbeat did not arrive")
	}
	out := logs.String()
	require.Equal(t, 1, strings.Count(out, "level=ERROR"), "logged once:\n%s", out)
	require.Contains(t, out, "bytes=131")
	require.Contains(t, out, "limit=65536")
}

// The same with --shards: the batch frame carrying the snapshot.
func TestShardedOversizedSnapshotIsNotSent(t *testing.T) {
	newBatch := func(id uint64, recv func(uint64, *mrpb.Batch), reports chan report, log *slog.Logger) *transport {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		tr := newBatchTransport(id, "127.0.0.1:1", ln, nil, 2, recv, reports, newMetrics(), log)
		t.Cleanup(tr.close)
		return tr
	}
	got := make(chan *mrpb.Batch, 16)
	rx := newBatch(1, func(_ uint64, b *mrpb.Batch) { got <- b }, make(chan report, 16), slog.New(slog.NewTextHandler(io.Discard, nil)))
	var logs lockedBuffer
	reports := make(chan report, 64)
	tx := newBatch(2, func(uint64, *mrpb.Batch) {}, reports, slog.New(slog.NewTextHandler(&logs, nil)))
	tx.sendLimit = 64 << 10
	tx.setPeer(1, rx.ln.Addr().String())

	for range 2 {
		tx.sendBatches([]*mrpb.Batch{{From: 2, To: 1, Messages: []mrpb.GroupMessage{
			{GroupID: 2, Message: bigSnap(128 << 10)},
			{GroupID: 1, Message: pb.Message{Type: pb.MsgApp, From: 2, To: 1, Term: 4}},
		}}})
	}
	wantSnapshotFailures(t, reports, 2, 2)
	for range 2 {
		select {
		case b := <-got:
			require.Len(t, b.Messages, 1, "the snapshot was not sent")
			require.Equal(t, pb.MsgApp, b.Messages[0].Message.Type)
		case <-time.After(10 * time.Second):
			t.Fatal("the rest of the batch did not arrive")
		}
	}
	out := logs.String()
	require.Equal(t, 1, strings.Count(out, "level=ERROR"), "logged once:\n%s", out)
	require.Contains(t, out, "limit=65536")
}
