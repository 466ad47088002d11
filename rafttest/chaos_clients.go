package rafttest

import (
	"fmt"
	"slices"
	"strings"

	"github.com/anishathalye/porcupine"
)

// clientsStep gives up on the operations that timed out and starts new
// ones for idle clients (in the liveness phase, only until each client
// has had an answer).
func (r *chaosRun) clientsStep() {
	for _, c := range r.clients {
		if p := c.pending; p != nil && r.now >= p.deadline && r.cfg.Retry {
			r.event("client %d submits operation %d again", c.id, p.id)
			p.deadline = r.now + int64(r.cfg.OpTimeout)
			r.submit(p)
			continue
		} else if p != nil && r.now >= p.deadline {
			r.event("client %d gave up on operation %d", c.id, p.id)
			delete(r.pending, p.id)
			c.pending = nil
		}
		if c.pending == nil && (r.chaos || !c.liveDone) {
			r.newOp(c)
		}
	}
}

// newOp starts c's next operation on a random running node.
func (r *chaosRun) newOp(c *chaosClient) {
	r.nextOpID++
	input := r.cfg.NextOp(r.opRnd)
	op := &chaosOp{id: r.nextOpID, hist: len(r.history), deadline: r.now + int64(r.cfg.OpTimeout), client: c, live: !r.chaos}
	r.history = append(r.history, porcupine.Operation{ClientId: c.id, Input: input, Call: r.stamp()})
	r.answered = append(r.answered, false)
	c.pending = op
	r.pending[op.id] = op
	r.submit(op)
}

// submit hands op to the server of a random running node.
func (r *chaosRun) submit(op *chaosOp) {
	run := r.running()
	if len(run) == 0 {
		return // no node to ask: the client waits for its timeout
	}
	n := run[r.rnd.IntN(len(run))]
	if iso := r.isolatedNode(); iso != nil && len(run) > 1 {
		// Clients on both sides of the partition: half go to the
		// isolated leader.
		n = iso
		if r.isolation.rnd.IntN(2) == 0 {
			others := slices.DeleteFunc(slices.Clone(run), func(o *chaosNode) bool { return o == iso })
			n = others[r.isolation.rnd.IntN(len(others))]
		}
	}
	id := op.id
	n.srv.Submit(Op{ID: id, Input: r.history[op.hist].Input, Client: op.client.id, Done: func(output any) { r.answer(id, output) }})
	if n.srv != nil {
		r.observe(n)
	}
}

// answer records the answer to operation id, if its client still waits.
func (r *chaosRun) answer(id uint64, output any) {
	op, ok := r.pending[id]
	if !ok {
		return
	}
	delete(r.pending, id)
	h := &r.history[op.hist]
	h.Output, h.Return = output, r.stamp()
	r.answered[op.hist] = true
	op.client.pending = nil
	if op.live {
		op.client.liveDone = true
	}
}

// liveness heals the network, starts the nodes that are down and
// requires an answer to a new operation of every client (with Retry, to
// its pending one first) within LivenessTicks.
func (r *chaosRun) liveness() {
	r.chaos = false
	if r.isolation != nil {
		r.isolation.node = 0 // healed below; its clock runs again
	}
	r.net.Heal()
	r.net.SetDelay(0)
	r.net.SetDupRate(0)
	r.event("liveness phase: network healed, the nodes down started")
	r.mark("network", "healed for good", "", "#8d8")
	for _, n := range r.nodes {
		if n.srv == nil {
			r.start(n)
		}
	}
	end := r.now + int64(r.cfg.LivenessTicks)
	for ; r.now < end && len(r.violations) == 0 && !r.allAnswered(); r.now++ {
		r.net.SetNow(r.now)
		r.tick()
	}
	if len(r.violations) == 0 && !r.allAnswered() {
		var waiting []int
		for _, c := range r.clients {
			if !c.liveDone {
				waiting = append(waiting, c.id)
			}
		}
		var nodes []string
		for _, n := range r.nodes {
			st := n.rn.BasicStatus()
			nodes = append(nodes, fmt.Sprintf("%d: %s term %d lead %d commit %d applied %d", n.id, st.RaftState, st.Term, st.Lead, st.Commit, st.Applied))
		}
		r.violate("liveness: after %d fault-free ticks, clients %v have had no answer; nodes %s", r.cfg.LivenessTicks, waiting, strings.Join(nodes, ", "))
	}
}

func (r *chaosRun) allAnswered() bool {
	for _, c := range r.clients {
		if !c.liveDone {
			return false
		}
	}
	return true
}

// closeHistory completes the history for the checker: an operation
// without an answer gets the output Unanswered gives, as if it returned
// at the end of the run (after which nothing happens), or is left out.
func (r *chaosRun) closeHistory() {
	end := r.stamp() + 1
	kept := r.history[:0]
	answered := r.answered[:0]
	for i, h := range r.history {
		if !r.answered[i] {
			if r.cfg.Unanswered == nil {
				continue
			}
			out, keep := r.cfg.Unanswered(h.Input)
			if !keep {
				continue
			}
			h.Output, h.Return = out, end
		}
		kept = append(kept, h)
		answered = append(answered, r.answered[i])
	}
	r.history, r.answered = kept, answered
}
