package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Library-neutral pieces that both copies of the workloads call, so that
// what surrounds the raft core (measuring, persisting to a file, the
// proposers of the Node workload) is one piece of code for both.

// payload is the data of every proposed entry: 128 bytes, shared by all
// proposals (neither library writes to proposal data).
var payload = func() []byte {
	b := make([]byte, 128)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}()

// idleElectionTick keeps the idle followers from ever campaigning while
// they are ticked.
const idleElectionTick = 1 << 30

// idleHeartbeatSetupTicks is how many heartbeats the heartbeating idle
// groups answer before their heap is measured: enough for buffers that
// grow with traffic to have grown.
const idleHeartbeatSetupTicks = 64

// fsyncDelay is the simulated fsync of the Node workload.
const fsyncDelay = time.Millisecond

// params tells one run of a workload how much to do.
type params struct {
	// n is the count the run is sized by: entries to commit, codec round
	// trips, or passes of Tick over every idle group.
	n int
	// batch is the number of proposals per Ready in the log workloads.
	batch int
	// propMsg hands each batch of proposals to the leader as one MsgProp
	// of batch entries through Step, instead of batch calls of Propose.
	propMsg bool
	// wire marshals and unmarshals every message between voters.
	wire bool
	// groups is the number of idle groups.
	groups int
	// heartbeat sends each idle group a heartbeat from its leader at every
	// tick, which it answers, as in a cluster that does not quiesce idle
	// groups; without it the groups hear nothing after their first.
	heartbeat bool
	// proposers is the number of goroutines proposing to the Node.
	proposers int
	// dir is an empty directory on the real disk for the file workload.
	dir string
	// optIn turns on the library's own opt-in speedups, where it has any
	// (see optInRaftcore and optInEtcd): raftcore's ReuseReadyMessages;
	// etcd raft has none, so its runs are its default.
	optIn bool
}

// sample is what one run measured.
type sample struct {
	// expected and observed are the run's own sanity count: entries
	// proposed and entries committed (and applied on every voter), codec
	// entries encoded and decoded, idle groups made and idle groups that are
	// followers of the leader and stayed quiet. They must be equal.
	expected, observed int64
	// ops is the denominator of the per-op figures (entries, round trips or
	// group-ticks).
	ops     int64
	elapsed time.Duration
	// cpu is the process's CPU time (user + system) over the run: with
	// GOMAXPROCS 1 the run's own work and the garbage collector's, and
	// far less disturbed than elapsed by other programs on the machine.
	cpu     time.Duration
	mallocs uint64
	bytes   uint64
	// extra holds figures of the workload's own (heap per group,
	// latencies, entries/s, fsyncs).
	extra map[string]float64
}

// meter measures time and allocations over a stretch of a run, after a GC.
type meter struct {
	start    time.Time
	startCPU time.Duration
	ms       runtime.MemStats
}

func startMeter() *meter {
	m := &meter{}
	runtime.GC()
	runtime.ReadMemStats(&m.ms)
	m.startCPU = processCPU()
	m.start = time.Now()
	return m
}

// stop ends the measurement of ops operations.
func (m *meter) stop(ops int64) sample {
	elapsed := time.Since(m.start)
	cpu := processCPU() - m.startCPU
	var end runtime.MemStats
	runtime.ReadMemStats(&end)
	return sample{
		ops:     ops,
		elapsed: elapsed,
		cpu:     cpu,
		mallocs: end.Mallocs - m.ms.Mallocs,
		bytes:   end.TotalAlloc - m.ms.TotalAlloc,
		extra:   map[string]float64{},
	}
}

// liveHeap returns the bytes of live heap objects after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// discardLogger drops every log line; Panic and Fatal still stop the run.
// Both libraries' Logger interfaces have this method set.
type discardLogger struct{}

