package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/raftcore/raft/multiraft"
	mrpb "github.com/raftcore/raft/multiraft/multiraftpb"
	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/wal"
	"github.com/raftcore/raft/wal/crashfs"
)

// TestShardOfIsStable: a key's shard is part of what a member keeps on
// disk (the shard's log holds it), so the hash must not change between
// builds or processes.
func TestShardOfIsStable(t *testing.T) {
	for key, want := range map[string]uint64{"a": 5, "hello": 4, "key-1": 7, "w0-17": 2} {
		require.Equal(t, want, shardOf(key, 8), "shard of %q", key)
	}
	for _, n := range []int{1, 2, 3, 64, 10000} {
		for i := range 1000 {
			s := shardOf(string(rune('a'+i%26))+string(rune(i)), n)
			require.True(t, s >= 1 && s <= uint64(n), "shard %d of %d", s, n)
		}
	}
}

// testBatchTransport is a sharded member's transport (id, 8 shards) on a
// loopback port; incoming batches arrive on the returned channel.
func testBatchTransport(t *testing.T, id uint64) (*transport, <-chan *mrpb.Batch, chan report) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	got := make(chan *mrpb.Batch, 16)
	reports := make(chan report, 16)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tr := newBatchTransport(id, "127.0.0.1:1", ln, nil, 8, func(_ uint64, b *mrpb.Batch) { got <- b }, reports, newMetrics(), log)
	t.Cleanup(tr.close)
	return tr, got, reports
}

// TestBatchTransport: a batch sent by one sharded member arrives whole at
// the other, and its snapshots are reported per group once sent.
func TestBatchTransport(t *testing.T) {
	a, _, reports := testBatchTransport(t, 1)
	b, got, _ := testBatchTransport(t, 2)
	a.setPeer(2, b.ln.Addr().String())
	batch := &mrpb.Batch{From: 1, To: 2,
		Messages: []mrpb.GroupMessage{
			{GroupID: 3, Message: pb.Message{Type: pb.MsgApp, From: 1, To: 2, Term: 2, Index: 5, Entries: []pb.Entry{{Index: 6, Term: 2, Data: []byte("x")}}}},
			{GroupID: 5, Message: pb.Message{Type: pb.MsgSnap, From: 1, To: 2, Term: 2, Snapshot: &pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 9, Term: 2}}}},
		},
		Heartbeats: []mrpb.Heartbeat{{GroupID: 7, Term: 3, Commit: 4}},
	}
	a.sendBatches([]*mrpb.Batch{batch})
	select {
	case in := <-got:
		require.Equal(t, batch.String(), in.String())
	case <-time.After(5 * time.Second):
		t.Fatal("the batch did not arrive")
	}
	select {
	case r := <-reports:
		require.Equal(t, uint64(5), r.group)
		require.Equal(t, uint64(2), r.to)
		require.NotNil(t, r.snapshot)
	case <-time.After(5 * time.Second):
		t.Fatal("the snapshot sent was not reported")
	}
}

// TestBatchTransportRefuses: a peer with another shard count, and a batch
// that claims another sender or recipient than the connection's, close
// the connection; nothing is delivered.
func TestBatchTransportRefuses(t *testing.T) {
	tr, got, _ := testBatchTransport(t, 1)
	cases := map[string]struct {
		shards int
		batch  mrpb.Batch
	}{
		"a peer with one shard":      {1, mrpb.Batch{From: 2, To: 1}},
		"a peer with 16 shards":      {16, mrpb.Batch{From: 2, To: 1}},
		"a batch from another":       {8, mrpb.Batch{From: 3, To: 1}},
		"a batch for another member": {8, mrpb.Batch{From: 2, To: 3}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			conn, err := net.Dial("tcp", tr.ln.Addr().String())
			require.NoError(t, err)
			defer conn.Close()
			w := bufio.NewWriter(conn)
			require.NoError(t, writeFrame(w, mustJSON(hello{Magic: helloMagic, From: 2, Client: "127.0.0.1:2", Shards: c.shards})))
			frame, err := c.batch.Marshal()
			require.NoError(t, err)
			require.NoError(t, writeFrame(w, frame))
			require.NoError(t, w.Flush())
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = conn.Read(make([]byte, 1))
			require.ErrorIs(t, err, io.EOF, "the member closes the connection")
			select {
			case in := <-got:
				t.Fatalf("delivered %v", in)
			default:
			}
		})
	}
}

