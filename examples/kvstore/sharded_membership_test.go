package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
)

// shardedTestCluster runs sharded members in this process, on loopback
// ports, their logs in memory or, with dir, on disk.
type shardedTestCluster struct {
	t        *testing.T
	shards   int
	peers    map[uint64]string
	reserved map[uint64]net.Listener
	members  map[uint64]*shardedMember
	// snapshotEvery is every member's SnapshotEvery.
	snapshotEvery uint64
	// dir, if set, holds the members' data directories (else their logs
	// are in memory).
	dir string
	// tick is the members' TickInterval (default 5ms).
	tick time.Duration
	// tweak, if set, adjusts each member's configuration.
	tweak func(*memberConfig)
}

func newShardedTestCluster(t *testing.T, n, shards int, snapshotEvery uint64) *shardedTestCluster {
	return newShardedTestClusterIn(t, "", n, shards, snapshotEvery)
}

// newShardedTestClusterIn is newShardedTestCluster with the members' data
// directories in dir.
func newShardedTestClusterIn(t *testing.T, dir string, n, shards int, snapshotEvery uint64) *shardedTestCluster {
	return newShardedTestClusterWith(t, &shardedTestCluster{shards: shards, snapshotEvery: snapshotEvery, dir: dir}, n)
}

// newShardedTestClusterWith starts n members of c (its shards,
// snapshotEvery, dir and tick set).
func newShardedTestClusterWith(t *testing.T, c *shardedTestCluster, n int) *shardedTestCluster {
	c.t, c.peers, c.reserved, c.members = t, map[uint64]string{}, map[uint64]net.Listener{}, map[uint64]*shardedMember{}
	t.Cleanup(func() {
		for _, m := range c.members {
			m.stop()
		}
		for _, l := range c.reserved {
			l.Close()
		}
	})
	for i := uint64(1); i <= uint64(n); i++ {
		c.reservePeer(i)
	}
	for i := uint64(1); i <= uint64(n); i++ {
		c.start(i, false)
	}
	c.waitLeaders()
	return c
}

func (c *shardedTestCluster) reservePeer(id uint64) string {
	c.t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(c.t, err)
	c.reserved[id] = l
	c.peers[id] = l.Addr().String()
	return c.peers[id]
}

func (c *shardedTestCluster) start(id uint64, join bool) *shardedMember {
	c.t.Helper()
	level := slog.LevelWarn
	if os.Getenv("KVSTORE_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	cfg := memberConfig{
		ID: id, InMemory: c.dir == "", Shards: c.shards, Join: join,
		ListenClient: "127.0.0.1:0", ListenPeer: c.peers[id], InitialCluster: maps.Clone(c.peers),
		SnapshotEvery: c.snapshotEvery, MaxKeySize: 64, MaxValueSize: 1024,
		RequestTimeout: 2 * time.Second, TickInterval: cmp.Or(c.tick, 5*time.Millisecond),
		Logger:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
		peerListener: c.reserved[id],
	}
	delete(c.reserved, id)
	if c.dir != "" {
		cfg.DataDir = filepath.Join(c.dir, fmt.Sprint("member-", id))
	}
	if c.tweak != nil {
		c.tweak(&cfg)
	}
	m, err := startShardedMember(cfg)
	require.NoError(c.t, err)
	c.members[id] = m
	return m
}

// restart stops member id and starts it again from its data directory,
// its peer port reserved again meanwhile.
func (c *shardedTestCluster) restart(id uint64) *shardedMember {
	c.t.Helper()
	c.members[id].stop()
	delete(c.members, id)
	l, err := net.Listen("tcp", c.peers[id])
	require.NoError(c.t, err)
	c.reserved[id] = l
	return c.start(id, false)
}

func (c *shardedTestCluster) url(id uint64, path string) string {
	return "http://" + c.members[id].clientL.Addr().String() + path
}

// waitLeaders waits until every running member names the same leader, one
// of them, for every shard, and returns the leaders.
func (c *shardedTestCluster) waitLeaders() []uint64 {
	c.t.Helper()
	var leads []uint64
	require.Eventually(c.t, func() bool {
		leads = make([]uint64, c.shards)
		for _, m := range c.members {
			st := m.status.Load()
			for i, g := range st.Groups {
				if g.Lead == 0 || (leads[i] != 0 && leads[i] != g.Lead) || c.members[g.Lead] == nil {
					return false
				}
				leads[i] = g.Lead
			}
		}
		return true
	}, 10*time.Second, 5*time.Millisecond, "every shard elects a leader every member knows")
	return leads
}

