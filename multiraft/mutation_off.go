//go:build !raftmutation

package multiraft

// The mutation switches: each deliberately breaks one rule of the host in
// the raftmutation build (see mutation_on.go), so that a test can show the
// simulation catching it (TestSimCatchesMutation). In every normal build
// they are constant false and the compiler drops the code they guard.
const (
	// mutationNeverWake: a peer taken for down wakes nothing.
	mutationNeverWake = false
	// mutationLateWake: a peer is taken for down 50 times too late.
	mutationLateWake = false
	// mutationCrossGroup: a message is delivered to the next group.
	mutationCrossGroup = false
	// mutationNoLeaderWake: a follower woken by a peer or a local call
	// does not wake its leader.
	mutationNoLeaderWake = false
	// mutationNoForwardWatch: a forwarded ProposeWithResult is not counted
	// as watched, so its outcome is never asked for.
	mutationNoForwardWatch = false
	// mutationNoOutcomes: Ready does not take the groups' forwarded
	// outcomes.
	mutationNoOutcomes = false
	// mutationNoTickOutcomes: a tick does not take the forwarded outcomes
	// it gave up, so they wait for the group's next input.
	mutationNoTickOutcomes = false
)