// TestShardLayoutChecked: a data directory is only reopened with the shard
// count that wrote it, and one in the per-shard layout of earlier versions
// is refused.
func TestShardLayoutChecked(t *testing.T) {
	single, sharded, perShard, fresh := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(single, "raft"), 0o755))
	l, err := openShardLog(sharded, 8, false, wal.Options{})
	require.NoError(t, err)
	require.NoError(t, l.close())
	for i := 1; i <= 8; i++ {
		require.NoError(t, os.MkdirAll(filepath.Join(perShard, "shards", strconv.Itoa(i)), 0o755))
	}
	require.NoError(t, checkShardLayout(single, 1))
	require.ErrorContains(t, checkShardLayout(single, 8), "single group")
	require.NoError(t, checkShardLayout(sharded, 8))
	require.ErrorContains(t, checkShardLayout(sharded, 1), "holds 8 shards")
	require.ErrorContains(t, checkShardLayout(sharded, 16), "holds 8 shards, not 16")
	require.ErrorContains(t, checkShardLayout(perShard, 8), "one log per shard")
	require.NoError(t, checkShardLayout(fresh, 1))
	require.NoError(t, checkShardLayout(fresh, 8))
}

// TestShardLogSavesAHostReadyWithOneSync: a host Ready carrying new
// entries for 64 shards costs the disk one write and one fsync, not one
// per shard; and the shards come back from the one log after a restart.
func TestShardLogSavesAHostReadyWithOneSync(t *testing.T) {
	const shards = 64
	dir := t.TempDir()
	walFS := crashfs.New()
	l, err := openShardLog(dir, shards, false, wal.Options{FS: walFS})
	require.NoError(t, err)
	var rd multiraft.Ready
	for id := uint64(1); id <= shards; id++ {
		gr := multiraft.GroupReady{GroupID: id}
		gr.HardState = pb.HardState{Term: 1, Vote: 1, Commit: 1}
		gr.Entries = []pb.Entry{{Term: 1, Index: 1, Data: []byte("put")}, {Term: 1, Index: 2, Data: []byte("put")}}
		gr.MustSync = true
		rd.Groups = append(rd.Groups, gr)
	}
	syncs, writes := walFS.Count(crashfs.OpSync), walFS.Count(crashfs.OpWrite)
	require.NoError(t, l.saveReady(&rd))
	require.Equal(t, 1, walFS.Count(crashfs.OpSync)-syncs, "fsyncs for one host Ready of %d shards", shards)
	require.Equal(t, 1, walFS.Count(crashfs.OpWrite)-writes, "writes for one host Ready of %d shards", shards)
	require.NoError(t, l.close())

	l, err = openShardLog(dir, shards, false, wal.Options{FS: walFS})
	require.NoError(t, err)
	defer l.close()
	for id := uint64(1); id <= shards; id++ {
		last, err := l.storage(id).LastIndex()
		require.NoError(t, err)
		require.Equal(t, uint64(2), last, "shard %d", id)
	}
}

// TestShardLogSplitsTheDefaults: sixteen shards' logs take the disk of one
// group's, not sixteen times it (a WAL preallocates its segment; the
// shards share one).
func TestShardLogSplitsTheDefaults(t *testing.T) {
	dir := t.TempDir()
	l, err := openShardLog(dir, 16, false, wal.Options{})
	require.NoError(t, err)
	defer l.close()
	var total int64
	require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			total += info.Size()
		}
		return err
	}))
	require.LessOrEqual(t, total, int64(64<<20+1<<20), "bytes on disk for 16 empty shards")
}

