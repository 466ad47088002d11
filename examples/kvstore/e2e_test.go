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
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
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

// e2eBuild is the server binary, built by the first test that needs it.
var e2eBuild struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if e2eBuild.dir != "" {
		os.RemoveAll(e2eBuild.dir)
	}
	os.Exit(code)
}

// e2eBinary builds the server (once per test binary run) and returns its
// path. The test runs in the package directory, so "." is the server.
func e2eBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test (builds the server and runs members as processes); skipped with -short")
	}
	e2eBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "kvstore-e2e-bin-")
		if err != nil {
			e2eBuild.err = err
			return
		}
		e2eBuild.dir = dir
		path := filepath.Join(dir, "kvstore")
		args := []string{"build", "-o", path}
		if *e2eRace {
			args = append(args, "-race")
		}
		args = append(args, ".")
		if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
			e2eBuild.err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
			return
		}
		e2eBuild.path = path
	})
	if e2eBuild.err != nil {
		t.Fatal(e2eBuild.err)
	}
	return e2eBuild.path
}

// e2eFreeAddr returns a loopback address that was free a moment ago.
func e2eFreeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// e2eCluster is a cluster of kvstore processes.
type e2eCluster struct {
	t       *testing.T
	bin     string
	members []*e2eMember // members[i] has id i+1
	client  *http.Client
	began   time.Time

	usedAddrs map[string]bool // given to members; only the test's goroutine uses it
}

// e2eMember is one member: its addresses and flags, fixed for the test,
// and its current process, if any.
type e2eMember struct {
	c       *e2eCluster
	id      int
	peer    string
	client  string
	logPath string
	args    []string

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{} // closed once cmd has exited
	state    *os.ProcessState
	expected bool // the test is killing or stopping cmd
	ready    bool // cmd answered /status
	starts   int
}

// newE2ECluster prepares n members (none started); extra flags go to every
// member.
func newE2ECluster(t *testing.T, n int, extra ...string) *e2eCluster {
	bin := e2eBinary(t)
	dir := t.TempDir()
	c := &e2eCluster{
		t: t, bin: bin, began: time.Now(),
		client: &http.Client{
			Timeout: 3 * time.Second,
			Transport: &http.Transport{
				DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
				MaxIdleConns:        64,
				MaxIdleConnsPerHost: 16,
				IdleConnTimeout:     30 * time.Second,
				DisableCompression:  true,
			},
		},
	}
	var initial []string
	for i := 1; i <= n; i++ {
		m := &e2eMember{c: c, id: i, peer: c.freeAddr(), client: c.freeAddr(), logPath: filepath.Join(dir, fmt.Sprintf("member-%d.log", i))}
		c.members = append(c.members, m)
		initial = append(initial, fmt.Sprintf("%d=%s", i, m.peer))
	}
	for _, m := range c.members {
		m.args = append([]string{
			"--id", fmt.Sprint(m.id),
			"--data-dir", filepath.Join(dir, fmt.Sprintf("member-%d", m.id)),
			"--listen-client", m.client,
			"--listen-peer", m.peer,
			"--initial-cluster", strings.Join(initial, ","),
			"--tick", "10ms",
			"--request-timeout", "1s",
			"--snapshot-every", "300",
			"--log-level", "info",
		}, extra...)
	}
	t.Cleanup(c.cleanup)
	return c
}

// freeAddr returns a loopback address that was free a moment ago and that
// no member of c was given before (the kernel may hand a port it just
// freed out again).
func (c *e2eCluster) freeAddr() string {
	if c.usedAddrs == nil {
		c.usedAddrs = map[string]bool{}
	}
	return e2eUnusedAddr(c.usedAddrs, func() string { return e2eFreeAddr(c.t) })
}

// e2eUnusedAddr returns the first address from next not in used, and adds
// it to used.
func e2eUnusedAddr(used map[string]bool, next func() string) string {
	for {
		if a := next(); !used[a] {
			used[a] = true
			return a
		}
	}
}

