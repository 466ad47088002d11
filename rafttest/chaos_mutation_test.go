//go:build raftmutation

package rafttest_test

import (
	"strings"
	"testing"

	"github.com/raftcore/raft"
	"github.com/raftcore/raft/rafttest"
)

// TestSimCatchesMutationThroughRun runs a correct server (the counter
// server of chaos_test.go) under RunChaos against a library with one
// protocol rule deliberately broken: the checks a user's test gets must
// notice each rule that their configuration can show (the mutations of
// AsyncStorageWrites cannot be, RunChaos runs without it). Run with make
// mutation-check.
func TestSimCatchesMutationThroughRun(t *testing.T) {
	for _, mutation := range []string{"double-vote", "any-log", "read-without-confirm"} {
		t.Run(mutation, func(t *testing.T) {
			raft.SetMutation(mutation)
			defer raft.SetMutation("")
			const seeds = 100
			caught := 0
			var example string
			for seed := uint64(1); seed <= seeds; seed++ {
				if res := rafttest.RunChaos(counterConfig(counterBugs{}), seed); res.Failed() {
					caught++
					if example == "" {
						example = strings.Join(res.Violations, "; ")
						if example == "" {
							example = "not linearizable"
						}
					}
				}
			}
			if caught == 0 {
				t.Fatalf("no seed out of %d caught the %s mutation", seeds, mutation)
			}
			t.Logf("%d of %d seeds caught it, e.g.: %s", caught, seeds, example)
		})
	}
}