// TestIdleShardedMemberWakesPerHeartbeat: once every shard is quiesced, a
// member ticks its host nodeHeartbeatTicks ticks a wake (one node-level
// heartbeat interval), one again as soon as a shard wakes; its peers keep
// hearing from it (no shard wakes and no term changes while all are idle,
// many nodeDownTicks long), and they still notice when it stops (the
// shards it led elect new leaders).
func TestIdleShardedMemberWakesPerHeartbeat(t *testing.T) {
	const (
		shards = 4
		// Ticks long enough that a busy machine does not stall a member
		// for nodeDownTicks (100 ticks, 500ms).
		tick = 5 * time.Millisecond
	)
	c := newShardedTestClusterWith(t, &shardedTestCluster{shards: shards, tick: tick}, 3)
	put(t, c.url(1, "/kv/"+c.keyIn(1, "k")), "1")
	perWake := func(id uint64) int {
		m := c.members[id]
		n := 0
		require.True(t, m.call(t.Context(), func() { n = m.ticksPerWake() }))
		return n
	}
	allQuiesced := func() bool {
		for _, m := range c.members {
			if st := m.status.Load(); st.Quiesced != shards {
				return false
			}
		}
		return true
	}
	require.Eventually(t, allQuiesced, 10*time.Second, 5*time.Millisecond, "every shard quiesces")
	for id := range c.members {
		require.Eventually(t, func() bool { return perWake(id) == nodeHeartbeatTicks }, 5*time.Second, 5*time.Millisecond, "member %d", id)
	}
	terms := func() []uint64 {
		var out []uint64
		for id := uint64(1); id <= 3; id++ {
			for _, g := range c.members[id].status.Load().Groups {
				out = append(out, g.Term)
			}
		}
		return out
	}
	before := terms()
	// Twice nodeDownTicks: a member whose heartbeats stopped would be
	// taken for down, and the shards asleep under its leaders would wake
	// and elect.
	for end := time.Now().Add(2 * nodeDownTicks * tick); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		require.True(t, allQuiesced(), "a shard woke while the cluster was idle")
	}
	require.Equal(t, before, terms(), "no shard elected while the cluster was idle")

	// A read wakes its shard: one tick a wake again.
	m2, n := c.members[2], 0
	require.True(t, m2.call(t.Context(), func() {
		require.NoError(t, m2.host.ReadIndex(2, []byte("wake")))
		n = m2.ticksPerWake()
	}))
	require.Equal(t, 1, n)

	// The peers of a member that stops notice it: its shards elect.
	require.Contains(t, c.waitLeaders(), uint64(1), "member 1 leads some shard (see spreadLeaders)")
	c.members[1].stop()
	delete(c.members, 1)
	leads := c.waitLeaders()
	require.NotContains(t, leads, uint64(1))
}

// TestLivenessOnlyBatchDoesNotWakeLoop: a batch that carries nothing for
// any shard (a node-level heartbeat) is noted for the loop's next tick
// rather than queued for it (which would wake it), once per peer however
// many arrive; a batch with anything for a shard is queued.
func TestLivenessOnlyBatchDoesNotWakeLoop(t *testing.T) {
	m := &shardedMember{cfg: memberConfig{ID: 1}, recvC: make(chan batchIn, 4), loop: newLoop(1)}
	for range 3 {
		m.deliver(2, &mrpb.Batch{From: 2, To: 1, NodeHeartbeat: true})
	}
	m.deliver(3, &mrpb.Batch{From: 3, To: 1})
	require.Equal(t, 0, len(m.recvC), "liveness-only batches queued for the loop")
	require.Equal(t, []uint64{2, 3}, m.heard)
	m.deliver(2, &mrpb.Batch{From: 2, To: 1, NodeHeartbeat: true, WakeGroups: []uint64{7}})
	require.Len(t, m.recvC, 1, "a batch with a wake is the loop's at once")
}

