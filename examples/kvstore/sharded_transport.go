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
// messages from one host Ready to that peer, heartbeats coalesced. The
// hello carries the sender's shard count; a peer running another count is
// refused.

// newBatchTransport is newTransport for a sharded member: batches in
// (recv, called on the connection's goroutine) and out (sendBatches).
func newBatchTransport(id uint64, client string, ln net.Listener, pt *peerTLS, shards int, recv func(uint64, *mrpb.Batch), reports chan<- report, m *metrics, log *slog.Logger) *transport {
	if pt != nil {
		ln = tls.NewListener(ln, pt.serverConfig())
	}
	t := &transport{
		id: id, client: client, ln: ln, tls: pt, reports: reports, metrics: m, log: log, warnEvery: unreachableWarnEvery,
		shards: shards, recvBatch: recv,
		peers: map[uint64]*peer{}, clients: map[uint64]string{}, conns: map[net.Conn]struct{}{},
	}
	t.wg.Add(1)
	go t.accept()
	return t
}

// sendBatches queues one host Ready's batches, one per peer. A batch that
// does not marshal is a bug of the host, not of the network.
func (t *transport) sendBatches(bs []*mrpb.Batch) {
	if len(bs) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, b := range bs {
		frame, err := b.Marshal()
		if err != nil {
			panic(err)
		}
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
		t.enqueue(b.To, out)
	}
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
