package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
)

// TestTransferRequestedAtAThirdMember: a transfer asked of a member that
// is neither the leader nor the transferee is forwarded by the library to
// the leader with From = the transferee; the transport delivers it.
func TestTransferRequestedAtAThirdMember(t *testing.T) {
	c := newTestCluster(t, 3)
	lead := c.waitLeader()
	to := lead%3 + 1
	via := to%3 + 1
	require.NotEqual(t, lead, via)
	r := do(t, "POST", c.url(via, "/cluster/leader"), fmt.Sprintf(`{"id":%d}`, to))
	require.Equal(t, 200, r.status, r.body)
	require.Equal(t, to, c.waitLeader())
}

// testTransport is a transport for member 1 on a loopback port whose
// incoming messages arrive on the returned channel.
func testTransport(t *testing.T) (*transport, <-chan pb.Message) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	got := make(chan pb.Message, 16)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tr := newTransport(1, "127.0.0.1:1", ln, nil, func(m pb.Message) { got <- m }, make(chan report, 16), newMetrics(), log)
	t.Cleanup(tr.close)
	return tr, got
}

// TestTransportAcceptsWhatTheLibraryForwards: every message the library
// sends reaches the member, forwarded ones included (whose From is not
// always the sending member), and a message whose sender is not the
// connection's peer, or that is not for this member, closes the connection.
func TestTransportAcceptsWhatTheLibraryForwards(t *testing.T) {
	tr, got := testTransport(t)
	forwarded := []pb.Message{
		{Type: pb.MsgProp, From: 2, To: 1, Entries: []pb.Entry{{Data: []byte("x")}}},
		{Type: pb.MsgReadIndex, From: 2, To: 1, Entries: []pb.Entry{{Data: []byte("ctx")}}},
		{Type: pb.MsgTransferLeader, From: 3, To: 1, Term: 4}, // From: the transferee
		{Type: pb.MsgTransferLeader, From: 2, To: 1, Term: 4},
		{Type: pb.MsgHeartbeat, From: 2, To: 1, Term: 4},
		{Type: pb.MsgAppResp, From: 2, To: 1, Term: 4, Index: 7},
	}
	conn := dialPeer(t, tr.ln.Addr().String(), 2)
	for _, m := range forwarded {
		writeMessage(t, conn, m)
		select {
		case in := <-got:
			require.Equal(t, m.Type, in.Type)
			require.Equal(t, m.From, in.From)
		case <-time.After(5 * time.Second):
			t.Fatalf("%s from %d over member 2's connection was not delivered", m.Type, m.From)
		}
	}

	refused := map[string]pb.Message{
		"heartbeat claiming another sender": {Type: pb.MsgHeartbeat, From: 3, To: 1, Term: 4},
		"proposal claiming another sender":  {Type: pb.MsgProp, From: 3, To: 1, Entries: []pb.Entry{{Data: []byte("x")}}},
		"vote claiming another sender":      {Type: pb.MsgVote, From: 3, To: 1, Term: 5},
		"transfer with no transferee":       {Type: pb.MsgTransferLeader, From: 0, To: 1, Term: 4},
		"message for another member":        {Type: pb.MsgHeartbeat, From: 2, To: 3, Term: 4},
	}
	for name, m := range refused {
		t.Run(name, func(t *testing.T) {
			conn := dialPeer(t, tr.ln.Addr().String(), 2)
			writeMessage(t, conn, m)
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err := conn.Read(make([]byte, 1))
			require.ErrorIs(t, err, io.EOF, "the member closes the connection")
			select {
			case in := <-got:
				t.Fatalf("delivered %v", in)
			default:
			}
		})
	}
}

// dialPeer connects to a peer port and says hello as member from.
func dialPeer(t *testing.T, addr string, from uint64) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	require.NoError(t, writeFrame(conn, mustJSON(hello{Magic: helloMagic, From: from, Client: "127.0.0.1:2"})))
	return conn
}

