package main

// End-to-end tests of the command itself: flags, --local-cluster and its
// data directory.

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// localProc is a kvstore --local-cluster process.
type localProc struct {
	t       *testing.T
	cmd     *exec.Cmd
	out     *lockedBuffer // stdout and stderr
	exited  chan struct{}
	dataDir string
	clients map[int]string // member id -> client URL
	client  *http.Client
}

var localMemberLine = regexp.MustCompile(`member (\d+): client (https?://\S+)\s+peer (\S+)`)
var localDataLine = regexp.MustCompile(`data under (\S+)`)

// startLocalProc runs the binary with args and waits until it printed its
// members' addresses.
func startLocalProc(t *testing.T, env []string, args ...string) *localProc {
	t.Helper()
	p := &localProc{
		t: t, cmd: exec.Command(e2eBinary(t), args...), out: &lockedBuffer{},
		exited: make(chan struct{}), clients: map[int]string{},
		client: &http.Client{Timeout: 3 * time.Second},
	}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stderr = p.out
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	printed := make(chan struct{})
	go func() {
		defer close(p.exited)
		sc := bufio.NewScanner(stdout)
		announced := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(p.out, line)
			if m := localMemberLine.FindStringSubmatch(line); m != nil {
				var id int
				fmt.Sscan(m[1], &id)
				p.clients[id] = m[2]
			}
			if m := localDataLine.FindStringSubmatch(line); m != nil {
				p.dataDir = m[1]
			}
			if strings.Contains(line, "Ctrl-C stops the cluster") && !announced {
				announced = true
				close(printed)
			}
		}
		io.Copy(io.Discard, stdout)
		p.cmd.Wait()
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("output of kvstore %s:\n%s", strings.Join(args, " "), p.out.String())
		}
	})
	select {
	case <-printed:
	case <-p.exited:
		t.Fatalf("kvstore %s exited while starting:\n%s", strings.Join(args, " "), p.out.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("kvstore %s printed no addresses within 20s:\n%s", strings.Join(args, " "), p.out.String())
	}
	return p
}

// stop sends SIGTERM; the process must exit 0.
func (p *localProc) stop() {
	p.t.Helper()
	p.client.CloseIdleConnections()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		p.t.Fatalf("no exit within 15s of SIGTERM:\n%s", p.out.String())
	}
	if !p.cmd.ProcessState.Success() {
		p.t.Fatalf("exit %v after SIGTERM:\n%s", p.cmd.ProcessState, p.out.String())
	}
}

// request retries on 503 and connection errors until the deadline.
func (p *localProc) request(method string, id int, path, body string, deadline time.Duration) (int, string) {
	p.t.Helper()
	var last string
	for end := time.Now().Add(deadline); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		req, _ := http.NewRequest(method, p.clients[id]+path, strings.NewReader(body))
		resp, err := p.client.Do(req)
		if err != nil {
			last = err.Error()
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			return resp.StatusCode, string(b)
		}
		last = string(b)
	}
	p.t.Fatalf("%s %s on member %d: no answer but 503 or errors for %v; last: %s", method, path, id, deadline, last)
	return 0, ""
}

// TestE2ELocalClusterRestarts: a local cluster with a data directory
// comes back after a restart, on the same addresses, with its data.
func TestE2ELocalClusterRestarts(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--local-cluster", "3", "--data-dir", dir, "--tick", "10ms", "--request-timeout", "1s"}
	p := startLocalProc(t, nil, args...)
	if status, body := p.request("PUT", 1, "/kv/hello", "world", 15*time.Second); status != 200 {
		t.Fatalf("PUT: %d %s", status, body)
	}
	first := p.clients
	p.stop()

	p = startLocalProc(t, nil, args...)
	if fmt.Sprint(p.clients) != fmt.Sprint(first) {
		t.Errorf("addresses changed across the restart: %v, then %v", first, p.clients)
	}
	for id := 1; id <= 3; id++ {
		// A linearizable read: it needs a leader.
		status, body := p.request("GET", id, "/kv/hello", "", 15*time.Second)
		if status != 200 || body != "world" {
			t.Fatalf("GET through member %d after the restart: %d %q", id, status, body)
		}
	}
	var st struct {
		Leader uint64 `json:"leader"`
	}
	_, body := p.request("GET", 2, "/status", "", 5*time.Second)
	if err := json.Unmarshal([]byte(body), &st); err != nil || st.Leader == 0 {
		t.Fatalf("status after the restart: %s (%v)", body, err)
	}
	p.stop()
}

// TestE2ELocalClusterTemporaryDir: without --data-dir the data goes to a
// temporary directory, named at start and removed at a clean exit.
func TestE2ELocalClusterTemporaryDir(t *testing.T) {
	tmp := t.TempDir()
	p := startLocalProc(t, []string{"TMPDIR=" + tmp}, "--local-cluster", "3", "--tick", "10ms")
	if !strings.HasPrefix(p.dataDir, tmp) {
		t.Fatalf("data directory %q is not under TMPDIR %s:\n%s", p.dataDir, tmp, p.out.String())
	}
	if !strings.Contains(p.out.String(), "removed when the cluster stops") {
		t.Errorf("the output does not say the data is temporary:\n%s", p.out.String())
	}
	if status, body := p.request("PUT", 2, "/kv/k", "v", 15*time.Second); status != 200 {
		t.Fatalf("PUT: %d %s", status, body)
	}
	if _, err := os.Stat(p.dataDir); err != nil {
		t.Fatal(err)
	}
	p.stop()
	if _, err := os.Stat(p.dataDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s is still there after a clean exit (%v)", p.dataDir, err)
	}
}

// TestE2EHelp: -h prints the usage and is no error.
func TestE2EHelp(t *testing.T) {
	out, err := exec.Command(e2eBinary(t), "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("kvstore -h: %v\n%s", err, out)
	}
	for _, want := range []string{"Usage:", "-local-cluster", "-initial-cluster"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("kvstore -h does not mention %q:\n%s", want, out)
		}
	}
	if err := exec.Command(e2eBinary(t), "--no-such-flag").Run(); err == nil {
		t.Error("an unknown flag is an error")
	}
}

// TestE2ELocalClusterTLS: --local-cluster-tls makes a CA and
// certificates, and prints how to curl the cluster with them.
func TestE2ELocalClusterTLS(t *testing.T) {
	p := startLocalProc(t, []string{"TMPDIR=" + t.TempDir()}, "--local-cluster", "3", "--local-cluster-tls", "--tick", "10ms")
	m := regexp.MustCompile(`TLS="--cacert (\S+) --cert (\S+) --key (\S+)"`).FindStringSubmatch(p.out.String())
	if m == nil {
		t.Fatalf("no curl TLS options printed:\n%s", p.out.String())
	}
	caPEM, err := os.ReadFile(m[1])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	cert, err := tls.LoadX509KeyPair(m[2], m[3])
	if err != nil {
		t.Fatal(err)
	}
	p.client = &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}},
	}}
	for id := 1; id <= 3; id++ {
		if !strings.HasPrefix(p.clients[id], "https://") {
			t.Fatalf("member %d's client URL is %s", id, p.clients[id])
		}
	}
	if status, body := p.request("PUT", 1, "/kv/hello", "world", 15*time.Second); status != 200 {
		t.Fatalf("PUT: %d %s", status, body)
	}
	if status, body := p.request("GET", 3, "/kv/hello", "", 15*time.Second); status != 200 || body != "world" {
		t.Fatalf("GET: %d %q", status, body)
	}
	p.stop()
}
