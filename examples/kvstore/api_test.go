package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	pb "github.com/raftcore/raft/raftpb"
	"github.com/stretchr/testify/require"
)

// TestKeysAreBytes: keys and values round-trip byte for byte, bytes that
// are not UTF-8 included, and two keys that differ only there are two
// keys.
func TestKeysAreBytes(t *testing.T) {
	c := newTestCluster(t, 3)
	value := "\xff\x00v\xe9"
	r := do(t, "PUT", c.url(1, "/kv/caf%E9"), value)
	require.Equal(t, 200, r.status, r.body)
	for id := uint64(1); id <= 3; id++ {
		r = do(t, "GET", c.url(id, "/kv/caf%E9"), "")
		require.Equal(t, 200, r.status, r.body)
		require.Equal(t, value, r.body)
	}
	r = do(t, "PUT", c.url(2, "/kv/k%E8"), "first")
	require.Equal(t, 200, r.status, r.body)
	require.Contains(t, r.body, `"created":true`)
	r = do(t, "PUT", c.url(2, "/kv/k%E9"), "second")
	require.Equal(t, 200, r.status, r.body)
	require.Contains(t, r.body, `"created":true`, "k\\xe9 is not k\\xe8")
	require.Equal(t, "first", do(t, "GET", c.url(3, "/kv/k%E8"), "").body)
	require.Equal(t, "second", do(t, "GET", c.url(3, "/kv/k%E9"), "").body)
	_, ok, _ := c.members[3].sm.get("k\uFFFD")
	require.False(t, ok, "no key was replaced by U+FFFD")

	// An error that names a key quotes it without losing bytes.
	r = do(t, "GET", c.url(1, "/kv/k%EA"), "")
	require.Equal(t, 404, r.status)
	var e apiError
	require.NoError(t, json.Unmarshal([]byte(r.body), &e))
	require.Equal(t, "key_not_found", e.Code)
	require.Contains(t, e.Error, `"k\xea"`)
}

// TestMethodNotAllowed: a known path with a method it does not take
// answers 405 with an Allow header and a JSON error.
func TestMethodNotAllowed(t *testing.T) {
	c := newTestCluster(t, 1)
	tests := []struct{ name, method, path, allow string }{
		{"post a key", "POST", "/kv/a", "DELETE, GET, HEAD, PUT"},
		{"patch a key with slashes", "PATCH", "/kv/a/b", "DELETE, GET, HEAD, PUT"},
		{"put status", "PUT", "/status", "GET, HEAD"},
		{"delete cluster", "DELETE", "/cluster", "GET, HEAD"},
		{"get members", "GET", "/cluster/members", "POST"},
		{"post a member", "POST", "/cluster/members/2", "DELETE"},
		{"get promote", "GET", "/cluster/members/2/promote", "POST"},
		{"get leader", "GET", "/cluster/leader", "POST"},
		{"post metrics", "POST", "/metrics", "GET, HEAD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, tt.method, c.url(1, tt.path), "")
			require.Equal(t, 405, r.status, r.body)
			require.Equal(t, tt.allow, r.header.Get("Allow"))
			require.Equal(t, "application/json", r.header.Get("Content-Type"))
			require.Equal(t, "method_not_allowed", errorCode(t, r))
		})
	}
}

// TestKeysWithSlashes: everything after /kv/ is the key, percent-decoded
// once; no path cleaning, no redirects.
func TestKeysWithSlashes(t *testing.T) {
	c := newTestCluster(t, 1)
	tests := []struct{ name, path, key string }{
		{"raw slashes", "/kv/a/b/c", "a/b/c"},
		{"escaped slashes", "/kv/d%2Fe", "d/e"},
		{"double slash and dots", "/kv/x//y/../z/.", "x//y/../z/."},
		{"trailing slash", "/kv/dir/", "dir/"},
		{"decoded once", "/kv/p%252Fq", "p%2Fq"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, "PUT", c.url(1, tt.path), tt.name)
			require.Equal(t, 200, r.status, r.body)
			v, ok, _ := c.members[1].sm.get(tt.key)
			require.True(t, ok, "key %q", tt.key)
			require.Equal(t, tt.name, string(v))
			r = do(t, "GET", c.url(1, tt.path), "")
			require.Equal(t, 200, r.status, r.body)
			require.Equal(t, tt.name, r.body)
		})
	}
	require.Equal(t, "raw slashes", do(t, "GET", c.url(1, "/kv/a%2Fb%2Fc"), "").body)
	r := do(t, "DELETE", c.url(1, "/kv/a/b/c"), "")
	require.Equal(t, 200, r.status, r.body)
	require.Contains(t, r.body, `"deleted":true`)
}

