package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
)

// testCluster runs members in this process, on loopback ports, with their
// data directories under one temporary directory.
type testCluster struct {
	t       *testing.T
	dir     string
	peers   map[uint64]string
	members map[uint64]*member
	// tweak, if set, adjusts each member's configuration.
	tweak func(*memberConfig)
	// reserved holds peer listeners opened for members not started yet:
	// a port picked and closed could be taken (by another listener, or as
	// the local port of an outgoing connection) before the member binds it.
	reserved map[uint64]net.Listener
}

// reservePeer opens member id's peer listener now, for its first start,
// and records its address among the peers.
func (c *testCluster) reservePeer(id uint64) string {
	c.t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(c.t, err)
	if c.reserved == nil {
		c.reserved = map[uint64]net.Listener{}
		c.t.Cleanup(func() {
			for _, l := range c.reserved {
				l.Close()
			}
		})
	}
	c.reserved[id] = l
	c.peers[id] = l.Addr().String()
	return c.peers[id]
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

func newTestCluster(t *testing.T, n int) *testCluster { return newTestClusterWith(t, n, nil) }

// newTestClusterWith is newTestCluster with tweak applied to every
// member's configuration.
func newTestClusterWith(t *testing.T, n int, tweak func(*memberConfig)) *testCluster {
	c := &testCluster{t: t, dir: t.TempDir(), peers: map[uint64]string{}, members: map[uint64]*member{}, tweak: tweak}
	for i := uint64(1); i <= uint64(n); i++ {
		c.reservePeer(i)
	}
	for i := uint64(1); i <= uint64(n); i++ {
		c.start(i, false)
	}
	t.Cleanup(func() {
		for _, m := range c.members {
			m.stop()
		}
	})
	c.waitLeader()
	return c
}

func (c *testCluster) config(id uint64, join bool) memberConfig {
	level := slog.LevelWarn
	if os.Getenv("KVSTORE_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	// Each member gets its own copy of the peers: tests add to c.peers
	// while members run.
	cfg := memberConfig{
		ID: id, DataDir: filepath.Join(c.dir, fmt.Sprint("member-", id)),
		ListenClient: "127.0.0.1:0", ListenPeer: c.peers[id], InitialCluster: maps.Clone(c.peers), Join: join,
		SnapshotEvery: 200, MaxKeySize: 64, MaxValueSize: 1024,
		RequestTimeout: time.Second, TickInterval: 5 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
	}
	if l, ok := c.reserved[id]; ok {
		cfg.peerListener = l
		delete(c.reserved, id)
	}
	if c.tweak != nil {
		c.tweak(&cfg)
	}
	return cfg
}

func (c *testCluster) start(id uint64, join bool) *member {
	c.t.Helper()
	m, err := startMember(c.config(id, join))
	require.NoError(c.t, err)
	c.members[id] = m
	return m
}

func (c *testCluster) stop(id uint64) {
	c.members[id].stop()
	delete(c.members, id)
}

func (c *testCluster) url(id uint64, path string) string {
	return "http://" + c.members[id].clientL.Addr().String() + path
}

// waitLeader waits until every running member knows the same leader.
func (c *testCluster) waitLeader() uint64 {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		lead := uint64(0)
		agree := true
		for _, m := range c.members {
			st := m.status.Load()
			if st.Lead == 0 || (lead != 0 && st.Lead != lead) {
				agree = false
				break
			}
			lead = st.Lead
		}
		if agree && lead != 0 {
			if _, ok := c.members[lead]; ok {
				return lead
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatal("no leader agreed on within 10s")
	return 0
}

type response struct {
	status int
	body   string
	header http.Header
}

func do(t *testing.T, method, url string, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if body == "" {
		req.ContentLength = 0
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{status: resp.StatusCode, body: string(b), header: resp.Header}
}

// put writes through url, retrying on 503 as clients should (a write
// forwarded to a leader that just went away is lost and times out; a put of
// the same value is idempotent).
func put(t *testing.T, url, value string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		r := do(t, "PUT", url, value)
		if r.status == 200 {
			return
		}
		require.Equal(t, 503, r.status, r.body)
		require.Equal(t, "1", r.header.Get("Retry-After"))
		time.Sleep(100 * time.Millisecond) // sooner than Retry-After: tests are impatient
	}
	t.Fatalf("PUT %s failed for 10s", url)
}

// get reads url, retrying on 503 (a member whose leader just went away
// answers so, and a client retries) for up to 10 s, and returns the 200
// answer.
func get(t *testing.T, url string) response {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := do(t, "GET", url, "")
		if r.status != 503 || time.Now().After(deadline) {
			require.Equal(t, 200, r.status, "GET %s: %s", url, r.body)
			return r
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// errorCode returns the "code" of a JSON error body.
func errorCode(t *testing.T, r response) string {
	t.Helper()
	var e apiError
	require.NoError(t, json.Unmarshal([]byte(r.body), &e), "body %q", r.body)
	require.NotEmpty(t, e.Error)
	return e.Code
}

// TestWriteAndReadThroughEveryMember: any member takes any request.
func TestWriteAndReadThroughEveryMember(t *testing.T) {
	c := newTestCluster(t, 3)
	for id := uint64(1); id <= 3; id++ {
		r := do(t, "PUT", c.url(id, fmt.Sprint("/kv/key-", id)), fmt.Sprint("value-", id))
		require.Equal(t, 200, r.status, r.body)
		require.Contains(t, r.body, `"created":true`)
	}
	for id := uint64(1); id <= 3; id++ {
		for k := 1; k <= 3; k++ {
			r := do(t, "GET", c.url(id, fmt.Sprint("/kv/key-", k)), "")
			require.Equal(t, 200, r.status, r.body)
			require.Equal(t, fmt.Sprint("value-", k), r.body)
		}
	}
	r := do(t, "DELETE", c.url(2, "/kv/key-1"), "")
	require.Equal(t, 200, r.status)
	require.Contains(t, r.body, `"deleted":true`)
	r = do(t, "GET", c.url(3, "/kv/key-1"), "")
	require.Equal(t, 404, r.status)
	require.Equal(t, "key_not_found", errorCode(t, r))
	// A stale read is served locally; it may lag but not for long here.
	require.Eventually(t, func() bool {
		return do(t, "GET", c.url(1, "/kv/key-1?consistency=stale"), "").status == 404
	}, 5*time.Second, 10*time.Millisecond)

	var cl struct {
		Leader  uint64          `json:"leader"`
		Members []clusterMember `json:"members"`
	}
	require.Eventually(t, func() bool {
		r = do(t, "GET", c.url(1, "/cluster"), "")
		require.NoError(t, json.Unmarshal([]byte(r.body), &cl))
		for _, m := range cl.Members {
			if m.Status == nil {
				return false
			}
		}
		return len(cl.Members) == 3
	}, 5*time.Second, 20*time.Millisecond, "every member's status in /cluster")
	require.NotZero(t, cl.Leader)
	for _, m := range cl.Members {
		require.Equal(t, "voter", m.Role)
		require.Equal(t, c.peers[m.ID], m.Peer)
		require.NotZero(t, m.Status.Commit)
	}

	r = do(t, "GET", c.url(1, "/metrics"), "")
	require.Equal(t, 200, r.status)
	require.Contains(t, r.body, "kvstore_applied_index")
	require.Contains(t, r.body, "kvstore_ready_seconds_bucket")
}

// TestBadInput: every 4xx path answers with a JSON error and changes
// nothing.
func TestBadInput(t *testing.T) {
	c := newTestCluster(t, 3)
	long := strings.Repeat("k", 65)
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"key too long", "PUT", "/kv/" + long, "v", 400, "bad_key"},
		{"value too large", "PUT", "/kv/big", strings.Repeat("v", 1025), 413, "value_too_large"},
		{"bad consistency", "GET", "/kv/a?consistency=eventual", "", 400, "bad_consistency"},
		{"unknown route", "GET", "/nothing", "", 404, "not_found"},
		{"member body not JSON", "POST", "/cluster/members", "{id: 4", 400, "bad_body"},
		{"member body unknown field", "POST", "/cluster/members", `{"id":4,"peer":"127.0.0.1:1","role":"x"}`, 400, "bad_body"},
		{"member id zero", "POST", "/cluster/members", `{"id":0,"peer":"127.0.0.1:1"}`, 400, "bad_id"},
		{"member peer not host:port", "POST", "/cluster/members", `{"id":4,"peer":"localhost"}`, 400, "bad_peer"},
		{"member exists", "POST", "/cluster/members", `{"id":2,"peer":"127.0.0.1:1"}`, 409, "member_exists"},
		{"remove unknown member", "DELETE", "/cluster/members/9", "", 404, "unknown_member"},
		{"remove bad id", "DELETE", "/cluster/members/x", "", 400, "bad_id"},
		{"promote unknown member", "POST", "/cluster/members/9/promote", "", 404, "unknown_member"},
		{"promote a voter", "POST", "/cluster/members/2/promote", "", 409, "not_a_learner"},
		{"transfer bad body", "POST", "/cluster/leader", "[]", 400, "bad_body"},
		{"transfer to unknown member", "POST", "/cluster/leader", `{"id":9}`, 404, "unknown_member"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, tt.method, c.url(1, tt.path), tt.body)
			require.Equal(t, tt.status, r.status, r.body)
			require.Equal(t, tt.code, errorCode(t, r))
		})
	}
	st := c.members[1].status.Load()
	r := do(t, "PUT", c.url(1, "/kv/after"), "ok")
	require.Equal(t, 200, r.status, "the cluster still serves")
	var out struct{ Index uint64 }
	require.NoError(t, json.Unmarshal([]byte(r.body), &out))
	require.Greater(t, out.Index, st.Commit)
	r = do(t, "GET", c.url(2, "/kv/big"), "")
	require.Equal(t, 404, r.status, "the refused write was not applied")
}

// TestPeerGarbageIsDisconnected: whatever arrives on the peer port that is
// not the peer protocol closes that connection, and the cluster serves on.
func TestPeerGarbageIsDisconnected(t *testing.T) {
	c := newTestCluster(t, 3)
	frame := func(b []byte) []byte {
		var buf bytes.Buffer
		writeFrame(&buf, b)
		return buf.Bytes()
	}
	hello := frame(mustJSON(hello{Magic: helloMagic, From: 2, Client: "127.0.0.1:1"}))
	inputs := map[string][]byte{
		"http request":          []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		"huge frame length":     {0xff, 0xff, 0xff, 0xff, 1, 2, 3},
		"wrong magic":           frame([]byte(`{"magic":"other","from":2}`)),
		"message not protobuf":  append(append([]byte{}, hello...), frame([]byte{0xff, 0xff, 0xff})...),
		"message for elsewhere": append(append([]byte{}, hello...), frame(mustMarshal(t, 3))...),
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			conn, err := net.Dial("tcp", c.peers[1])
			require.NoError(t, err)
			defer conn.Close()
			_, err = conn.Write(in)
			require.NoError(t, err)
			conn.SetReadDeadline(time.Now().Add(15 * time.Second))
			_, err = conn.Read(make([]byte, 1))
			require.ErrorIs(t, err, io.EOF, "the member closes the connection")
		})
	}
	put(t, c.url(1, "/kv/still"), "serving")
	require.Greater(t, testutil.ToFloat64(c.members[1].metrics.peerBadFrames), 0.0)
}