// keyIn returns a key of shard sh.
func (c *shardedTestCluster) keyIn(sh uint64, prefix string) string {
	for i := 0; ; i++ {
		if k := fmt.Sprint(prefix, i); shardOf(k, c.shards) == sh {
			return k
		}
	}
}

// report decodes a shard report.
func decodeReport(t *testing.T, r response) shardReport {
	t.Helper()
	var rep shardReport
	require.NoError(t, json.Unmarshal([]byte(r.body), &rep), r.body)
	return rep
}

// results are a report's results by shard.
func results(rep shardReport) map[uint64]string {
	out := map[uint64]string{}
	for _, o := range rep.Results {
		out[o.Shard] = o.Result
	}
	return out
}

// confOf is shard sh's configuration on member id.
func (c *shardedTestCluster) confOf(id, sh uint64) pb.ConfState {
	return c.members[id].shards[sh-1].sm.confState()
}

// waitConf waits until every shard's configuration satisfies ok on every
// running member.
func (c *shardedTestCluster) waitConf(what string, ok func(pb.ConfState) bool) {
	c.t.Helper()
	require.Eventually(c.t, func() bool {
		for id := range c.members {
			for sh := uint64(1); sh <= uint64(c.shards); sh++ {
				if !ok(c.confOf(id, sh)) {
					return false
				}
			}
		}
		return true
	}, 5*time.Second, 5*time.Millisecond, "every member applies it in every shard: %s", what)
}

// transportPeers are the members id's transport sends to.
func (c *shardedTestCluster) transportPeers(id uint64) []uint64 {
	tr := c.members[id].tr
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Sorted(maps.Keys(tr.peers))
}

// proposeTo proposes cc to shard sh only, through member via, and waits
// until every running member applied it.
func (c *shardedTestCluster) proposeTo(via, sh uint64, cc pb.ConfChange, peer string, applied func(pb.ConfState) bool) {
	c.t.Helper()
	cc.Context = mustJSON(confContext{RequestID: "test", Peer: peer})
	m := c.members[via]
	require.Eventually(c.t, func() bool {
		var err error
		ok := m.call(c.t.Context(), func() { err = m.host.ProposeConfChange(sh, cc) })
		return ok && err == nil
	}, 5*time.Second, 10*time.Millisecond)
	require.Eventually(c.t, func() bool {
		for id := range c.members {
			if !applied(c.confOf(id, sh)) {
				return false
			}
		}
		return true
	}, 5*time.Second, 5*time.Millisecond, "shard %d applies %v everywhere", sh, cc)
}

