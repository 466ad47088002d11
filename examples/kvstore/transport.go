package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftcore/raft"
	mrpb "github.com/raftcore/raft/multiraft/multiraftpb"
	pb "github.com/raftcore/raft/raftpb"
)

// The peer protocol: a TCP connection per direction and peer, with mutual
// TLS when configured (see peerTLS: the certificate names the member). The
// dialing member sends a hello frame, then raftpb.Message frames; each
// frame is a 4-byte big-endian length and that many bytes. Nothing is sent
// back.
const (
	helloMagic = "raftcore-kvstore/1"
	// maxFrame bounds a frame: large enough for a snapshot of the example's
	// state (a MsgSnap carries it whole), small enough that a garbage
	// length cannot exhaust memory.
	maxFrame = 256 << 20
	// maxFrameOverhead bounds what a frame carries besides payloads (entry
	// data, snapshot data, contexts, which decode into as many bytes): the
	// keys, lengths and numbers that decode into structs, up to 24 times
	// their size (an empty entry, two bytes, is a 48-byte Entry). A frame
	// over it is refused before it is decoded, so that decoding a frame
	// costs at most about 100 MiB besides its payloads. A message the
	// library sends carries at most MaxSizePerMsg (1 MiB) of entries or
	// one larger entry, and a sharded member's batch frames carry at most
	// maxBatchMessages of messages or one larger message (see
	// sendBatches), so neither comes near it.
	maxFrameOverhead = 4 << 20
	// queueSize is how many batches wait per peer; when a peer is that far
	// behind, new batches are dropped and the peer reported unreachable
	// (Raft retransmits).
	queueSize = 1024
	// maxConns bounds the incoming connections open at once (a member
	// needs one per peer; reconnects overlap briefly).
	maxConns = 64
	// unreachableWarnEvery is how often, at most, a peer that cannot be
	// reached is logged at warn level (each failure is logged at debug).
	unreachableWarnEvery = 10 * time.Second
)

type hello struct {
	Magic  string `json:"magic"`
	From   uint64 `json:"from"`
	Client string `json:"client"` // the sender's client (HTTP) address
	// Shards is the sender's --shards when above 1: its frames are then
	// multiraftpb.Batch, not raftpb.Message, and both ends must agree.
	Shards int `json:"shards,omitempty"`
}

// report is what the transport tells the Ready loop about a peer.
type report struct {
	to          uint64
	unreachable bool
	snapshot    *raft.SnapshotStatus
	group       uint64 // with --shards: the group reported on
}

// transport moves messages between members.
type transport struct {
	id      uint64
	client  string // own client address, announced in hellos
	log     *slog.Logger
	recv    func(pb.Message) // delivers an incoming message to the loop
	reports chan<- report
	metrics *metrics
	tls     *peerTLS // nil: plain TCP
	// warnEvery rate-limits the "peer unreachable" warning, per peer.
	warnEvery time.Duration
	// sendLimit is the largest frame sent: maxFrame, which peers refuse
	// frames above (smaller in tests).
	sendLimit int
	// tooLargeLogged: a frame over sendLimit was logged at error level
	// (the later ones are logged at debug level).
	tooLargeLogged atomic.Bool
	// shards and recvBatch are set with --shards above 1: frames are
	// multiraftpb.Batch (see sharded_transport.go).
	shards    int
	recvBatch func(from uint64, b *mrpb.Batch)

	mu      sync.Mutex
	peers   map[uint64]*peer
	clients map[uint64]string // peers' client addresses, from their hellos
	conns   map[net.Conn]struct{}
	ln      net.Listener
	closed  bool
	wg      sync.WaitGroup
}

// peer is the outgoing side to one member: a queue and a goroutine that
// keeps a connection open and writes batches.
type peer struct {
	id    uint64
	addr  string
	queue chan outBatch
	stop  chan struct{}
}

// outBatch is what a peer's queue holds: one Ready's messages for the
// peer, or with --shards one marshaled multiraftpb.Batch (frame) with the
// groups it carries messages of and the groups of its snapshots.
type outBatch struct {
	msgs   []pb.Message
	frame  []byte
	groups []uint64
	snaps  []uint64
}

