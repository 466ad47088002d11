package rafttest

import "fmt"

// takeForwarded takes what the node learned about the proposals it
// forwarded, before it applies anything more: where a follower reports
// one appended, the entry there must carry its data, as for a leader's
// report (checked here against what was applied already, and in apply
// for what comes).
func (s *simServer) takeForwarded() error {
	for _, o := range s.rn.ForwardedOutcomes() {
		data, ok := s.forwarded[o.ForwardID]
		if !ok {
			return fmt.Errorf("reported an outcome for forwarded proposal %d, which it never forwarded (or reported twice)", o.ForwardID)
		}
		delete(s.forwarded, o.ForwardID)
		if o.Unknown {
			s.sim.forwardedUnknown++
			continue
		}
		s.sim.forwardedAppended++
		at := [2]uint64{o.Index, o.Term}
		if prev, ok := s.sim.proposed[at]; ok && prev != data {
			return fmt.Errorf("reports its forwarded %q appended at index %d term %d, where %q was reported", data, o.Index, o.Term, prev)
		}
		s.sim.proposed[at] = data
		if rec, ok := s.env.run.committed[o.Index]; ok && rec.term == o.Term && rec.data != data {
			return fmt.Errorf("reports its forwarded %q appended at index %d term %d, where %q was applied", data, o.Index, o.Term, rec.data)
		}
	}
	return nil
}
