//go:build raftmutation

package rafttest

import (
	"strings"
	"testing"

	"github.com/raftcore/raft"
)

// TestSimCatchesMutation runs the simulation against a library with one
// protocol rule deliberately broken (the raftmutation build). The
// simulation must notice each: a checker that passes a broken protocol
// proves nothing. Run with make mutation-check.
func TestSimCatchesMutation(t *testing.T) {
	for _, mutation := range []string{"double-vote", "any-log", "read-without-confirm", "early-vote-request", "stale-apply-panics"} {
		t.Run(mutation, func(t *testing.T) {
			raft.SetMutation(mutation)
			defer raft.SetMutation("")
			caught := 0
			var example string
			const seeds = 400
			for seed := uint64(1); seed <= seeds; seed++ {
				res := RunSim(RandomSimConfig(seed))
				if res.Failed() {
					caught++
					if example == "" {
						example = strings.Join(res.Violations, "; ")
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
