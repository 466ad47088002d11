package rafttest

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/raftcore/raft"
)

// simClient issues operations one at a time and retries them until they
// are applied.
type simClient struct {
	id      int
	seq     uint64
	pending *simPending
}

type simPending struct {
	op       simOp
	hist     int   // index in Sim.history
	deadline int64 // tick to retry at
	// A Get may be served through ReadIndex instead of the log: ctx is
	// the context of the latest attempt, node the node asked, and index
	// the read index it answered (0 while waiting).
	viaReadIndex bool
	attempt      int
	ctx          string
	node         uint64
	index        uint64
}

// histOp is an operation in the history checked for linearizability.
type histOp struct {
	op     simOp
	call   int64
	ret    int64 // 0 while pending
	output string
}

// clientsStep lets every client complete, retry or start an operation.
func (s *Sim) clientsStep() {
	for _, c := range s.clients {
		if p := c.pending; p != nil && p.viaReadIndex {
			if n := s.node(p.node); p.index > 0 && n.rn != nil && n.sm.Applied >= p.index {
				s.clock++
				h := &s.history[p.hist]
				h.ret, h.output = s.clock, n.sm.Data[p.op.Key]
				delete(s.readers, p.ctx)
				c.pending = nil
			} else if s.now >= p.deadline {
				delete(s.readers, p.ctx)
				s.submit(c, p)
			}
			continue
		}
		if p := c.pending; p != nil {
			if out, ok := s.done[[2]uint64{uint64(c.id), p.op.Seq}]; ok {
				s.clock++
				h := &s.history[p.hist]
				h.ret, h.output = s.clock, out
				c.pending = nil
			} else if s.now >= p.deadline {
				s.submit(c, p)
			}
			continue
		}
		if !s.chaos {
			continue // the liveness phase issues its own operations
		}
		s.newOp(c)
	}
}

func (s *Sim) newOp(c *simClient) {
	c.seq++
	op := simOp{Client: c.id, Seq: c.seq, Key: fmt.Sprintf("k%d", s.rnd.IntN(s.cfg.Keys))}
	if s.rnd.IntN(2) == 0 {
		op.Get = true
	} else {
		op.Value = fmt.Sprintf("%d.%d", c.id, c.seq)
	}
	s.clock++
	s.history = append(s.history, histOp{op: op, call: s.clock})
	c.pending = &simPending{op: op, hist: len(s.history) - 1, viaReadIndex: op.Get && s.rnd.IntN(4) != 0}
	s.submit(c, c.pending)
}

// submit proposes p's operation through a random running node, and sets
// when to retry.
func (s *Sim) submit(c *simClient, p *simPending) {
	p.deadline = s.now + 15 + int64(s.rnd.IntN(10))
	run := s.running()
	if len(run) == 0 {
		return
	}
	n := run[s.rnd.IntN(len(run))]
	if p.viaReadIndex {
		// A linearizable read without the log: ask for a read index, and
		// read the state machine once it has applied that far.
		p.attempt++
		p.ctx = fmt.Sprintf("read %d.%d.%d", c.id, p.op.Seq, p.attempt)
		p.node, p.index = n.id, 0
		s.readers[p.ctx] = c

		n.rn.ReadIndex([]byte(p.ctx))
		return
	}
	data, err := json.Marshal(p.op)
	if err != nil {
		panic(err)
	}
	switch res, err := n.rn.ProposeWithResult(data); {
	case err == nil && !res.Forwarded:
		s.proposed[[2]uint64{res.Index, res.Term}] = string(data)
	case err == nil && res.ForwardID != 0:
		s.watchForwarded(n, res.ForwardID, string(data))
	case errors.Is(err, raft.ErrProposalDropped):
		// Refused at once (no leader known, or not a member): a client
		// tries another node at the next tick.
		p.deadline = s.now + 1
	case err != nil:
		s.violate("node %d: propose: %v", n.id, err)
	}
}

// liveness heals everything and requires a leader and the completion of
// every client operation, old and new, within LivenessTicks.
func (s *Sim) liveness() {
	s.chaos = false
	s.net.Heal()
	s.net.SetDelay(0)
	s.net.SetDupRate(0)
	s.event("liveness phase: network healed, every member restarted")
	for _, n := range s.nodes {
		if n.rn == nil {
			s.restart(n)
		}
	}
	for _, c := range s.clients {
		if c.pending == nil {
			s.newOp(c)
		}
	}
	// First every operation still pending completes; then one new
	// operation per client must complete too, each phase within the
	// bound.
	for round := 0; round < 2 && len(s.violations) == 0; round++ {
		if round == 1 {
			for _, c := range s.clients {
				s.newOp(c)
			}
		}
		start := s.now
		for ; s.now < start+int64(s.cfg.LivenessTicks) && len(s.violations) == 0 && !s.allDone(); s.now++ {
			if (s.now-start)%10 == 0 {
				s.leaveExplicitJoint()
			}
			s.net.SetNow(s.now)
			s.runTick()
		}
		if !s.allDone() {
			break
		}
	}
	if s.allDone() {
		return
	}
	if len(s.violations) == 0 {
		var waiting []string
		for _, c := range s.clients {
			if c.pending != nil {
				waiting = append(waiting, fmt.Sprintf("client %d op %d", c.id, c.pending.op.Seq))
			}
		}
		leaders := []uint64{}
		for _, n := range s.running() {
			if n.rn.BasicStatus().RaftState == raft.StateLeader {
				leaders = append(leaders, n.id)
			}
		}
		s.violate("liveness: after %d fault-free ticks, leaders %v, still waiting: %v", s.cfg.LivenessTicks, leaders, waiting)
	}
}

func (s *Sim) allDone() bool {
	for _, c := range s.clients {
		if c.pending != nil {
			return false
		}
	}
	return true
}
