//go:build raftmutation

package multiraft

// The mutation switches of the raftmutation build, set by
// TestSimCatchesMutation one at a time (see mutation_off.go).
var (
	mutationNeverWake      bool
	mutationLateWake       bool
	mutationCrossGroup     bool
	mutationNoLeaderWake   bool
	mutationNoForwardWatch bool
	mutationNoOutcomes     bool
	mutationNoTickOutcomes bool
)
