//go:build raftmutation

package raft

import "fmt"

// In the mutation build the deliberately broken rules are switched on by
// SetMutation; see mutation_off.go.
var mutationDoubleVote, mutationAnyLog, mutationReadWithoutConfirm, mutationEarlyVoteRequest, mutationStaleApplyPanics bool

// SetMutation breaks one protocol rule, in the raftmutation build only, so
// that tests can show the chaos simulation catching it:
//
//   - "double-vote": a node votes for every candidate with an up-to-date
//     log, even after voting for another in the same term;
//   - "any-log": a node votes for a candidate whatever its log, even
//     one missing committed entries (Raft §5.4.1);
//   - "read-without-confirm": a leader answers safe read-index requests
//     without confirming its leadership with a heartbeat round;
//   - "early-vote-request": a candidate's vote requests leave before its
//     term and self-vote are durable (AsyncStorageWrites), so a crash can
//     let it lead the same term twice;
//   - "stale-apply-panics": an apply batch reported after a snapshot that
//     superseded it is taken as a broken invariant (AsyncStorageWrites,
//     an apply thread lagging the append thread);
//   - "": the protocol is correct again.
func SetMutation(name string) {
	mutationDoubleVote, mutationAnyLog, mutationReadWithoutConfirm = false, false, false
	mutationEarlyVoteRequest, mutationStaleApplyPanics = false, false
	switch name {
	case "":
	case "double-vote":
		mutationDoubleVote = true
	case "any-log":
		mutationAnyLog = true
	case "read-without-confirm":
		mutationReadWithoutConfirm = true
	case "early-vote-request":
		mutationEarlyVoteRequest = true
	case "stale-apply-panics":
		mutationStaleApplyPanics = true
	default:
		panic(fmt.Sprintf("raft: unknown mutation %q", name))
	}
}