// TestShardedMembershipAddPromoteRemove adds a fourth member to a 3-member
// cluster of 4 shards (a learner in every shard, started with --join: it
// learns every shard from its leader, through snapshots where the leader
// compacted its log), promotes it once it caught up (refused with 409 while
// it does not run), and removes an original member, which then refuses
// writes and linearizable reads with 410; every write reads back on every
// remaining member.
func TestShardedMembershipAddPromoteRemove(t *testing.T) {
	const shards = 4
	c := newShardedTestCluster(t, 3, shards, 20)
	var keys []string
	for i := range 120 {
		k := fmt.Sprint("before-", i)
		put(t, c.url(uint64(1+i%3), "/kv/"+k), "v-"+k)
		keys = append(keys, k)
	}

	c.reservePeer(4)
	r := do(t, "POST", c.url(2, "/cluster/members"), fmt.Sprintf(`{"id":4,"peer":%q,"learner":true}`, c.peers[4]))
	require.Equal(t, 201, r.status, r.body)
	rep := decodeReport(t, r)
	require.Equal(t, shardReport{Shards: shards, Applied: shards}, shardReport{Shards: rep.Shards, Applied: rep.Applied}, r.body)
	for sh := uint64(1); sh <= shards; sh++ {
		require.Equal(t, []uint64{4}, c.confOf(2, sh).Learners, "shard %d", sh)
	}
	// Member 2 answered once it applied the change in every shard; member
	// 3 applies it when it learns the commit index, soon after.
	require.Eventually(t, func() bool { return slices.Contains(c.transportPeers(3), 4) }, 5*time.Second, 5*time.Millisecond,
		"a member learns the new member's address from the conf change")

	// Not running: not ready in any shard.
	c.waitConf("member 4 is a learner", func(cs pb.ConfState) bool { return slices.Contains(cs.Learners, 4) })
	r = do(t, "POST", c.url(1, "/cluster/members/4/promote"), "")
	require.Equal(t, 409, r.status, r.body)
	rep = decodeReport(t, r)
	require.Equal(t, "learner_not_ready", rep.Code)
	require.Equal(t, shards, rep.Failed, r.body)
	require.NotNil(t, rep.Failures[0].Lag, r.body)
	for sh := uint64(1); sh <= shards; sh++ {
		require.Equal(t, []uint64{1, 2, 3}, c.confOf(1, sh).Voters, "nothing promoted in shard %d", sh)
	}

	m4 := c.start(4, true)
	require.Eventually(t, func() bool {
		st := m4.status.Load()
		for _, g := range st.Groups {
			if g.Lead == 0 || g.Applied < c.members[g.Lead].shards[g.Shard-1].sm.appliedIndex() {
				return false
			}
		}
		return true
	}, 10*time.Second, 5*time.Millisecond, "the learner catches up with every shard's leader")
	snapshots := 0
	for _, s := range m4.shards {
		if s.lastSnap > 0 {
			snapshots++
		}
	}
	require.Positive(t, snapshots, "some shard's leader compacted its log: the learner got a snapshot")

	r = do(t, "POST", c.url(4, "/cluster/members/4/promote"), "")
	require.Equal(t, 200, r.status, r.body)
	require.Equal(t, shards, decodeReport(t, r).Applied, r.body)
	// Sent again through another member, which may not have applied the
	// promotion yet: it catches up first.
	r = do(t, "POST", c.url(3, "/cluster/members/4/promote"), "")
	require.Equal(t, 200, r.status, r.body)
	require.Equal(t, shards, decodeReport(t, r).Already, "promoting again changes nothing: %s", r.body)
	for sh := uint64(1); sh <= shards; sh++ {
		require.Equal(t, []uint64{1, 2, 3, 4}, c.confOf(3, sh).Voters, "shard %d", sh)
	}

	r = do(t, "DELETE", c.url(2, "/cluster/members/1"), "")
	require.Equal(t, 200, r.status, r.body)
	require.Equal(t, shards, decodeReport(t, r).Applied, r.body)
	require.Eventually(t, func() bool { return c.members[1].removed.Load() }, 5*time.Second, 5*time.Millisecond,
		"member 1 applies its removal from every shard")
	for _, req := range []struct{ method, path, body string }{
		{"PUT", "/kv/after", "x"},
		{"GET", "/kv/" + keys[0], ""},
		{"DELETE", "/cluster/members/2", ""},
		{"POST", "/cluster/leader", ""},
	} {
		r := do(t, req.method, c.url(1, req.path), req.body)
		require.Equal(t, 410, r.status, "%s %s: %s", req.method, req.path, r.body)
		require.Equal(t, "member_removed", errorCode(t, r))
	}
	r = do(t, "GET", c.url(1, "/kv/"+keys[0]+"?consistency=stale"), "")
	require.Equal(t, 200, r.status, r.body)
	for id := uint64(2); id <= 4; id++ {
		// The transport keeps a removed member's address: the shard
		// leaders answer its campaigns (had it missed its removal) through
		// it.
		require.Contains(t, c.transportPeers(id), uint64(1), "member %d's transport keeps member 1", id)
	}
	c.members[1].stop()
	delete(c.members, 1)
	// Gone from every shard, member 1 gets no node-level heartbeats: the
	// transport would count each as a failed send.
	time.Sleep(50 * time.Millisecond)
	failures := testutil.ToFloat64(c.members[2].metrics.peerSendFailures)
	time.Sleep(30 * 5 * time.Millisecond)
	require.Equal(t, failures, testutil.ToFloat64(c.members[2].metrics.peerSendFailures), "sends failed after member 1 was removed and stopped")

	for i := range 40 {
		k := fmt.Sprint("after-", i)
		put(t, c.url(uint64(2+i%3), "/kv/"+k), "v-"+k)
		keys = append(keys, k)
	}
	for id := uint64(2); id <= 4; id++ {
		for _, k := range keys {
			// Right after member 1 stopped, a shard it led may have no
			// leader yet: a read is answered 503, and retried.
			require.Equal(t, "v-"+k, get(t, c.url(id, "/kv/"+k)).body, "%s on member %d", k, id)
		}
	}
}

