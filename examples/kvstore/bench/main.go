// Command bench is a load generator for the kvstore example's HTTP API.
//
// For each operation kind (write, read) and each client count it runs a
// phase of --duration: that many goroutines, each with its own http.Client
// (all sharing one Transport), send requests round-robin over the
// endpoints. Writes are PUT /kv/{key} of a random key with a value of
// --value-size bytes; reads are linearizable GET /kv/{key} of random keys
// written by a prefill before the first phase.
//
//	go run ./examples/kvstore --local-cluster 3 --log-level warn
//	go run ./examples/kvstore/bench --endpoints http://127.0.0.1:A,http://127.0.0.1:B,http://127.0.0.1:C
//
// Only 2xx answers (and 404 for reads) count as operations and have their
// latency recorded; everything else (503, other statuses, connection
// errors) is counted as an error. Progress goes to stderr, the per-phase
// summaries and the final table to stdout.
package main

import (
	"bytes"
	"context"
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
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"
)

const (
	opWrite = "write"
	opRead  = "read"

	// requestTimeout bounds one request (the server answers 503 after its
	// own --request-timeout, 5s by default).
	requestTimeout = 15 * time.Second
	// errorBackoff is how long a client pauses after an error, so that a
	// cluster without a leader (or a refused connection) is not hammered
	// in a tight loop.
	errorBackoff = 50 * time.Millisecond
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "bench:", err)
		}
		os.Exit(2)
	}
}

// config is the parsed command line.
type config struct {
	endpoints []string // base URLs without a trailing slash
	clients   []int
	duration  time.Duration
	valueSize int
	keys      int
	prefill   int
	ops       []string
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		endpoints = fs.String("endpoints", "", "comma-separated base URLs of the members' client APIs (required)")
		clients   = fs.String("clients", "1,16,256", "comma-separated client counts: one phase per count and op")
		duration  = fs.Duration("duration", 10*time.Second, "length of each phase")
		valueSize = fs.Int("value-size", 128, "bytes per written value")
		keys      = fs.Int("keys", 10000, "size of the key space for writes")
		prefill   = fs.Int("prefill", 1000, "keys written before the first phase; reads pick among them (at most --keys)")
		ops       = fs.String("ops", "write,read", "comma-separated operations to run: write, read")
	)
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	var cfg config
	var err error
	if cfg.endpoints, err = parseEndpoints(*endpoints); err != nil {
		return config{}, err
	}
	if cfg.clients, err = parseClients(*clients); err != nil {
		return config{}, err
	}
	if cfg.ops, err = parseOps(*ops); err != nil {
		return config{}, err
	}
	if *duration <= 0 {
		return config{}, errors.New("--duration must be positive")
	}
	if *valueSize < 0 {
		return config{}, errors.New("--value-size must not be negative")
	}
	if *keys <= 0 {
		return config{}, errors.New("--keys must be positive")
	}
	if *prefill <= 0 {
		return config{}, errors.New("--prefill must be positive")
	}
	cfg.duration, cfg.valueSize, cfg.keys = *duration, *valueSize, *keys
	cfg.prefill = min(*prefill, *keys)
	return cfg, nil
}

func parseEndpoints(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("--endpoints is required (e.g. http://127.0.0.1:2379,http://127.0.0.1:22379)")
	}
	var out []string
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		u, err := url.Parse(part)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("--endpoints: %q is not an http(s)://host:port URL", part)
		}
		out = append(out, strings.TrimRight(part, "/"))
	}
	return out, nil
}

func parseClients(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("--clients: %q is not a positive integer", part)
		}
		out = append(out, n)
	}
	return out, nil
}