// newTransport serves the peer listener ln and sends to peers; with pt,
// both ways over mutual TLS.
func newTransport(id uint64, client string, ln net.Listener, pt *peerTLS, recv func(pb.Message), reports chan<- report, m *metrics, log *slog.Logger) *transport {
	if pt != nil {
		ln = tls.NewListener(ln, pt.serverConfig())
	}
	t := &transport{
		id: id, client: client, ln: ln, tls: pt, recv: recv, reports: reports, metrics: m, log: log, warnEvery: unreachableWarnEvery, sendLimit: maxFrame,
		peers: map[uint64]*peer{}, clients: map[uint64]string{}, conns: map[net.Conn]struct{}{},
	}
	t.wg.Add(1)
	go t.accept()
	return t
}

// setPeer adds a peer or changes its address.
func (t *transport) setPeer(id uint64, addr string) {
	if id == t.id || addr == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	if p, ok := t.peers[id]; ok {
		if p.addr == addr {
			return
		}
		close(p.stop)
	}
	p := &peer{id: id, addr: addr, queue: make(chan outBatch, queueSize), stop: make(chan struct{})}
	t.peers[id] = p
	t.wg.Add(1)
	go t.run(p)
}

func (t *transport) peerClients() map[uint64]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[uint64]string, len(t.clients))
	for id, a := range t.clients {
		out[id] = a
	}
	return out
}