// TestShardedMembershipCompletesAPartialChange: a change some shards have
// already (as after a request that failed on the others) is applied to
// the others and reported "already" by those; the transport knows a member
// from the first shard that adds it until the last one removes it.
func TestShardedMembershipCompletesAPartialChange(t *testing.T) {
	const shards = 3
	c := newShardedTestCluster(t, 3, shards, 0)
	addr := c.reservePeer(4)
	isLearner := func(cs pb.ConfState) bool { return slices.Contains(cs.Learners, 4) }
	c.proposeTo(1, 2, pb.ConfChange{Type: pb.ConfChangeAddLearnerNode, NodeID: 4}, addr, isLearner)
	for id := uint64(1); id <= 3; id++ {
		require.Contains(t, c.transportPeers(id), uint64(4), "member %d: one shard adds member 4", id)
	}

	r := do(t, "POST", c.url(3, "/cluster/members"), fmt.Sprintf(`{"id":4,"peer":%q,"learner":true}`, addr))
	require.Equal(t, 201, r.status, r.body)
	require.Equal(t, map[uint64]string{1: resultApplied, 2: resultAlready, 3: resultApplied}, results(decodeReport(t, r)), r.body)
	r = do(t, "POST", c.url(1, "/cluster/members"), fmt.Sprintf(`{"id":4,"peer":%q,"learner":true}`, addr))
	require.Equal(t, 200, r.status, r.body)
	require.Equal(t, shards, decodeReport(t, r).Already, r.body)
	r = do(t, "POST", c.url(1, "/cluster/members"), fmt.Sprintf(`{"id":4,"peer":%q}`, addr))
	require.Equal(t, 409, r.status, "adding a learner as a voter would skip the promotion's checks: %s", r.body)
	require.Equal(t, "member_is_learner", errorCode(t, r))

	// Removed from two shards of three: still a member, still reached.
	gone := func(cs pb.ConfState) bool { return !inConfig(4, cs) }
	c.proposeTo(2, 1, pb.ConfChange{Type: pb.ConfChangeRemoveNode, NodeID: 4}, "", gone)
	c.proposeTo(2, 3, pb.ConfChange{Type: pb.ConfChangeRemoveNode, NodeID: 4}, "", gone)
	for id := uint64(1); id <= 3; id++ {
		require.Contains(t, c.transportPeers(id), uint64(4), "member %d: shard 2 still holds member 4", id)
	}
	r = do(t, "DELETE", c.url(2, "/cluster/members/4"), "")
	require.Equal(t, 200, r.status, r.body)
	require.Equal(t, map[uint64]string{1: resultAlready, 2: resultApplied, 3: resultAlready}, results(decodeReport(t, r)), r.body)
	require.Eventually(t, func() bool { return gone(c.confOf(2, 2)) }, 5*time.Second, 5*time.Millisecond)
	r = do(t, "DELETE", c.url(2, "/cluster/members/4"), "")
	require.Equal(t, 404, r.status, r.body)
}

// TestShardedRemovalIsPerShard: a member removed from one shard refuses
// that shard's requests with 410 and serves the others'; it is removed
// (status, metrics) once every shard removed it.
func TestShardedRemovalIsPerShard(t *testing.T) {
	const shards = 2
	c := newShardedTestCluster(t, 3, shards, 0)
	k1, k2 := c.keyIn(1, "k"), c.keyIn(2, "k")
	put(t, c.url(3, "/kv/"+k1), "1")
	c.proposeTo(1, 1, pb.ConfChange{Type: pb.ConfChangeRemoveNode, NodeID: 3}, "", func(cs pb.ConfState) bool { return !inConfig(3, cs) })

	r := do(t, "PUT", c.url(3, "/kv/"+k1), "2")
	require.Equal(t, 410, r.status, r.body)
	require.Equal(t, "member_removed", errorCode(t, r))
	r = do(t, "GET", c.url(3, "/kv/"+k1), "")
	require.Equal(t, 410, r.status, r.body)
	put(t, c.url(3, "/kv/"+k2), "2")
	require.Eventually(t, func() bool {
		st := c.members[3].status.Load()
		return st.RemovedShards == 1 && !st.Removed
	}, 5*time.Second, 5*time.Millisecond)

	r = do(t, "DELETE", c.url(1, "/cluster/members/3"), "")
	require.Equal(t, 200, r.status, r.body)
	require.Equal(t, map[uint64]string{1: resultAlready, 2: resultApplied}, results(decodeReport(t, r)), r.body)
	require.Eventually(t, func() bool { return c.members[3].status.Load().Removed }, 5*time.Second, 5*time.Millisecond)
	r = do(t, "PUT", c.url(3, "/kv/"+k2), "3")
	require.Equal(t, 410, r.status, r.body)
}