// TestEveryErrorIsJSON: empty keys, unknown or unclean paths, and requests
// Go's HTTP server refuses before any handler runs all answer JSON.
func TestEveryErrorIsJSON(t *testing.T) {
	c := newTestCluster(t, 1)
	tests := []struct {
		name, method, path string
		status             int
		code               string
	}{
		{"put empty key", "PUT", "/kv/", 400, "bad_key"},
		{"get empty key", "GET", "/kv/", 400, "bad_key"},
		{"delete empty key", "DELETE", "/kv/", 400, "bad_key"},
		{"no key at all", "GET", "/kv", 404, "not_found"},
		{"unclean path", "GET", "/cluster/", 404, "not_found"},
		{"double slash", "GET", "//status", 404, "not_found"},
		{"promote without id", "POST", "/cluster/members//promote", 404, "not_found"},
		{"below promote", "POST", "/cluster/members/2/promote/x", 404, "not_found"},
		{"bad escape", "PUT", "/kv/%zz", 400, "bad_request"},
		{"bad escape elsewhere", "GET", "/status%", 400, "bad_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A raw request: Go's client would refuse the bad escapes.
			conn, err := net.Dial("tcp", c.members[1].clientL.Addr().String())
			require.NoError(t, err)
			defer conn.Close()
			fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nv", tt.method, tt.path)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			require.NoError(t, err)
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, tt.status, resp.StatusCode, "%s", b)
			require.Equal(t, "application/json", resp.Header.Get("Content-Type"), "%s", b)
			require.Equal(t, tt.code, errorCode(t, response{status: resp.StatusCode, body: string(b)}))
		})
	}
	put(t, c.url(1, "/kv/still"), "serving")
}

// TestMembershipListsAreArrays: voters and learners are JSON arrays,
// empty ones included, in every membership answer and in GET /cluster.
func TestMembershipListsAreArrays(t *testing.T) {
	c := newTestCluster(t, 3)
	type lists struct {
		Voters   *[]uint64 `json:"voters"`
		Learners *[]uint64 `json:"learners"`
	}
	check := func(r response, voters, learners []uint64) {
		t.Helper()
		var l lists
		require.NoError(t, json.Unmarshal([]byte(r.body), &l), r.body)
		require.NotNil(t, l.Voters, r.body)
		require.NotNil(t, l.Learners, r.body)
		require.Equal(t, voters, *l.Voters, r.body)
		require.Equal(t, learners, *l.Learners, r.body)
	}
	check(do(t, "GET", c.url(1, "/cluster"), ""), []uint64{1, 2, 3}, []uint64{})
	r := do(t, "POST", c.url(1, "/cluster/members"), fmt.Sprintf(`{"id":4,"peer":%q,"learner":true}`, freeAddr(t)))
	require.Equal(t, 201, r.status, r.body)
	check(r, []uint64{1, 2, 3}, []uint64{4})
	check(do(t, "GET", c.url(1, "/cluster"), ""), []uint64{1, 2, 3}, []uint64{4})
	r = do(t, "DELETE", c.url(1, "/cluster/members/4"), "")
	require.Equal(t, 200, r.status, r.body)
	check(r, []uint64{1, 2, 3}, []uint64{})
	check(do(t, "GET", c.url(1, "/cluster"), ""), []uint64{1, 2, 3}, []uint64{})
}

// TestJSONServerErrorsLeavesHandlersAlone: a handler's own text/plain
// error, even one that closes the connection, is not taken for one the
// server wrote by itself.
func TestJSONServerErrorsLeavesHandlersAlone(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		http.Error(w, "400 Bad Request", http.StatusBadRequest)
	})}
	go srv.Serve(jsonServerErrors{l})
	defer srv.Close()
	r := do(t, "GET", "http://"+l.Addr().String()+"/", "")
	require.Equal(t, 400, r.status)
	require.Equal(t, "text/plain; charset=utf-8", r.header.Get("Content-Type"))
	require.Equal(t, "400 Bad Request\n", r.body)
}

