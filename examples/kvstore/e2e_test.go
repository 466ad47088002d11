package main

// End-to-end tests: the kvstore binary, built once, runs as one process per
// member on loopback ports; the tests kill members with SIGKILL (or stop
// them with SIGTERM) under client load, restart them from their data
// directories, and check what the clients saw. Run them alone with
//
//	go test -race -run E2E -v .
//
// -short skips them. -e2e.soak (or -e2e.rounds=N) runs TestE2ELinearizable
// and TestE2ELinearizableReconfig for many more rounds; -e2e.race builds
// the server with the race detector.

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var (
	e2eSoak   = flag.Bool("e2e.soak", false, "TestE2ELinearizable*: a soak run, with many rounds")
	e2eRounds = flag.Int("e2e.rounds", 0, "TestE2ELinearizable: this many kill/restart rounds (0: 4, or 200 with -e2e.soak); TestE2ELinearizableReconfig: this many leader transfer and membership change rounds (0: 6, or 100 with -e2e.soak)")
	e2eRace   = flag.Bool("e2e.race", false, "build the server binary for the end-to-end tests with -race")
)

// e2eRoundCount is -e2e.rounds if given, else soak with -e2e.soak, else
// normal.
func e2eRoundCount(normal, soak int) int {
	switch {
	case *e2eRounds > 0:
		return *e2eRounds
	case *e2eSoak:
		return soak
	default:
		return normal
	}
}

