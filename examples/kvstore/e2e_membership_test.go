package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestE2EMembershipProcesses changes the membership of a cluster of real
// processes under a steady write load: a fourth member joins as a learner,
// catches up and is promoted, a follower is removed, then the leader is
// removed. Every acknowledged write must be on every remaining member.
// Garbage on a member's peer port closes that connection only.
func TestE2EMembershipProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	c := newE2ECluster(t, 3)
	c.startAll()
	c.mustLeader()

	// The fourth member: prepared like the others, started with --join.
	dir := t.TempDir()
	m4 := &e2eMember{c: c, id: 4, peer: c.freeAddr(), client: c.freeAddr(), logPath: filepath.Join(dir, "member-4.log")}
	var initial []string
	for _, m := range c.members {
		initial = append(initial, fmt.Sprintf("%d=%s", m.id, m.peer))
	}
	initial = append(initial, fmt.Sprintf("4=%s", m4.peer))
	m4.args = []string{
		"--id", "4", "--join", "--data-dir", filepath.Join(dir, "member-4"),
		"--listen-client", m4.client, "--listen-peer", m4.peer,
		"--initial-cluster", strings.Join(initial, ","),
		"--tick", "10ms", "--request-timeout", "1s", "--snapshot-every", "300", "--log-level", "info",
	}

	// In the list before the load starts (its goroutines read it); not
	// started yet.
	c.members = append(c.members, m4)

	// The members the load may use, and what it got acknowledged.
	var targets e2eTargets
	targets.set(1, 2, 3)
	var acked e2eAckedWrites
	stopLoad := c.writeLoad(t, 3, &targets, &acked)
	acked.waitMore(t, "before the first change", 10)

	// Add member 4 as a learner, start it, let it catch up.
	memChange(t, c, http.MethodPost, 2, "/cluster/members", fmt.Sprintf(`{"id":4,"peer":%q,"learner":true}`, m4.peer), http.StatusCreated,
		func(v memView) bool { return slices.Contains(v.role("learner"), 4) })
	if err := m4.start(); err != nil {
		t.Fatal(err)
	}
	leader := c.mustLeader()
	memWaitApplied(t, c, []int{4}, memStatus(t, c, leader).Commit)
	targets.set(1, 2, 3, 4)

	// Promote it.
	memChange(t, c, http.MethodPost, 4, "/cluster/members/4/promote", "", http.StatusOK,
		func(v memView) bool { return slices.Equal(v.role("voter"), []int{1, 2, 3, 4}) })

	// Remove a follower, then stop it.
	leader = c.mustLeader()
	follower := 1
	for follower == leader || follower == 4 {
		follower++
	}
	remaining := slices.DeleteFunc([]int{1, 2, 3, 4}, func(id int) bool { return id == follower })
	memChange(t, c, http.MethodDelete, leader, fmt.Sprint("/cluster/members/", follower), "", http.StatusOK,
		func(v memView) bool { return slices.Equal(v.role("voter"), remaining) })
	targets.set(remaining...)
	if err := c.member(follower).stop(); err != nil {
		t.Fatal(err)
	}
	acked.waitMore(t, fmt.Sprintf("after removing member %d", follower), 10)

	// Remove the leader through itself; it steps down once the removal
	// is applied, and the others elect a new one.
	remaining = slices.DeleteFunc(remaining, func(id int) bool { return id == leader })
	memChange(t, c, http.MethodDelete, leader, fmt.Sprint("/cluster/members/", leader), "", http.StatusOK,
		func(v memView) bool { return slices.Equal(v.role("voter"), remaining) })
	targets.set(remaining...)
	newLeader := memWaitLeader(t, c, remaining)
	if err := c.member(leader).stop(); err != nil {
		t.Fatal(err)
	}
	acked.waitMore(t, fmt.Sprintf("after removing the leader %d", leader), 10)
	stopLoad()

	// Garbage on a peer port: the member closes that connection and
	// serves on.
	for _, garbage := range []string{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "\xff\xff\xff\xff\x01\x02"} {
		conn, err := net.Dial("tcp", c.member(newLeader).peer)
		if err != nil {
			t.Fatal(err)
		}
		conn.Write([]byte(garbage))
		conn.SetReadDeadline(time.Now().Add(15 * time.Second))
		if _, err := conn.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("garbage %q: want the member to close the connection, got %v", garbage, err)
		}
		conn.Close()
	}
	index := c.mustPut(newLeader, "after-garbage", "still serving")

	// Every acknowledged write, on every remaining member.
	memWaitApplied(t, c, remaining, index)
	written := acked.snapshot()
	if len(written) < 30 {
		t.Fatalf("only %d writes acknowledged: the load hardly ran", len(written))
	}
	for _, id := range remaining {
		for key, want := range written {
			if got, ok := c.mustGet(id, key, true); !ok || got != want {
				t.Fatalf("acknowledged write %s=%s reads %q, %v on member %d", key, want, got, ok, id)
			}
		}
	}
	if voters := memCluster(t, c, remaining[0]).role("voter"); !slices.Equal(voters, remaining) {
		t.Fatalf("voters %v, want %v", voters, remaining)
	}
	t.Logf("%d writes acknowledged; removed %d (follower) and %d (leader); new leader %d", len(written), follower, leader, newLeader)
}