// mustMarshal is a well-formed heartbeat from member 2 to member `to`.
func mustMarshal(t *testing.T, to uint64) []byte {
	m := pb.Message{Type: pb.MsgHeartbeat, From: 2, To: to, Term: 1}
	b, err := m.Marshal()
	require.NoError(t, err)
	return b
}

// TestRestartResumesFromDisk: a stopped member restarts from its data
// directory (log and snapshot) and catches up.
func TestRestartResumesFromDisk(t *testing.T) {
	c := newTestCluster(t, 3)
	lead := c.waitLeader()
	down := lead%3 + 1   // a follower
	for i := range 300 { // past SnapshotEvery: snapshots and compaction
		put(t, c.url(lead, fmt.Sprint("/kv/k", i%50)), fmt.Sprint("v", i))
	}
	c.stop(down)
	for i := 300; i < 650; i++ { // the stopped member misses these: it needs a snapshot
		put(t, c.url(lead, fmt.Sprint("/kv/k", i%50)), fmt.Sprint("v", i))
	}
	c.start(down, false)
	want := c.members[lead].status.Load().Commit
	require.Eventually(t, func() bool { return c.members[down].sm.appliedIndex() >= want }, 10*time.Second, 10*time.Millisecond)
	for k := range 50 {
		v, ok, _ := c.members[down].sm.get(fmt.Sprint("k", k))
		require.True(t, ok)
		require.Equal(t, fmt.Sprint("v", 600+k), string(v))
	}
	require.Greater(t, testutil.ToFloat64(c.members[lead].metrics.snapshots), 0.0)
}