// TestBatchTransportRefusesFramesOfStructure: as for single-group members
// (TestTransportRefusesFramesOfStructure), a batch frame carrying more
// than maxFrameOverhead besides payloads closes the connection unread,
// and a batch with a large snapshot arrives.
func TestBatchTransportRefusesFramesOfStructure(t *testing.T) {
	tr, got, _ := testBatchTransport(t, 1)
	hb, err := (&mrpb.Batch{Heartbeats: []mrpb.Heartbeat{{GroupID: 1, Term: 2}}}).Marshal()
	require.NoError(t, err)
	head, err := (&mrpb.Batch{From: 2, To: 1}).Marshal()
	require.NoError(t, err)
	frames := map[string][]byte{
		"heartbeats":    append(head, bytes.Repeat(hb, maxFrameOverhead/len(hb)+1)...),
		"empty entries": batchOfEmptyEntries(t, maxFrameOverhead/2+1),
	}
	for name, frame := range frames {
		t.Run(name, func(t *testing.T) {
			conn := dialBatchPeer(t, tr.ln.Addr().String())
			w := bufio.NewWriter(conn)
			require.NoError(t, writeFrame(w, frame))
			require.NoError(t, w.Flush())
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err := conn.Read(make([]byte, 1))
			require.ErrorIs(t, err, io.EOF, "the member closes the connection")
			select {
			case in := <-got:
				t.Fatalf("delivered a batch of %d messages, %d heartbeats", len(in.Messages), len(in.Heartbeats))
			default:
			}
		})
	}

	snap := &mrpb.Batch{From: 2, To: 1, Messages: []mrpb.GroupMessage{{GroupID: 3, Message: pb.Message{
		Type: pb.MsgSnap, From: 2, To: 1, Term: 4,
		Snapshot: &pb.Snapshot{Data: bytes.Repeat([]byte("s"), 4*maxFrameOverhead), Metadata: pb.SnapshotMetadata{Index: 9, Term: 3}},
	}}}}
	frame, err := snap.Marshal()
	require.NoError(t, err)
	conn := dialBatchPeer(t, tr.ln.Addr().String())
	w := bufio.NewWriter(conn)
	require.NoError(t, writeFrame(w, frame))
	require.NoError(t, w.Flush())
	select {
	case in := <-got:
		require.Len(t, in.Messages, 1)
		require.Len(t, in.Messages[0].Message.Snapshot.Data, 4*maxFrameOverhead)
	case <-time.After(10 * time.Second):
		t.Fatal("the snapshot did not arrive")
	}
}

// batchOfEmptyEntries is a batch from 2 to 1 with one MsgApp of n empty
// entries (two bytes each).
func batchOfEmptyEntries(t *testing.T, n int) []byte {
	t.Helper()
	msg, err := (&pb.Message{Type: pb.MsgApp, From: 2, To: 1, Term: 4}).Marshal()
	require.NoError(t, err)
	msg = append(msg, bytes.Repeat([]byte{0x3a, 0x00}, n)...)
	gm := append([]byte{0x08, 0x03, 0x12}, binary.AppendUvarint(nil, uint64(len(msg)))...)
	gm = append(gm, msg...)
	frame, err := (&mrpb.Batch{From: 2, To: 1}).Marshal()
	require.NoError(t, err)
	frame = append(frame, 0x1a)
	frame = binary.AppendUvarint(frame, uint64(len(gm)))
	return append(frame, gm...)
}

// dialBatchPeer connects to a sharded member's peer port and says hello
// as member 2 with 8 shards.
func dialBatchPeer(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	require.NoError(t, writeFrame(conn, mustJSON(hello{Magic: helloMagic, From: 2, Client: "127.0.0.1:2", Shards: 8})))
	return conn
}