// send queues one Ready's messages, a batch per peer.
func (t *transport) send(msgs []pb.Message) {
	if len(msgs) == 0 {
		return
	}
	byPeer := map[uint64][]pb.Message{}
	for _, m := range msgs {
		if m.Type == pb.MsgSnap && t.snapshotTooLarge(m.To, 0, m.Size()) {
			continue
		}
		byPeer[m.To] = append(byPeer[m.To], m)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for to, msgs := range byPeer {
		t.enqueue(to, outBatch{msgs: msgs})
	}
}

// snapshotTooLarge reports whether a snapshot for peer to (of group, with
// --shards) whose frame would be size bytes is over sendLimit. Such a
// snapshot is not sent: the peer would refuse the frame and close the
// connection, and the leader, told it was sent, would build it and send it
// again for ever. It is reported failed (the leader tries again later) and
// logged, at error level the first time: the state machine must stay below
// the frame limit.
func (t *transport) snapshotTooLarge(to, group uint64, size int) bool {
	if size <= t.sendLimit {
		return false
	}
	t.metrics.peerSendFailures.Inc()
	st := raft.SnapshotFailure
	t.report(report{to: to, snapshot: &st, group: group})
	t.logTooLarge("snapshot too large to send: the state must stay below the peer frame limit", to, group, size)
	return true
}

// logTooLarge logs a frame over sendLimit not sent to peer to: at error
// level the first time, at debug level after.
func (t *transport) logTooLarge(msg string, to, group uint64, size int) {
	level := slog.LevelDebug
	if t.tooLargeLogged.CompareAndSwap(false, true) {
		level = slog.LevelError
	}
	args := []any{"peer", to, "bytes", size, "limit", t.sendLimit}
	if group != 0 {
		args = append(args, "shard", group)
	}
	t.log.Log(context.Background(), level, msg, args...)
}

// enqueue queues batch for peer to; t.mu is held.
func (t *transport) enqueue(to uint64, batch outBatch) {
	p, ok := t.peers[to]
	if !ok {
		t.reportFailure(to, batch)
		return
	}
	select {
	case p.queue <- batch:
	default:
		t.reportFailure(to, batch)
	}
}

// reportFailure tells the loop that batch did not reach its peer.
func (t *transport) reportFailure(to uint64, batch outBatch) {
	t.metrics.peerSendFailures.Inc()
	if batch.frame != nil {
		for _, g := range batch.groups {
			t.report(report{to: to, unreachable: true, group: g})
		}
		for _, g := range batch.snaps {
			st := raft.SnapshotFailure
			t.report(report{to: to, snapshot: &st, group: g})
		}
		return
	}
	t.report(report{to: to, unreachable: true})
	for _, m := range batch.msgs {
		if m.Type == pb.MsgSnap {
			st := raft.SnapshotFailure
			t.report(report{to: to, snapshot: &st})
		}
	}
}

// reportSent tells the loop about the snapshots batch carried to to.
func (t *transport) reportSent(to uint64, batch outBatch) {
	st := raft.SnapshotFinish
	for _, g := range batch.snaps {
		t.report(report{to: to, snapshot: &st, group: g})
	}
	for _, m := range batch.msgs {
		if m.Type == pb.MsgSnap {
			t.report(report{to: to, snapshot: &st})
		}
	}
}

func (t *transport) report(r report) {
	select {
	case t.reports <- r:
	default: // the loop is behind: Raft recovers without this report
	}
}

// run keeps a connection to p and writes its batches, reconnecting with
// backoff. It connects at once, so that the peer learns this member's
// client address (the hello) even before there is anything to send.
func (t *transport) run(p *peer) {
	defer t.wg.Done()
	var conn net.Conn
	var w *bufio.Writer
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	connect := func() error {
		c, err := t.dial(p)
		if err != nil {
			return err
		}
		bw := bufio.NewWriterSize(c, 64<<10)
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		err = writeFrame(bw, mustJSON(hello{Magic: helloMagic, From: t.id, Client: t.client, Shards: t.shards}))
		if err == nil {
			err = bw.Flush()
		}
		if err != nil {
			c.Close()
			return err
		}
		conn, w = c, bw
		return nil
	}
	_ = connect() // a peer starting later is not worth a warning yet
	backoff := 50 * time.Millisecond
	// A peer that cannot be reached is a warning, once per warnEvery: a
	// member that never hears from its peers (a wrong address, a port
	// taken, a refused certificate) must say why.
	var lastWarn time.Time
	failures, warned := 0, false
	unreachable := func(err error) {
		failures++
		if now := time.Now(); lastWarn.IsZero() || now.Sub(lastWarn) >= t.warnEvery {
			t.log.Warn("peer unreachable", "peer", p.id, "addr", p.addr, "err", err, "failures", failures)
			lastWarn, failures, warned = now, 0, true
			return
		}
		t.log.Debug("peer unreachable", "peer", p.id, "addr", p.addr, "err", err)
	}
	for {
		var batch outBatch
		select {
		case <-p.stop:
			return
		case batch = <-p.queue:
		}
		if conn == nil {
			if err := connect(); err != nil {
				unreachable(err)
				t.reportFailure(p.id, batch)
				select {
				case <-p.stop:
					return
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, 2*time.Second)
				continue
			}
			if warned {
				t.log.Info("peer reachable again", "peer", p.id, "addr", p.addr)
				lastWarn, failures, warned = time.Time{}, 0, false
			}
		}
		if err := t.writeBatch(conn, w, batch); err != nil {
			t.log.Debug("peer write failed", "peer", p.id, "err", err)
			conn.Close()
			conn = nil
			t.reportFailure(p.id, batch)
			continue
		}
		backoff = 50 * time.Millisecond
		t.reportSent(p.id, batch)
	}
}

// dial connects to p; with TLS, the handshake checks that p's certificate
// names p.
func (t *transport) dial(p *peer) (net.Conn, error) {
	if t.tls == nil {
		return net.DialTimeout("tcp", p.addr, time.Second)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: time.Second}, Config: t.tls.clientConfig(p.id)}
	return d.DialContext(ctx, "tcp", p.addr)
}

// writeBatch writes a batch and flushes it.
func (t *transport) writeBatch(conn net.Conn, w *bufio.Writer, batch outBatch) error {
	conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if batch.frame != nil {
		if err := writeFrame(w, batch.frame); err != nil {
			return err
		}
		t.metrics.peerMessagesSent.Inc()
		return w.Flush()
	}
	var buf []byte
	for _, m := range batch.msgs {
		size := m.Size()
		if cap(buf) < size {
			buf = make([]byte, size)
		}
		n, err := m.MarshalTo(buf[:size])
		if err != nil {
			return err
		}
		if err := writeFrame(w, buf[:n]); err != nil {
			return err
		}
		t.metrics.peerMessagesSent.Inc()
	}
	return w.Flush()
}

