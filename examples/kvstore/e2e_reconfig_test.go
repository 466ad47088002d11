package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/raftcore/raft/rafttest"
)

// TestE2ELinearizableReconfig runs the clients of TestE2ELinearizable while
// the cluster changes leaders and members. Each round
//
//   - moves leadership by asking a follower, naming the third member (even
//     rounds) or the follower itself (odd rounds);
//   - adds a new member as a learner, asks to promote it before it runs
//     (409 learner_not_ready), starts it with --join and promotes it once it
//     has caught up, retrying on 409;
//   - removes an old member through that member itself (the leader in even
//     rounds, a follower in odd ones); once it has applied its removal it
//     answers 410 until it is stopped, then refuses connections (a removed
//     follower may never learn that its removal was committed: then it
//     answers 503).
//
// The clients send to every member the round has: the learner, and the
// removed member both before and after it stops. A request sent to a
// member after it reported its removal must get 410. Porcupine must find
// the history linearizable.
func TestE2ELinearizableReconfig(t *testing.T) {
	const (
		clients = 6
		keys    = 4
	)
	rounds := e2eRoundCount(6, 100)
	c := newE2ECluster(t, 3)
	c.startAll()
	c.mustLeader()

	// The members the rounds add, prepared before the clients start
	// (their goroutines read c.members); each is started in its round.
	dir := t.TempDir()
	for id := 4; id < 4+rounds; id++ {
		c.members = append(c.members, &e2eMember{c: c, id: id, peer: c.freeAddr(), client: c.freeAddr(), logPath: filepath.Join(dir, fmt.Sprintf("member-%d.log", id))})
	}
	// removedAt[id] is when, on the history's clock, member id was seen
	// to have applied its own removal (0: not yet).
	removedAt := make([]atomic.Int64, len(c.members)+1)
	var late410 atomic.Int64 // 410s to requests sent after that
	var targets e2eTargets
	voters := []int{1, 2, 3}
	targets.set(voters...)

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, %d leader transfer and membership change rounds", seed, rounds)
	cl := startE2EClients(t, c, seed, clients, keys, func(rng *rand.Rand) int { return targets.pick(rng.IntN(1 << 20)) },
		func(id int, in rafttest.KVInput, call int64, status int, body []byte, err error) {
			at := removedAt[id].Load()
			if at == 0 || call <= at || err != nil {
				return
			}
			var r e2eReply
			json.Unmarshal(body, &r)
			if status != http.StatusGone || r.Error != errRemoved.Error() {
				t.Errorf("%s via member %d, sent %v after it reported its removal: %d %s", in.Key, id, time.Duration(call-at), status, body)
				return
			}
			late410.Add(1)
		})

	rng := rand.New(rand.NewPCG(seed, 0))
	pause := func(lo, hi time.Duration) { time.Sleep(lo + time.Duration(rng.Int64N(int64(hi-lo)))) }
	var transfers, transferAttempts, notReady, learned int
	for r := range rounds {
		cl.epoch.Store(int64(r))
		at := func() time.Duration { return time.Since(cl.began).Round(time.Millisecond) }

		// Leadership, through a follower.
		was := memWaitLeader(t, c, voters)
		followers := slices.DeleteFunc(slices.Clone(voters), func(id int) bool { return id == was })
		via := followers[rng.IntN(len(followers))]
		to := via
		if r%2 == 0 {
			to = followers[0] + followers[1] - via
		}
		transferAttempts += reconfigTransfer(t, c, via, to)
		transfers++
		if now := memWaitLeader(t, c, voters); now != to {
			t.Logf("round %d: leadership moved to %d, then to %d", r, to, now)
		}
		pause(100*time.Millisecond, 300*time.Millisecond)

		// A new member: added as a learner, not ready before it runs,
		// promoted once it has caught up.
		n := 4 + r
		m := c.member(n)
		memChange(t, c, http.MethodPost, via, "/cluster/members", fmt.Sprintf(`{"id":%d,"peer":%q,"learner":true}`, n, m.peer), http.StatusCreated,
			func(v memView) bool { return slices.Contains(v.role("learner"), n) })
		if status, b := memRequest(t, c, http.MethodPost, via, fmt.Sprintf("/cluster/members/%d/promote", n), ""); status != http.StatusConflict || !strings.Contains(string(b), `"code":"learner_not_ready"`) {
			t.Fatalf("promoting member %d before it runs: %d %s, want 409 learner_not_ready", n, status, b)
		}
		m.args = reconfigJoinArgs(c, m, filepath.Join(dir, fmt.Sprintf("member-%d", n)), voters)
		if err := m.start(); err != nil {
			t.Fatal(err)
		}
		targets.set(append(slices.Clone(voters), n)...)
		notReady += reconfigPromote(t, c, voters[rng.IntN(len(voters))], n)
		voters = append(voters, n)
		pause(100*time.Millisecond, 300*time.Millisecond)

		// An old member removed through itself: the leader, or a follower.
		lead := memWaitLeader(t, c, voters)
		victim := lead
		if r%2 == 1 || lead == n {
			old := slices.DeleteFunc(slices.Clone(voters), func(id int) bool { return id == lead || id == n })
			victim = old[rng.IntN(len(old))]
		}
		voters = slices.DeleteFunc(voters, func(id int) bool { return id == victim })
		if reconfigRemove(t, c, victim, voters) {
			removedAt[victim].Store(cl.now())
			learned++
		}
		targets.set(append(slices.Clone(voters), victim)...)
		newLead := memWaitLeader(t, c, voters)
		if testing.Verbose() && (rounds <= 8 || r%10 == 0) {
			t.Logf("round %d at +%v: leadership %d -> %d through %d; added and promoted %d; removed %d (leader %d), leader now %d",
				r, at(), was, to, via, n, victim, lead, newLead)
		}
		// The removed member answers 410 for a while, then is stopped
		// (its data goes: soaks add many members).
		pause(300*time.Millisecond, 500*time.Millisecond)
		if err := c.member(victim).stop(); err != nil {
			t.Fatal(err)
		}
		os.RemoveAll(reconfigArg(c.member(victim).args, "--data-dir"))
	}
	memWaitLeader(t, c, voters)
	cl.finish(t, seed, e2eCheckTimeout(rounds))
	cl.h.mu.Lock()
	refused := cl.h.dropped["410 member_removed"]
	cl.h.mu.Unlock()
	t.Logf("%d leader transfers through followers (%d requests), %d promotions refused as not ready once the learner ran, %d of %d removed members learned their removal, %d requests refused by removed members (%d sent after the removal was seen)",
		transfers, transferAttempts, notReady, learned, rounds, refused, late410.Load())
	if refused == 0 {
		t.Fatal("no request got 410 from a removed member: the clients did not reach them")
	}

	// The remaining voters agree on every key.
	st := memStatus(t, c, memWaitLeader(t, c, voters))
	memWaitApplied(t, c, voters, st.Commit)
	all := e2eEpochKeys(cl.epoch.Load(), keys)
	var first map[string]string
	for _, id := range voters {
		got, err := c.readAll(id, all)
		if err != nil {
			t.Fatalf("reading member %d: %v", id, err)
		}
		if first == nil {
			first = got
		} else if fmt.Sprint(got) != fmt.Sprint(first) {
			t.Errorf("member %d's keys differ from member %d's:\n%v\n%v", id, voters[0], got, first)
		}
	}
	c.stopAll()
}