func parseOps(s string) ([]string, error) {
	var out []string
	for _, part := range strings.Split(s, ",") {
		op := strings.TrimSpace(part)
		if op != opWrite && op != opRead {
			return nil, fmt.Errorf("--ops: %q is neither %s nor %s", part, opWrite, opRead)
		}
		if !slices.Contains(out, op) {
			out = append(out, op)
		}
	}
	return out, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	results, err := runBench(ctx, cfg, stdout, stderr)
	if len(results) > 0 {
		fmt.Fprintln(stdout)
		printTable(stdout, results)
	}
	return err
}

// runBench runs the prefill and then every phase, printing a summary line
// after each. It returns the results of the phases that ran.
func runBench(ctx context.Context, cfg config, stdout, stderr io.Writer) ([]result, error) {
	tr := newTransport(slices.Max(cfg.clients))
	defer tr.CloseIdleConnections()

	fmt.Fprintf(stdout, "endpoints %s; %d-byte values; %d keys; %s per phase\n",
		strings.Join(cfg.endpoints, ", "), cfg.valueSize, cfg.keys, cfg.duration)
	start := time.Now()
	if err := prefill(ctx, tr, cfg); err != nil {
		return nil, err
	}
	fmt.Fprintf(stdout, "prefill: wrote keys 0..%d in %s\n", cfg.prefill-1, time.Since(start).Round(time.Millisecond))

	var results []result
	for _, op := range cfg.ops {
		for _, n := range cfg.clients {
			if err := ctx.Err(); err != nil {
				return results, err
			}
			res := runPhase(ctx, tr, cfg, op, n, stderr)
			results = append(results, res)
			fmt.Fprintln(stdout, res.summary())
		}
	}
	return results, ctx.Err()
}

// newTransport returns the Transport all clients share, keeping enough idle
// connections per member that every client can keep its own to each.
func newTransport(maxClients int) *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        0, // no overall limit
		MaxIdleConnsPerHost: max(maxClients, 256),
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   false,
	}
}

// keyName is the key for index i of the key space.
func keyName(i int) string { return "bench-" + strconv.Itoa(i) }

// randomValue returns n printable random bytes.
func randomValue(rng *rand.Rand, n int) []byte {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = letters[rng.IntN(len(letters))]
	}
	return b
}

func newRand() *rand.Rand { return rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())) }

// outcome is how one request went.
type outcome int

const (
	outcomeOK          outcome = iota // 2xx
	outcomeNotFound                   // 404 on a read: counts as success
	outcomeUnavailable                // 503
	outcomeStatus                     // any other status
	outcomeConn                       // no response: connection error, timeout, ...
	outcomeCanceled                   // the phase ended while the request was in flight
)

// worker sends requests for one client goroutine.
type worker struct {
	client    *http.Client
	endpoints []string
	next      int // round-robin position
	rng       *rand.Rand
	value     []byte
}

func newWorker(tr *http.Transport, endpoints []string, first int, valueSize int) *worker {
	rng := newRand()
	return &worker{
		client:    &http.Client{Transport: tr, Timeout: requestTimeout},
		endpoints: endpoints,
		next:      first % len(endpoints),
		rng:       rng,
		value:     randomValue(rng, valueSize),
	}
}

func (w *worker) endpoint() string {
	e := w.endpoints[w.next]
	w.next = (w.next + 1) % len(w.endpoints)
	return e
}

// do sends one request and reads its whole answer. detail describes a
// failure.
func (w *worker) do(ctx context.Context, op, key string) (o outcome, detail string) {
	var req *http.Request
	var err error
	u := w.endpoint() + "/kv/" + url.PathEscape(key)
	if op == opWrite {
		req, err = http.NewRequestWithContext(ctx, http.MethodPut, u, bytes.NewReader(w.value))
	} else {
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	}
	if err != nil {
		return outcomeConn, err.Error()
	}
	resp, err := w.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return outcomeCanceled, ""
		}
		return outcomeConn, err.Error()
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	switch {
	case err != nil && ctx.Err() != nil:
		return outcomeCanceled, ""
	case err != nil:
		return outcomeConn, "reading the body: " + err.Error()
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return outcomeOK, ""
	case resp.StatusCode == http.StatusNotFound && op == opRead:
		return outcomeNotFound, ""
	case resp.StatusCode == http.StatusServiceUnavailable:
		return outcomeUnavailable, fmt.Sprintf("%s: %s", resp.Status, bytes.TrimSpace(body))
	default:
		return outcomeStatus, fmt.Sprintf("%s %s: %s: %s", req.Method, u, resp.Status, bytes.TrimSpace(body))
	}
}

