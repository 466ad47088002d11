//go:build raftmutation

package raft

import "fmt"

// In the mutation build the deliberately broken rules are switched on by
// SetMutation; see mutation_off.go.
var mutationDoubleVote, mutationAnyLog, mutationReadWithoutConfirm bool

// SetMutation breaks one protocol rule, in the raftmutation build only, so
// that tests can show the chaos simulation catching it:
//
//   - "double-vote": a node votes for every candidate with an up-to-date
//     log, even after voting for another in the same term;
//   - "any-log": a node votes for a candidate whatever its log, even
//     one missing committed entries (Raft §5.4.1);
//   - "read-without-confirm": a leader answers safe read-index requests
//     without confirming its leadership with a heartbeat round;
//   - "": the protocol is correct again.
func SetMutation(name string) {
	mutationDoubleVote, mutationAnyLog, mutationReadWithoutConfirm = false, false, false
	switch name {
	case "":
	case "double-vote":
		mutationDoubleVote = true
	case "any-log":
		mutationAnyLog = true
	case "read-without-confirm":
		mutationReadWithoutConfirm = true
	default:
		panic(fmt.Sprintf("raft: unknown mutation %q", name))
	}
}