// TestRemovedMemberRefuses: once a member has applied its own removal it
// refuses writes, linearizable reads and membership requests at once with
// 410, proposes and forwards nothing, says so in /status, and still serves
// stale reads of what it had.
// TestRemovedMemberLearnsItsRemovalLate: a member that never heard that
// its removal committed (here every message telling it is dropped until
// the leader has applied the removal and stopped sending to it) learns it
// when it campaigns: the leader answers with the log up to its commit
// index, through the transport, which kept the removed member's address.
func TestRemovedMemberLearnsItsRemovalLate(t *testing.T) {
	var holdFor, heldAt atomic.Uint64 // the member whose commit index is held, and at what
	c := newTestClusterWith(t, 3, func(cfg *memberConfig) {
		id := cfg.ID
		cfg.dropIncoming = func(m pb.Message) bool {
			return holdFor.Load() == id && (m.Type == pb.MsgApp || m.Type == pb.MsgHeartbeat) && m.Commit > heldAt.Load()
		}
	})
	lead := c.waitLeader()
	gone := lead%3 + 1
	put(t, c.url(lead, "/kv/before"), "1")
	require.Eventually(t, func() bool { return c.members[gone].status.Load().Commit == c.members[lead].status.Load().Commit }, 5*time.Second, 5*time.Millisecond)
	heldAt.Store(c.members[gone].status.Load().Commit)
	holdFor.Store(gone)
	r := do(t, "DELETE", c.url(lead, fmt.Sprint("/cluster/members/", gone)), "")
	require.Equal(t, 200, r.status, r.body)
	// Hold until it stopped hearing from the leader and campaigns: what
	// the leader sent it before (the last heartbeats, the batches the
	// transport had queued) has arrived, and was held.
	require.Eventually(t, func() bool { return c.members[gone].status.Load().State == "StatePreCandidate" }, 10*time.Second, time.Millisecond)
	cs, _ := c.members[gone].sm.members()
	require.Contains(t, cs.Voters, gone, "the removed member has not applied its removal")
	holdFor.Store(0)
	require.Eventually(t, func() bool {
		cs, _ := c.members[gone].sm.members()
		return !slices.Contains(cs.Voters, gone)
	}, 10*time.Second, 5*time.Millisecond, "member %d learns of its removal", gone)
	require.True(t, c.members[gone].removed.Load())
}

func TestRemovedMemberRefuses(t *testing.T) {
	c := newTestCluster(t, 3)
	lead := c.waitLeader()
	gone := lead%3 + 1
	put(t, c.url(lead, "/kv/before"), "1")
	r := do(t, "DELETE", c.url(lead, fmt.Sprint("/cluster/members/", gone)), "")
	require.Equal(t, 200, r.status, r.body)
	require.Eventually(t, func() bool {
		cs, _ := c.members[gone].sm.members()
		return !slices.Contains(cs.Voters, gone)
	}, 5*time.Second, 5*time.Millisecond, "member %d applies its removal", gone)

	proposals := testutil.ToFloat64(c.members[gone].metrics.proposals)
	reads := testutil.ToFloat64(c.members[gone].metrics.readIndex)
	tests := []struct{ name, method, path, body string }{
		{"put", "PUT", "/kv/after", "x"},
		{"delete", "DELETE", "/kv/before", ""},
		{"linearizable get", "GET", "/kv/before", ""},
		{"add member", "POST", "/cluster/members", fmt.Sprintf(`{"id":5,"peer":%q}`, freeAddr(t))},
		{"remove member", "DELETE", fmt.Sprint("/cluster/members/", lead), ""},
		{"transfer leadership", "POST", "/cluster/leader", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			r := do(t, tt.method, c.url(gone, tt.path), tt.body)
			require.Equal(t, 410, r.status, r.body)
			require.Equal(t, "member_removed", errorCode(t, r))
			require.Less(t, time.Since(start), 500*time.Millisecond, "refused at once")
		})
	}
	r = do(t, "GET", c.url(gone, "/kv/before?consistency=stale"), "")
	require.Equal(t, 200, r.status, r.body)
	require.Equal(t, "1", r.body)
	var st struct{ Removed bool }
	require.NoError(t, json.Unmarshal([]byte(do(t, "GET", c.url(gone, "/status"), "").body), &st))
	require.True(t, st.Removed)
	require.Equal(t, proposals, testutil.ToFloat64(c.members[gone].metrics.proposals), "nothing proposed")
	require.Equal(t, reads, testutil.ToFloat64(c.members[gone].metrics.readIndex), "no read index asked")
	require.Equal(t, 1.0, testutil.ToFloat64(c.members[gone].metrics.removed))

	// Nothing was applied anywhere: a write after the refused ones is,
	// and they are not.
	put(t, c.url(lead, "/kv/marker"), "m")
	for id, m := range c.members {
		if id == gone {
			continue
		}
		require.Eventually(t, func() bool { _, ok, _ := m.sm.get("marker"); return ok }, 5*time.Second, 5*time.Millisecond)
		_, ok, _ := m.sm.get("after")
		require.False(t, ok, "member %d applied a write sent to the removed member", id)
		_, ok, _ = m.sm.get("before")
		require.True(t, ok, "member %d applied a delete sent to the removed member", id)
		cs, _ := m.sm.members()
		require.Equal(t, []uint64{}, append([]uint64{}, cs.Learners...))
		require.NotContains(t, cs.Voters, uint64(5))
	}

	// Restarted from its data directory, it is still removed.
	c.stop(gone)
	c.start(gone, false)
	require.Eventually(t, func() bool { return c.members[gone].removed.Load() }, 5*time.Second, 5*time.Millisecond)
	r = do(t, "PUT", c.url(gone, "/kv/after"), "x")
	require.Equal(t, 410, r.status, r.body)
}