// TestShardedLeaderTransfer moves the leadership of the shards a member
// leads to another member, then, without a body, drains a member of all
// its shards.
func TestShardedLeaderTransfer(t *testing.T) {
	const shards = 6
	c := newShardedTestCluster(t, 3, shards, 0)
	leads := c.waitLeaders()
	led := map[uint64]int{}
	for _, l := range leads {
		led[l]++
	}
	r := do(t, "POST", c.url(1, "/cluster/leader"), `{"id":2}`)
	require.Equal(t, 200, r.status, r.body)
	rep := decodeReport(t, r)
	require.Equal(t, led[1], rep.Shards, r.body)
	require.Equal(t, led[1], rep.Applied, r.body)
	for _, o := range rep.Results {
		require.Equal(t, uint64(2), o.Leader, r.body)
	}
	leads = c.waitLeaders()
	require.NotContains(t, leads, uint64(1))

	r = do(t, "POST", c.url(2, "/cluster/leader"), "")
	require.Equal(t, 200, r.status, r.body)
	require.Equal(t, 0, decodeReport(t, r).Failed, r.body)
	leads = c.waitLeaders()
	require.NotContains(t, leads, uint64(2))
	require.Equal(t, raft.StateFollower.String(), c.members[2].status.Load().Groups[0].State)

	r = do(t, "POST", c.url(3, "/cluster/leader"), `{"id":9}`)
	require.Equal(t, 404, r.status, r.body)
}

// TestShardedRemovalSurvivesRestart: a member removed from every shard is
// still removed when restarted from its data directory, and one that joined
// keeps every shard it learned (it bootstraps none on a restart). A shard
// that applied the removal takes no snapshot more: the last one still
// holds the member, and the restart replays the removal from the log.
func TestShardedRemovalSurvivesRestart(t *testing.T) {
	const shards = 2
	c := newShardedTestClusterIn(t, t.TempDir(), 3, shards, 1)
	c.reservePeer(4)
	r := do(t, "POST", c.url(1, "/cluster/members"), fmt.Sprintf(`{"id":4,"peer":%q,"learner":true}`, c.peers[4]))
	require.Equal(t, 201, r.status, r.body)
	c.start(4, true)
	k1, k2 := c.keyIn(1, "k"), c.keyIn(2, "k")
	put(t, c.url(1, "/kv/"+k1), "1")
	put(t, c.url(1, "/kv/"+k2), "2")
	require.Eventually(t, func() bool {
		_, ok1, _ := c.members[4].shards[0].sm.get(k1)
		_, ok2, _ := c.members[4].shards[1].sm.get(k2)
		return ok1 && ok2
	}, 10*time.Second, 5*time.Millisecond, "the learner has both shards")

	r = do(t, "DELETE", c.url(1, "/cluster/members/3"), "")
	require.Equal(t, 200, r.status, r.body)
	require.Eventually(t, func() bool { return c.members[3].removed.Load() }, 5*time.Second, 5*time.Millisecond)
	c.restart(3)
	require.Eventually(t, func() bool { return c.members[3].removed.Load() }, 5*time.Second, 5*time.Millisecond,
		"restarted, member 3 replays its removal")
	r = do(t, "PUT", c.url(3, "/kv/"+k1), "x")
	require.Equal(t, 410, r.status, r.body)

	m4 := c.restart(4)
	for i, k := range []string{k1, k2} {
		v, ok, _ := m4.shards[i].sm.get(k)
		require.True(t, ok && string(v) == fmt.Sprint(i+1), "restarted member 4 has %s in shard %d", k, i+1)
	}
	put(t, c.url(1, "/kv/"+k2), "3")
	require.Eventually(t, func() bool { v, _, _ := m4.shards[1].sm.get(k2); return string(v) == "3" }, 5*time.Second, 5*time.Millisecond,
		"restarted member 4 follows its shards")
}

