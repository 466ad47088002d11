package rafttest

import "fmt"

// takeForwarded takes what the node learned about the proposals it
// forwarded and tells Run where they were appended, which checks that the
// entry committed there carries their data, as for a leader's report.
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
		s.env.Appended(o.Index, o.Term, []byte(data))
	}
	return nil
}