func (discardLogger) Debug(...any)            {}
func (discardLogger) Debugf(string, ...any)   {}
func (discardLogger) Info(...any)             {}
func (discardLogger) Infof(string, ...any)    {}
func (discardLogger) Warning(...any)          {}
func (discardLogger) Warningf(string, ...any) {}
func (discardLogger) Error(...any)            {}
func (discardLogger) Errorf(string, ...any)   {}
func (discardLogger) Fatal(v ...any)          { panic(fmt.Sprint(v...)) }
func (discardLogger) Fatalf(f string, v ...any) {
	panic(fmt.Sprintf(f, v...))
}
func (discardLogger) Panic(v ...any) { panic(fmt.Sprint(v...)) }
func (discardLogger) Panicf(f string, v ...any) {
	panic(fmt.Sprintf(f, v...))
}

// fileLog is the durable log of the file workload: length-prefixed
// records appended to one file, written once per Ready and synced when the
// Ready asks for it.
type fileLog struct {
	f     *os.File
	buf   []byte
	syncs int64
}

func openFileLog(path string) (*fileLog, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	return &fileLog{f: f}, nil
}

// reserve appends a record of n bytes to the pending write and returns the
// bytes to marshal it into.
func (l *fileLog) reserve(n int) []byte {
	off := len(l.buf)
	l.buf = slices.Grow(l.buf, 4+n)[:off+4+n]
	binary.LittleEndian.PutUint32(l.buf[off:], uint32(n))
	return l.buf[off+4:]
}

// flush writes the pending records and syncs the file if sync is set.
func (l *fileLog) flush(sync bool) error {
	if len(l.buf) > 0 {
		if _, err := l.f.Write(l.buf); err != nil {
			return err
		}
		l.buf = l.buf[:0]
	}
	if sync {
		l.syncs++
		return l.f.Sync()
	}
	return nil
}

func (l *fileLog) close() error { return l.f.Close() }

// waiters lets the Node workload's proposers wait for their own entries:
// each proposer has at most one proposal in flight and writes its index
// into the first 8 bytes of the proposal's data.
type waiters struct {
	ch        []chan struct{}
	committed atomic.Int64
}

func newWaiters(n int) *waiters {
	w := &waiters{ch: make([]chan struct{}, n)}
	for i := range w.ch {
		w.ch[i] = make(chan struct{}, 1)
	}
	return w
}

// applied is called by the Ready loop for each applied entry's data.
func (w *waiters) applied(data []byte) {
	if len(data) < 8 {
		return
	}
	i := binary.LittleEndian.Uint64(data)
	if i >= uint64(len(w.ch)) {
		return
	}
	w.committed.Add(1)
	w.ch[i] <- struct{}{}
}

// runProposers proposes total entries of 128 bytes from w's proposers
// through propose, each waiting for its entry to be applied before the
// next, and returns every proposal's latency, sorted.
func runProposers(total int, w *waiters, propose func(context.Context, []byte) error) ([]time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var next atomic.Int64
	lats := make([][]time.Duration, len(w.ch))
	errs := make([]error, len(w.ch))
	var wg sync.WaitGroup
	for g := range w.ch {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(total) {
				data := make([]byte, len(payload))
				copy(data, payload)
				binary.LittleEndian.PutUint64(data, uint64(g))
				start := time.Now()
				if err := propose(ctx, data); err != nil {
					errs[g] = err
					cancel()
					return
				}
				select {
				case <-w.ch[g]:
				case <-ctx.Done():
					errs[g] = ctx.Err()
					return
				}
				lats[g] = append(lats[g], time.Since(start))
			}
		}()
	}
	wg.Wait()
	var all []time.Duration
	for g := range lats {
		if errs[g] != nil {
			return nil, errs[g]
		}
		all = append(all, lats[g]...)
	}
	slices.Sort(all)
	return all, nil
}

// waitLeader waits for configured, then calls campaign until leader is
// closed, retrying now and then in case a campaign was ignored.
func waitLeader(ctx context.Context, campaign func(context.Context) error, configured, leader <-chan struct{}) error {
	select {
	case <-configured:
	case <-ctx.Done():
		return errors.New("the node did not apply its configuration")
	}
	retry := time.NewTicker(50 * time.Millisecond)
	defer retry.Stop()
	for {
		if err := campaign(ctx); err != nil {
			return err
		}
		select {
		case <-leader:
			return nil
		case <-retry.C:
		case <-ctx.Done():
			return errors.New("the node did not become leader")
		}
	}
}

// percentile returns the p-th percentile (0 < p <= 100) of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}
