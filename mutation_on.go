//go:build raftmutation

package raft

import "fmt"

// In the mutation build the deliberately broken rules are switched on by
// SetMutation; see mutation_off.go.
var mutationDoubleVote, mutationAnyLog bool

// SetMutation breaks one protocol rule, in the raftmutation build only, so
// that tests can show the chaos simulation catching it:
//
//   - "double-vote": a node votes for every candidate with an up-to-date
//     log, even after voting for another in the same term;
//   - "any-log": a node votes for a candidate whatever its log, even
//     one missing committed entries (Raft §5.4.1);
//   - "": the protocol is correct again.
func SetMutation(name string) {
	mutationDoubleVote, mutationAnyLog = false, false
	switch name {
	case "":
	case "double-vote":
		mutationDoubleVote = true
	case "any-log":
		mutationAnyLog = true
	default:
		panic(fmt.Sprintf("raft: unknown mutation %q", name))
	}
}
