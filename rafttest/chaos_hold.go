package rafttest

// holdReady is ServerEnv.HoldReady (hold) and ServerEnv.ReleaseReady. At
// the release it checks that the held Ready was advanced.
func (r *chaosRun) holdReady(e *ServerEnv, hold bool) {
	n := r.node(e.ID)
	if n == nil || n.env != e || n.srv == nil {
		return // a server of an earlier incarnation
	}
	if hold {
		n.holding, n.held = true, 0
		return
	}
	if !n.holding {
		r.violate("node %d released a Ready it did not hold", n.id)
		return
	}
	n.holding = false
	if applied := n.rn.BasicStatus().Applied; applied < n.held {
		r.violate("node %d released its held Ready without calling Advance (applied %d, handed entries up to %d)", n.id, applied, n.held)
	}
}

// hurry is ServerEnv.Hurry.
func (r *chaosRun) hurry(e *ServerEnv, queue string, k int) {
	n := r.node(e.ID)
	if n == nil || n.env != e || n.srv == nil {
		return // a server of an earlier incarnation
	}
	for ; k > 0 && n.srv != nil && len(n.later[queue]) > 0; k-- {
		w := n.later[queue][0]
		n.later[queue] = n.later[queue][1:]
		w.f()
	}
}
