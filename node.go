package raft

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	pb "github.com/raftcore/raft/raftpb"
)

// ErrStopped is returned by a Node's methods once the node was stopped.
var ErrStopped = errors.New("raft: stopped")

// Node drives a RawNode on its own goroutine and talks to the application
// through channels: the application ticks it, feeds it messages and
// proposals from any goroutine, and receives Readys from Ready(), calling
// Advance after handling each one exactly as with RawNode.
type Node interface {
	// Tick advances the logical clock. It never blocks: while the node is
	// busy, up to a bound of ticks wait, and further ones are dropped.
	Tick()
	// Campaign makes the node start an election now (with
	// ReadOnlyLeaseBased, not within an election timeout of hearing from a
	// leader: see RawNode.Campaign).
	Campaign(ctx context.Context) error
	// Propose proposes data. It returns once the node took the proposal
	// (or refused it: ErrProposalDropped); it blocks while no leader is
	// known, until ctx is done. A context already done proposes nothing;
	// one that ends while the node is taking the proposal may return its
	// error though the proposal was appended (as with etcd raft): an error
	// does not prove the entry will not commit.
	Propose(ctx context.Context, data []byte) error
	// ProposeConfChange proposes a configuration change, like Propose.
	ProposeConfChange(ctx context.Context, cc pb.ConfChangeI) error
	// Step delivers a message from a peer. It returns an error wrapping
	// ErrInvalidMessage if the node refused the message as malformed or
	// inconsistent (see RawNode.Step), and nil for the refusals of
	// ordinary operation that etcd raft's Node.Step does not report either:
	// a late message from a peer no longer in the configuration, a local
	// message type, a forwarded proposal dropped.
	Step(ctx context.Context, msg pb.Message) error
	// Ready returns the channel of Readys. Handle each as RawNode.Ready
	// says, then call Advance.
	Ready() <-chan Ready
	// Advance tells the node the last Ready was handled. With
	// AsyncStorageWrites it does nothing: step the storage threads'
	// responses back in instead.
	Advance()
	// ApplyConfChange applies a committed conf change and returns the new
	// configuration, never nil (an empty ConfState once the node is
	// stopped). A change from a Ready handed out before a snapshot the
	// node installed meanwhile changes nothing (see
	// RawNode.ApplyConfChange).
	ApplyConfChange(cc pb.ConfChangeI) *pb.ConfState
	// TransferLeadership asks the leader (lead, as far as the caller
	// knows) to hand leadership to transferee. A transferee of None does
	// nothing.
	TransferLeadership(ctx context.Context, lead, transferee uint64)
	// ForgetLeader makes a follower forget its leader (see
	// RawNode.ForgetLeader).
	ForgetLeader(ctx context.Context) error
	// ReadIndex asks for a read index; the answer comes as a ReadState in
	// a later Ready.
	ReadIndex(ctx context.Context, rctx []byte) error
	// Status returns the node's status (the zero Status once stopped).
	Status() Status
	// ReportUnreachable reports that the last message to id was not
	// delivered.
	ReportUnreachable(id uint64)
	// ReportSnapshot reports how sending a snapshot to id went.
	ReportSnapshot(id uint64, status SnapshotStatus)
	// Stop stops the node and returns once its goroutine has exited.
	// Blocked calls return ErrStopped.
	Stop()
}

// maxPendingTicks bounds the ticks that wait while the node is busy.
const maxPendingTicks = 128

// stepRequest is a message for the node's goroutine; the error Step
// returned goes back on result (if not nil).
type stepRequest struct {
	m pb.Message
	// local messages are stepped without the checks for messages from
	// peers.
	local  bool
	result chan error
	// where, if set, receives where an accepted proposal went (written
	// before result is sent).
	where *ProposalResult
}

type node struct {
	rn *RawNode

	propc      chan stepRequest // proposals: only taken while a leader is known
	recvc      chan stepRequest // everything else
	confc      chan pb.ConfChangeV2
	confstatec chan pb.ConfState
	readyc     chan Ready
	advancec   chan struct{}
	tickc      chan struct{}
	statusc    chan chan Status
	forwardc   chan chan []ForwardedOutcome
	stop       chan struct{}
	done       chan struct{}

	// readyBuilds counts the Readys built, for tests.
	readyBuilds atomic.Uint64
}

// StartNode starts a node for a new cluster whose initial members are
// peers (this node among them), on c.Storage. It panics if c is invalid
// or peers is empty: use RestartNode for a node with state, or one joining
// an existing cluster. If c.Storage is not empty it logs a warning and
// starts from the storage's state, ignoring peers, as etcd raft does.
func StartNode(c *Config, peers []Peer) Node {
	if len(peers) == 0 {
		panic("raft: StartNode needs the initial peers; use RestartNode to join a cluster or restart")
	}
	rn, err := NewRawNode(c)
	if err != nil {
		panic(err)
	}
	if err := rn.Bootstrap(peers); err != nil {
		// As etcd raft does: a node whose storage already holds state
		// (bootstrapped by hand, or restarted) starts from it.
		rn.raft.logger().Warningf("raft: StartNode: %v; starting from the storage's state, as RestartNode would", err)
	}
	return startNode(rn)
}

