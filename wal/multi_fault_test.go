package wal_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"

	"github.com/raftcore/raft/wal"
	"github.com/raftcore/raft/wal/crashfs"
)

// TestMultiInjectedFaults is TestInjectedFaults for a MultiLog: every
// call of each kind of file system operation of a seeded workload fails in
// turn with EIO or ENOSPC. The call into the log that hit it returns that
// error, every later write returns ErrFailed wrapping it, and a reopen
// (after a Close or a power failure) holds every acknowledged call and
// goes on working.
func TestMultiInjectedFaults(t *testing.T) {
	const seed = 2
	counting := crashfs.New()
	ml, err := multiPowerOpen(counting)
	if err != nil {
		t.Fatal(err)
	}
	m := newMModel()
	if _, err := mlive(rand.New(rand.NewPCG(seed, 11)), ml, &m, multiFaultSteps); err != nil {
		t.Fatal(err)
	}
	if err := ml.Close(); err != nil {
		t.Fatal(err)
	}
	ops := []crashfs.Op{
		crashfs.OpCreate, crashfs.OpWrite, crashfs.OpSync, crashfs.OpPreallocate,
		crashfs.OpRename, crashfs.OpRemove, crashfs.OpSyncDir, crashfs.OpMkdir,
	}
	for _, op := range ops {
		n := counting.Count(op)
		if n == 0 {
			t.Fatalf("the workload makes no %s", op)
		}
		surfaced := 0
		for nth := 1; nth <= n; nth++ {
			r := &faultRun{seed: seed, op: op, nth: nth, errno: []error{syscall.EIO, syscall.ENOSPC}[nth%2], crash: nth%3 == 0}
			if err := runMultiFault(r); err != nil {
				t.Fatalf("%v: %v", r, err)
			}
			if r.surfaced {
				surfaced++
			}
		}
		t.Logf("%s: %d faults, %d returned by the call that hit them", op, n, surfaced)
	}
}

// multiFaultSteps is the length of the workload: long enough to delete
// segments and remove a group.
const multiFaultSteps = 50

func runMultiFault(r *faultRun) error {
	fs := crashfs.New()
	fs.InjectFault(r.op, r.nth, r.errno)
	rng := rand.New(rand.NewPCG(r.seed, 11))
	m := newMModel()
	ml, openFailed, err := openDespiteFault(r.errno, func() (*wal.MultiLog, error) { return multiPowerOpen(fs) })
	if err != nil {
		return err
	}
	var failed *mstep
	for range multiFaultSteps {
		st := genMStep(rng, m)
		if err := st.run(ml); err != nil {
			if !errors.Is(err, r.errno) || errors.Is(err, wal.ErrFailed) {
				return fmt.Errorf("%v returned %v", &st, err)
			}
			failed, r.surfaced = &st, true
			break
		}
		m = m.after(&st)
	}
	if failed != nil {
		// Fail stop: nothing more is acknowledged. (A removal that
		// failed after its record was durable, deleting segments, has
		// removed the group: no step names it.)
		base := m
		if failed.remove {
			base = m.after(failed)
		}
		for range 3 {
			st := genMStep(rng, base)
			if err := st.run(ml); !errors.Is(err, wal.ErrFailed) || !errors.Is(err, r.errno) {
				return fmt.Errorf("after a failure, %v returned %v, want ErrFailed wrapping %v", &st, err, r.errno)
			}
		}
	} else if fs.Count(r.op) >= r.nth && !openFailed && r.op != crashfs.OpRemove {
		// Only the removal of a superseded snapshot file may fail
		// unnoticed: Open removes it again.
		return fmt.Errorf("the fault hit no call into the log")
	}
	if r.crash {
		fs.Crash(crashfs.DropUnsynced, 0)
	} else if err := ml.Close(); err != nil && failed == nil {
		return fmt.Errorf("close: %w", err)
	}
	if ml, err = multiPowerOpen(fs); err != nil {
		return fmt.Errorf("reopen: %w", err)
	}
	if m, err = checkMulti(ml, m, failed); err != nil {
		return fmt.Errorf("reopened after a failed %v: %w", failed, err)
	}
	if _, err := mlive(rng, ml, &m, 10); err != nil {
		return fmt.Errorf("after reopening: %w", err)
	}
	return ml.Close()
}