// prefill writes keys 0..cfg.prefill-1, retrying errors for a while: it
// also waits for the cluster to have a leader.
func prefill(ctx context.Context, tr *http.Transport, cfg config) error {
	const (
		workers  = 16
		attempts = 100 // with errorBackoff: about 5s per key
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	keys := make(chan int)
	errc := make(chan error, workers)
	var wg sync.WaitGroup
	for i := range min(workers, cfg.prefill) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := newWorker(tr, cfg.endpoints, i, cfg.valueSize)
			for k := range keys {
				var o outcome
				var detail string
				for range attempts {
					if o, detail = w.do(ctx, opWrite, keyName(k)); o == outcomeOK || o == outcomeCanceled {
						break
					}
					sleep(ctx, errorBackoff)
				}
				if o != outcomeOK {
					if o == outcomeCanceled {
						detail = ctx.Err().Error()
					}
					errc <- fmt.Errorf("prefill: writing %s: %s", keyName(k), detail)
					cancel()
					return
				}
			}
		}()
	}
feed:
	for k := range cfg.prefill {
		select {
		case keys <- k:
		case <-ctx.Done():
			break feed
		}
	}
	close(keys)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return ctx.Err()
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// result is one phase's outcome.
type result struct {
	op        string
	clients   int
	elapsed   time.Duration
	ops       int // successful operations (2xx, and 404 for reads)
	notFound  int // of which 404
	latencies latencySummary
	errors    errorCounts
}

// errorCounts counts failed requests by kind.
type errorCounts struct {
	unavailable int // 503
	status      int // other unexpected statuses
	conn        int // no response
	first       string
}

func (e errorCounts) total() int { return e.unavailable + e.status + e.conn }

func (e *errorCounts) add(o errorCounts) {
	e.unavailable += o.unavailable
	e.status += o.status
	e.conn += o.conn
	if e.first == "" {
		e.first = o.first
	}
}

func (r result) opsPerSec() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ops) / r.elapsed.Seconds()
}

func (r result) summary() string {
	s := fmt.Sprintf("%-5s clients=%-4d ops=%-8d %10.1f ops/s  p50=%s p99=%s max=%s  errors=%d",
		r.op, r.clients, r.ops, r.opsPerSec(),
		fmtLatency(r.latencies.p50), fmtLatency(r.latencies.p99), fmtLatency(r.latencies.max), r.errors.total())
	if r.errors.total() > 0 {
		s += fmt.Sprintf(" (503: %d, other status: %d, connection: %d; first: %s)",
			r.errors.unavailable, r.errors.status, r.errors.conn, r.errors.first)
	}
	if r.notFound > 0 {
		s += fmt.Sprintf(" [%d reads were 404]", r.notFound)
	}
	return s
}