func writeFrame(w io.Writer, b []byte) error {
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(b)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

var (
	errFrameTooLarge   = errors.New("frame too large")
	errFrameOfOverhead = fmt.Errorf("frame carries more than %d bytes besides payloads", maxFrameOverhead)
)

// checkOverhead refuses a frame that carries more than maxFrameOverhead
// bytes besides payloads; payload counts the payload bytes of a frame.
func checkOverhead(frame []byte, payload func([]byte) int) error {
	if len(frame) <= maxFrameOverhead || len(frame)-payload(frame) <= maxFrameOverhead {
		return nil
	}
	return errFrameOfOverhead
}

// messagePayload returns how many bytes of the encoded raftpb.Message b
// are payloads: its context, its entries' data and its snapshot's data.
// It stops at anything malformed (which the decoder refuses), counting
// what came before.
func messagePayload(b []byte) int {
	n := 0
	eachField(b, func(field uint64, v []byte) {
		switch field {
		case 7: // Entries
			eachField(v, func(field uint64, d []byte) {
				if field == 4 { // Entry.Data
					n += len(d)
				}
			})
		case 9: // Snapshot
			eachField(v, func(field uint64, d []byte) {
				if field == 1 { // Snapshot.Data
					n += len(d)
				}
			})
		case 12: // Context
			n += len(v)
		}
	})
	return n
}

// eachField calls f with the number and value of every length-delimited
// field of the protobuf encoding b, in order, and skips the others. It
// stops at anything malformed.
func eachField(b []byte, f func(field uint64, value []byte)) {
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return
		}
		b = b[n:]
		switch key & 7 {
		case 0:
			if _, n = binary.Uvarint(b); n <= 0 {
				return
			}
			b = b[n:]
		case 1, 5:
			size := 8
			if key&7 == 5 {
				size = 4
			}
			if len(b) < size {
				return
			}
			b = b[size:]
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || l > uint64(len(b)-n) {
				return
			}
			f(key>>3, b[n:n+int(l)])
			b = b[n+int(l):]
		default:
			return
		}
	}
}

func readFrame(r io.Reader, buf []byte) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxFrame {
		return nil, fmt.Errorf("%w: %d bytes", errFrameTooLarge, n)
	}
	if uint32(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	_, err := io.ReadFull(r, buf)
	return buf, err
}

func (t *transport) accept() {
	defer t.wg.Done()
	for {
		conn, err := t.ln.Accept()
		if err != nil {
			return // closed
		}
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			conn.Close()
			return
		}
		if len(t.conns) >= maxConns {
			t.mu.Unlock()
			t.log.Warn("refusing a peer connection: too many open", "remote", conn.RemoteAddr().String(), "open", maxConns)
			conn.Close()
			continue
		}
		t.conns[conn] = struct{}{}
		t.wg.Add(1)
		t.mu.Unlock()
		go t.serve(conn)
	}
}

