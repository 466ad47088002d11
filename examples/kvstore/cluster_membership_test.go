package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
)

// A membership request retried to a member behind the log is decided on a
// caught-up configuration: "add learner 4" re-sent after 4's promotion
// must not demote it. While the member gets no appends it cannot catch up
// and proposes nothing; once it does, it answers member_exists.
func TestMembershipChangeCatchesUpFirst(t *testing.T) {
	var lagging atomic.Uint64 // the member that gets no appends
	c := newTestClusterWith(t, 3, func(cfg *memberConfig) {
		id := cfg.ID
		cfg.dropIncoming = func(m pb.Message) bool {
			return lagging.Load() == id && (m.Type == pb.MsgApp || m.Type == pb.MsgSnap)
		}
	})
	lead := c.waitLeader()
	b := lead%3 + 1
	lagging.Store(b)
	c.reservePeer(4)
	add := fmt.Sprintf(`{"id":4,"peer":%q,"learner":true}`, c.peers[4])
	r := do(t, "POST", c.url(lead, "/cluster/members"), add)
	require.Equal(t, 201, r.status, r.body)
	c.start(4, true)
	require.Eventually(t, func() bool {
		return c.members[4].sm.appliedIndex() >= c.members[lead].sm.appliedIndex()
	}, 5*time.Second, 10*time.Millisecond)
	r = do(t, "POST", c.url(lead, "/cluster/members/4/promote"), "")
	require.Equal(t, 200, r.status, r.body)

	r = do(t, "POST", c.url(b, "/cluster/members"), add)
	require.Equal(t, 503, r.status, r.body)
	require.Contains(t, c.members[lead].sm.confState().Voters, uint64(4), "member 4 was demoted")

	lagging.Store(0)
	r = do(t, "POST", c.url(b, "/cluster/members"), add)
	require.Equal(t, 409, r.status, r.body)
	require.Equal(t, "member_exists", errorCode(t, r))
	require.Contains(t, c.members[lead].sm.confState().Voters, uint64(4), "member 4 was demoted")
}

// A member removed, then added again under the same id with a fresh data
// directory, replays its first addition and its removal, then its
// re-addition: it serves again (it was answering 410 for good).
func TestReAddedMemberServes(t *testing.T) {
	c := newTestCluster(t, 3)
	c.reservePeer(4)
	r := do(t, "POST", c.url(1, "/cluster/members"), fmt.Sprintf(`{"id":4,"peer":%q}`, c.peers[4]))
	require.Equal(t, 201, r.status, r.body)
	c.start(4, true)
	put(t, c.url(4, "/kv/a"), "1")
	r = do(t, "DELETE", c.url(1, "/cluster/members/4"), "")
	require.Equal(t, 200, r.status, r.body)
	c.stop(4)
	require.NoError(t, os.RemoveAll(filepath.Join(c.dir, "member-4")))
	c.reservePeer(4)
	r = do(t, "POST", c.url(1, "/cluster/members"), fmt.Sprintf(`{"id":4,"peer":%q}`, c.peers[4]))
	require.Equal(t, 201, r.status, r.body)
	m4 := c.start(4, true)
	want := c.members[1].status.Load().Commit
	require.Eventually(t, func() bool { return m4.sm.appliedIndex() >= want }, 5*time.Second, 10*time.Millisecond)
	put(t, c.url(4, "/kv/b"), "2")
	require.False(t, m4.removed.Load())
}

// The same with --shards.
func TestShardedReAddedMemberServes(t *testing.T) {
	c := newShardedTestCluster(t, 3, 2, 1000)
	c.reservePeer(4)
	r := do(t, "POST", c.url(1, "/cluster/members"), fmt.Sprintf(`{"id":4,"peer":%q}`, c.peers[4]))
	require.Equal(t, 201, r.status, r.body)
	c.start(4, true)
	put(t, c.url(4, "/kv/"+c.keyIn(1, "k")), "1")
	r = do(t, "DELETE", c.url(1, "/cluster/members/4"), "")
	require.Equal(t, 200, r.status, r.body)
	c.members[4].stop()
	delete(c.members, 4)
	c.reservePeer(4)
	r = do(t, "POST", c.url(1, "/cluster/members"), fmt.Sprintf(`{"id":4,"peer":%q}`, c.peers[4]))
	require.Equal(t, 201, r.status, r.body)
	m4 := c.start(4, true)
	c.waitConf("member 4 is back", func(cs pb.ConfState) bool { return slices.Contains(cs.Voters, 4) })
	put(t, c.url(4, "/kv/"+c.keyIn(1, "k")), "2")
	put(t, c.url(4, "/kv/"+c.keyIn(2, "k")), "2")
	require.False(t, m4.removed.Load())
}

// A linearizable read whose read index this member never applies (it gets
// no appends) times out, and its waiter goes with it: retried reads do not
// pile up.
func TestReadWaitingForTheAppliedIndexExpires(t *testing.T) {
	var lagging atomic.Uint64
	c := newTestClusterWith(t, 3, func(cfg *memberConfig) {
		id := cfg.ID
		cfg.dropIncoming = func(m pb.Message) bool {
			return lagging.Load() == id && (m.Type == pb.MsgApp || m.Type == pb.MsgSnap)
		}
	})
	lead := c.waitLeader()
	b := lead%3 + 1
	lagging.Store(b)
	put(t, c.url(lead, "/kv/a"), "1")
	for range 2 {
		r := do(t, "GET", c.url(b, "/kv/a"), "")
		require.Equal(t, 503, r.status, r.body)
	}
	m := c.members[b]
	require.Eventually(t, func() bool {
		n := -1
		m.call(t.Context(), func() { n = len(m.indexed) })
		return n == 0
	}, 2*time.Second, 10*time.Millisecond, "the reads that timed out still wait for the applied index")
}
