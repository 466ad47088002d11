package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/raftcore/raft/rafttest"
)

// e2eAck is a write that got 200.
type e2eAck struct {
	value      string
	index      uint64
	call, ret  time.Time
	via        int
	afterCrash bool
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
	if op.Output.(rafttest.KVOutput).Unknown {
		if h.unknown == nil {
			h.unknown = map[string]int{}
		}
		h.unknown[why]++
	} else {
		h.ok[op.Input.(rafttest.KVInput).Op]++
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
// without a leader) or proposal_lost (another entry was applied where the
// write's was appended: the history then checks that claim), and writes a
// removed member refused (410 member_removed without the in-flight note: it
// proposed nothing). A write that was in
// flight when its member applied its own removal may or may not be applied.
// why says why an outcome is unknown or dropped; problem is set for answers
// the API must never give.
func e2eOutcome(in rafttest.KVInput, status int, body []byte, err error) (out rafttest.KVOutput, record bool, why, problem string) {
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
		if in.Op == rafttest.KVGet || errors.Is(err, syscall.ECONNREFUSED) {
			return out, false, why, ""
		}
		return rafttest.KVOutput{Unknown: true}, true, why, ""
	case status == http.StatusServiceUnavailable:
		if json.Unmarshal(body, &r) != nil || r.Code == "" {
			return out, false, "", fmt.Sprintf("503 without an error code: %s", body)
		}
		why = "503 " + r.Code
		if in.Op == rafttest.KVGet || r.Code == "no_leader" || r.Code == "proposal_lost" {
			return out, false, why, ""
		}
		return rafttest.KVOutput{Unknown: true}, true, why, ""
	case status == http.StatusGone:
		if json.Unmarshal(body, &r) != nil || r.Code != "member_removed" {
			return out, false, "", fmt.Sprintf("410 without code member_removed: %s", body)
		}
		if in.Op != rafttest.KVGet && r.Error == errRemovedInFlight.Error() {
			return rafttest.KVOutput{Unknown: true}, true, "410 member_removed in flight", ""
		}
		return out, false, "410 member_removed", ""
	case in.Op == rafttest.KVGet && status == http.StatusOK:
		return rafttest.KVOutput{Found: true, Value: string(body)}, true, "", ""
	case in.Op == rafttest.KVGet && status == http.StatusNotFound:
		if json.Unmarshal(body, &r) == nil && r.Code == "key_not_found" {
			return rafttest.KVOutput{}, true, "", ""
		}
	case status == http.StatusOK:
		if json.Unmarshal(body, &r) == nil && r.Index > 0 {
			if in.Op == rafttest.KVPut {
				return rafttest.KVOutput{Found: !r.Created}, true, "", ""
			}
			return rafttest.KVOutput{Found: r.Deleted}, true, "", ""
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
		in, out := op.Input.(rafttest.KVInput), op.Output.(rafttest.KVOutput)
		if in.Op == rafttest.KVGet && out.Found {
			k := in.Key + "\x00" + out.Value
			if r, ok := seen[k]; !ok || op.Return < r {
				seen[k] = op.Return
			}
		}
	}
	n := 0
	for i, op := range ops {
		in, out := op.Input.(rafttest.KVInput), op.Output.(rafttest.KVOutput)
		if in.Op != rafttest.KVPut || !out.Unknown {
			continue
		}
		if r, ok := seen[in.Key+"\x00"+in.Value]; ok && r > op.Call {
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
	seen func(id int, in rafttest.KVInput, call int64, status int, body []byte, err error)) *e2eClients {
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
				in := rafttest.KVInput{Key: fmt.Sprintf("e%d-k%d", cl.epoch.Load(), rng.IntN(keys))}
				method := http.MethodGet
				switch p := rng.IntN(100); {
				case p < 40:
					in.Op, in.Value, method = rafttest.KVPut, fmt.Sprintf("c%d-%d", client, seq), http.MethodPut
				case p < 85:
					in.Op = rafttest.KVGet
				default:
					in.Op, method = rafttest.KVDelete, http.MethodDelete
				}
				id := pick(rng)
				call := cl.now()
				status, body, err := c.request(method, id, e2eKeyPath(in.Key), in.Value)
				ret := cl.now()
				if seen != nil {
					seen(id, in, call, status, body, err)
				}
				out, record, why, problem := e2eOutcome(in, status, body, err)
				if problem != "" {
					t.Errorf("%s %s via member %d: %s", method, in.Key, id, problem)
				}
				if !record {
					cl.h.drop(why)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				if out.Unknown {
					ret = math.MaxInt64
				}
				cl.h.add(porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret}, why)
				if out.Unknown {
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
	return cl.h.ok[rafttest.KVGet], cl.h.ok[rafttest.KVPut], cl.h.ok[rafttest.KVGet] + cl.h.ok[rafttest.KVPut] + cl.h.ok[rafttest.KVDelete]
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
		time.Since(cl.began).Round(time.Millisecond), len(ops), h.ok[rafttest.KVGet], h.ok[rafttest.KVPut], h.ok[rafttest.KVDelete], h.unknown, bounded, h.dropped)
	h.mu.Unlock()
	e2eCheckLinearizable(t, ops, seed, timeout)
}

// e2eCheckLinearizable fails the test unless porcupine finds ops
// linearizable within timeout; a history that is not gets a visualization
// file.
func e2eCheckLinearizable(t *testing.T, ops []porcupine.Operation, seed uint64, timeout time.Duration) {
	t.Helper()
	checkStart := time.Now()
	switch res := porcupine.CheckOperationsTimeout(rafttest.KVModel(), ops, timeout); res {
	case porcupine.Ok:
		t.Logf("linearizable (checked in %v)", time.Since(checkStart).Round(time.Millisecond))
	case porcupine.Illegal:
		_, info := porcupine.CheckOperationsVerbose(rafttest.KVModel(), ops, timeout)
		path := filepath.Join(os.TempDir(), fmt.Sprintf("kvstore-e2e-linearizability-%d.html", seed))
		if err := porcupine.VisualizePath(rafttest.KVModel(), info, path); err != nil {
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