// reconfigJoinArgs are the flags of member m joining the cluster of
// voters, with its data in dataDir.
func reconfigJoinArgs(c *e2eCluster, m *e2eMember, dataDir string, voters []int) []string {
	var initial []string
	for _, id := range voters {
		initial = append(initial, fmt.Sprintf("%d=%s", id, c.member(id).peer))
	}
	initial = append(initial, fmt.Sprintf("%d=%s", m.id, m.peer))
	return []string{
		"--id", fmt.Sprint(m.id), "--join", "--data-dir", dataDir,
		"--listen-client", m.client, "--listen-peer", m.peer,
		"--initial-cluster", strings.Join(initial, ","),
		"--tick", "10ms", "--request-timeout", "1s", "--snapshot-every", "300", "--log-level", "info",
	}
}

// reconfigArg is the value following flag name in args.
func reconfigArg(args []string, name string) string {
	if i := slices.Index(args, name); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

// reconfigTransfer asks member via, a follower, to move leadership to
// member to, again while it answers 503 (none has moved it yet, or the
// leader changed meanwhile), and returns the attempts it took. The answer
// names the new leader.
func reconfigTransfer(t *testing.T, c *e2eCluster, via, to int) int {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for attempt := 1; ; attempt++ {
		status, b, err := memDo(c, http.MethodPost, via, "/cluster/leader", fmt.Sprintf(`{"id":%d}`, to))
		if err == nil && status == http.StatusOK {
			var r struct{ Leader int }
			if json.Unmarshal(b, &r) != nil || r.Leader != to {
				t.Fatalf("POST /cluster/leader {id: %d} via member %d: %s", to, via, b)
			}
			return attempt
		}
		if err == nil && status != http.StatusServiceUnavailable {
			t.Fatalf("POST /cluster/leader {id: %d} via member %d: %d %s", to, via, status, b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("POST /cluster/leader {id: %d} via member %d: still failing after 15s: %d %s %v", to, via, status, b, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// reconfigPromote promotes learner id through member via, again while it
// answers 409 learner_not_ready (it is catching up) or 503, and returns
// how many 409s it took. A repeat after an unknown outcome that finds id
// a voter already (409 not_a_learner) means an earlier attempt made it.
func reconfigPromote(t *testing.T, c *e2eCluster, via, id int) (notReady int) {
	t.Helper()
	path := fmt.Sprintf("/cluster/members/%d/promote", id)
	isVoter := func(v memView) bool { return slices.Contains(v.role("voter"), id) }
	deadline := time.Now().Add(20 * time.Second)
	unknown := false
	for {
		status, b, err := memDo(c, http.MethodPost, via, path, "")
		var r e2eReply
		json.Unmarshal(b, &r)
		switch {
		case err == nil && status == http.StatusOK:
			if v := memCluster(t, c, via); !isVoter(v) {
				t.Fatalf("POST %s via member %d: 200 %s, but the member's view is %+v", path, via, b, v)
			}
			return notReady
		case err == nil && status == http.StatusConflict && r.Code == "learner_not_ready":
			notReady++
		case err != nil || status == http.StatusServiceUnavailable:
			unknown = true
		case unknown && status == http.StatusConflict && r.Code == "not_a_learner" && isVoter(memCluster(t, c, via)):
			return notReady
		default:
			t.Fatalf("POST %s via member %d: %d %s %v", path, via, status, b, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("POST %s via member %d: not promoted after 20s (%d times not ready): %d %s %v", path, via, notReady, status, b, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// reconfigRemove removes member victim through itself, waits until the
// remaining members have it out of their configuration, and says whether
// victim reports its removal (within a few seconds). A repeat after an
// unknown outcome may find victim already out of the configuration it
// applied (404 unknown_member), or refusing as removed (410). A follower
// may never learn that its removal was committed (the leader stops
// sending to it once it applies the change), so its request can time out
// for good: once the remaining members have applied the removal, that is
// done too.
func reconfigRemove(t *testing.T, c *e2eCluster, victim int, remaining []int) bool {
	t.Helper()
	path := fmt.Sprint("/cluster/members/", victim)
	deadline := time.Now().Add(20 * time.Second)
	unknown := false
	for done := false; !done; {
		status, b, err := memDo(c, http.MethodDelete, victim, path, "")
		var r e2eReply
		json.Unmarshal(b, &r)
		switch {
		case err == nil && status == http.StatusOK:
			done = true
		case err != nil || status == http.StatusServiceUnavailable:
			unknown = true
			done = !slices.Contains(memCluster(t, c, remaining[0]).role("voter"), victim)
		case unknown && (status == http.StatusNotFound && r.Code == "unknown_member" || status == http.StatusGone && r.Code == "member_removed"):
			done = true
		default:
			t.Fatalf("DELETE %s via member %d: %d %s %v", path, victim, status, b, err)
		}
		if !done && time.Now().After(deadline) {
			t.Fatalf("DELETE %s via member %d: still failing after 20s: %d %s %v", path, victim, status, b, err)
		}
		if !done {
			time.Sleep(100 * time.Millisecond)
		}
	}
	for _, id := range remaining {
		for !slices.Equal(memCluster(t, c, id).role("voter"), remaining) {
			if time.Now().After(deadline) {
				t.Fatalf("member %d's voters are not %v 20s after removing %d", id, remaining, victim)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for wait := time.Now().Add(3 * time.Second); time.Now().Before(wait); time.Sleep(20 * time.Millisecond) {
		if memStatus(t, c, victim).Removed {
			return true
		}
	}
	return false
}

// TestE2EOutcome: what each answer makes of an operation in the history.
// Only what provably had no effect is left out; a write that may have
// happened is recorded with an unknown outcome.
func TestE2EOutcome(t *testing.T) {
	failure := func(err error) (int, []byte) {
		rec := httptest.NewRecorder()
		writeFailure(rec, err)
		return rec.Code, rec.Body.Bytes()
	}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	put := rafttest.KVInput{Op: rafttest.KVPut, Key: "x", Value: "a"}
	del := rafttest.KVInput{Op: rafttest.KVDelete, Key: "x"}
	get := rafttest.KVInput{Op: rafttest.KVGet, Key: "x"}
	const (
		dropped = iota
		unknown
	)
	tests := []struct {
		name string
		in   rafttest.KVInput
		err  error // a transport error, or
		fail error // the member's failure
		want int   // dropped or unknown
		why  string
	}{
		{"put refused by a removed member", put, nil, errRemoved, dropped, "410 member_removed"},
		{"delete refused by a removed member", del, nil, errRemoved, dropped, "410 member_removed"},
		{"put in flight at the removal", put, nil, errRemovedInFlight, unknown, "410 member_removed in flight"},
		{"delete in flight at the removal", del, nil, errRemovedInFlight, unknown, "410 member_removed in flight"},
		{"get in flight at the removal", get, nil, errRemovedInFlight, dropped, "410 member_removed"},
		{"put timed out", put, nil, errTimeout, unknown, "503 timeout"},
		{"put when the leader changed", put, nil, errLeaderChanged, unknown, "503 leader_changed"},
		{"put whose entry was replaced", put, nil, errProposalLost, dropped, "503 proposal_lost"},
		{"delete whose entry was replaced", del, nil, errProposalLost, dropped, "503 proposal_lost"},
		{"put covered by a snapshot", put, nil, errSnapshotted, unknown, "503 outcome_unknown"},
		{"put while shutting down", put, nil, errStopped, unknown, "503 shutting_down"},
		{"put without a leader", put, nil, errNoLeader, dropped, "503 no_leader"},
		{"get timed out", get, nil, errTimeout, dropped, "503 timeout"},
		{"put to a stopped member", put, refused, nil, dropped, "connection refused"},
		{"put cut off", put, reset, nil, unknown, "connection error"},
		{"get cut off", get, reset, nil, dropped, "connection error"},
	}
	for _, tt := range tests {
		status, body := 0, []byte(nil)
		if tt.fail != nil {
			status, body = failure(tt.fail)
		}
		out, record, why, problem := e2eOutcome(tt.in, status, body, tt.err)
		switch {
		case problem != "":
			t.Errorf("%s: reported as a problem: %s", tt.name, problem)
		case tt.want == dropped && record:
			t.Errorf("%s: recorded (%+v), want it left out: it had no effect", tt.name, out)
		case tt.want == unknown && (!record || !out.Unknown):
			t.Errorf("%s: recorded %v, output %+v; want an unknown outcome", tt.name, record, out)
		case why != tt.why:
			t.Errorf("%s: why %q, want %q", tt.name, why, tt.why)
		}
	}
	if _, record, _, problem := e2eOutcome(put, http.StatusGone, []byte(`{"error":"gone","code":"other"}`), nil); record || problem == "" {
		t.Errorf("a 410 without code member_removed: recorded %v, problem %q; want a problem", record, problem)
	}
}
