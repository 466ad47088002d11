package wal_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"

	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/wal"
	"github.com/raftcore/raft/wal/crashfs"
)

// TestInjectedFaults fails, in turn, every call of each kind of file
// system operation the seeded workload makes, with EIO or ENOSPC. The
// call into the Storage that hit it returns that error; every later write
// returns ErrFailed wrapping it; reads still serve what was stored; and a
// reopen, after a Close or after a power failure, holds every acknowledged
// Save and goes on working.
func TestInjectedFaults(t *testing.T) {
	const seed = 1
	counting := crashfs.New()
	if err := faultWorkload(counting, seed); err != nil {
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
			err := r.run()
			if err != nil {
				t.Fatalf("%v: %v", r, err)
			}
			if r.surfaced {
				surfaced++
			}
		}
		t.Logf("%s: %d faults, %d returned by the call that hit them", op, n, surfaced)
	}
}

// faultWorkload runs the first life of the power-loss workload.
func faultWorkload(fs *crashfs.FS, seed uint64) error {
	s, err := powerOpen(fs)
	if err != nil {
		return err
	}
	if _, err := live(rand.New(rand.NewPCG(seed, 7)), s, fs, &pmodel{}, faultSteps); err != nil {
		return err
	}
	return s.Close()
}

// faultSteps is the length of the workload: long enough to compact
// segments away.
const faultSteps = 80

type faultRun struct {
	seed  uint64
	op    crashfs.Op
	nth   int
	errno error
	crash bool // recover after a power failure rather than a Close
	// surfaced is set when a call into the Storage returned the fault
	// (rather than Open, or a path that may ignore it).
	surfaced bool
}

func (r *faultRun) String() string {
	how := "close"
	if r.crash {
		how = "crash"
	}
	return fmt.Sprintf("%v on %s #%d, then %s", r.errno, r.op, r.nth, how)
}

func (r *faultRun) run() error {
	fs := crashfs.New()
	fs.InjectFault(r.op, r.nth, r.errno)
	rng := rand.New(rand.NewPCG(r.seed, 7))
	m := &pmodel{}
	s, openFailed, err := openDespiteFault(r.errno, func() (*wal.Storage, error) { return powerOpen(fs) })
	if err != nil {
		return err
	}
	var failed *pstep
	for range faultSteps {
		st := genStep(rng, m)
		if err := st.run(s); err != nil {
			if !errors.Is(err, r.errno) || errors.Is(err, wal.ErrFailed) {
				return fmt.Errorf("%v returned %v", &st, err)
			}
			failed, r.surfaced = &st, true
			break
		}
		*m = m.after(&st)
	}
	if failed != nil {
		if err := checkFailStop(rng, s, m, r.errno); err != nil {
			return err
		}
	} else if fs.Count(r.op) >= r.nth && !openFailed && r.op != crashfs.OpRemove {
		// Only the removal of a superseded snapshot file may fail
		// unnoticed: Open removes it again.
		return fmt.Errorf("the fault hit no call into the Storage")
	}
	if r.crash {
		fs.Crash(crashfs.DropUnsynced, 0)
	} else if err := s.Close(); err != nil && failed == nil {
		return fmt.Errorf("close: %w", err)
	}
	if s, err = powerOpen(fs); err != nil {
		return fmt.Errorf("reopen: %w", err)
	}
	got, err := readView(s)
	if err != nil {
		return fmt.Errorf("read back: %w", err)
	}
	ok := false
	for _, want := range m.allowed(failed) {
		ok = ok || matches(got, want, m.floor)
	}
	if !ok {
		return fmt.Errorf("reopened after a failed %v: %s, want %s or the next state", failed, describeView(got), describeView(m.pview))
	}
	*m = pmodel{pview: got, base: got.snap.Metadata.Index, floor: got.hs.Commit}
	if _, err := live(rng, s, fs, m, 10); err != nil {
		return fmt.Errorf("after reopening: %w", err)
	}
	return s.Close()
}

