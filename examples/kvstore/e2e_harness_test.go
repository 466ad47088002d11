package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

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

// expectExit marks the coming exit as expected and returns the process and
// its exit channel, or nil if it is not running.
func (m *e2eMember) expectExit() (*exec.Cmd, chan struct{}) {
	m.mu.Lock()
	cmd, exited := m.cmd, m.exited
	m.expected = true
	m.mu.Unlock()
	if cmd == nil {
		return nil, nil
	}
	select {
	case <-exited:
		return nil, nil
	default:
		return cmd, exited
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (m *e2eMember) kill() error {
	cmd, exited := m.expectExit()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	<-exited
	return nil
}

// stop sends SIGTERM and waits; the member must exit 0 within 15s.
func (m *e2eMember) stop() error {
	cmd, exited := m.expectExit()
	if cmd == nil {
		return nil
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
