//go:build !raftmutation

package raft

// The mutation switches: each deliberately breaks one protocol rule in the
// raftmutation build (see SetMutation in mutation_on.go), so that a test can
// show the chaos simulation catching a broken protocol (make
// mutation-check). In every normal build they are constant false and the
// compiler drops the code they guard.
const (
	mutationDoubleVote         = false
	mutationAnyLog             = false
	mutationReadWithoutConfirm = false
	mutationEarlyVoteRequest   = false
	mutationStaleApplyPanics   = false
)
