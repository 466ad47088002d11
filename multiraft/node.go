package multiraft

import (
	"context"
	"slices"
	"sync"

	"github.com/raftcore/raft"
	mrpb "github.com/raftcore/raft/multiraft/multiraftpb"
	pb "github.com/raftcore/raft/raftpb"
)

// maxPendingTicks bounds the ticks that wait while a Node is busy.
const maxPendingTicks = 128

// Node runs a Host on its own goroutine, as raft.Node runs a RawNode: the
// application ticks it, steps batches and makes per-group calls from any
// goroutine, receives host Readys from Ready() and calls Advance after
// handling each one exactly as the package documentation says. Every
// method may be called concurrently. Once Stop has been called, the
// methods return raft.ErrStopped (Tick and Advance do nothing).
type Node struct {
	h        *Host
	tickc    chan struct{}
	reqc     chan request
	readyc   chan Ready
	advancec chan struct{}
	stopc    chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// request is a call run on the Node's goroutine; its error goes to
// result, which has room for it so that the goroutine never waits.
type request struct {
	fn     func(h *Host) error
	result chan error
	// removes is the group fn removes (RemoveGroup), 0 for other calls.
	removes uint64
}

// StartNode starts a goroutine driving h and returns its Node. The Node
// owns h from now on: the application must not call h's methods itself.
func StartNode(h *Host) *Node {
	n := &Node{
		h:        h,
		tickc:    make(chan struct{}, maxPendingTicks),
		reqc:     make(chan request),
		readyc:   make(chan Ready),
		advancec: make(chan struct{}),
		stopc:    make(chan struct{}),
		done:     make(chan struct{}),
	}
	go n.run()
	return n
}

// run is the Node's goroutine. It serves calls at any time, also while a
// Ready is out (the application applies conf changes and reports
// snapshots while it handles one), and offers the next Ready only after
// the last one was advanced.
func (n *Node) run() {
	defer close(n.done)
	var rd Ready
	// offered: rd is computed and waits to be taken; advancing: it was
	// taken and waits for Advance.
	offered, advancing := false, false
	for {
		if !offered && !advancing && n.h.HasReady() {
			rd = n.h.Ready()
			offered = true
		}
		var readyc chan Ready
		if offered {
			readyc = n.readyc
		}
		select {
		case readyc <- rd:
			offered, advancing = false, true
		case <-n.advancec:
			if advancing {
				n.h.Advance(rd)
				rd, advancing = Ready{}, false
			}
		case <-n.tickc:
			n.h.Tick()
		case req := <-n.reqc:
			err := req.fn(n.h)
			if err == nil && req.removes != 0 && offered {
				// Before RemoveGroup returns: the application may delete
				// the group's storage once it has, and the Ready it takes
				// next must ask nothing of the group.
				dropGroup(&rd, req.removes)
			}
			req.result <- err
		case <-n.stopc:
			return
		}
	}
}

// dropGroup takes group id's share out of rd, a Ready computed but not yet
// taken: its GroupReady and the group's items in the batches (messages,
// heartbeats, responses, wakes), dropping batches left with nothing. This
// is sound once the group is removed: Host.Advance skips it, and any
// message may be lost.
func dropGroup(rd *Ready, id uint64) {
	rd.Groups = slices.DeleteFunc(rd.Groups, func(gr GroupReady) bool { return gr.GroupID == id })
	rd.Batches = slices.DeleteFunc(rd.Batches, func(b *mrpb.Batch) bool {
		b.Messages = slices.DeleteFunc(b.Messages, func(m mrpb.GroupMessage) bool { return m.GroupID == id })
		b.Heartbeats = slices.DeleteFunc(b.Heartbeats, func(hb mrpb.Heartbeat) bool { return hb.GroupID == id })
		b.HeartbeatResponses = slices.DeleteFunc(b.HeartbeatResponses, func(r mrpb.HeartbeatResponse) bool { return r.GroupID == id })
		b.WakeGroups = slices.DeleteFunc(b.WakeGroups, func(g uint64) bool { return g == id })
		return !b.NodeHeartbeat && len(b.Messages) == 0 && len(b.Heartbeats) == 0 &&
			len(b.HeartbeatResponses) == 0 && len(b.WakeGroups) == 0
	})
}

// do runs fn on the Node's goroutine and returns its error, or ctx's error
// if ctx ends before fn starts, or raft.ErrStopped.
func (n *Node) do(ctx context.Context, fn func(h *Host) error) error {
	return n.send(ctx, request{fn: fn, result: make(chan error, 1)})
}

// send runs req as do does.
func (n *Node) send(ctx context.Context, req request) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case n.reqc <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return raft.ErrStopped
	}
	// Taken: the goroutine is running fn now and answers before it does
	// anything else, so waiting is short, and once do returns nothing
	// holds what fn captured.
	return <-req.result
}

// Tick advances the host's clock by one tick. It never blocks: while the
// Node is busy, up to maxPendingTicks ticks wait, and further ones are
// dropped (a late tick only delays timers).
func (n *Node) Tick() {
	select {
	case n.tickc <- struct{}{}:
	case <-n.done:
	default:
	}
}