// runPhase runs n clients doing op for cfg.duration, printing progress to
// stderr once a second.
func runPhase(ctx context.Context, tr *http.Transport, cfg config, op string, n int, stderr io.Writer) result {
	ctx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()

	var (
		opsDone  atomic.Int64
		errsDone atomic.Int64
		wg       sync.WaitGroup
		lats     = make([][]time.Duration, n)
		errs     = make([]errorCounts, n)
		notFound = make([]int, n)
	)
	keySpace := cfg.keys
	if op == opRead {
		keySpace = cfg.prefill
	}
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := newWorker(tr, cfg.endpoints, i, cfg.valueSize)
			var mine []time.Duration
			for ctx.Err() == nil {
				key := keyName(w.rng.IntN(keySpace))
				t0 := time.Now()
				o, detail := w.do(ctx, op, key)
				lat := time.Since(t0)
				switch o {
				case outcomeOK, outcomeNotFound:
					mine = append(mine, lat)
					opsDone.Add(1)
					if o == outcomeNotFound {
						notFound[i]++
					}
					continue
				case outcomeCanceled:
					continue
				case outcomeUnavailable:
					errs[i].unavailable++
				case outcomeStatus:
					errs[i].status++
				case outcomeConn:
					errs[i].conn++
				}
				if errs[i].first == "" {
					errs[i].first = detail
				}
				errsDone.Add(1)
				sleep(ctx, errorBackoff)
			}
			lats[i] = mine
		}()
	}

	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		progress(stderr, op, n, start, &opsDone, &errsDone, stopProgress)
	}()
	wg.Wait()
	elapsed := time.Since(start)
	close(stopProgress)
	<-progressDone

	res := result{op: op, clients: n, elapsed: elapsed}
	for i := range n {
		res.ops += len(lats[i])
		res.notFound += notFound[i]
		res.errors.add(errs[i])
	}
	res.latencies = summarize(mergeLatencies(lats))
	return res
}

// progress prints a line to w every second, overwriting the previous one,
// until stop is closed; then it clears the line.
func progress(w io.Writer, op string, n int, start time.Time, ops, errs *atomic.Int64, stop <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last int64
	lastAt := start
	width := 0
	for {
		select {
		case <-stop:
			if width > 0 {
				fmt.Fprintf(w, "\r%s\r", strings.Repeat(" ", width))
			}
			return
		case now := <-tick.C:
			cur := ops.Load()
			rate := float64(cur-last) / now.Sub(lastAt).Seconds()
			last, lastAt = cur, now
			line := fmt.Sprintf("%s clients=%d  %4.0fs  ops=%d  %.0f ops/s  errors=%d",
				op, n, now.Sub(start).Seconds(), cur, rate, errs.Load())
			pad := ""
			if len(line) < width {
				pad = strings.Repeat(" ", width-len(line))
			}
			fmt.Fprintf(w, "\r%s%s", line, pad)
			width = max(width, len(line))
		}
	}
}

// mergeLatencies concatenates the per-client latencies and sorts them.
func mergeLatencies(per [][]time.Duration) []time.Duration {
	total := 0
	for _, l := range per {
		total += len(l)
	}
	all := make([]time.Duration, 0, total)
	for _, l := range per {
		all = append(all, l...)
	}
	slices.Sort(all)
	return all
}

// latencySummary describes a set of latencies.
type latencySummary struct {
	count         int
	p50, p99, max time.Duration
}

// summarize summarizes sorted latencies.
func summarize(sorted []time.Duration) latencySummary {
	if len(sorted) == 0 {
		return latencySummary{}
	}
	return latencySummary{
		count: len(sorted),
		p50:   percentile(sorted, 50),
		p99:   percentile(sorted, 99),
		max:   sorted[len(sorted)-1],
	}
}

// percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method: the smallest value with at least p% of the values
// at or below it. It returns 0 for no values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// fmtLatency prints d in milliseconds.
func fmtLatency(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + "ms"
}

func printTable(w io.Writer, results []result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	// Pad op to the longest name so that it reads left-aligned.
	fmt.Fprintf(tw, "%-5s\tclients\tops/s\tp50\tp99\tmax\terrors\t\n", "op")
	for _, r := range results {
		fmt.Fprintf(tw, "%-5s\t%d\t%.1f\t%s\t%s\t%s\t%d\t\n",
			r.op, r.clients, r.opsPerSec(),
			fmtLatency(r.latencies.p50), fmtLatency(r.latencies.p99), fmtLatency(r.latencies.max), r.errors.total())
	}
	tw.Flush()
}