// e2eTargets is the set of members a load sends to. set publishes a copy
// of ids that nobody writes again, so the caller may go on changing its
// slice (slices.DeleteFunc, append) while the load's goroutines pick from
// the published one.
// writeLoad starts workers that write keys of their own through the
// members targets picks, recording in acked the writes acknowledged; the
// returned function stops them (also called at the test's end).
func (c *e2eCluster) writeLoad(t *testing.T, workers int, targets *e2eTargets, acked *e2eAckedWrites) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-done:
					return
				default:
				}
				id := targets.pick(n + w)
				key, value := fmt.Sprintf("load-%d-%d", w, n), fmt.Sprint(n)
				status, _, err := c.request(http.MethodPut, id, e2eKeyPath(key), value)
				if err == nil && status == http.StatusOK {
					acked.add(key, value)
				} else {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	stop = sync.OnceFunc(func() { close(done); wg.Wait() })
	t.Cleanup(stop)
	return stop
}

type e2eTargets struct {
	ids atomic.Pointer[[]int]
}

func (s *e2eTargets) set(ids ...int) {
	published := slices.Clone(ids)
	s.ids.Store(&published)
}

// pick returns the n-th member of the set, cyclically.
func (s *e2eTargets) pick(n int) int {
	ids := *s.ids.Load()
	return ids[n%len(ids)]
}

// TestE2ETargetsPublishesACopy: what the load picks from does not change
// when the caller edits the slice it published, as slices.DeleteFunc does
// in place (it shifts the kept elements and zeroes the tail).
func TestE2ETargetsPublishesACopy(t *testing.T) {
	var s e2eTargets
	ids := []int{1, 2, 3, 4}
	s.set(ids...)
	ids = slices.DeleteFunc(ids, func(id int) bool { return id == 2 })
	s2 := e2eTargets{}
	s2.set(ids...)
	ids[0] = 9
	for n, want := range []int{1, 2, 3, 4} {
		if got := s.pick(n); got != want {
			t.Fatalf("pick(%d) = %d after the caller edited its slice, want %d", n, got, want)
		}
	}
	for n, want := range []int{1, 3, 4} {
		if got := s2.pick(n); got != want {
			t.Fatalf("pick(%d) = %d after the caller edited its slice, want %d", n, got, want)
		}
	}
}

// TestE2EMemChangeUnknownOutcome: a change answered 503 that was applied
// all the same is refused when sent again (409); memChange then finds it
// in the member's view instead of failing the test.
func TestE2EMemChangeUnknownOutcome(t *testing.T) {
	var mu sync.Mutex
	added, posts := false, 0
	mux := http.NewServeMux()
	mux.HandleFunc("POST /cluster/members", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		posts++
		if added {
			writeError(w, http.StatusConflict, "member_exists", "member 4 is already in the cluster")
			return
		}
		// Applied, but after the request timed out.
		added = true
		writeError(w, http.StatusServiceUnavailable, "timeout", "request timed out")
	})
	mux.HandleFunc("GET /cluster", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		members := []map[string]any{{"id": 1, "role": "voter"}}
		if added {
			members = append(members, map[string]any{"id": 4, "role": "learner"})
		}
		writeJSON(w, http.StatusOK, map[string]any{"leader": 1, "members": members})
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := &e2eCluster{t: t, client: srv.Client()}
	c.members = []*e2eMember{{c: c, id: 1, client: strings.TrimPrefix(srv.URL, "http://")}}

	memChange(t, c, http.MethodPost, 1, "/cluster/members", `{"id":4,"peer":"127.0.0.1:1","learner":true}`, http.StatusCreated,
		func(v memView) bool { return slices.Contains(v.role("learner"), 4) })
	if posts != 2 {
		t.Fatalf("%d POSTs, want 2 (the first answered 503, the repeat 409)", posts)
	}
}

// e2eAckedWrites records the writes a load got acknowledged; any
// goroutine may use it.
type e2eAckedWrites struct {
	mu     sync.Mutex
	writes map[string]string
}