// TestE2EKillLeader kills the leader with SIGKILL while clients write, and
// checks that no acknowledged write is lost and that the members end up
// with the same state.
func TestE2EKillLeader(t *testing.T) {
	c := newE2ECluster(t, 3)
	c.startAll()
	c.mustLeader()
	c.readThroughEveryMember("hello")

	var (
		mu        sync.Mutex
		acked     = map[string]e2eAck{}
		attempted = map[string]string{}
		failed    int
		killedAt  atomic.Pointer[time.Time]
		stop      = make(chan struct{})
		wg        sync.WaitGroup
	)
	for g := range 4 {
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
				call := time.Now()
				status, body, err := c.request(http.MethodPut, id, e2eKeyPath(key), value)
				ret := time.Now()
				if err == nil && status == http.StatusOK {
					var r e2eReply
					if err := json.Unmarshal(body, &r); err != nil || r.Index == 0 || !r.Created {
						t.Errorf("PUT %s via member %d: unexpected reply %q (%v)", key, id, body, err)
					}
					k := killedAt.Load()
					mu.Lock()
					acked[key] = e2eAck{value: value, index: r.Index, call: call, ret: ret, via: id, afterCrash: k != nil && call.After(*k)}
					mu.Unlock()
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

	// ackedSince counts the acknowledged writes sent after since.
	ackedSince := func(since time.Time) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, a := range acked {
			if a.call.After(since) {
				n++
			}
		}
		return n
	}
	waitAcked := func(what string, since time.Time, n int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for ackedSince(since) < n {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d writes sent since then acknowledged in 20s, want %d", what, ackedSince(since), n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitAcked("before the kill", c.began, 20)
	lead := c.mustLeader()
	now := time.Now()
	killedAt.Store(&now)
	if err := c.member(lead).kill(); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed leader %d (SIGKILL) at +%v", lead, time.Since(c.began).Round(time.Millisecond))
	newLead, err := c.waitLeader(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	waitAcked(fmt.Sprintf("after killing the leader %d", lead), now, 20)
	restarted := time.Now()
	if err := c.member(lead).start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("new leader %d; restarted member %d at +%v", newLead, lead, time.Since(c.began).Round(time.Millisecond))
	if out := c.member(lead).currentLog(); !strings.Contains(out, "recovered from disk") {
		t.Errorf("restarted member %d does not say it recovered from disk:\n%s", lead, out)
	}
	waitAcked(fmt.Sprintf("after restarting member %d", lead), restarted, 20)
	stopWriters()

	var (
		maxIndex      uint64
		after         int
		firstAfterRet time.Duration = -1
	)
	for _, a := range acked {
		maxIndex = max(maxIndex, a.index)
		if a.afterCrash {
			after++
			if d := a.ret.Sub(now); firstAfterRet < 0 || d < firstAfterRet {
				firstAfterRet = d
			}
		}
	}
	t.Logf("writes: %d attempted, %d acknowledged (%d of them sent after the kill), %d failed (503 or connection error); highest acknowledged index %d; first write sent after the kill was acknowledged %v after it",
		len(attempted), len(acked), after, failed, maxIndex, firstAfterRet.Round(time.Millisecond))
	if len(acked)-after == 0 || after == 0 {
		t.Fatalf("want acknowledged writes both before and after the leader was killed; got %d before, %d after", len(acked)-after, after)
	}

	// Every member must apply the highest acknowledged index, then agree.
	c.waitApplied(maxIndex, 30*time.Second)
	applied := c.waitConverged(30 * time.Second)
	t.Logf("members converged at applied index %d", applied)

	keys := make([]string, 0, len(attempted))
	for k := range attempted {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var states []map[string]string
	for _, m := range c.members {
		got, err := c.readAll(m.id, keys)
		if err != nil {
			t.Fatalf("reading member %d: %v", m.id, err)
		}
		states = append(states, got)
	}
	lost, diverged, wrong := 0, 0, 0
	for _, k := range keys {
		a, isAcked := acked[k]
		for i, st := range states {
			v, ok := st[k]
			switch {
			case isAcked && (!ok || v != a.value):
				lost++
				if lost <= 10 {
					t.Errorf("acknowledged write %s=%q (index %d, via member %d) reads %q, %v on member %d", k, a.value, a.index, a.via, v, ok, i+1)
				}
			case ok && v != attempted[k]:
				wrong++
				if wrong <= 10 {
					t.Errorf("member %d has %s=%q; the only value written was %q", i+1, k, v, attempted[k])
				}
			}
			if i > 0 {
				if v0, ok0 := states[0][k]; ok0 != ok || v0 != v {
					diverged++
					if diverged <= 10 {
						t.Errorf("members diverge on %s: member 1 has %q, %v; member %d has %q, %v", k, v0, ok0, i+1, v, ok)
					}
				}
			}
		}
	}
	if lost+diverged+wrong > 0 {
		t.Fatalf("%d lost acknowledged writes, %d divergent, %d wrong values", lost, diverged, wrong)
	}
	unacked := 0
	for k := range attempted {
		if _, ok := acked[k]; !ok {
			if _, present := states[0][k]; present {
				unacked++
			}
		}
	}
	t.Logf("all %d acknowledged writes are on every member; %d writes that failed were applied anyway (allowed)", len(acked), unacked)

	// The cluster still serves through every member, the restarted one too.
	c.readThroughEveryMember("after")
	c.stopAll()
}

// TestE2ELinearizable runs clients doing puts, gets and deletes on a few
// keys through random members while members are killed and restarted, and
// checks the history for linearizability with porcupine. Keys change every
// two rounds.
func TestE2ELinearizable(t *testing.T) {
	const (
		clients = 6
		keys    = 4
	)
	rounds := e2eRoundCount(4, 200)
	c := newE2ECluster(t, 3)
	c.startAll()
	c.mustLeader()

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, %d kill/restart rounds", seed, rounds)
	cl := startE2EClients(t, c, seed, clients, keys, func(rng *rand.Rand) int { return 1 + rng.IntN(len(c.members)) }, nil)

	// Chaos: the rounds cycle through killing the leader, killing two
	// members (no quorum until they are back), stopping one with SIGTERM,
	// and killing a random one.
	rng := rand.New(rand.NewPCG(seed, 0))
	pause := func(lo, hi time.Duration) { time.Sleep(lo + time.Duration(rng.Int64N(int64(hi-lo)))) }
	pause(300*time.Millisecond, 600*time.Millisecond)
	for r := range rounds {
		cl.epoch.Store(int64(r / 2))
		lead := c.mustLeader()
		var victims []int
		graceful := false
		what := ""
		switch r % 4 {
		case 0:
			victims, what = []int{lead}, "kill the leader"
		case 1:
			perm := rng.Perm(len(c.members))
			victims, what = []int{perm[0] + 1, perm[1] + 1}, "kill two members"
		case 2:
			victims, graceful, what = []int{1 + rng.IntN(len(c.members))}, true, "stop a member (SIGTERM)"
		default:
			victims, what = []int{1 + rng.IntN(len(c.members))}, "kill a member"
		}
		for _, v := range victims {
			var err error
			if graceful {
				err = c.member(v).stop()
			} else {
				err = c.member(v).kill()
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if testing.Verbose() && (rounds <= 8 || r%10 == 0) {
			t.Logf("round %d at +%v: %s: %v (leader was %d)", r, time.Since(cl.began).Round(time.Millisecond), what, victims, lead)
		}
		pause(300*time.Millisecond, 800*time.Millisecond)
		for _, v := range victims {
			if err := c.member(v).start(); err != nil {
				t.Fatal(err)
			}
		}
		pause(300*time.Millisecond, 800*time.Millisecond)
	}
	c.mustLeader()
	cl.finish(t, seed, e2eCheckTimeout(rounds))

	// The members agree on every key.
	applied := c.waitConverged(30 * time.Second)
	all := e2eEpochKeys(cl.epoch.Load(), keys)
	var first map[string]string
	for _, m := range c.members {
		got, err := c.readAll(m.id, all)
		if err != nil {
			t.Fatalf("reading member %d: %v", m.id, err)
		}
		if first == nil {
			first = got
		} else if fmt.Sprint(got) != fmt.Sprint(first) {
			t.Errorf("member %d's keys differ from member 1's at applied index %d:\n%v\n%v", m.id, applied, got, first)
		}
	}
	c.stopAll()
}
