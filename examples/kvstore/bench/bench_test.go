package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestPercentile(t *testing.T) {
	var hundred []time.Duration
	for i := 1; i <= 100; i++ {
		hundred = append(hundred, ms(i))
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one p50", []time.Duration{ms(7)}, 50, ms(7)},
		{"one p99", []time.Duration{ms(7)}, 99, ms(7)},
		{"two p50", []time.Duration{ms(1), ms(2)}, 50, ms(1)},
		{"two p99", []time.Duration{ms(1), ms(2)}, 99, ms(2)},
		{"hundred p50", hundred, 50, ms(50)},
		{"hundred p99", hundred, 99, ms(99)},
		{"hundred p100", hundred, 100, ms(100)},
		{"hundred p1", hundred, 1, ms(1)},
		{"hundred p0", hundred, 0, ms(1)},
		{"four p75", []time.Duration{ms(1), ms(2), ms(3), ms(4)}, 75, ms(3)},
		{"four p76", []time.Duration{ms(1), ms(2), ms(3), ms(4)}, 76, ms(4)},
	} {
		if got := percentile(tc.sorted, tc.p); got != tc.want {
			t.Errorf("%s: percentile(%d values, %v) = %v, want %v", tc.name, len(tc.sorted), tc.p, got, tc.want)
		}
	}
}

func TestMergeAndSummarize(t *testing.T) {
	per := [][]time.Duration{
		{ms(5), ms(1), ms(200)},
		nil,
		{ms(3), ms(2)},
		{ms(4)},
	}
	all := mergeLatencies(per)
	want := []time.Duration{ms(1), ms(2), ms(3), ms(4), ms(5), ms(200)}
	if len(all) != len(want) {
		t.Fatalf("merged %v, want %v", all, want)
	}
	for i := range want {
		if all[i] != want[i] {
			t.Fatalf("merged %v, want %v", all, want)
		}
	}
	s := summarize(all)
	if s.count != 6 || s.p50 != ms(3) || s.p99 != ms(200) || s.max != ms(200) {
		t.Errorf("summarize = %+v, want count 6, p50 3ms, p99 200ms, max 200ms", s)
	}
	if s := summarize(nil); s != (latencySummary{}) {
		t.Errorf("summarize(nil) = %+v, want zero", s)
	}
}

func TestResultSummaryAndTable(t *testing.T) {
	r := result{
		op: opWrite, clients: 16, elapsed: 2 * time.Second, ops: 1000,
		latencies: latencySummary{count: 1000, p50: 1500 * time.Microsecond, p99: ms(12), max: ms(40)},
		errors:    errorCounts{unavailable: 2, conn: 1, first: "503 Service Unavailable: no leader"},
	}
	if got := r.opsPerSec(); got != 500 {
		t.Errorf("opsPerSec = %v, want 500", got)
	}
	s := r.summary()
	for _, want := range []string{"write", "clients=16", "ops=1000", "500.0 ops/s", "p50=1.50ms", "p99=12.00ms", "max=40.00ms", "errors=3", "503: 2", "connection: 1", "no leader"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary %q does not contain %q", s, want)
		}
	}
	var buf bytes.Buffer
	printTable(&buf, []result{r, {op: opRead, clients: 1, elapsed: time.Second, ops: 10}})
	lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("table has %d lines, want 3:\n%s", len(lines), buf.String())
	}
	if f := strings.Fields(lines[0]); strings.Join(f, " ") != "op clients ops/s p50 p99 max errors" {
		t.Errorf("header = %q", lines[0])
	}
	if f := strings.Fields(lines[1]); strings.Join(f, " ") != "write 16 500.0 1.50ms 12.00ms 40.00ms 3" {
		t.Errorf("row = %q", lines[1])
	}
}

func TestParseFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"--endpoints", "http://a:1/, http://b:2"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.endpoints, ",") != "http://a:1,http://b:2" {
		t.Errorf("endpoints = %q", cfg.endpoints)
	}
	if len(cfg.clients) != 3 || cfg.clients[0] != 1 || cfg.clients[1] != 16 || cfg.clients[2] != 256 {
		t.Errorf("default clients = %v", cfg.clients)
	}
	if strings.Join(cfg.ops, ",") != "write,read" || cfg.duration != 10*time.Second ||
		cfg.valueSize != 128 || cfg.keys != 10000 || cfg.prefill != 1000 {
		t.Errorf("defaults = %+v", cfg)
	}
	cfg, err = parseFlags([]string{"--endpoints", "http://a:1", "--keys", "10", "--ops", "read"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.prefill != 10 || strings.Join(cfg.ops, ",") != "read" {
		t.Errorf("prefill = %d (want capped to 10), ops = %v", cfg.prefill, cfg.ops)
	}
	for _, args := range [][]string{
		{},
		{"--endpoints", "a:1"},
		{"--endpoints", "http://a:1", "--clients", "1,0"},
		{"--endpoints", "http://a:1", "--clients", "x"},
		{"--endpoints", "http://a:1", "--ops", "write,delete"},
		{"--endpoints", "http://a:1", "--duration", "0s"},
		{"--endpoints", "http://a:1", "--keys", "0"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) succeeded, want an error", args)
		}
	}
}

// fakeKV is an in-memory PUT/GET /kv/{key} server. With unavailableEvery
// > 0, every that-many-th request is answered 503 instead.
type fakeKV struct {
	mu               sync.Mutex
	data             map[string][]byte
	requests         atomic.Int64
	puts, gets       atomic.Int64
	unavailableEvery int64
}