// Ready returns the channel of host Readys. After receiving one, handle it
// and call Advance; the next comes only then.
func (n *Node) Ready() <-chan Ready { return n.readyc }

// Advance tells the Node that the last Ready was handled.
func (n *Node) Advance() {
	select {
	case n.advancec <- struct{}{}:
	case <-n.done:
	}
}

// Step feeds a batch from peer node from (see Host.Step). The Node keeps
// no reference to b once Step returns.
func (n *Node) Step(ctx context.Context, from uint64, b *mrpb.Batch) error {
	return n.do(ctx, func(h *Host) error { return h.Step(from, b) })
}

// Propose proposes data to group id (see Host.Propose).
func (n *Node) Propose(ctx context.Context, id uint64, data []byte) error {
	return n.do(ctx, func(h *Host) error { return h.Propose(id, data) })
}

// ProposeConfChange proposes a configuration change to group id.
func (n *Node) ProposeConfChange(ctx context.Context, id uint64, cc pb.ConfChangeI) error {
	return n.do(ctx, func(h *Host) error { return h.ProposeConfChange(id, cc) })
}

// ProposeWithResult proposes data to group id and says where the proposal
// went (see Host.ProposeWithResult). The outcome of a forwarded proposal
// comes in a later GroupReady's ForwardedOutcomes, under its ForwardID.
func (n *Node) ProposeWithResult(ctx context.Context, id uint64, data []byte) (raft.ProposalResult, error) {
	var res raft.ProposalResult
	err := n.do(ctx, func(h *Host) error {
		var err error
		res, err = h.ProposeWithResult(id, data)
		return err
	})
	return res, err
}

// ProposeConfChangeWithResult proposes a configuration change to group id
// and says where it went (see Host.ProposeConfChangeWithResult).
func (n *Node) ProposeConfChangeWithResult(ctx context.Context, id uint64, cc pb.ConfChangeI) (raft.ProposalResult, error) {
	var res raft.ProposalResult
	err := n.do(ctx, func(h *Host) error {
		var err error
		res, err = h.ProposeConfChangeWithResult(id, cc)
		return err
	})
	return res, err
}

// ReadIndex asks group id for a read point; the answer comes in the
// group's ReadStates.
func (n *Node) ReadIndex(ctx context.Context, id uint64, rctx []byte) error {
	return n.do(ctx, func(h *Host) error { return h.ReadIndex(id, rctx) })
}

// Campaign makes this node's replica of group id campaign now.
func (n *Node) Campaign(ctx context.Context, id uint64) error {
	return n.do(ctx, func(h *Host) error { return h.Campaign(id) })
}

// TransferLeader asks group id to hand leadership to node transferee.
func (n *Node) TransferLeader(ctx context.Context, id, transferee uint64) error {
	return n.do(ctx, func(h *Host) error { return h.TransferLeader(id, transferee) })
}

// CreateGroup adds a group (see Host.CreateGroup).
func (n *Node) CreateGroup(ctx context.Context, id uint64, cfg raft.Config, peers []raft.Peer) error {
	return n.do(ctx, func(h *Host) error { return h.CreateGroup(id, cfg, peers) })
}

// RemoveGroup removes a group and leaves its tombstone (see
// Host.RemoveGroup). No Ready received from Ready() after RemoveGroup
// returns carries anything of the group, so the application may delete
// its storage then. One received before may: Advance skips the group.
func (n *Node) RemoveGroup(ctx context.Context, id uint64) error {
	return n.send(ctx, request{
		fn:      func(h *Host) error { return h.RemoveGroup(id) },
		result:  make(chan error, 1),
		removes: id,
	})
}

// ApplyConfChange applies a committed conf change entry of group id and
// returns the group's new configuration.
func (n *Node) ApplyConfChange(id uint64, cc pb.ConfChangeI) (*pb.ConfState, error) {
	var cs *pb.ConfState
	err := n.do(context.Background(), func(h *Host) error {
		var err error
		cs, err = h.ApplyConfChange(id, cc)
		return err
	})
	return cs, err
}

// ReportUnreachable tells group id that a message to node to was lost.
func (n *Node) ReportUnreachable(id, to uint64) error {
	return n.do(context.Background(), func(h *Host) error { return h.ReportUnreachable(id, to) })
}

// ReportSnapshot reports how sending a MsgSnap of group id to node to
// went.
func (n *Node) ReportSnapshot(id, to uint64, status raft.SnapshotStatus) error {
	return n.do(context.Background(), func(h *Host) error { return h.ReportSnapshot(id, to, status) })
}

// Status returns group id's raft status.
func (n *Node) Status(id uint64) (raft.Status, error) {
	var st raft.Status
	err := n.do(context.Background(), func(h *Host) error {
		var err error
		st, err = h.Status(id)
		return err
	})
	return st, err
}

// Stop stops the Node and returns once its goroutine has exited. It may be
// called more than once.
func (n *Node) Stop() {
	n.stopOnce.Do(func() { close(n.stopc) })
	<-n.done
}
