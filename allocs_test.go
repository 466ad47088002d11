package raft

import "testing"

// TestAllocsPerEntry bounds the allocations per committed entry of the
// Ready loops that BenchmarkRawNode times (allocation counts are exact, so
// a regression fails here rather than in a benchmark nobody reads). Today's
// counts are in the comments. etcd raft v3.6's counts on the same loops in
// bench/compare are 3, 1.2, 17 and 2.6 with messages handed over as values,
// and 21 and 6.57 marshaled (both marshal every message into one reused
// buffer). Most ceilings are a few times today's count; the marshaled
// loops with one entry per Ready are bounded just above theirs (5.0 over
// 4.14, 4.08 over 4.02), because what they allocate is mostly the codec's:
// decoding an append allocates its entries and a buffer for their
// payloads, two appends per committed entry.
//
// Skipped under the race detector, whose instrumentation allocates; `make
// test` runs it once more without it.
func TestAllocsPerEntry(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	ceilings := map[string]float64{
		"SingleVoter/batch=1":            0.02, // 0.004
		"SingleVoter/batch=64":           0.02, // 0.004
		"ThreeVoters/value/batch=1":      0.3,  // 0.14
		"ThreeVoters/value/batch=64":     0.06, // 0.020
		"ThreeVoters/marshaled/batch=1":  5.0,  // 4.14
		"ThreeVoters/marshaled/batch=64": 0.25, // 0.082
		// ReuseReadyMessages: no message slots.
		"ThreeVoters/value/batch=1/reuse":     0.05, // 0.016
		"ThreeVoters/marshaled/batch=1/reuse": 4.08, // 4.02
	}
	const entriesPerRun = 256
	for _, w := range benchWorkloads {
		t.Run(w.name, func(t *testing.T) {
			ceiling, ok := ceilings[w.name]
			if !ok {
				t.Fatalf("no ceiling for workload %s", w.name)
			}
			c := newBenchCluster(t, w.voters, w.marshal, w.options()...)
			rounds := entriesPerRun / w.batch
			// AllocsPerRun runs once more to warm up, so that the node's
			// buffers have grown.
			perRun := testing.AllocsPerRun(8, func() {
				for i := 0; i < rounds; i++ {
					c.round(t, w.batch)
				}
			})
			perEntry := perRun / entriesPerRun
			t.Logf("%.3f allocs per committed entry (ceiling %.2f)", perEntry, ceiling)
			if perEntry > ceiling {
				t.Errorf("%.3f allocs per committed entry, more than %.2f", perEntry, ceiling)
			}
			for _, n := range c.nodes {
				if n.applied < 9*entriesPerRun {
					t.Fatalf("node %d applied only %d entries", n.rn.raft.id, n.applied)
				}
			}
		})
	}
}

// TestLeaderBurstChunk: a leader queues a burst of messages per batch of
// proposals when its appends cannot be merged (with MaxSizePerMsg 0, an
// append per follower per proposal). Once one such Ready was
// handed out, the next chunks have room for the next burst at once, rather
// than growing to it by doubling (each step a new chunk and a copy).
func TestLeaderBurstChunk(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	c := newBenchCluster(t, 3, false)
	c.oneEntryPerAppend()
	for range 4 {
		c.round(t, 64)
	}
	leader := c.nodes[0].rn.raft
	var grown int
	for range 16 {
		for j := 0; j < 64; j++ {
			before := cap(leader.msgs)
			if err := c.nodes[0].rn.Propose(c.data); err != nil {
				t.Fatal(err)
			}
			if cap(leader.msgs) != before && j > 0 {
				grown++ // a new chunk in the middle of the burst
			}
		}
		c.settle(t)
	}
	if grown > 0 {
		t.Fatalf("the leader moved its queued messages to a bigger chunk %d times in 16 bursts", grown)
	}
}

// After a burst (one append per entry, as in TestLeaderBurstChunk), a
// leader back to one entry per Ready goes back to the
// allocations it had before the burst: the chunks sized for the burst
// shrink again, instead of each being dropped after one small Ready and a
// new one allocated for the next.
func TestLeaderChunksShrinkAfterABurst(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	perRound := func(burst int) float64 {
		c := newBenchCluster(t, 3, false)
		c.oneEntryPerAppend()
		for range 4 {
			c.round(t, 1)
		}
		for range 4 {
			c.round(t, burst)
		}
		for range 8 {
			c.round(t, 1) // the chunks settle
		}
		return testing.AllocsPerRun(256, func() { c.round(t, 1) })
	}
	quiet, afterBurst := perRound(1), perRound(100)
	if afterBurst > quiet+0.1 {
		t.Fatalf("one-entry rounds allocate %.2f times each after a burst of 100 entries, %.2f without", afterBurst, quiet)
	}
}

// oneEntryPerAppend sets MaxSizePerMsg to 0 on every node: each append
// carries one entry, so a leader's appends are never merged and a batch of
// proposals queues a burst of messages.
func (c *benchCluster) oneEntryPerAppend() {
	for _, n := range c.nodes {
		n.rn.raft.maxMsgSize = 0
	}
}