// TestMembershipThroughTheAPI adds a fourth member as a learner, promotes
// it, removes an old member and then the leader, with writes in between.
func TestMembershipThroughTheAPI(t *testing.T) {
	c := newTestCluster(t, 3)
	write := func(from uint64, k int) {
		t.Helper()
		put(t, c.url(from, fmt.Sprint("/kv/m", k)), fmt.Sprint("v", k))
	}
	// Load all along: a writer through whichever members are running,
	// recording the writes acknowledged.
	var mu sync.Mutex
	urls := []string{c.url(1, ""), c.url(2, ""), c.url(3, "")}
	var acked []int
	stopLoad := make(chan struct{})
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		client := &http.Client{Timeout: 2 * time.Second}
		for n := 0; ; n++ {
			select {
			case <-stopLoad:
				return
			default:
			}
			mu.Lock()
			u := urls[n%len(urls)]
			mu.Unlock()
			req, _ := http.NewRequest("PUT", fmt.Sprint(u, "/kv/load-", n), strings.NewReader(fmt.Sprint(n)))
			resp, err := client.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			if err != nil || resp.StatusCode != 200 {
				// A member on its way out, or no leader for a moment:
				// back off rather than spin on a refused connection.
				time.Sleep(10 * time.Millisecond)
				continue
			}
			mu.Lock()
			acked = append(acked, n)
			mu.Unlock()
		}
	}()
	stopLoader := sync.OnceFunc(func() { close(stopLoad); <-loadDone })
	t.Cleanup(stopLoader) // also when a check below fails
	ackedLen := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	setURLs := func() {
		next := make([]string, 0, len(c.members))
		for id := range c.members {
			next = append(next, c.url(id, ""))
		}
		mu.Lock()
		defer mu.Unlock()
		urls = next
	}
	// retire stops a removed member, out of the load's reach first.
	retire := func(id uint64) {
		m := c.members[id]
		delete(c.members, id)
		setURLs()
		m.stop()
	}
	for k := range 20 {
		write(1, k)
	}
	c.reservePeer(4)
	r := do(t, "POST", c.url(2, "/cluster/members"), fmt.Sprintf(`{"id":4,"peer":%q,"learner":true}`, c.peers[4]))
	require.Equal(t, 201, r.status, r.body)
	require.Contains(t, r.body, `"learners":[4]`)
	c.start(4, true)
	setURLs()
	for k := 20; k < 40; k++ {
		write(3, k)
	}
	require.Eventually(t, func() bool {
		v, ok, _ := c.members[4].sm.get("m39")
		return ok && string(v) == "v39"
	}, 10*time.Second, 10*time.Millisecond, "the learner catches up")

	r = do(t, "POST", c.url(4, "/cluster/members/4/promote"), "")
	require.Equal(t, 200, r.status, r.body)
	require.Contains(t, r.body, `"voters":[1,2,3,4]`)

	r = do(t, "DELETE", c.url(1, "/cluster/members/2"), "")
	require.Equal(t, 200, r.status, r.body)
	retire(2)
	write(4, 40)

	lead := c.waitLeader()
	r = do(t, "DELETE", c.url(lead, fmt.Sprint("/cluster/members/", lead)), "")
	require.Equal(t, 200, r.status, r.body)
	retire(lead)
	newLead := c.waitLeader()
	require.NotEqual(t, lead, newLead)
	for id := range c.members {
		write(id, 41)
	}
	r = do(t, "GET", c.url(newLead, "/kv/m40"), "")
	require.Equal(t, "v40", r.body)

	require.Eventually(t, func() bool { return ackedLen() > 10 }, 10*time.Second, 10*time.Millisecond, "the load runs")
	stopLoader()
	for id := range c.members {
		for _, n := range acked {
			r := do(t, "GET", c.url(id, fmt.Sprint("/kv/load-", n)), "")
			require.Equal(t, 200, r.status, "acknowledged write %d missing on member %d: %s", n, id, r.body)
			require.Equal(t, fmt.Sprint(n), r.body)
		}
	}
}

// TestTransferLeadership moves leadership through the API.
func TestTransferLeadership(t *testing.T) {
	c := newTestCluster(t, 3)
	lead := c.waitLeader()
	to := lead%3 + 1
	r := do(t, "POST", c.url(lead%3+1, "/cluster/leader"), fmt.Sprintf(`{"id":%d}`, to))
	require.Equal(t, 200, r.status, r.body)
	require.Equal(t, to, c.waitLeader())
	r = do(t, "POST", c.url(1, "/cluster/leader"), "")
	require.Equal(t, 200, r.status, r.body)
	require.NotEqual(t, to, c.waitLeader())
}