// serve reads one incoming connection. Anything malformed closes it and
// is logged; nothing else happens.
func (t *transport) serve(conn net.Conn) {
	defer t.wg.Done()
	defer func() {
		conn.Close()
		t.mu.Lock()
		delete(t.conns, conn)
		t.mu.Unlock()
	}()
	certMember, ok := t.handshake(conn)
	if !ok {
		return
	}
	r := bufio.NewReaderSize(conn, 64<<10)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := readFrame(r, nil)
	var h hello
	if err == nil {
		err = json.Unmarshal(b, &h)
	}
	if err == nil && (h.Magic != helloMagic || h.From == 0) {
		err = errors.New("not a raftcore-kvstore peer")
	}
	if err != nil {
		t.log.Warn("closing peer connection: bad hello", "remote", conn.RemoteAddr().String(), "err", err)
		t.metrics.peerBadFrames.Inc()
		return
	}
	if certMember != 0 && h.From != certMember {
		t.log.Warn("refusing peer connection: the hello claims another member than the certificate names",
			"remote", conn.RemoteAddr().String(), "hello_from", h.From, "certificate_member", certMember)
		t.metrics.peerBadFrames.Inc()
		return
	}
	if max(h.Shards, 1) != max(t.shards, 1) {
		t.log.Warn("refusing peer connection: the peer runs another number of shards",
			"peer", h.From, "peer_shards", max(h.Shards, 1), "shards", max(t.shards, 1))
		t.metrics.peerBadFrames.Inc()
		return
	}
	t.mu.Lock()
	t.clients[h.From] = h.Client
	t.mu.Unlock()
	conn.SetReadDeadline(time.Time{})
	if t.recvBatch != nil {
		t.serveBatches(r, h.From)
		return
	}
	var buf []byte
	for {
		b, err := readFrame(r, buf)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				t.log.Warn("closing peer connection", "peer", h.From, "err", err)
				if errors.Is(err, errFrameTooLarge) {
					t.metrics.peerBadFrames.Inc()
				}
			}
			return
		}
		buf = b
		if err := checkOverhead(b, messagePayload); err != nil {
			t.log.Warn("closing peer connection", "peer", h.From, "err", err)
			t.metrics.peerBadFrames.Inc()
			return
		}
		var m pb.Message
		if err := m.Unmarshal(b); err != nil {
			t.log.Warn("closing peer connection: malformed message", "peer", h.From, "err", err)
			t.metrics.peerBadFrames.Inc()
			return
		}
		if err := checkPeerMessage(t.id, h.From, m); err != nil {
			t.log.Warn("closing peer connection", "peer", h.From, "type", m.Type.String(), "from", m.From, "to", m.To, "err", err)
			t.metrics.peerBadFrames.Inc()
			return
		}
		t.recv(m)
	}
}

// handshake completes the TLS handshake of an incoming connection (the
// listener verified the certificate chain) and returns the member its
// certificate names; 0 without TLS. false: the connection is refused
// (and logged).
func (t *transport) handshake(conn net.Conn) (uint64, bool) {
	tc, ok := conn.(*tls.Conn)
	if !ok {
		return 0, true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		t.log.Warn("refusing peer connection: TLS handshake failed", "remote", conn.RemoteAddr().String(), "err", err)
		t.metrics.peerBadFrames.Inc()
		return 0, false
	}
	id, err := memberIDOf(tc.ConnectionState().PeerCertificates[0])
	if err != nil {
		t.log.Warn("refusing peer connection", "remote", conn.RemoteAddr().String(), "err", err)
		t.metrics.peerBadFrames.Inc()
		return 0, false
	}
	return id, true
}

// checkPeerMessage checks what the transport knows about a message that
// arrived on peer's connection for member self: it is for self, and it
// speaks for peer. The library sends every message with From = the sending
// member (forwarded proposals and read-index requests included), except
// MsgTransferLeader: a follower asked to transfer leadership forwards the
// request to the leader with From = the transferee, any member. The rest
// (terms, indexes, whether the sender is a member) is Step's to check.
func checkPeerMessage(self, peer uint64, m pb.Message) error {
	if m.To != self {
		return fmt.Errorf("message for member %d, not this one", m.To)
	}
	if m.Type == pb.MsgForgetLeader {
		// Step takes it, as etcd raft does, as the application's request
		// to forget the leader; no member sends one.
		return errors.New("a request to forget the leader")
	}
	if m.Type == pb.MsgTransferLeader {
		if m.From == 0 {
			return errors.New("leader transfer without a transferee")
		}
		return nil
	}
	if m.From != peer {
		return fmt.Errorf("%s from member %d on member %d's connection", m.Type, m.From, peer)
	}
	return nil
}

func (t *transport) close() {
	t.mu.Lock()
	t.closed = true
	t.ln.Close()
	for _, p := range t.peers {
		close(p.stop)
	}
	t.peers = map[uint64]*peer{}
	for c := range t.conns {
		c.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