func newFakeKV() *fakeKV { return &fakeKV{data: map[string][]byte{}} }

func (f *fakeKV) handler() http.Handler {
	mux := http.NewServeMux()
	unavailable := func(w http.ResponseWriter) bool {
		n := f.requests.Add(1)
		if f.unavailableEvery > 0 && n%f.unavailableEvery == 0 {
			w.Header().Set("Retry-After", "1")
			http.Error(w, `{"error":"no leader","code":"no_leader"}`, http.StatusServiceUnavailable)
			return true
		}
		return false
	}
	mux.HandleFunc("PUT /kv/{key}", func(w http.ResponseWriter, r *http.Request) {
		if unavailable(w) {
			return
		}
		v, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.puts.Add(1)
		f.mu.Lock()
		f.data[r.PathValue("key")] = v
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"index":1,"created":true}`)
	})
	mux.HandleFunc("GET /kv/{key}", func(w http.ResponseWriter, r *http.Request) {
		if unavailable(w) {
			return
		}
		f.gets.Add(1)
		f.mu.Lock()
		v, ok := f.data[r.PathValue("key")]
		f.mu.Unlock()
		if !ok {
			http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
			return
		}
		w.Write(v)
	})
	return mux
}

// TestRunAgainstFakeServer runs the whole generator (flags to table) for
// about a second against two fake members.
func TestRunAgainstFakeServer(t *testing.T) {
	fakes := []*fakeKV{newFakeKV(), newFakeKV()}
	var urls []string
	for _, f := range fakes {
		srv := httptest.NewServer(f.handler())
		t.Cleanup(srv.Close)
		urls = append(urls, srv.URL)
	}
	var stdout, stderr bytes.Buffer
	args := []string{
		"--endpoints", strings.Join(urls, ","),
		"--clients", "1,8",
		"--duration", "250ms",
		"--value-size", "64",
		"--keys", "500",
		"--prefill", "100",
	}
	if err := run(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	out := stdout.String()
	t.Logf("stdout:\n%s", out)

	// Both members got writes and reads (round robin), and every prefilled
	// value has the requested size.
	for i, f := range fakes {
		if f.puts.Load() == 0 || f.gets.Load() == 0 {
			t.Errorf("fake %d: %d puts, %d gets; want both > 0", i, f.puts.Load(), f.gets.Load())
		}
		f.mu.Lock()
		for k, v := range f.data {
			if len(v) != 64 {
				t.Errorf("fake %d: %s has %d bytes, want 64", i, k, len(v))
			}
		}
		f.mu.Unlock()
	}
	// The prefill spread keys 0..99 over the two fakes; reads go to
	// either, so some may be 404 there, which counts as success.

	table := strings.Split(strings.TrimSpace(out[strings.LastIndex(out, "\n\n")+2:]), "\n")
	if len(table) != 5 {
		t.Fatalf("table has %d lines, want header + 4 phases:\n%s", len(table), out)
	}
	wantRows := [][2]string{{"write", "1"}, {"write", "8"}, {"read", "1"}, {"read", "8"}}
	for j, row := range table[1:] {
		f := strings.Fields(row)
		if len(f) != 7 || f[0] != wantRows[j][0] || f[1] != wantRows[j][1] {
			t.Errorf("row %d = %q, want %s with %s clients", j, row, wantRows[j][0], wantRows[j][1])
			continue
		}
		if f[2] == "0.0" {
			t.Errorf("row %d: no throughput: %q", j, row)
		}
		if f[6] != "0" {
			t.Errorf("row %d: errors against a healthy fake: %q", j, row)
		}
	}
	if strings.Count(out, "clients=") != 4 {
		t.Errorf("want 4 summary lines:\n%s", out)
	}
}

// TestErrorsAreCountedSeparately checks that 503s count as errors, not as
// operations, and that unreachable endpoints count as connection errors.
func TestErrorsAreCountedSeparately(t *testing.T) {
	f := newFakeKV()
	f.unavailableEvery = 3
	srv := httptest.NewServer(f.handler())
	t.Cleanup(srv.Close)
	cfg := config{
		endpoints: []string{srv.URL},
		clients:   []int{4},
		duration:  200 * time.Millisecond,
		valueSize: 8,
		keys:      50,
		prefill:   20,
		ops:       []string{opWrite},
	}
	results, err := runBench(context.Background(), cfg, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	r := results[0]
	if r.ops == 0 || r.errors.unavailable == 0 || r.errors.total() != r.errors.unavailable {
		t.Errorf("ops %d, errors %+v: want ops and only 503 errors", r.ops, r.errors)
	}
	if r.latencies.count != r.ops {
		t.Errorf("%d latencies for %d ops: errors must not be recorded", r.latencies.count, r.ops)
	}

	// A closed server: connection errors, no operations.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	w := newWorker(newTransport(1), []string{deadURL}, 0, 8)
	if o, detail := w.do(context.Background(), opWrite, "k"); o != outcomeConn || detail == "" {
		t.Errorf("request to a closed server: outcome %v (%q), want a connection error", o, detail)
	}
	res := runPhase(context.Background(), newTransport(2), config{
		endpoints: []string{deadURL}, duration: 150 * time.Millisecond, keys: 10, prefill: 10,
	}, opWrite, 2, io.Discard)
	if res.ops != 0 || res.errors.conn == 0 {
		t.Errorf("against a closed server: ops %d, errors %+v; want 0 ops, connection errors", res.ops, res.errors)
	}
}
