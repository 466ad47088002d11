package rafttest

// watchForwarded remembers a proposal n forwarded, under its ForwardID.
func (s *Sim) watchForwarded(n *simNode, id uint64, data string) {
	if n.forwarded == nil {
		n.forwarded = map[uint64]string{}
	}
	n.forwarded[id] = data
}

// takeForwarded takes what n learned about the proposals it forwarded,
// before n applies anything more: where a follower reports one appended,
// the entry there must carry its data, as for a leader's report (checked
// here against what was applied already, and in apply for what comes).
func (s *Sim) takeForwarded(n *simNode) {
	if n.rn == nil {
		return
	}
	for _, o := range n.rn.ForwardedOutcomes() {
		data, ok := n.forwarded[o.ForwardID]
		if !ok {
			s.violate("node %d reported an outcome for forwarded proposal %d, which it never forwarded (or reported twice)", n.id, o.ForwardID)
			continue
		}
		delete(n.forwarded, o.ForwardID)
		if o.Unknown {
			s.forwardedUnknown++
			continue
		}
		s.forwardedAppended++
		at := [2]uint64{o.Index, o.Term}
		if prev, ok := s.proposed[at]; ok && prev != data {
			s.violate("node %d reports its forwarded %q appended at index %d term %d, where %q was reported", n.id, data, o.Index, o.Term, prev)
		}
		s.proposed[at] = data
		if rec, ok := s.committed[o.Index]; ok && rec.term == o.Term && rec.data != data {
			s.violate("node %d reports its forwarded %q appended at index %d term %d, where %q was applied", n.id, data, o.Index, o.Term, rec.data)
		}
	}
}
