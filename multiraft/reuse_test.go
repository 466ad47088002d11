package multiraft

import (
	"runtime"
	"testing"
)

// TestGroupsReuseTheirMessages: a host copies every group's messages into
// its batches before the group's Advance, so it creates its groups with
// raft.Config.ReuseReadyMessages and a busy group allocates no message
// slots. Measured over a stream of proposals to one group of three hosts
// (the test transport's marshaling allocates the rest): 7,384 B per
// proposal with the option, 8,744 B without.
func TestGroupsReuseTheirMessages(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	c := newCluster(t, 1, 3, 1, Config{})
	c.electSpread()
	leader := c.node(c.leader(1)).host
	data := []byte("proposal")
	run := func(proposals int) {
		for range proposals {
			if err := leader.Propose(1, data); err != nil {
				t.Fatal(err)
			}
			c.settle()
		}
	}
	run(256) // the groups' buffers grow to their size
	const proposals = 256
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	run(proposals)
	runtime.ReadMemStats(&after)
	perProposal := (after.TotalAlloc - before.TotalAlloc) / proposals
	t.Logf("%d B allocated per proposal", perProposal)
	if perProposal > 8000 {
		t.Errorf("%d B allocated per proposal, more than 8,000", perProposal)
	}
}