// TestE2EUnusedAddr: an address handed out again is skipped.
func TestE2EUnusedAddr(t *testing.T) {
	from := []string{"127.0.0.1:1", "127.0.0.1:1", "127.0.0.1:2"}
	next := func() string { a := from[0]; from = from[1:]; return a }
	used := map[string]bool{}
	if a, b := e2eUnusedAddr(used, next), e2eUnusedAddr(used, next); a == b {
		t.Fatalf("two members were given %s", a)
	}
}

func (c *e2eCluster) member(id int) *e2eMember { return c.members[id-1] }

func (c *e2eCluster) startAll() {
	c.t.Helper()
	for _, m := range c.members {
		if err := m.start(); err != nil {
			c.t.Fatal(err)
		}
	}
}

// stopAll stops every running member with SIGTERM; each must exit 0.
func (c *e2eCluster) stopAll() {
	c.t.Helper()
	for _, m := range c.members {
		if err := m.stop(); err != nil {
			c.t.Error(err)
		}
	}
}

// cleanup kills whatever still runs, then looks through the logs; when the
// test failed it keeps the logs and shows their ends.
func (c *e2eCluster) cleanup() {
	for _, m := range c.members {
		if err := m.kill(); err != nil {
			c.t.Errorf("member %d: kill: %v", m.id, err)
		}
	}
	c.client.CloseIdleConnections()
	for _, m := range c.members {
		b, _ := os.ReadFile(m.logPath)
		for _, bad := range []string{"WARNING: DATA RACE", "panic:", "fatal error:"} {
			if strings.Contains(string(b), bad) {
				c.t.Errorf("member %d's log has %q", m.id, bad)
			}
		}
	}
	if !c.t.Failed() {
		return
	}
	keep, err := os.MkdirTemp("", "kvstore-e2e-logs-")
	for _, m := range c.members {
		c.t.Logf("---- member %d (peer %s, client %s), last lines of its log:\n%s", m.id, m.peer, m.client, m.logTail(60))
		if err == nil {
			if b, rerr := os.ReadFile(m.logPath); rerr == nil {
				os.WriteFile(filepath.Join(keep, filepath.Base(m.logPath)), b, 0o644)
			}
		}
	}
	if err == nil {
		c.t.Logf("full member logs kept in %s", keep)
	}
}

func (m *e2eMember) url(path string) string { return "http://" + m.client + path }

func (m *e2eMember) running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return false
	}
	select {
	case <-m.exited:
		return false
	default:
		return true
	}
}

var errE2EAddrInUse = errors.New("address already in use")

