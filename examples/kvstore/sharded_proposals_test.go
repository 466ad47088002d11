package main

import (
	"context"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
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

// TestShardedConfChangeWaitsWhereItWent: a membership change proposed to a
// shard waits where the library says it went, as a write does — at the
// (index, term) its leader appended it at, or under the ForwardID of a
// follower's forwarded proposal — so that an entry replaced after a leader
// change is answered proposal_lost at once (answerAt) rather than at the
// request timeout. Each is answered when the change applies.
func TestShardedConfChangeWaitsWhereItWent(t *testing.T) {
	c := newShardedTestCluster(t, 3, 2, 0)
	const sh = 1
	lead := c.waitLeaders()[sh-1]
	follower := lead%3 + 1
	peer := c.reservePeer(4)
	for i, id := range []uint64{lead, follower} {
		m := c.members[id]
		s := m.shards[sh-1]
		w := m.newWaiter()
		reqID := m.newRequestID()
		typ := []pb.ConfChangeType{pb.ConfChangeAddLearnerNode, pb.ConfChangeAddNode}[i]
		cc := pb.ConfChange{Type: typ, NodeID: 4, Context: mustJSON(confContext{RequestID: reqID, Peer: peer})}
		var atIndex, forwarded, byID bool
		require.True(t, m.call(context.Background(), func() {
			m.proposeConfChange(s, w, reqID, cc)
			for _, ws := range s.atIndex {
				atIndex = atIndex || slices.Contains(ws, w)
			}
			for _, fw := range s.forwarded {
				forwarded = forwarded || fw == w
			}
			byID = s.waiters[reqID] == w
		}))
		if id == lead {
			require.True(t, atIndex && !forwarded && !byID, "on the leader the change waits at its index (at index %v, forwarded %v, by id %v)", atIndex, forwarded, byID)
		} else {
			require.True(t, forwarded && !atIndex && !byID, "on a follower the change waits under its ForwardID (at index %v, forwarded %v, by id %v)", atIndex, forwarded, byID)
		}
		require.NoError(t, m.wait(context.Background(), w), "member %d's change applies", id)
	}
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