// openDespiteFault opens a log on a file system with a fault injected. If
// the open fails with the injected errno, it is tried once more, and must
// then work; openFailed says whether the first one failed.
func openDespiteFault[L any](errno error, open func() (L, error)) (l L, openFailed bool, err error) {
	if l, err = open(); err == nil {
		return l, false, nil
	}
	if !errors.Is(err, errno) {
		return l, true, fmt.Errorf("open: %w", err)
	}
	if l, err = open(); err != nil {
		return l, true, fmt.Errorf("open after a failed open: %w", err)
	}
	return l, true, nil
}

// checkFailStop checks a Storage after a write failed with errno: no
// write is acknowledged, reads serve what was stored.
func checkFailStop(rng *rand.Rand, s *wal.Storage, m *pmodel, errno error) error {
	for range 3 {
		st := genStep(rng, m)
		if err := st.run(s); !errors.Is(err, wal.ErrFailed) || !errors.Is(err, errno) {
			return fmt.Errorf("after a failure, %v returned %v, want ErrFailed wrapping %v", &st, err, errno)
		}
	}
	if hs := s.HardState(); hs != m.hs {
		return fmt.Errorf("after a failure, hard state %+v, want %+v", hs, m.hs)
	}
	// The model keeps the entries after the snapshot only.
	first, _ := s.FirstIndex()
	first = max(first, m.snap.Metadata.Index+1)
	last, _ := s.LastIndex()
	if last != m.last() {
		return fmt.Errorf("after a failure, last index %d, want %d", last, m.last())
	}
	if first > last {
		return nil
	}
	ents, err := s.Entries(first, last+1, 1<<62)
	if err != nil {
		return fmt.Errorf("after a failure, read entries: %w", err)
	}
	off := first - m.snap.Metadata.Index - 1
	for i := range ents {
		if !matches(pview{ents: ents[i : i+1]}, pview{ents: m.ents[off+uint64(i) : off+uint64(i)+1]}, 0) {
			return fmt.Errorf("after a failure, entry %d reads back differently", first+uint64(i))
		}
	}
	return nil
}

// TestSnapshotFileAheadOfLog: a Save of a received snapshot wrote the
// snapshot's file but failed before its record in the log. After a crash
// and a reopen, the log restarts after the snapshot, and the entries
// saved next are there at the next reopen.
func TestSnapshotFileAheadOfLog(t *testing.T) {
	fs := crashfs.New()
	s, err := powerOpen(fs)
	if err != nil {
		t.Fatal(err)
	}
	m := &pmodel{}
	steps := []pstep{
		{hs: pb.HardState{Term: 1, Vote: 1, Commit: 1}, ents: []pb.Entry{{Term: 1, Index: 1}, {Term: 1, Index: 2}}},
		{hs: pb.HardState{Term: 2, Vote: 1, Commit: 10}, snap: pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 10, Term: 2}}},
		{hs: pb.HardState{Term: 2, Vote: 1, Commit: 11}, ents: []pb.Entry{{Term: 2, Index: 11}, {Term: 2, Index: 12}}},
	}
	if err := steps[0].run(s); err != nil {
		t.Fatal(err)
	}
	*m = m.after(&steps[0])
	fs.InjectFault(crashfs.OpWrite, 2, syscall.EIO) // the snapshot file, then the log
	if err := steps[1].run(s); !errors.Is(err, syscall.EIO) {
		t.Fatalf("the Save of the snapshot: %v, want EIO", err)
	}
	fs.Crash(crashfs.DropUnsynced, 0)
	if s, err = powerOpen(fs); err != nil {
		t.Fatal(err)
	}
	got, err := readView(s)
	if err != nil {
		t.Fatal(err)
	}
	if got.snap.Metadata.Index != 10 || len(got.ents) != 0 {
		t.Fatalf("reopened: %s, want the snapshot at 10 and no entries", describeView(got))
	}
	*m = pmodel{pview: got, base: 10, floor: got.hs.Commit}
	if err := steps[2].run(s); err != nil {
		t.Fatal(err)
	}
	*m = m.after(&steps[2])
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = powerOpen(fs); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err = readView(s); err != nil || !matches(got, m.pview, m.hs.Commit) {
		t.Fatalf("reopened: %s (%v), want %s", describeView(got), err, describeView(m.pview))
	}
}