func (a *e2eAckedWrites) add(key, value string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.writes == nil {
		a.writes = map[string]string{}
	}
	a.writes[key] = value
}

func (a *e2eAckedWrites) len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.writes)
}

// snapshot returns a copy of the acknowledged writes.
func (a *e2eAckedWrites) snapshot() map[string]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.writes)
}

// waitMore waits until n more writes than now are acknowledged: the load
// got through in the cluster's current shape.
func (a *e2eAckedWrites) waitMore(t *testing.T, when string, n int) {
	t.Helper()
	from := a.len()
	deadline := time.Now().Add(20 * time.Second)
	for a.len() < from+n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d writes acknowledged in 20s, want %d", when, a.len()-from, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// memRequest sends one request, retrying on 503 and transport errors for
// up to 10 s. Use it for requests that may be repeated (reads); changes
// go through memChange.
func memRequest(t *testing.T, c *e2eCluster, method string, id int, path, body string) (int, []byte) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, b, err := memDo(c, method, id, path, body)
		if err == nil && (status != http.StatusServiceUnavailable || time.Now().After(deadline)) {
			return status, b
		}
		if err != nil && time.Now().After(deadline) {
			t.Fatalf("%s %s via member %d: %v", method, path, id, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// memDo sends one request with body to member id.
func memDo(c *e2eCluster, method string, id int, path, body string) (int, []byte, error) {
	req, err := http.NewRequest(method, c.member(id).url(path), strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// memChange asks member via for a membership change and waits until it
// answers want, which it does once the change is applied there: done must
// then hold for via's view of the cluster. A 503 or
// a lost connection leaves the outcome unknown (the change may still be
// applied), so the request is sent again; when a repeat is refused
// because the change is already in (409, 404), done, given via's view of
// the cluster, decides whether an earlier attempt made it.
func memChange(t *testing.T, c *e2eCluster, method string, via int, path, body string, want int, done func(memView) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	unknown := false
	for {
		status, b, err := memDo(c, method, via, path, body)
		switch {
		case err == nil && status == want:
			if v := memCluster(t, c, via); !done(v) {
				t.Fatalf("%s %s via member %d: answered %d %s, but the member's view is %+v", method, path, via, status, b, v)
			}
			return
		case err != nil || status == http.StatusServiceUnavailable:
			unknown = true
		case unknown && (status == http.StatusConflict || status == http.StatusNotFound):
			v := memCluster(t, c, via)
			if done(v) {
				return
			}
			t.Fatalf("%s %s via member %d: %d %s after an unknown outcome, and the change is not in: %+v", method, path, via, status, b, v)
		default:
			t.Fatalf("%s %s via member %d: %d %s", method, path, via, status, b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %s via member %d: still unavailable after 20s: %d %s %v", method, path, via, status, b, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// memView is GET /cluster: the configuration a member has applied.
type memView struct {
	Leader  int `json:"leader"`
	Members []struct {
		ID   int    `json:"id"`
		Role string `json:"role"`
	} `json:"members"`
}

// role returns the ids of the members in role ("voter", "learner"), in
// increasing order.
func (v memView) role(role string) []int {
	var ids []int
	for _, m := range v.Members {
		if m.Role == role {
			ids = append(ids, m.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// memCluster returns member id's GET /cluster.
func memCluster(t *testing.T, c *e2eCluster, id int) memView {
	t.Helper()
	status, b := memRequest(t, c, http.MethodGet, id, "/cluster", "")
	var v memView
	if status != http.StatusOK || json.Unmarshal(b, &v) != nil {
		t.Fatalf("GET /cluster via member %d: %d %s", id, status, b)
	}
	return v
}

// memStatus returns member id's /status, retrying for up to 10 s.
func memStatus(t *testing.T, c *e2eCluster, id int) e2eStatus {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := c.status(id)
		if err == nil {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /status of member %d: %v", id, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// memWaitApplied waits until the members ids have applied index.
func memWaitApplied(t *testing.T, c *e2eCluster, ids []int, index uint64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, id := range ids {
		for {
			st, err := c.status(id)
			if err == nil && st.Applied >= index {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("member %d has not applied %d: %+v %v", id, index, st, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// memWaitLeader waits until every member of ids names the same leader,
// one of ids.
func memWaitLeader(t *testing.T, c *e2eCluster, ids []int) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		lead := uint64(0)
		agree := true
		for _, id := range ids {
			st, err := c.status(id)
			if err != nil || st.Leader == 0 || (lead != 0 && st.Leader != lead) {
				agree = false
				break
			}
			lead = st.Leader
		}
		if agree && slices.Contains(ids, int(lead)) {
			return int(lead)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("members %v agree on no leader", ids)
	return 0
}
