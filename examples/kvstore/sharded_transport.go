package main

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"

	mrpb "github.com/raftcore/raft/multiraft/multiraftpb"
	pb "github.com/raftcore/raft/raftpb"
)

// With --shards above 1 the peer protocol is the same (one connection per
// direction and peer, the same hello and framing, TLS as configured) but
// each frame after the hello is one multiraftpb.Batch: every shard's
// messages from one host Ready to that peer, heartbeats coalesced (a
// batch of more than maxBatchMessages of messages in several frames). The
// hello carries the sender's shard count; a peer running another count is
// refused.

// newBatchTransport is newTransport for a sharded member: batches in
// (recv, called on the connection's goroutine) and out (sendBatches).
func newBatchTransport(id uint64, client string, ln net.Listener, pt *peerTLS, shards int, recv func(uint64, *mrpb.Batch), reports chan<- report, m *metrics, log *slog.Logger) *transport {
	if pt != nil {
		ln = tls.NewListener(ln, pt.serverConfig())
	}
	t := &transport{
		id: id, client: client, ln: ln, tls: pt, reports: reports, metrics: m, log: log, warnEvery: unreachableWarnEvery, sendLimit: maxFrame,
		shards: shards, recvBatch: recv,
		peers: map[uint64]*peer{}, clients: map[uint64]string{}, conns: map[net.Conn]struct{}{},
	}
	t.wg.Add(1)
	go t.accept()
	return t
}

// maxBatchMessages is how many bytes of messages a batch frame carries at
// most, unless one message alone is larger: a host batch with more leaves
// in several frames (see splitBatch), so that what a frame carries besides
// payloads stays far below maxFrameOverhead.
const maxBatchMessages = 1 << 20

// sendBatches queues one host Ready's batches, one per peer, each in one
// frame or, if large, several. A batch that does not marshal is a bug of
// the host, not of the network.
func (t *transport) sendBatches(bs []*mrpb.Batch) {
	if len(bs) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, b := range bs {
		b = t.withoutTooLargeSnapshots(b)
		frame, err := b.Marshal()
		if err != nil {
			panic(err)
		}
		if len(frame) <= maxBatchMessages || len(b.Messages) <= 1 {
			t.enqueueFrame(b, frame)
			continue
		}
		for _, part := range splitBatch(b, maxBatchMessages) {
			frame, err := part.Marshal()
			if err != nil {
				panic(err)
			}
			t.enqueueFrame(part, frame)
		}
	}
}

// withoutTooLargeSnapshots is b without the snapshots that alone make a
// frame over sendLimit (see snapshotTooLarge), b itself if none do.
func (t *transport) withoutTooLargeSnapshots(b *mrpb.Batch) *mrpb.Batch {
	var kept []mrpb.GroupMessage
	for i := range b.Messages {
		gm := &b.Messages[i]
		tooLarge := gm.Message.Type == pb.MsgSnap &&
			t.snapshotTooLarge(b.To, gm.GroupID, (&mrpb.Batch{From: b.From, To: b.To, Messages: b.Messages[i : i+1]}).Size())
		if tooLarge && kept == nil {
			kept = append(make([]mrpb.GroupMessage, 0, len(b.Messages)), b.Messages[:i]...)
		} else if !tooLarge && kept != nil {
			kept = append(kept, *gm)
		}
	}
	if kept == nil {
		return b
	}
	nb := *b
	nb.Messages = kept
	return &nb
}

// enqueueFrame queues frame, batch b marshaled, unless it is over
// sendLimit (a snapshot just below it with the batch's heartbeats): the
// peer would refuse it, so it is reported failed instead.
func (t *transport) enqueueFrame(b *mrpb.Batch, frame []byte) {
	out := batchOut(b, frame)
	if len(frame) > t.sendLimit {
		t.reportFailure(b.To, out)
		t.logTooLarge("batch frame too large to send: the state must stay below the peer frame limit", b.To, 0, len(frame))
		return
	}
	t.enqueue(b.To, out)
}

// batchOut is what the peer's queue holds for b marshaled as frame.
func batchOut(b *mrpb.Batch, frame []byte) outBatch {
	out := outBatch{frame: frame}
	var last uint64
	for i := range b.Messages {
		gm := &b.Messages[i]
		if gm.GroupID != last {
			out.groups = append(out.groups, gm.GroupID)
			last = gm.GroupID
		}
		if gm.Message.Type == pb.MsgSnap {
			out.snaps = append(out.snaps, gm.GroupID)
		}
	}
	return out
}

// splitBatch splits b into batches whose messages encode to at most limit
// bytes each (a larger message goes alone), in order. The last carries b's
// heartbeats, heartbeat responses, wakes and node heartbeat: the receiving
// host steps a batch's messages before those, and so steps the parts as it
// would have stepped b.
func splitBatch(b *mrpb.Batch, limit int) []*mrpb.Batch {
	var parts []*mrpb.Batch
	cur := &mrpb.Batch{From: b.From, To: b.To}
	size := 0
	for i := range b.Messages {
		n := b.Messages[i].Size()
		if len(cur.Messages) > 0 && size+n > limit {
			parts = append(parts, cur)
			cur = &mrpb.Batch{From: b.From, To: b.To}
			size = 0
		}
		cur.Messages = append(cur.Messages, b.Messages[i])
		size += n
	}
	cur.Heartbeats, cur.HeartbeatResponses = b.Heartbeats, b.HeartbeatResponses
	cur.WakeGroups, cur.NodeHeartbeat = b.WakeGroups, b.NodeHeartbeat
	return append(parts, cur)
}

// batchPayload returns how many bytes of the encoded multiraftpb.Batch b
// are payloads: those of its messages (see messagePayload).
func batchPayload(b []byte) int {
	n := 0
	eachField(b, func(field uint64, v []byte) {
		if field == 3 { // Messages
			eachField(v, func(field uint64, m []byte) {
				if field == 2 { // GroupMessage.Message
					n += messagePayload(m)
				}
			})
		}
	})
	return n
}

// serveBatches reads the batches of peer from on r, after the hello.
// Anything that does not decode, or claims another sender or recipient,
// closes the connection; the host checks the rest when it steps the batch.
func (t *transport) serveBatches(r *bufio.Reader, from uint64) {
	for {
		// A fresh buffer per frame: the decoded batch may share it.
		frame, err := readFrame(r, nil)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				t.log.Warn("closing peer connection", "peer", from, "err", err)
				if errors.Is(err, errFrameTooLarge) {
					t.metrics.peerBadFrames.Inc()
				}
			}
			return
		}
		if err := checkOverhead(frame, batchPayload); err != nil {
			t.log.Warn("closing peer connection", "peer", from, "err", err)
			t.metrics.peerBadFrames.Inc()
			return
		}
		b := new(mrpb.Batch)
		if err := b.Unmarshal(frame); err != nil {
			t.log.Warn("closing peer connection: malformed batch", "peer", from, "err", err)
			t.metrics.peerBadFrames.Inc()
			return
		}
		if b.From != from || b.To != t.id {
			t.log.Warn("closing peer connection: batch for another pair of members", "peer", from, "from", b.From, "to", b.To)
			t.metrics.peerBadFrames.Inc()
			return
		}
		t.recvBatch(from, b)
	}
}
