package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// End-to-end tests of --shards: three members hosting eight Raft groups
// each, as processes.

const e2eShards = 8

// shardStatus is GET /status?shards=all of a sharded member.
func (c *e2eCluster) shardStatus(id int) (shardedStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.member(id).url("/status?shards=all"), nil)
	if err != nil {
		return shardedStatus{}, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return shardedStatus{}, err
	}
	defer resp.Body.Close()
	var st shardedStatus
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /status: %s", resp.Status)
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	return st, err
}

// waitShardLeaders waits until every shard has a leader that says it leads
// and that a majority of all members name; it returns the leaders.
func (c *e2eCluster) waitShardLeaders(timeout time.Duration) []uint64 {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		votes := make([]map[uint64]int, e2eShards)
		leads := make([]uint64, e2eShards)
		for i := range votes {
			votes[i] = map[uint64]int{}
		}
		for _, m := range c.members {
			if !m.running() {
				continue
			}
			st, err := c.shardStatus(m.id)
			if err != nil || len(st.Groups) != e2eShards {
				continue
			}
			for i, g := range st.Groups {
				if g.Lead != 0 {
					votes[i][g.Lead]++
				}
				if g.State == "StateLeader" {
					leads[i] = st.ID
				}
			}
		}
		ok := true
		for i := range leads {
			ok = ok && leads[i] != 0 && votes[i][leads[i]] > len(c.members)/2
		}
		if ok {
			return leads
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("not every shard has a leader after %v: leaders %v, votes %v", timeout, leads, votes)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitShardsConverged waits until, in every shard, every member has
// applied its commit index and the same index as the others, twice in a
// row; it returns the applied index of each shard.
func (c *e2eCluster) waitShardsConverged(timeout time.Duration) []uint64 {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var last, prev []uint64
	for {
		prev, last = last, nil
		same := true
		for _, m := range c.members {
			st, err := c.shardStatus(m.id)
			if err != nil || len(st.Groups) != e2eShards {
				same = false
				break
			}
			if last == nil {
				for _, g := range st.Groups {
					last = append(last, g.Applied)
				}
			}
			for i, g := range st.Groups {
				same = same && g.Applied == g.Commit && g.Applied == last[i]
			}
		}
		if same && slices.Equal(prev, last) {
			return last
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("shards do not converge within %v: %v", timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// readBack reads every key of want through member id, linearizably, a few
// at a time (retrying 503s for up to 10s each), and returns the first
// that is missing or holds another value.
func (c *e2eCluster) readBack(id int, want map[string]string) error {
	keys := slices.Sorted(maps.Keys(want))
	var (
		next  atomic.Int64
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(keys) {
					return
				}
				k := keys[i]
				var err error
				for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
					status, body, rerr := c.request(http.MethodGet, id, e2eKeyPath(k), "")
					if rerr == nil && status == http.StatusOK && string(body) == want[k] {
						err = nil
						break
					}
					err = fmt.Errorf("acknowledged write %s=%q (shard %d) reads %d %q (%v)", k, want[k], shardOf(k, e2eShards), status, body, rerr)
					if (rerr == nil && status != http.StatusServiceUnavailable) || time.Now().After(deadline) {
						break
					}
				}
				if err != nil {
					mu.Lock()
					first = cmpOr(first, err)
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// TestE2EShards writes many keys through every member of a 3-member
// cluster of 8 shards and reads each back through every member: keys must
// land in the same shard whichever member routes them, and every shard
// must take writes. Idle, the shards quiesce; GET /cluster and /metrics
// show the shards.
func TestE2EShards(t *testing.T) {
	c := newE2ECluster(t, 3, "--shards", fmt.Sprint(e2eShards))
	c.startAll()
	leads := c.waitShardLeaders(10 * time.Second)
	t.Logf("shard leaders %v", leads)

	const keys = 120
	perShard := map[uint64]int{}
	for i := range keys {
		key, via := fmt.Sprintf("key-%d", i), 1+i%len(c.members)
		status, body, err := c.request(http.MethodPut, via, e2eKeyPath(key), "v-"+key)
		for retry := 0; (err != nil || status == http.StatusServiceUnavailable) && retry < 100; retry++ {
			time.Sleep(50 * time.Millisecond)
			status, body, err = c.request(http.MethodPut, via, e2eKeyPath(key), "v-"+key)
		}
		if err != nil || status != http.StatusOK {
			t.Fatalf("PUT %s via member %d: %d %s %v", key, via, status, body, err)
		}
		var r struct{ Shard uint64 }
		if err := json.Unmarshal(body, &r); err != nil || r.Shard < 1 || r.Shard > e2eShards {
			t.Fatalf("PUT %s: reply %s names no shard", key, body)
		}
		perShard[r.Shard]++
	}
	if len(perShard) != e2eShards {
		t.Fatalf("writes reached shards %v; want all %d", perShard, e2eShards)
	}
	t.Logf("writes per shard: %v", perShard)
	for _, m := range c.members {
		for i := range keys {
			key := fmt.Sprintf("key-%d", i)
			if got, ok := c.mustGet(m.id, key, false); !ok || got != "v-"+key {
				t.Fatalf("GET %s via member %d = %q, %v; want %q", key, m.id, got, ok, "v-"+key)
			}
		}
	}
	// Every shard's log grew on every member beyond its bootstrap (three
	// conf changes and a leader's empty entry).
	applied := c.waitShardsConverged(10 * time.Second)
	for i, a := range applied {
		if a <= 4 {
			t.Errorf("shard %d applied only %d entries: it took no writes", i+1, a)
		}
	}

	// Idle, every group quiesces on every member.
	deadline := time.Now().Add(10 * time.Second)
	for _, m := range c.members {
		for {
			st, err := c.shardStatus(m.id)
			if err == nil && st.Quiesced == e2eShards {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("member %d: %d of %d shards quiesced 10s after the writes (%v)", m.id, st.Quiesced, e2eShards, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	status, body, err := c.request(http.MethodGet, 1, "/metrics", "")
	if err != nil || status != http.StatusOK || !strings.Contains(string(body), fmt.Sprintf("kvstore_quiesced_groups %d", e2eShards)) {
		t.Errorf("GET /metrics: %d %v; want kvstore_quiesced_groups %d", status, err, e2eShards)
	}
	status, body, err = c.request(http.MethodGet, 2, "/cluster", "")
	var cl struct {
		Shards  int `json:"shards"`
		Members []struct {
			ID      uint64 `json:"id"`
			Leading int    `json:"leading"`
		} `json:"members"`
		ShardLeaders []struct {
			Shard, Leader uint64
		} `json:"shard_leaders"`
	}
	if err != nil || status != http.StatusOK || json.Unmarshal(body, &cl) != nil {
		t.Fatalf("GET /cluster: %d %s %v", status, body, err)
	}
	led := 0
	for _, m := range cl.Members {
		led += m.Leading
	}
	if cl.Shards != e2eShards || len(cl.ShardLeaders) != e2eShards || led != e2eShards || len(cl.Members) != 3 {
		t.Errorf("GET /cluster = %s; want %d shards, each with a leader", body, e2eShards)
	}
	c.stopAll()
}

// shardChange sends a membership request made of every shard to member
// via until every shard has the change (applied now or already): a
// request that failed on some shards (503: no leader, a timeout) is sent
// again, and completes them. A 409 is retried too while retry409 (a
// learner catching up). It returns the last report.
func shardChange(t *testing.T, c *e2eCluster, method string, via int, path, body string, retry409 bool) shardReport {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, b, err := memDo(c, method, via, path, body)
		var rep shardReport
		if err == nil {
			if jerr := json.Unmarshal(b, &rep); jerr != nil {
				t.Fatalf("%s %s via member %d: %d %s: %v", method, path, via, status, b, jerr)
			}
			if (status == http.StatusOK || status == http.StatusCreated) && rep.Applied+rep.Already == e2eShards {
				return rep
			}
			if status != http.StatusServiceUnavailable && (status != http.StatusConflict || !retry409) {
				t.Fatalf("%s %s via member %d: %d %s", method, path, via, status, b)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %s via member %d: not done in 30s: %d %s %v", method, path, via, status, b, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestE2EShardsMembership adds a fourth member to a 3-member cluster of 8
// shards under a write load (a learner in every shard, started with
// --join, promoted once it caught up in every shard), removes an original
// member, and reads every acknowledged write on every remaining member.
// The removed member answers 410 once every shard removed it.
func TestE2EShardsMembership(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	c := newE2ECluster(t, 3, "--shards", fmt.Sprint(e2eShards), "--snapshot-every", "40")
	c.startAll()
	c.waitShardLeaders(10 * time.Second)

	dir := t.TempDir()
	m4 := &e2eMember{c: c, id: 4, peer: c.freeAddr(), client: c.freeAddr(), logPath: filepath.Join(dir, "member-4.log")}
	var initial []string
	for _, m := range c.members {
		initial = append(initial, fmt.Sprintf("%d=%s", m.id, m.peer))
	}
	m4.args = []string{
		"--id", "4", "--join", "--data-dir", filepath.Join(dir, "member-4"), "--shards", fmt.Sprint(e2eShards),
		"--listen-client", m4.client, "--listen-peer", m4.peer,
		"--initial-cluster", strings.Join(initial, ","),
		"--tick", "10ms", "--request-timeout", "1s", "--snapshot-every", "40", "--log-level", "info",
	}
	c.members = append(c.members, m4)

	var targets e2eTargets
	targets.set(1, 2, 3)
	var acked e2eAckedWrites
	stopLoad := c.writeLoad(t, 4, &targets, &acked)
	// Enough writes that every shard's leader snapshotted and compacted
	// its log (about 50 a shard; a snapshot every 40 entries): the new
	// member gets those shards as snapshots.
	acked.waitMore(t, "before the first change", 400)

	rep := shardChange(t, c, http.MethodPost, 2, "/cluster/members", fmt.Sprintf(`{"id":4,"peer":%q,"learner":true}`, m4.peer), false)
	t.Logf("added member 4 as a learner: %d shards applied, %d already", rep.Applied, rep.Already)
	if err := m4.start(); err != nil {
		t.Fatal(err)
	}
	targets.set(1, 2, 3, 4)
	rep = shardChange(t, c, http.MethodPost, 3, "/cluster/members/4/promote", "", true)
	t.Logf("promoted member 4: %d shards applied, %d already", rep.Applied, rep.Already)
	acked.waitMore(t, "after adding member 4", 100)

	// Remove member 1, which led some shards from the start.
	targets.set(2, 3, 4)
	rep = shardChange(t, c, http.MethodDelete, 4, "/cluster/members/1", "", false)
	t.Logf("removed member 1: %d shards applied, %d already", rep.Applied, rep.Already)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st, err := c.shardStatus(1)
		if err == nil && st.Removed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("member 1 is not removed from every shard 10s after its removal: %+v %v", st, err)
		}
	}
	if status, body, err := c.request(http.MethodPut, 1, e2eKeyPath("to-the-removed"), "x"); err != nil || status != http.StatusGone {
		t.Errorf("PUT through the removed member 1 = %d %s %v; want 410", status, body, err)
	}
	if err := c.member(1).stop(); err != nil {
		t.Fatal(err)
	}
	acked.waitMore(t, "after removing member 1", 100)
	stopLoad()

	written := acked.snapshot()
	for _, id := range []int{2, 3, 4} {
		if err := c.readBack(id, written); err != nil {
			t.Fatalf("through member %d: %v", id, err)
		}
	}
	if !strings.Contains(m4.currentLog(), `msg="installed snapshot"`) {
		t.Errorf("member 4 installed no shard's snapshot: it was to learn the compacted shards from their leaders' snapshots")
	}
	status, body, err := c.request(http.MethodGet, 2, "/cluster", "")
	var cl struct {
		Members []struct {
			ID      int    `json:"id"`
			Role    string `json:"role"`
			VoterOf int    `json:"voter_of"`
		} `json:"members"`
	}
	if err != nil || status != http.StatusOK || json.Unmarshal(body, &cl) != nil {
		t.Fatalf("GET /cluster: %d %s %v", status, body, err)
	}
	var voters []int
	for _, m := range cl.Members {
		if m.Role == "voter" && m.VoterOf == e2eShards {
			voters = append(voters, m.ID)
		}
	}
	if !slices.Equal(voters, []int{2, 3, 4}) || len(cl.Members) != 3 {
		t.Errorf("GET /cluster = %s; want members 2, 3 and 4, voters of every shard", body)
	}
	t.Logf("%d writes acknowledged, each read back through members 2, 3 and 4", len(written))
	c.stopAll()
}

// TestE2EShardsKillRestart kills a member with SIGKILL while clients write
// across the shards, restarts it, then kills every member at once and
// restarts them all: every acknowledged write must be on every member.
// Snapshots are frequent, so the restarted member catches up on shards
// whose leader compacted its log meanwhile through snapshots.
func TestE2EShardsKillRestart(t *testing.T) {
	c := newE2ECluster(t, 3, "--shards", fmt.Sprint(e2eShards), "--snapshot-every", "40")
	c.startAll()
	c.waitShardLeaders(10 * time.Second)

	var (
		mu        sync.Mutex
		acked     = map[string]string{}
		attempted = map[string]string{}
		failed    int
		count     atomic.Int64
		stop      = make(chan struct{})
		wg        sync.WaitGroup
	)
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), uint64(time.Now().UnixNano())))
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				key, value := fmt.Sprintf("w%d-%d", g, n), fmt.Sprintf("v%d-%d-%08x", g, n, rng.Uint32())
				id := 1 + rng.IntN(len(c.members))
				mu.Lock()
				attempted[key] = value
				mu.Unlock()
				status, body, err := c.request(http.MethodPut, id, e2eKeyPath(key), value)
				if err == nil && status == http.StatusOK {
					mu.Lock()
					acked[key] = value
					mu.Unlock()
					count.Add(1)
					continue
				}
				if err == nil && status != http.StatusServiceUnavailable {
					t.Errorf("PUT %s via member %d: %d %s", key, id, status, body)
				}
				mu.Lock()
				failed++
				mu.Unlock()
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	stopWriters := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(stopWriters)
	waitAcked := func(what string, n int64) {
		t.Helper()
		target := count.Load() + n
		deadline := time.Now().Add(20 * time.Second)
		for count.Load() < target {
			if time.Now().After(deadline) {
				t.Fatalf("%s: fewer than %d writes acknowledged in 20s", what, n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	waitAcked("before the kill", 100)
	victim := 1 // it leads some shards from the start (see spreadLeaders)
	if err := c.member(victim).kill(); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed member %d (SIGKILL) at +%v", victim, time.Since(c.began).Round(time.Millisecond))
	waitAcked(fmt.Sprintf("after killing member %d", victim), 400)
	if err := c.member(victim).start(); err != nil {
		t.Fatal(err)
	}
	if out := c.member(victim).currentLog(); !strings.Contains(out, "recovered from disk") {
		t.Errorf("restarted member %d does not say it recovered from disk:\n%s", victim, out)
	}
	waitAcked(fmt.Sprintf("after restarting member %d", victim), 100)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(c.member(victim).currentLog(), `msg="installed snapshot"`); {
		if time.Now().After(deadline) {
			t.Fatalf("restarted member %d installed no shard's snapshot from a leader in 10s", victim)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Every write acknowledged so far reads back through the restarted
	// member (linearizable reads: served from its own state machine once
	// it has applied the read index).
	mu.Lock()
	sofar := maps.Clone(acked)
	mu.Unlock()
	if err := c.readBack(victim, sofar); err != nil {
		t.Fatalf("through restarted member %d: %v", victim, err)
	}
	t.Logf("the %d writes acknowledged by then read back through member %d", len(sofar), victim)

	// Kill every member at once, under load: only what each persisted
	// survives.
	for _, m := range c.members {
		if err := m.kill(); err != nil {
			t.Fatal(err)
		}
	}
	stopWriters()
	t.Logf("killed every member at +%v", time.Since(c.began).Round(time.Millisecond))
	c.startAll()
	c.waitShardLeaders(15 * time.Second)
	c.waitShardsConverged(30 * time.Second)

	keys := make([]string, 0, len(attempted))
	for k := range attempted {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	lost, wrong := 0, 0
	for _, m := range c.members {
		got, err := c.readAll(m.id, keys)
		if err != nil {
			t.Fatalf("reading member %d: %v", m.id, err)
		}
		for _, k := range keys {
			v, ok := got[k]
			if want, isAcked := acked[k]; isAcked && (!ok || v != want) {
				lost++
				if lost <= 10 {
					t.Errorf("acknowledged write %s=%q (shard %d) reads %q, %v on member %d", k, want, shardOf(k, e2eShards), v, ok, m.id)
				}
			} else if ok && v != attempted[k] {
				wrong++
				if wrong <= 10 {
					t.Errorf("member %d has %s=%q; the only value written was %q", m.id, k, v, attempted[k])
				}
			}
		}
	}
	t.Logf("writes: %d attempted, %d acknowledged, %d failed (503 or connection error)", len(attempted), len(acked), failed)
	if lost+wrong > 0 {
		t.Fatalf("%d lost acknowledged writes, %d wrong values", lost, wrong)
	}
	c.readThroughEveryMember("after")
	c.stopAll()
}

// TestE2EShardsLinearizable checks a porcupine history of clients on keys
// spread over the shards while members are killed and restarted.
func TestE2EShardsLinearizable(t *testing.T) {
	const (
		clients = 6
		keys    = 8
	)
	c := newE2ECluster(t, 3, "--shards", fmt.Sprint(e2eShards))
	c.startAll()
	c.waitShardLeaders(10 * time.Second)
	shards := map[uint64]bool{}
	for _, k := range e2eEpochKeys(0, keys) {
		shards[shardOf(k, e2eShards)] = true
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d; the %d keys are in %d shards", seed, keys, len(shards))
	cl := startE2EClients(t, c, seed, clients, keys, func(rng *rand.Rand) int { return 1 + rng.IntN(len(c.members)) }, nil)
	rng := rand.New(rand.NewPCG(seed, 0))
	pause := func(lo, hi time.Duration) { time.Sleep(lo + time.Duration(rng.Int64N(int64(hi-lo)))) }
	pause(300*time.Millisecond, 600*time.Millisecond)
	for r := range 3 {
		victim := 1 + (r+int(seed%3))%len(c.members)
		if err := c.member(victim).kill(); err != nil {
			t.Fatal(err)
		}
		pause(300*time.Millisecond, 800*time.Millisecond)
		if err := c.member(victim).start(); err != nil {
			t.Fatal(err)
		}
		pause(300*time.Millisecond, 800*time.Millisecond)
	}
	c.waitShardLeaders(10 * time.Second)
	cl.finish(t, seed, e2eCheckTimeout(3))
	c.stopAll()
}