// start starts the member's process with its flags and waits until it
// serves HTTP. A port taken meanwhile by someone else's connection makes
// the process exit at once; start then tries again for a while.
func (m *e2eMember) start() error {
	for attempt := 1; ; attempt++ {
		err := m.startOnce()
		if err == nil || !errors.Is(err, errE2EAddrInUse) || attempt == 40 {
			return err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (m *e2eMember) startOnce() error {
	m.mu.Lock()
	if m.cmd != nil {
		select {
		case <-m.exited:
		default:
			m.mu.Unlock()
			return fmt.Errorf("member %d is already running", m.id)
		}
	}
	f, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		m.mu.Unlock()
		return err
	}
	off, _ := f.Seek(0, io.SeekEnd)
	m.starts++
	fmt.Fprintf(f, "==== e2e: start #%d of member %d at +%v\n", m.starts, m.id, time.Since(m.c.began).Round(time.Millisecond))
	cmd := exec.Command(m.c.bin, m.args...)
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Start()
	f.Close()
	if err != nil {
		m.mu.Unlock()
		return fmt.Errorf("member %d: %w", m.id, err)
	}
	exited := make(chan struct{})
	m.cmd, m.exited, m.state, m.expected, m.ready = cmd, exited, nil, false, false
	m.mu.Unlock()
	go m.wait(cmd, exited)

	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			out := m.logSince(off)
			if strings.Contains(out, "address already in use") {
				return fmt.Errorf("member %d: %w:\n%s", m.id, errE2EAddrInUse, out)
			}
			return fmt.Errorf("member %d exited while starting:\n%s", m.id, out)
		default:
		}
		if _, err := m.c.status(m.id); err == nil {
			m.mu.Lock()
			m.ready = true
			m.mu.Unlock()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("member %d does not answer /status 15s after starting", m.id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wait reaps the process; an exit the test did not cause fails the test.
func (m *e2eMember) wait(cmd *exec.Cmd, exited chan struct{}) {
	err := cmd.Wait()
	m.mu.Lock()
	m.state = cmd.ProcessState
	report := !m.expected && m.ready
	m.ready = false
	m.mu.Unlock()
	if report {
		m.c.t.Errorf("member %d exited on its own (%v); its log ends:\n%s", m.id, err, m.logTail(60))
	}
	close(exited)
}

// kill sends SIGKILL and waits for the process to be gone.
func (m *e2eMember) kill() error {
	m.mu.Lock()
	cmd, exited := m.cmd, m.exited
	m.expected = true
	m.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-exited:
		return nil
	default:
	}
	if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	<-exited
	return nil
}

// stop sends SIGTERM and waits; the member must exit 0 within 15s.
func (m *e2eMember) stop() error {
	m.mu.Lock()
	cmd, exited := m.cmd, m.exited
	m.expected = true
	m.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-exited:
		return nil
	default:
	}
	m.c.client.CloseIdleConnections()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		<-exited
		return fmt.Errorf("member %d did not exit within 15s of SIGTERM; its log ends:\n%s", m.id, m.logTail(40))
	}
	m.mu.Lock()
	st := m.state
	m.mu.Unlock()
	if !st.Success() {
		return fmt.Errorf("member %d exited with %v after SIGTERM; its log ends:\n%s", m.id, st, m.logTail(40))
	}
	return nil
}

func (m *e2eMember) logSince(off int64) string {
	b, _ := os.ReadFile(m.logPath)
	if off > int64(len(b)) {
		off = int64(len(b))
	}
	return string(b[off:])
}

// currentLog is what the member's latest process has logged so far.
func (m *e2eMember) currentLog() string {
	b, _ := os.ReadFile(m.logPath)
	out := string(b)
	if i := strings.LastIndex(out, "==== e2e: start #"); i >= 0 {
		out = out[i:]
	}
	return out
}

func (m *e2eMember) logTail(n int) string {
	b, _ := os.ReadFile(m.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// e2eStatus is GET /status.
type e2eStatus struct {
	ID      uint64 `json:"id"`
	State   string `json:"state"`
	Term    uint64 `json:"term"`
	Leader  uint64 `json:"leader"`
	Commit  uint64 `json:"commit"`
	Applied uint64 `json:"applied"`
	Removed bool   `json:"removed"`
}

// e2eReply is the JSON body of writes and errors.
type e2eReply struct {
	Index   uint64 `json:"index"`
	Created bool   `json:"created"`
	Deleted bool   `json:"deleted"`
	Error   string `json:"error"`
	Code    string `json:"code"`
}

func (c *e2eCluster) status(id int) (e2eStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.member(id).url("/status"), nil)
	if err != nil {
		return e2eStatus{}, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return e2eStatus{}, err
	}
	defer resp.Body.Close()
	var st e2eStatus
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /status: %s", resp.Status)
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	return st, err
}

// request sends one request to member id; err is a transport error (the
// request may or may not have reached the member).
func (c *e2eCluster) request(method string, id int, path, body string) (int, []byte, error) {
	var rd io.Reader
	if method == http.MethodPut {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.member(id).url(path), rd)
	if err != nil {
		return 0, nil, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, b, nil
}

func e2eKeyPath(key string) string { return "/kv/" + url.PathEscape(key) }

// waitLeader returns the leader once it says it leads and a majority of
// all members name it.
func (c *e2eCluster) waitLeader(timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		votes := map[uint64]int{}
		var leaders []uint64
		for _, m := range c.members {
			if !m.running() {
				continue
			}
			st, err := c.status(m.id)
			if err != nil {
				continue
			}
			if st.Leader != 0 {
				votes[st.Leader]++
			}
			if st.State == "StateLeader" && st.Leader == st.ID {
				leaders = append(leaders, st.ID)
			}
		}
		for _, l := range leaders {
			if votes[l] > len(c.members)/2 {
				return int(l), nil
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("no leader after %v (leaders %v, votes %v)", timeout, leaders, votes)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *e2eCluster) mustLeader() int {
	c.t.Helper()
	id, err := c.waitLeader(10 * time.Second)
	if err != nil {
		c.t.Fatal(err)
	}
	return id
}

// mustPut writes through member id, retrying while the cluster answers
// 503 (so the write may be applied more than once: use it for fixed
// values only).
func (c *e2eCluster) mustPut(id int, key, value string) uint64 {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, body, err := c.request(http.MethodPut, id, e2eKeyPath(key), value)
		if err == nil && status == http.StatusOK {
			var r e2eReply
			if err := json.Unmarshal(body, &r); err != nil || r.Index == 0 {
				c.t.Fatalf("PUT %s via member %d: bad reply %q (%v)", key, id, body, err)
			}
			return r.Index
		}
		if err == nil && status != http.StatusServiceUnavailable {
			c.t.Fatalf("PUT %s via member %d: %d %s", key, id, status, body)
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("PUT %s via member %d: still failing after 10s: %d %s %v", key, id, status, body, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// mustGet reads through member id (linearizable unless stale), retrying
// while the cluster answers 503.
func (c *e2eCluster) mustGet(id int, key string, stale bool) (string, bool) {
	c.t.Helper()
	path := e2eKeyPath(key)
	if stale {
		path += "?consistency=stale"
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, body, err := c.request(http.MethodGet, id, path, "")
		switch {
		case err == nil && status == http.StatusOK:
			return string(body), true
		case err == nil && status == http.StatusNotFound:
			var r e2eReply
			if json.Unmarshal(body, &r) != nil || r.Code != "key_not_found" {
				c.t.Fatalf("GET %s via member %d: %d %s", key, id, status, body)
			}
			return "", false
		case err == nil && status != http.StatusServiceUnavailable:
			c.t.Fatalf("GET %s via member %d: %d %s", key, id, status, body)
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("GET %s via member %d: still failing after 10s: %d %s %v", key, id, status, body, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readAll reads keys from member id's local state (stale reads), a few at
// a time; missing keys are missing from the result.
func (c *e2eCluster) readAll(id int, keys []string) (map[string]string, error) {
	var (
		mu    sync.Mutex
		out   = map[string]string{}
		first error
		wg    sync.WaitGroup
		next  atomic.Int64
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
				status, body, err := c.request(http.MethodGet, id, e2eKeyPath(keys[i])+"?consistency=stale", "")
				mu.Lock()
				switch {
				case err != nil:
					first = cmpOr(first, fmt.Errorf("GET %s: %w", keys[i], err))
				case status == http.StatusOK:
					out[keys[i]] = string(body)
				case status != http.StatusNotFound:
					first = cmpOr(first, fmt.Errorf("GET %s: %d %s", keys[i], status, body))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out, first
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// waitApplied waits until every member has applied index.
func (c *e2eCluster) waitApplied(index uint64, timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var lagging []string
		for _, m := range c.members {
			st, err := c.status(m.id)
			if err != nil {
				lagging = append(lagging, fmt.Sprintf("%d: %v", m.id, err))
			} else if st.Applied < index {
				lagging = append(lagging, fmt.Sprintf("%d: applied %d", m.id, st.Applied))
			}
		}
		if len(lagging) == 0 {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("members have not applied index %d after %v: %s", index, timeout, strings.Join(lagging, "; "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitConverged waits until every member reports the same applied index,
// equal to its commit index, twice in a row; it returns that index.
func (c *e2eCluster) waitConverged(timeout time.Duration) uint64 {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var last, prev []e2eStatus
	for {
		prev, last = last, nil
		same := true
		for _, m := range c.members {
			st, err := c.status(m.id)
			if err != nil {
				same = false
				break
			}
			last = append(last, st)
			same = same && st.Applied == st.Commit && st.Applied == last[0].Applied
		}
		if same && len(prev) == len(last) && prev[0].Applied == last[0].Applied {
			return last[0].Applied
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("members do not converge within %v: %+v", timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// readThroughEveryMember writes a key through each member and reads every
// one of them back through each member (linearizable reads).
func (c *e2eCluster) readThroughEveryMember(prefix string) {
	c.t.Helper()
	for _, m := range c.members {
		c.mustPut(m.id, fmt.Sprintf("%s-%d", prefix, m.id), fmt.Sprintf("%s via member %d", prefix, m.id))
	}
	for _, reader := range c.members {
		for _, writer := range c.members {
			key, want := fmt.Sprintf("%s-%d", prefix, writer.id), fmt.Sprintf("%s via member %d", prefix, writer.id)
			if got, ok := c.mustGet(reader.id, key, false); !ok || got != want {
				c.t.Fatalf("GET %s via member %d = %q, %v; want %q", key, reader.id, got, ok, want)
			}
		}
	}
}

// e2eAck is a write that got 200.
type e2eAck struct {
	value      string
	index      uint64
	call, ret  time.Time
	via        int
	afterCrash bool
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

// The linearizability model: each key is a register that may be missing.
// Puts and deletes report whether the key existed (the API's created and
// deleted); a write whose outcome the client never learned has an unknown
// output, and may take effect at any time after its call.
type e2eOp uint8

const (
	e2eGet e2eOp = iota
	e2ePut
	e2eDelete
)

type e2eInput struct {
	op    e2eOp
	key   string
	value string // put
}

type e2eOutput struct {
	unknown bool   // a write that timed out or failed: it may or may not have happened
	found   bool   // get: the key exists; put, delete: it existed before
	value   string // get
}

type e2eRegister struct {
	exists bool
	value  string
}

var e2eKVModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(e2eInput).key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return e2eRegister{} },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(e2eRegister), input.(e2eInput), output.(e2eOutput)
		switch in.op {
		case e2eGet:
			return out.found == s.exists && out.value == s.value, s
		case e2ePut:
			return out.unknown || out.found == s.exists, e2eRegister{exists: true, value: in.value}
		default:
			return out.unknown || out.found == s.exists, e2eRegister{}
		}
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(e2eInput), output.(e2eOutput)
		switch {
		case in.op == e2eGet && out.found:
			return fmt.Sprintf("get(%s) -> %q", in.key, out.value)
		case in.op == e2eGet:
			return fmt.Sprintf("get(%s) -> not found", in.key)
		case out.unknown && in.op == e2ePut:
			return fmt.Sprintf("put(%s, %q) -> ?", in.key, in.value)
		case out.unknown:
			return fmt.Sprintf("delete(%s) -> ?", in.key)
		case in.op == e2ePut:
			return fmt.Sprintf("put(%s, %q) -> created %v", in.key, in.value, !out.found)
		default:
			return fmt.Sprintf("delete(%s) -> deleted %v", in.key, out.found)
		}
	},
	DescribeState: func(state any) string {
		if s := state.(e2eRegister); s.exists {
			return fmt.Sprintf("%q", s.value)
		}
		return "(missing)"
	},
}

// TestE2EModel checks that the model rejects what it must, so that a pass
// of TestE2ELinearizable means something.
func TestE2EModel(t *testing.T) {
	op := func(client int, call, ret int64, in e2eInput, out e2eOutput) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Call: call, Return: ret, Input: in, Output: out}
	}
	put := e2eInput{op: e2ePut, key: "x", value: "a"}
	get := e2eInput{op: e2eGet, key: "x"}
	del := e2eInput{op: e2eDelete, key: "x"}
	tests := []struct {
		name    string
		history []porcupine.Operation
		ok      bool
	}{
		{"read your write", []porcupine.Operation{op(0, 0, 10, put, e2eOutput{}), op(1, 20, 30, get, e2eOutput{found: true, value: "a"})}, true},
		{"stale read", []porcupine.Operation{op(0, 0, 10, put, e2eOutput{}), op(1, 20, 30, get, e2eOutput{})}, false},
		{"concurrent read may miss", []porcupine.Operation{op(0, 0, 10, put, e2eOutput{}), op(1, 5, 30, get, e2eOutput{})}, true},
		{"created twice", []porcupine.Operation{op(0, 0, 10, put, e2eOutput{}), op(1, 20, 30, put, e2eOutput{})}, false},
		{"deleted what existed", []porcupine.Operation{op(0, 0, 10, put, e2eOutput{}), op(1, 20, 30, del, e2eOutput{found: true}), op(0, 40, 50, get, e2eOutput{})}, true},
		{"read after delete", []porcupine.Operation{op(0, 0, 10, put, e2eOutput{}), op(1, 20, 30, del, e2eOutput{found: true}), op(0, 40, 50, get, e2eOutput{found: true, value: "a"})}, false},
		{"unknown write seen later", []porcupine.Operation{op(0, 0, math.MaxInt64, put, e2eOutput{unknown: true}), op(1, 20, 30, get, e2eOutput{}), op(1, 40, 50, get, e2eOutput{found: true, value: "a"})}, true},
		{"unknown write unseen then gone", []porcupine.Operation{op(0, 0, math.MaxInt64, put, e2eOutput{unknown: true}), op(1, 20, 30, get, e2eOutput{found: true, value: "a"}), op(1, 40, 50, get, e2eOutput{})}, false},
		{"value never written", []porcupine.Operation{op(1, 20, 30, get, e2eOutput{found: true, value: "b"})}, false},
	}
	for _, tt := range tests {
		if got := porcupine.CheckOperations(e2eKVModel, tt.history); got != tt.ok {
			t.Errorf("%s: linearizable = %v, want %v", tt.name, got, tt.ok)
		}
	}
}

// e2eHistory is the clients' record of operations.
type e2eHistory struct {
	mu      sync.Mutex
	ops     []porcupine.Operation
	ok      [3]int         // answered gets, puts, deletes
	unknown map[string]int // writes with an unknown outcome, by why
	dropped map[string]int // requests left out of the history, by why
}

func (h *e2eHistory) add(op porcupine.Operation, why string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, op)
	if op.Output.(e2eOutput).unknown {
		if h.unknown == nil {
			h.unknown = map[string]int{}
		}
		h.unknown[why]++
	} else {
		h.ok[op.Input.(e2eInput).op]++
	}
}

func (h *e2eHistory) drop(why string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.dropped == nil {
		h.dropped = map[string]int{}
	}
	h.dropped[why]++
}

// e2eOutcome turns an HTTP exchange into the operation's output. record is
// false for requests that cannot have had an effect: failed reads, refused
// connections, writes answered no_leader (the member proposes nothing
// without a leader), and writes a removed member refused (410 member_removed
// without the in-flight note: it proposed nothing). A write that was in
// flight when its member applied its own removal may or may not be applied.
// why says why an outcome is unknown or dropped; problem is set for answers
// the API must never give.
func e2eOutcome(in e2eInput, status int, body []byte, err error) (out e2eOutput, record bool, why, problem string) {
	var r e2eReply
	switch {
	case err != nil:
		var ne net.Error
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			why = "connection refused"
		case errors.As(err, &ne) && ne.Timeout():
			why = "client timeout"
		default:
			why = "connection error"
		}
		if in.op == e2eGet || errors.Is(err, syscall.ECONNREFUSED) {
			return out, false, why, ""
		}
		return e2eOutput{unknown: true}, true, why, ""
	case status == http.StatusServiceUnavailable:
		if json.Unmarshal(body, &r) != nil || r.Code == "" {
			return out, false, "", fmt.Sprintf("503 without an error code: %s", body)
		}
		why = "503 " + r.Code
		if in.op == e2eGet || r.Code == "no_leader" {
			return out, false, why, ""
		}
		return e2eOutput{unknown: true}, true, why, ""
	case status == http.StatusGone:
		if json.Unmarshal(body, &r) != nil || r.Code != "member_removed" {
			return out, false, "", fmt.Sprintf("410 without code member_removed: %s", body)
		}
		if in.op != e2eGet && r.Error == errRemovedInFlight.Error() {
			return e2eOutput{unknown: true}, true, "410 member_removed in flight", ""
		}
		return out, false, "410 member_removed", ""
	case in.op == e2eGet && status == http.StatusOK:
		return e2eOutput{found: true, value: string(body)}, true, "", ""
	case in.op == e2eGet && status == http.StatusNotFound:
		if json.Unmarshal(body, &r) == nil && r.Code == "key_not_found" {
			return e2eOutput{}, true, "", ""
		}
	case status == http.StatusOK:
		if json.Unmarshal(body, &r) == nil && r.Index > 0 {
			if in.op == e2ePut {
				return e2eOutput{found: !r.Created}, true, "", ""
			}
			return e2eOutput{found: r.Deleted}, true, "", ""
		}
	}
	return out, false, "", fmt.Sprintf("%d %s", status, body)
}

// e2eBoundUnknownPuts gives a put of unknown outcome whose value some get
// returned that get's return time (the earliest such) instead of "never":
// the put took effect before the get returned. Values are unique, so this
// is sound, and it keeps the checker's search small.
func e2eBoundUnknownPuts(ops []porcupine.Operation) int {
	seen := map[string]int64{} // key NUL value -> earliest return of a get that saw it
	for _, op := range ops {
		in, out := op.Input.(e2eInput), op.Output.(e2eOutput)
		if in.op == e2eGet && out.found {
			k := in.key + "\x00" + out.value
			if r, ok := seen[k]; !ok || op.Return < r {
				seen[k] = op.Return
			}
		}
	}
	n := 0
	for i, op := range ops {
		in, out := op.Input.(e2eInput), op.Output.(e2eOutput)
		if in.op != e2ePut || !out.unknown {
			continue
		}
		if r, ok := seen[in.key+"\x00"+in.value]; ok && r > op.Call {
			ops[i].Return = r
			n++
		}
	}
	return n
}

// e2eClients are clients doing puts, gets and deletes on a few keys through
// members that pick chooses, recording every operation in a history. Keys
// are named after the epoch, which the test moves on so that each key's
// history (checked on its own) stays small; values are unique.
type e2eClients struct {
	h     e2eHistory
	epoch atomic.Int64
	began time.Time
	stop  chan struct{}
	wg    sync.WaitGroup
}

// startE2EClients starts n clients on keys keys. pick returns the member a
// request goes to; seen, if not nil, is shown every exchange (call is the
// time the request was sent, on the history's clock).
func startE2EClients(t *testing.T, c *e2eCluster, seed uint64, n, keys int, pick func(*rand.Rand) int,
	seen func(id int, in e2eInput, call int64, status int, body []byte, err error)) *e2eClients {
	cl := &e2eClients{began: time.Now(), stop: make(chan struct{})}
	for client := range n {
		cl.wg.Add(1)
		go func() {
			defer cl.wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(client)+1))
			for seq := 0; ; seq++ {
				select {
				case <-cl.stop:
					return
				default:
				}
				in := e2eInput{key: fmt.Sprintf("e%d-k%d", cl.epoch.Load(), rng.IntN(keys))}
				method := http.MethodGet
				switch p := rng.IntN(100); {
				case p < 40:
					in.op, in.value, method = e2ePut, fmt.Sprintf("c%d-%d", client, seq), http.MethodPut
				case p < 85:
					in.op = e2eGet
				default:
					in.op, method = e2eDelete, http.MethodDelete
				}
				id := pick(rng)
				call := cl.now()
				status, body, err := c.request(method, id, e2eKeyPath(in.key), in.value)
				ret := cl.now()
				if seen != nil {
					seen(id, in, call, status, body, err)
				}
				out, record, why, problem := e2eOutcome(in, status, body, err)
				if problem != "" {
					t.Errorf("%s %s via member %d: %s", method, in.key, id, problem)
				}
				if !record {
					cl.h.drop(why)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				if out.unknown {
					ret = math.MaxInt64
				}
				cl.h.add(porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret}, why)
				if out.unknown {
					time.Sleep(10 * time.Millisecond)
				}
			}
		}()
	}
	t.Cleanup(cl.stopAll)
	return cl
}

// now is the time on the history's clock.
func (cl *e2eClients) now() int64 { return int64(time.Since(cl.began)) }

// stopAll stops the clients and waits for them; it may be called again.
func (cl *e2eClients) stopAll() {
	select {
	case <-cl.stop:
	default:
		close(cl.stop)
	}
	cl.wg.Wait()
}

// answered returns how many gets and puts, and operations in all, got an
// answer.
func (cl *e2eClients) answered() (gets, puts, all int) {
	cl.h.mu.Lock()
	defer cl.h.mu.Unlock()
	return cl.h.ok[e2eGet], cl.h.ok[e2ePut], cl.h.ok[e2eGet] + cl.h.ok[e2ePut] + cl.h.ok[e2eDelete]
}

// finish lets the clients go on until the cluster, in its final shape, has
// answered some more operations, and enough of each kind for the history
// to say something; then it stops them and checks the history with
// porcupine: it must be linearizable, and an inconclusive check fails.
func (cl *e2eClients) finish(t *testing.T, seed uint64, timeout time.Duration) {
	t.Helper()
	_, _, before := cl.answered()
	deadline := time.Now().Add(30 * time.Second)
	for {
		gets, puts, all := cl.answered()
		if gets >= 50 && puts >= 50 && all >= before+30 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("in its final shape the cluster answered %d operations in 30s (%d gets, %d puts in all)", all-before, gets, puts)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cl.stopAll()

	h := &cl.h
	h.mu.Lock()
	ops := h.ops
	bounded := e2eBoundUnknownPuts(ops)
	t.Logf("history over %v: %d operations: %d gets, %d puts, %d deletes answered; writes with unknown outcome %v (%d puts of them seen by a get); left out %v",
		time.Since(cl.began).Round(time.Millisecond), len(ops), h.ok[e2eGet], h.ok[e2ePut], h.ok[e2eDelete], h.unknown, bounded, h.dropped)
	h.mu.Unlock()
	e2eCheckLinearizable(t, ops, seed, timeout)
}

// e2eCheckLinearizable fails the test unless porcupine finds ops
// linearizable within timeout; a history that is not gets a visualization
// file.
func e2eCheckLinearizable(t *testing.T, ops []porcupine.Operation, seed uint64, timeout time.Duration) {
	t.Helper()
	checkStart := time.Now()
	switch res := porcupine.CheckOperationsTimeout(e2eKVModel, ops, timeout); res {
	case porcupine.Ok:
		t.Logf("linearizable (checked in %v)", time.Since(checkStart).Round(time.Millisecond))
	case porcupine.Illegal:
		_, info := porcupine.CheckOperationsVerbose(e2eKVModel, ops, timeout)
		path := filepath.Join(os.TempDir(), fmt.Sprintf("kvstore-e2e-linearizability-%d.html", seed))
		if err := porcupine.VisualizePath(e2eKVModel, info, path); err != nil {
			t.Errorf("writing the visualization: %v", err)
		} else {
			t.Errorf("visualization of the history: %s", path)
		}
		t.Fatalf("the history is not linearizable (seed %d)", seed)
	default:
		// Small key sets keep histories far below this: an unverified
		// history is a failure, not a pass.
		t.Fatalf("linearizability check inconclusive: timed out after %v (seed %d)", timeout, seed)
	}
}

// e2eCheckTimeout is how long porcupine may take: a minute, ten for soaks.
func e2eCheckTimeout(rounds int) time.Duration {
	if *e2eSoak || rounds > 20 {
		return 10 * time.Minute
	}
	return time.Minute
}

// e2eEpochKeys names every key the clients used up to epoch.
func e2eEpochKeys(epoch int64, keys int) []string {
	var all []string
	for e := range int(epoch) + 1 {
		for k := range keys {
			all = append(all, fmt.Sprintf("e%d-k%d", e, k))
		}
	}
	return all
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
