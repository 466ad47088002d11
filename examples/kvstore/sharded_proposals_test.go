package main

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestShardedWriteReplacedAfterLeaderChangeIsLost is
// TestWriteReplacedAfterLeaderChangeIsLost with shards: a write a shard's
// leader appended, then lost with its leadership (the others elected a
// leader whose first entry took that index), is answered 503
// proposal_lost as soon as the old leader applies that index, not at the
// request timeout.
func TestShardedWriteReplacedAfterLeaderChangeIsLost(t *testing.T) {
	const requestTimeout = 20 * time.Second
	var isolated atomic.Uint64
	c := &shardedTestCluster{shards: 2}
	c.tweak = func(cfg *memberConfig) {
		cfg.RequestTimeout = requestTimeout
		self := cfg.ID
		cfg.dropBatch = func(from uint64) bool {
			iso := isolated.Load()
			return iso != 0 && (self == iso || from == iso)
		}
	}
	newShardedTestClusterWith(t, c, 3)
	const sh = 1
	old := c.waitLeaders()[sh-1]
	oldTerm := c.members[old].status.Load().Groups[sh-1].Term
	put(t, c.url(old, "/kv/"+c.keyIn(sh, "before")), "1")

	isolated.Store(old)
	answered := putLater(c.url(old, "/kv/"+c.keyIn(sh, "lost")), "x")
	require.Eventually(t, func() bool {
		for id, m := range c.members {
			if g := m.status.Load().Groups[sh-1]; id != old && g.State == "StateLeader" && g.Term > oldTerm {
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "the others elect a leader of shard %d", sh)
	isolated.Store(0)

	requireLostAtOnce(t, answered, requestTimeout)
}