// TestPromoteOnlyACaughtUpLearner: a learner the leader does not replicate
// to (its address is dead) is refused promotion with 409, through the
// leader or a follower; once it runs and has caught up, it is promoted.
func TestPromoteOnlyACaughtUpLearner(t *testing.T) {
	c := newTestCluster(t, 3)
	lead := c.waitLeader()
	follower := lead%3 + 1
	for i := range 5 {
		put(t, c.url(lead, fmt.Sprint("/kv/k", i)), "v")
	}
	c.reservePeer(4) // nobody reads there until member 4 starts
	r := do(t, "POST", c.url(lead, "/cluster/members"), fmt.Sprintf(`{"id":4,"peer":%q,"learner":true}`, c.peers[4]))
	require.Equal(t, 201, r.status, r.body)
	for _, via := range []uint64{lead, follower} {
		r = do(t, "POST", c.url(via, "/cluster/members/4/promote"), "")
		require.Equal(t, 409, r.status, "via member %d: %s", via, r.body)
		var body struct {
			apiError
			learnerLag
		}
		require.NoError(t, json.Unmarshal([]byte(r.body), &body))
		require.Equal(t, "learner_not_ready", body.Code)
		require.Zero(t, body.Match, r.body)
		require.GreaterOrEqual(t, body.LeaderCommit, uint64(8), r.body)
		require.GreaterOrEqual(t, body.LeaderLast, body.LeaderCommit, r.body)
		require.Equal(t, uint64(promoteMaxLag), body.MaxLag)
		require.Contains(t, body.Error, "member 4")
	}
	cs, _ := c.members[lead].sm.members()
	require.Equal(t, []uint64{4}, cs.Learners, "still a learner")

	c.start(4, true)
	require.Eventually(t, func() bool {
		st := c.members[c.waitLeader()].status.Load()
		pr := st.Progress[4]
		return pr.State == "StateReplicate" && pr.RecentActive && pr.Match >= st.Commit
	}, 10*time.Second, 5*time.Millisecond, "the learner catches up")
	r = do(t, "POST", c.url(follower, "/cluster/members/4/promote"), "")
	require.Equal(t, 200, r.status, r.body)
	require.Contains(t, r.body, `"voters":[1,2,3,4]`)
	require.Contains(t, r.body, `"learners":[]`)
}

func TestLearnerLagReady(t *testing.T) {
	lead := func(match uint64, state string, active bool) *memberStatus {
		return &memberStatus{ID: 1, State: "StateLeader", Commit: 500, Progress: map[uint64]progressState{
			1: {Match: 510, State: "StateReplicate", RecentActive: true},
			4: {Match: match, State: state, RecentActive: active},
		}}
	}
	tests := []struct {
		name  string
		lead  *memberStatus
		ready bool
	}{
		{"caught up", lead(500, "StateReplicate", true), true},
		{"at most behind", lead(500-promoteMaxLag, "StateReplicate", true), true},
		{"one more behind", lead(500-promoteMaxLag-1, "StateReplicate", true), false},
		{"not heard from", lead(500, "StateReplicate", false), false},
		{"probing", lead(500, "StateProbe", true), false},
		{"sent a snapshot", lead(0, "StateSnapshot", true), false},
		{"unknown to the leader", &memberStatus{ID: 1, Commit: 500, Progress: map[uint64]progressState{1: {Match: 510}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lag := learnerLagOf(tt.lead, 4)
			require.Equal(t, tt.ready, lag.ready(), "%+v", lag)
			require.Equal(t, uint64(510), lag.LeaderLast)
		})
	}
}