// RestartNode starts a node from the state in c.Storage (or, with empty
// storage, a node that waits to be added to an existing cluster). It
// panics if c is invalid.
func RestartNode(c *Config) Node {
	rn, err := NewRawNode(c)
	if err != nil {
		panic(err)
	}
	return startNode(rn)
}

func startNode(rn *RawNode) *node {
	n := newNode(rn)
	go n.run()
	return n
}

// newNode returns a node around rn whose goroutine is not started.
func newNode(rn *RawNode) *node {
	return &node{
		rn:         rn,
		propc:      make(chan stepRequest),
		recvc:      make(chan stepRequest),
		confc:      make(chan pb.ConfChangeV2),
		confstatec: make(chan pb.ConfState),
		readyc:     make(chan Ready),
		advancec:   make(chan struct{}),
		tickc:      make(chan struct{}, maxPendingTicks),
		statusc:    make(chan chan Status),
		forwardc:   make(chan chan []ForwardedOutcome),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
	}
}

// run is the node's goroutine: the only one touching the RawNode.
func (n *node) run() {
	defer close(n.done)
	r := n.rn.raft
	var (
		readyc   chan Ready
		advancec chan struct{}
		rd       Ready
		// built is true while rd is the Ready of the current state: it
		// is rebuilt only after something changed the node, not on every
		// round while the application is busy.
		built bool
		// drained is true once waiting requests were taken in before
		// offering the current Ready.
		drained bool
	)
	for {
		if advancec == nil && !built && n.rn.HasReady() {
			// What the application receives is the state when it takes
			// it.
			n.rn.readyWithoutAccept(&rd)
			n.readyBuilds.Add(1)
			built = true
		}
		if advancec == nil && built {
			readyc = n.readyc
		} else {
			readyc = nil
		}
		propc := n.propc
		if r.lead == None {
			propc = nil // proposals wait for a leader
		}
		if readyc != nil && !drained {
			// Before a Ready is offered, take the requests already
			// waiting: they join this Ready rather than each making a
			// small one of its own (with AsyncStorageWrites, nothing else
			// paces the Readys). Once per Ready, so a steady stream of
			// requests cannot hold it back.
			drained = true
			if n.drain(propc) {
				built = false
				continue
			}
		}
		select {
		case req := <-propc:
			built = false
			n.propose(req)
		case req := <-n.recvc:
			built = false
			n.receive(req)
		case cc := <-n.confc:
			built = false
			cs := n.rn.ApplyConfChange(cc)
			select {
			case n.confstatec <- *cs:
			case <-n.stop:
				return
			}
		case <-n.tickc:
			built = false
			n.rn.Tick()
		case readyc <- rd:
			n.rn.accept(&rd)
			rd, built, drained = Ready{}, false, false
			if !n.rn.asyncWrite {
				// With AsyncStorageWrites the storage threads' responses,
				// stepped back in, take the place of Advance.
				advancec = n.advancec
			}
		case <-advancec:
			built = false
			n.rn.Advance(Ready{})
			advancec = nil
		case c := <-n.statusc:
			c <- getStatus(r)
		case c := <-n.forwardc:
			c <- n.rn.ForwardedOutcomes()
		case <-n.stop:
			return
		}
	}
}

// maxDrain bounds the requests drain takes in at once.
const maxDrain = 64

// drain steps the proposals (from propc, nil while no leader is known) and
// messages already waiting, up to maxDrain, without blocking. It reports
// whether it took any.
func (n *node) drain(propc chan stepRequest) bool {
	for i := 0; i < maxDrain; i++ {
		select {
		case req := <-propc:
			n.propose(req)
			if n.rn.raft.lead == None {
				propc = nil
			}
		case req := <-n.recvc:
			n.receive(req)
			if n.rn.raft.lead == None {
				// The message may have taken the leader away (a vote
				// of a higher term): proposals wait for the next one,
				// as in the main loop.
				propc = nil
			}
		default:
			return i > 0
		}
	}
	return true
}

// propose steps a proposal and answers it.
func (n *node) propose(req stepRequest) {
	r := n.rn.raft
	req.m.From = r.id
	err := r.Step(req.m)
	if err == nil && req.where != nil {
		*req.where = n.rn.proposalResult()
		if req.where.Forwarded {
			req.where.ForwardID = r.watchForwarded(req.m.Entries[0])
		}
	}
	n.reply(req, err)
}