func writeMessage(t *testing.T, conn net.Conn, m pb.Message) {
	t.Helper()
	b, err := m.Marshal()
	require.NoError(t, err)
	w := bufio.NewWriter(conn)
	require.NoError(t, writeFrame(w, b))
	require.NoError(t, w.Flush())
}

// lockedBuffer is a log destination that goroutines may share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestUnreachablePeerIsAWarning: a peer that cannot be reached is logged
// at warn level with the error, once per interval however often it fails.
func TestUnreachablePeerIsAWarning(t *testing.T) {
	var logs lockedBuffer
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	reports := make(chan report, 64)
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	tr := newTransport(1, "127.0.0.1:1", ln, nil, func(pb.Message) {}, reports, newMetrics(), log)
	t.Cleanup(tr.close)
	tr.warnEvery = time.Hour
	dead := freeAddr(t) // nobody listens there
	tr.setPeer(2, dead)
	for failed := 0; failed < 4; {
		tr.send([]pb.Message{{Type: pb.MsgHeartbeat, From: 1, To: 2, Term: 1}})
		select {
		case r := <-reports:
			require.Equal(t, uint64(2), r.to)
			require.True(t, r.unreachable)
			failed++
		case <-time.After(10 * time.Second):
			t.Fatal("no unreachable report for peer 2")
		}
	}
	out := logs.String()
	require.Equal(t, 1, strings.Count(out, "peer unreachable"), "one warning per interval:\n%s", out)
	require.Contains(t, out, "level=WARN msg=\"peer unreachable\" peer=2 addr="+dead+" err=")
	require.Contains(t, out, "connection refused")
}

// TestTransportRefusesFramesOfStructure: a frame may be as large as a
// snapshot, but what it carries besides payloads (entry and snapshot
// data), which decodes into structs many times its size, is bounded: a
// frame of empty entries closes the connection before it is decoded, and
// a large snapshot still arrives.
func TestTransportRefusesFramesOfStructure(t *testing.T) {
	tr, got := testTransport(t)
	head, err := (&pb.Message{Type: pb.MsgApp, From: 2, To: 1, Term: 4}).Marshal()
	require.NoError(t, err)
	frame := append(head, bytes.Repeat([]byte{0x3a, 0x00}, (maxFrameOverhead+1)/2)...) // empty entries
	conn := dialPeer(t, tr.ln.Addr().String(), 2)
	w := bufio.NewWriter(conn)
	require.NoError(t, writeFrame(w, frame))
	require.NoError(t, w.Flush())
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = conn.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF, "the member closes the connection")
	select {
	case in := <-got:
		t.Fatalf("delivered %s with %d entries", in.Type, len(in.Entries))
	default:
	}

	snap := pb.Message{Type: pb.MsgSnap, From: 2, To: 1, Term: 4, Snapshot: &pb.Snapshot{
		Data: bytes.Repeat([]byte("s"), 4*maxFrameOverhead), Metadata: pb.SnapshotMetadata{Index: 9, Term: 3},
	}}
	writeMessage(t, dialPeer(t, tr.ln.Addr().String(), 2), snap)
	select {
	case in := <-got:
		require.Equal(t, pb.MsgSnap, in.Type)
		require.Len(t, in.Snapshot.Data, 4*maxFrameOverhead)
	case <-time.After(10 * time.Second):
		t.Fatal("the snapshot did not arrive")
	}
}

// A peer cannot make a member forget its leader: Step takes
// MsgForgetLeader as the application's own request, so the transport
// refuses it.
func TestPeerMessageForgetLeaderRefused(t *testing.T) {
	require.Error(t, checkPeerMessage(1, 2, pb.Message{Type: pb.MsgForgetLeader, From: 2, To: 1}))
	require.NoError(t, checkPeerMessage(1, 2, pb.Message{Type: pb.MsgHeartbeat, From: 2, To: 1, Term: 1}))
}
