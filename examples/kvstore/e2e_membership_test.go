package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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
	m4 := &e2eMember{c: c, id: 4, peer: e2eFreeAddr(t), client: e2eFreeAddr(t), logPath: filepath.Join(dir, "member-4.log")}
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
	var mu sync.Mutex
	live := []int{1, 2, 3}
	acked := map[string]string{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				id := live[(n+w)%len(live)]
				mu.Unlock()
				key, value := fmt.Sprintf("load-%d-%d", w, n), fmt.Sprint(n)
				status, _, err := c.request(http.MethodPut, id, e2eKeyPath(key), value)
				if err == nil && status == http.StatusOK {
					mu.Lock()
					acked[key] = value
					mu.Unlock()
				} else {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	setLive := func(ids ...int) {
		mu.Lock()
		live = ids
		mu.Unlock()
	}
	time.Sleep(300 * time.Millisecond)

	// Add member 4 as a learner, start it, let it catch up.
	body := fmt.Sprintf(`{"id":4,"peer":%q,"learner":true}`, m4.peer)
	if status, b := memRequest(t, c, http.MethodPost, 2, "/cluster/members", body); status != http.StatusCreated {
		t.Fatalf("adding member 4: %d %s", status, b)
	}
	if err := m4.start(); err != nil {
		t.Fatal(err)
	}
	leader := c.mustLeader()
	target, _ := c.status(leader)
	memWaitApplied(t, c, []int{4}, target.Commit)
	setLive(1, 2, 3, 4)

	// Promote it.
	if status, b := memRequest(t, c, http.MethodPost, 4, "/cluster/members/4/promote", ""); status != http.StatusOK || !strings.Contains(string(b), `"voters":[1,2,3,4]`) {
		t.Fatalf("promoting member 4: %d %s", status, b)
	}

	// Remove a follower, then stop it.
	leader = c.mustLeader()
	follower := 1
	for follower == leader || follower == 4 {
		follower++
	}
	if status, b := memRequest(t, c, http.MethodDelete, leader, fmt.Sprint("/cluster/members/", follower), ""); status != http.StatusOK {
		t.Fatalf("removing member %d: %d %s", follower, status, b)
	}
	remaining := slices.DeleteFunc([]int{1, 2, 3, 4}, func(id int) bool { return id == follower })
	setLive(remaining...)
	if err := c.member(follower).stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)

	// Remove the leader through itself; it steps down once the removal
	// is applied, and the others elect a new one.
	if status, b := memRequest(t, c, http.MethodDelete, leader, fmt.Sprint("/cluster/members/", leader), ""); status != http.StatusOK {
		t.Fatalf("removing the leader %d: %d %s", leader, status, b)
	}
	remaining = slices.DeleteFunc(remaining, func(id int) bool { return id == leader })
	setLive(remaining...)
	newLeader := memWaitLeader(t, c, remaining)
	if err := c.member(leader).stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()

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
	if len(acked) < 20 {
		t.Fatalf("only %d writes acknowledged: the load hardly ran", len(acked))
	}
	for _, id := range remaining {
		for key, want := range acked {
			if got, ok := c.mustGet(id, key, true); !ok || got != want {
				t.Fatalf("acknowledged write %s=%s reads %q, %v on member %d", key, want, got, ok, id)
			}
		}
	}
	status, b := memRequest(t, c, http.MethodGet, remaining[0], "/cluster", "")
	var cl struct {
		Members []struct {
			ID   int    `json:"id"`
			Role string `json:"role"`
		} `json:"members"`
	}
	if status != http.StatusOK || json.Unmarshal(b, &cl) != nil {
		t.Fatalf("GET /cluster: %d %s", status, b)
	}
	var voters []int
	for _, m := range cl.Members {
		if m.Role == "voter" {
			voters = append(voters, m.ID)
		}
	}
	if !slices.Equal(voters, remaining) {
		t.Fatalf("voters %v, want %v", voters, remaining)
	}
	t.Logf("%d writes acknowledged; removed %d (follower) and %d (leader); new leader %d", len(acked), follower, leader, newLeader)
}

// memRequest sends one request, retrying on 503 and transport errors for
// up to 10 s (membership changes answer once applied).
func memRequest(t *testing.T, c *e2eCluster, method string, id int, path, body string) (int, []byte) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, err := http.NewRequest(method, c.member(id).url(path), strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.client.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
				return resp.StatusCode, b
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("%s %s via member %d: %v", method, path, id, err)
		}
		time.Sleep(100 * time.Millisecond)
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