// TestBatchTransportSplitsLargeBatches: a host batch whose messages
// encode to more than maxBatchMessages leaves in several frames, the
// messages in order and the heartbeats after them (in the last), so that
// the receiver steps them in the order one batch would.
func TestBatchTransportSplitsLargeBatches(t *testing.T) {
	a, _, _ := testBatchTransport(t, 1)
	b, got, _ := testBatchTransport(t, 2)
	a.setPeer(2, b.ln.Addr().String())
	batch := &mrpb.Batch{From: 1, To: 2, Heartbeats: []mrpb.Heartbeat{{GroupID: 7, Term: 3, Commit: 4}}, NodeHeartbeat: true}
	for g := uint64(1); g <= 5; g++ {
		batch.Messages = append(batch.Messages, mrpb.GroupMessage{GroupID: g, Message: pb.Message{
			Type: pb.MsgApp, From: 1, To: 2, Term: 2, Index: 5,
			Entries: []pb.Entry{{Index: 6, Term: 2, Data: bytes.Repeat([]byte{byte(g)}, maxBatchMessages/2-1024)}},
		}})
	}
	a.sendBatches([]*mrpb.Batch{batch})
	var msgs []mrpb.GroupMessage
	frames := 0
	for len(msgs) < len(batch.Messages) {
		select {
		case in := <-got:
			frames++
			require.Equal(t, uint64(1), in.From)
			msgs = append(msgs, in.Messages...)
			if len(msgs) < len(batch.Messages) {
				require.Empty(t, in.Heartbeats, "heartbeats before the last frame")
				require.False(t, in.NodeHeartbeat)
			} else {
				require.Equal(t, batch.Heartbeats, in.Heartbeats)
				require.True(t, in.NodeHeartbeat)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d messages arrived", len(msgs), len(batch.Messages))
		}
	}
	require.Equal(t, 3, frames, "two messages of half the bound per frame")
	require.Equal(t, batch.Messages, msgs)
}

// TestIdleShardsDoNotKeepTheLog: with writes to some shards only, the
// shared log does not keep every segment ever written. Each shard keeps
// the segment of its oldest entry it has not compacted, and a shard with
// no writes never reaches SnapshotEvery: without freeLog, shard 1's
// bootstrap kept the first segment and every later one. The data of the
// shards compacted so survives a restart.
func TestIdleShardsDoNotKeepTheLog(t *testing.T) {
	const shards = 4
	disk := crashfs.New()
	c := newShardedTestClusterWith(t, &shardedTestCluster{shards: shards, snapshotEvery: 6, dir: t.TempDir(),
		tweak: func(cfg *memberConfig) { cfg.walFS, cfg.walSegmentSize = disk, 4096 }}, 1)
	logDir := filepath.Join(c.members[1].cfg.DataDir, shardLogDir)
	segments := func() int {
		names, err := disk.ReadDir(logDir)
		require.NoError(t, err)
		n := 0
		for _, name := range names {
			if strings.HasSuffix(name, ".wal") {
				n++
			}
		}
		return n
	}
	idle := c.keyIn(1, "idle-")
	put(t, c.url(1, "/kv/"+idle), "written once")
	value := strings.Repeat("v", 300)
	for i := range 300 {
		sh := uint64(2 + i%(shards-1))
		put(t, c.url(1, "/kv/"+c.keyIn(sh, fmt.Sprint("busy-", i, "-"))), value)
		if i%50 == 49 {
			require.LessOrEqual(t, segments(), maxLogSegments+2, "segment files after %d writes (about 12 writes a segment)", i+1)
		}
	}

	c.restart(1)
	c.waitLeaders()
	require.Equal(t, "written once", get(t, c.url(1, "/kv/"+idle)).body)
	for i := range 300 {
		if i%37 == 0 {
			sh := uint64(2 + i%(shards-1))
			require.Equal(t, value, get(t, c.url(1, "/kv/"+c.keyIn(sh, fmt.Sprint("busy-", i, "-")))).body)
		}
	}
}
