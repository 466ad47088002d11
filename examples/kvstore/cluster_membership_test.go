package main

import (
	"fmt"
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