// TestShardedChangeCatchesUpFirst: a member behind a shard's log catches up
// with the shard before deciding whether it has a change already. Member 3
// stands still while the others add member 4 to one shard and promote it
// there; an addition of member 4 as a learner then sent through member 3
// finds the voter ("already") instead of proposing it again, which would
// demote it.
func TestShardedChangeCatchesUpFirst(t *testing.T) {
	const shards = 2
	c := newShardedTestCluster(t, 3, shards, 0)
	addr := c.reservePeer(4)
	sh := uint64(1)
	if leads := c.waitLeaders(); leads[0] == 3 {
		sh = 2
		if leads[1] == 3 {
			r := do(t, "POST", c.url(3, "/cluster/leader"), `{"id":1}`)
			require.Equal(t, 200, r.status, r.body)
		}
	}
	m3 := c.members[3]
	started, release := make(chan struct{}), make(chan struct{})
	require.True(t, m3.do(t.Context(), func() { close(started); <-release }))
	<-started
	released := sync.OnceFunc(func() { close(release) })
	t.Cleanup(released)

	for _, cc := range []pb.ConfChange{
		{Type: pb.ConfChangeAddLearnerNode, NodeID: 4, Context: mustJSON(confContext{RequestID: "add", Peer: addr})},
		{Type: pb.ConfChangeAddNode, NodeID: 4, Context: mustJSON(confContext{RequestID: "promote"})},
	} {
		m1 := c.members[1]
		require.Eventually(t, func() bool {
			var err error
			return m1.call(t.Context(), func() { err = m1.host.ProposeConfChange(sh, cc) }) && err == nil
		}, 5*time.Second, 10*time.Millisecond)
		want := cc.Type == pb.ConfChangeAddNode
		require.Eventually(t, func() bool {
			return slices.Contains(c.confOf(1, sh).Voters, 4) == want && slices.Contains(c.confOf(2, sh).Voters, 4) == want &&
				inConfig(4, c.confOf(1, sh)) && inConfig(4, c.confOf(2, sh))
		}, 5*time.Second, 5*time.Millisecond)
	}
	require.False(t, inConfig(4, c.confOf(3, sh)), "member 3 stood still")

	answer := make(chan response, 1)
	go func() {
		answer <- do(t, "POST", c.url(3, "/cluster/members"), fmt.Sprintf(`{"id":4,"peer":%q,"learner":true}`, addr))
	}()
	require.Eventually(t, func() bool { return len(m3.inbox) > 0 }, 5*time.Second, time.Millisecond, "the request waits for member 3's loop")
	released()
	r := <-answer
	require.Equal(t, 201, r.status, r.body)
	require.Equal(t, resultAlready, results(decodeReport(t, r))[sh], r.body)
	for id := uint64(1); id <= 3; id++ {
		require.Contains(t, c.confOf(id, sh).Voters, uint64(4), "member %d: member 4 is still a voter of shard %d", id, sh)
	}
}

// A member removed from every shard but still running gets no more
// batches from the others: its node-level heartbeats, which go on
// reaching them, do not make it their host's peer again (which would send
// it heartbeats until the end of the round, every round).
func TestRemovedMemberGetsNoHeartbeats(t *testing.T) {
	var from [4]atomic.Int64
	c := &shardedTestCluster{shards: 2}
	c.tweak = func(cfg *memberConfig) {
		if cfg.ID == 3 {
			cfg.dropBatch = func(sender uint64) bool {
				from[sender].Add(1)
				return false
			}
		}
	}
	newShardedTestClusterWith(t, c, 3)
	c.waitLeaders()
	r := do(t, "DELETE", c.url(1, "/cluster/members/3"), "")
	require.Equal(t, 200, r.status, r.body)
	require.Eventually(t, func() bool { return c.members[3].removed.Load() }, 5*time.Second, 5*time.Millisecond,
		"member 3 applies its removal from every shard")
	time.Sleep(200 * time.Millisecond) // what was on its way
	from[1].Store(0)
	from[2].Store(0)
	time.Sleep(100 * 5 * time.Millisecond) // 100 ticks, ten heartbeat intervals
	require.Zero(t, from[1].Load()+from[2].Load(), "batches to a member removed from every shard")
}