// receive steps a message (local, or from a peer) and answers it.
func (n *node) receive(req stepRequest) {
	if req.local {
		n.reply(req, n.rn.raft.Step(req.m))
		return
	}
	err := n.rn.Step(req.m)
	if err != nil && !errors.Is(err, ErrInvalidMessage) {
		// Refusals of ordinary operation (see Node.Step): a transport
		// that counts or acts on Step errors must not see them.
		err = nil
	}
	n.reply(req, err)
}

func (n *node) reply(req stepRequest, err error) {
	if req.result != nil {
		req.result <- err // buffered: never blocks
	}
}

// submit hands req to the node's goroutine on ch and, if wait, waits for
// the result.
func (n *node) submit(ctx context.Context, ch chan stepRequest, m pb.Message, local, wait bool) error {
	return n.submitRequest(ctx, ch, stepRequest{m: m, local: local}, wait)
}

// resultChans holds result channels for reuse, so that a call waiting for
// the node's answer allocates none.
var resultChans = sync.Pool{New: func() any { return make(chan error, 1) }}

func (n *node) submitRequest(ctx context.Context, ch chan stepRequest, req stepRequest, wait bool) error {
	if err := ctx.Err(); err != nil {
		// The select below could still hand req over.
		return err
	}
	if wait {
		req.result = resultChans.Get().(chan error)
	}
	select {
	case ch <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return ErrStopped
	}
	if !wait {
		return nil
	}
	select {
	case err := <-req.result:
		// Answered and emptied: the channel can serve another call. (One
		// abandoned below may still be written to, so it is not reused.)
		resultChans.Put(req.result)
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return ErrStopped
	}
}

func (n *node) Tick() {
	select {
	case n.tickc <- struct{}{}:
	case <-n.done:
	default:
		n.rn.raft.logger().Warningf("raft: node is busy, dropping a tick (%d are waiting)", maxPendingTicks)
	}
}

func (n *node) Campaign(ctx context.Context) error {
	return n.submit(ctx, n.recvc, pb.Message{Type: pb.MsgHup}, true, true)
}

func (n *node) Propose(ctx context.Context, data []byte) error {
	return n.submit(ctx, n.propc, pb.Message{Type: pb.MsgProp, Entries: []pb.Entry{{Data: data}}}, true, true)
}

func (n *node) ProposeConfChange(ctx context.Context, cc pb.ConfChangeI) error {
	typ, data, err := pb.MarshalConfChange(cc)
	if err != nil {
		return err
	}
	return n.submit(ctx, n.propc, pb.Message{Type: pb.MsgProp, Entries: []pb.Entry{{Type: typ, Data: data}}}, true, true)
}

func (n *node) Step(ctx context.Context, m pb.Message) error {
	return n.submit(ctx, n.recvc, m, false, true)
}

func (n *node) Ready() <-chan Ready { return n.readyc }

func (n *node) Advance() {
	if n.rn.asyncWrite {
		return // not used with AsyncStorageWrites
	}
	select {
	case n.advancec <- struct{}{}:
	case <-n.done:
	}
}

func (n *node) ApplyConfChange(cc pb.ConfChangeI) *pb.ConfState {
	select {
	case n.confc <- cc.AsV2():
	case <-n.done:
		return &pb.ConfState{}
	}
	select {
	case cs := <-n.confstatec:
		return &cs
	case <-n.done:
		return &pb.ConfState{}
	}
}

func (n *node) TransferLeadership(ctx context.Context, lead, transferee uint64) {
	// The request goes to whoever leads now; lead is only the caller's
	// view and is not needed.
	_ = lead
	_ = n.submit(ctx, n.recvc, pb.Message{Type: pb.MsgTransferLeader, From: transferee}, true, false)
}

func (n *node) ForgetLeader(ctx context.Context) error {
	return n.submit(ctx, n.recvc, pb.Message{Type: pb.MsgForgetLeader}, true, true)
}

func (n *node) ReadIndex(ctx context.Context, rctx []byte) error {
	return n.submit(ctx, n.recvc, pb.Message{Type: pb.MsgReadIndex, Entries: []pb.Entry{{Data: rctx}}}, true, true)
}

func (n *node) Status() Status {
	c := make(chan Status, 1)
	select {
	case n.statusc <- c:
		return <-c
	case <-n.done:
		return Status{}
	}
}

func (n *node) ReportUnreachable(id uint64) {
	_ = n.submit(context.Background(), n.recvc, pb.Message{Type: pb.MsgUnreachable, From: id}, true, false)
}

func (n *node) ReportSnapshot(id uint64, status SnapshotStatus) {
	m := pb.Message{Type: pb.MsgSnapStatus, From: id, Reject: status == SnapshotFailure}
	_ = n.submit(context.Background(), n.recvc, m, true, false)
}

func (n *node) Stop() {
	select {
	case n.stop <- struct{}{}:
	case <-n.done:
	}
	<-n.done
}
