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
	// asyncOnly keeps the seeds whose configuration can show a broken rule
	// of AsyncStorageWrites at all.
	asyncOnly := func(c SimConfig) bool { return c.Async }
	for _, tt := range []struct {
		mutation string
		// eligible, if set, skips seeds whose configuration cannot show
		// the mutation, so that the seeds run are ones that can.
		eligible func(SimConfig) bool
	}{
		{mutation: "double-vote"},
		{mutation: "any-log"},
		// A deposed leader answering a read: safe (not lease) reads and a
		// network that partitions.
		{mutation: "read-without-confirm", eligible: func(c SimConfig) bool { return !c.LeaseReads && c.PartitionRate > 0 }},
		{mutation: "early-vote-request", eligible: asyncOnly},
		// A lagging apply batch overtaken by a snapshot: async writes with
		// an apply delay, and compaction so that snapshots are sent.
		{mutation: "stale-apply-panics", eligible: func(c SimConfig) bool { return c.Async && c.ApplyDelay > 0 && c.CompactEvery > 0 }},
	} {
		t.Run(tt.mutation, func(t *testing.T) {
			raft.SetMutation(tt.mutation)
			defer raft.SetMutation("")
			caught, ran := 0, 0
			var example string
			const seeds = 400
			for seed := uint64(1); ran < seeds; seed++ {
				cfg := RandomSimConfig(seed)
				if tt.eligible != nil && !tt.eligible(cfg) {
					continue
				}
				ran++
				res := RunSim(cfg)
				if res.Failed() {
					caught++
					if example == "" {
						example = strings.Join(res.Violations, "; ")
					}
				}
			}
			if caught == 0 {
				t.Fatalf("no seed out of %d caught the %s mutation", seeds, tt.mutation)
			}
			t.Logf("%d of %d seeds caught it, e.g.: %s", caught, seeds, example)
		})
	}
}
