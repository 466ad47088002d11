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

// caught runs seed under the mutation and reports whether the simulation
// failed, with its message.
func caught(t *testing.T, seed uint64) (ok bool, msg string) {
	return catches(func(tb testing.TB) { runSimulation(tb, seed, 5000) }, t)
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
// and one that delivers messages to the wrong group.
func TestSimCatchesMutation(t *testing.T) {
	mutations := []struct {
		name string
		flag *bool
	}{
		{"never-wake", &mutationNeverWake},
		{"late-wake", &mutationLateWake},
		{"cross-group", &mutationCrossGroup},
	}
	for _, m := range mutations {
		t.Run(m.name, func(t *testing.T) {
			*m.flag = true
			defer func() { *m.flag = false }()
			const seeds = 3
			n, first := 0, ""
			for seed := uint64(1); seed <= seeds; seed++ {
				if ok, msg := caught(t, seed); ok {
					n++
					if first == "" {
						first = msg
					}
				}
			}
			t.Logf("%s: %d of %d seeds caught (%s)", m.name, n, seeds, first)
			if n == 0 {
				t.Fatalf("the simulation misses mutation %s", m.name)
			}
		})
	}
}

// TestSimCatchesStaleReads shows the linearizability check catching
// clients that read a node's state without asking the group (ReadIndex or
// the log) first.
func TestSimCatchesStaleReads(t *testing.T) {
	simStaleReads = true
	defer func() { simStaleReads = false }()
	const seeds = 3
	n, first := 0, ""
	for seed := uint64(1); seed <= seeds; seed++ {
		if ok, msg := caught(t, seed); ok {
			n++
			if first == "" {
				first = msg
			}
		}
	}
	t.Logf("stale reads: %d of %d seeds caught (%s)", n, seeds, first)
	if n == 0 {
		t.Fatal("the simulation misses stale reads")
	}
}

// TestChurnCatchesNoLeaderWake: the simulation checks safety and liveness,
// which a follower that does not wake its leader keeps (it only elects
// needlessly); TestFollowerWokenByPeerWakesLeader is the test that catches
// it.
func TestChurnCatchesNoLeaderWake(t *testing.T) {
	mutationNoLeaderWake = true
	defer func() { mutationNoLeaderWake = false }()
	ok, msg := catches(func(tb testing.TB) { followerWokenByPeer(tb) }, t)
	if !ok {
		t.Fatal("TestFollowerWokenByPeerWakesLeader misses a follower that does not wake its leader")
	}
	t.Logf("caught: %s", msg)
}
