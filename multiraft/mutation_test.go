//go:build raftmutation

package multiraft

import (
	"fmt"
	"testing"
)

// simFailure is what failRecorder panics with.
type simFailure struct{ msg string }

// failRecorder turns a simulation's fatal failure into a panic that
// TestSimCatchesMutation recovers, so that a failing seed counts as caught.
type failRecorder struct{ testing.TB }

func (failRecorder) Helper()             {}
func (failRecorder) Logf(string, ...any) {}
func (failRecorder) Fatal(args ...any)   { panic(simFailure{fmt.Sprint(args...)}) }
func (failRecorder) Fatalf(f string, a ...any) {
	panic(simFailure{fmt.Sprintf(f, a...)})
}

// catches runs check and reports whether it failed, with its message.
func catches(check func(testing.TB), t *testing.T) (ok bool, msg string) {
	defer func() {
		if r := recover(); r != nil {
			f, isFailure := r.(simFailure)
			if !isFailure {
				panic(r)
			}
			ok, msg = true, f.msg
		}
	}()
	check(failRecorder{t})
	return false, ""
}

// TestSimCatchesMutation shows the simulation catching a host that never
// wakes the groups of a dead leader's node, one that wakes them too late,
// one that delivers messages to the wrong group, and (through its
// linearizability check) clients that read a node's state without asking
// the group first. A follower that does not wake its leader keeps safety
// and liveness (it only elects needlessly), so the simulation cannot see
// it: TestFollowerWokenByPeerWakesLeader is shown catching it instead. The
// same goes for forwarded proposals' outcomes that are never asked for,
// never handed out, or handed out only at the group's next input after
// the tick that gives them up (TestForwardedProposalOutcome,
// TestForwardedOutcomeUnknownOnTick).
func TestSimCatchesMutation(t *testing.T) {
	mutations := []struct {
		name string
		flag *bool
		// check runs seed; nil: the simulation.
		check func(tb testing.TB, seed uint64)
	}{
		{"never-wake", &mutationNeverWake, nil},
		{"late-wake", &mutationLateWake, nil},
		{"cross-group", &mutationCrossGroup, nil},
		{"stale-reads", &simStaleReads, nil},
		{"no-leader-wake", &mutationNoLeaderWake, followerWokenByPeer},
		{"no-forward-watch", &mutationNoForwardWatch, forwardedOutcome},
		{"no-outcomes", &mutationNoOutcomes, forwardedOutcome},
		{"no-tick-outcomes", &mutationNoTickOutcomes, forwardedOutcomeUnknownOnTick},
	}
	for _, m := range mutations {
		t.Run(m.name, func(t *testing.T) {
			*m.flag = true
			defer func() { *m.flag = false }()
			check := m.check
			if check == nil {
				check = func(tb testing.TB, seed uint64) { runSimulation(tb, seed, 5000) }
			}
			const seeds = 3
			n, first := 0, ""
			for seed := uint64(1); seed <= seeds; seed++ {
				if ok, msg := catches(func(tb testing.TB) { check(tb, seed) }, t); ok {
					n++
					if first == "" {
						first = msg
					}
				}
			}
			t.Logf("%s: %d of %d seeds caught (%s)", m.name, n, seeds, first)
			if n == 0 {
				t.Fatalf("the checks miss mutation %s", m.name)
			}
		})
	}
}
