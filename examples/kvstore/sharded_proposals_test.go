package main

import (
	"net/http"
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

// TestShardedRequestsTimeOut: a write and a read that get no answer from
// their shards' leaders are answered 503 timeout at the request timeout,
// and the member then forgets them (expire), and stops looking at their
// shards: its pass over the shards with requests is empty again, so that
// on an idle member it costs nothing whatever the shard count.
func TestShardedRequestsTimeOut(t *testing.T) {
	// Ticks long enough that a woken follower on member 1 does not give
	// up on its leader (and fail the requests, leader_changed) first.
	const requestTimeout, tick = 300 * time.Millisecond, 100 * time.Millisecond
	var deaf atomic.Bool
	c := &shardedTestCluster{shards: 3, tick: tick}
	c.tweak = func(cfg *memberConfig) {
		cfg.RequestTimeout = requestTimeout
		self := cfg.ID
		// Once deaf, the others hear nothing from member 1; it hears them.
		cfg.dropBatch = func(from uint64) bool { return self != 1 && from == 1 && deaf.Load() }
	}
	newShardedTestClusterWith(t, c, 3)
	var others []uint64 // the shards member 1 does not lead
	for i, l := range c.waitLeaders() {
		if l != 1 {
			others = append(others, uint64(i+1))
		}
	}
	require.Len(t, others, 2, "spreadLeaders gives each member one of three shards")
	deaf.Store(true)
	m1 := c.members[1]
	for _, r := range []response{
		do(t, "PUT", c.url(1, "/kv/"+c.keyIn(others[0], "w")), "x"),
		do(t, "GET", c.url(1, "/kv/"+c.keyIn(others[1], "r")), ""),
	} {
		require.Equal(t, http.StatusServiceUnavailable, r.status, r.body)
		require.Equal(t, "timeout", errorCode(t, r), r.body)
	}
	require.Eventually(t, func() bool {
		left := -1
		m1.call(t.Context(), func() {
			left = len(m1.waiting)
			for _, sh := range others {
				s := m1.shards[sh-1]
				left += len(s.waiters) + len(s.reads) + len(s.forwarded) + len(s.atIndex)
			}
		})
		return left == 0
	}, 5*time.Second, 10*time.Millisecond, "the timed-out requests are forgotten, and no shard is left waiting")
}
