package wal_test

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"path"
	"strings"
	"testing"

	"github.com/raftcore/raft/wal"
	"github.com/raftcore/raft/wal/crashfs"
)

// TestPowerLoss cuts the power before every file system operation of
// seeded workloads (saves of every size, segment rotation in 4 KiB
// segments, received and created snapshots, compaction deleting
// segments), on a file system that keeps only what was synced, then
// reopens: every acknowledged Save must be there, in order, with its hard
// state, and nothing that was never written. Each run goes on from the
// reopened log, cuts the power again (sometimes during Open's repair) and
// checks again, then writes more, closes and reopens cleanly.
//
// TestPowerLossAfterKill starts the runs the same way but kills the
// process instead of cutting the power (what it wrote stays in the page
// cache, unsynced), and cuts the power only in the second life: what the
// restarted process read and built on must survive.

var (
	powerPoints = flag.Int("wal.power.points", 0, "crash points of TestPowerLoss (0: about 400, 120 with -short)")
	powerSeed   = flag.Uint64("wal.power.seed", 1, "first seed of TestPowerLoss")
)

const powerDir = "/data/node"

var powerOptions = wal.Options{SegmentSize: 4096, CacheSize: 1024}

// powerSteps is the length of the first life of a run: its file system
// operations are the crash points.
const powerSteps = 30

// powerRun is one run: a workload from seed, the power cut before
// file system operation cut of its first life.
type powerRun struct {
	seed uint64
	cut  int
	mode crashfs.Mode
	// kill: the first life ends with the process killed, not the power
	// cut; mode is the second life's power failure.
	kill bool
	// ops counts the first life's operations when cut is 0.
	ops int
	// corrupt is set when Open refused a log with sectors of unsynced
	// writes scrambled (allowed only in the last segment).
	corrupt bool
	// openCut counts the crashes during Open.
	openCut int
}

func (r *powerRun) String() string {
	if r.kill {
		return fmt.Sprintf("seed %d, process killed before operation %d, then %s", r.seed, r.cut, r.mode)
	}
	return fmt.Sprintf("seed %d, power cut before operation %d, %s", r.seed, r.cut, r.mode)
}

// interrupt ends a life: the power fails, or the process of the first
// life of a kill run dies.
func (r *powerRun) interrupt(rng *rand.Rand, fs *crashfs.FS, life int) {
	if r.kill && life == 1 {
		fs.Kill()
		return
	}
	fs.Crash(r.mode, rng.Uint64())
}

func powerOpen(fs *crashfs.FS) (*wal.Storage, error) {
	o := powerOptions
	o.FS = fs
	return wal.Open(powerDir, o)
}

// live runs up to n steps from m; it returns the step that failed (the
// power was cut during it) or nil.
func live(rng *rand.Rand, s *wal.Storage, fs *crashfs.FS, m *pmodel, n int) (*pstep, error) {
	for range n {
		st := genStep(rng, m)
		if err := st.run(s); err != nil {
			if !errors.Is(err, crashfs.ErrPowerCut) {
				return &st, fmt.Errorf("%v: %w", &st, err)
			}
			return &st, nil
		}
		*m = m.after(&st)
	}
	return nil, nil
}

// recover crashes fs, reopens it and checks the Storage against what m
// and inflight allow; m becomes what was found.
func (r *powerRun) recover(rng *rand.Rand, fs *crashfs.FS, m *pmodel, inflight *pstep, life int) (*wal.Storage, error) {
	r.interrupt(rng, fs, life)
	if rng.IntN(3) == 0 {
		// The power fails (or the process dies) again while Open
		// repairs the log.
		fs.CutPowerAfter(rng.IntN(6))
		s, err := powerOpen(fs)
		if err == nil {
			s.Close()
		} else if errors.Is(err, crashfs.ErrPowerCut) {
			r.openCut++
		}
		r.interrupt(rng, fs, life)
	}
	s, err := powerOpen(fs)
	if err != nil {
		if r.mode == crashfs.ScrambleSectors && errors.Is(err, wal.ErrCorrupt) && inLastSegment(fs, err) {
			r.corrupt = true
			return nil, nil
		}
		return nil, fmt.Errorf("life %d: reopen after a crash during %v: %w", life, inflight, err)
	}
	got, err := readView(s)
	if err != nil {
		return nil, fmt.Errorf("life %d: read back: %w", life, err)
	}
	for _, want := range m.allowed(inflight) {
		if matches(got, want, m.floor) {
			*m = pmodel{pview: got, base: got.snap.Metadata.Index, floor: got.hs.Commit}
			return s, nil
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "life %d: crash during %v: reopened log holds\n\t%s\nbut may only hold (commit from %d)", life, inflight, describeView(got), m.floor)
	for _, want := range m.allowed(inflight) {
		fmt.Fprintf(&b, "\n\t%s", describeView(want))
	}
	return nil, errors.New(b.String())
}

// inLastSegment reports whether the corruption err reports is in the
// newest segment, where the unsynced writes of the last Save are.
func inLastSegment(fs *crashfs.FS, err error) bool { return inLastSegmentOf(fs, powerDir, err) }

func inLastSegmentOf(fs *crashfs.FS, dir string, err error) bool {
	var ce *wal.CorruptError
	if !errors.As(err, &ce) {
		return false
	}
	names, _ := fs.ReadDir(dir)
	newest := ""
	for _, n := range names {
		if strings.HasSuffix(n, ".wal") {
			newest = n
		}
	}
	return path.Base(ce.File) == newest
}

// run runs the whole of r and returns the first violation.
func (r *powerRun) run() error {
	fs := crashfs.New()
	rng := rand.New(rand.NewPCG(r.seed, 7))
	m := &pmodel{}
	if r.cut > 0 {
		fs.CutPowerAfter(r.cut - 1)
	}
	var inflight *pstep
	s, err := powerOpen(fs)
	switch {
	case err == nil:
		if inflight, err = live(rng, s, fs, m, powerSteps); err != nil {
			return err
		}
	case !errors.Is(err, crashfs.ErrPowerCut):
		return fmt.Errorf("open: %w", err)
	}
	if r.cut == 0 {
		r.ops = fs.Ops()
		return s.Close()
	}
	if !fs.PowerCut() {
		return nil // past the end of the first life
	}
	// Second life: reopen, check, write on and crash again somewhere.
	if s, err = r.recover(rng, fs, m, inflight, 1); s == nil {
		return err
	}
	fs.CutPowerAfter(rng.IntN(60))
	if inflight, err = live(rng, s, fs, m, 20); err != nil {
		return err
	}
	if !fs.PowerCut() {
		fs.CutPowerAfter(-1)
	}
	if s, err = r.recover(rng, fs, m, inflight, 2); s == nil {
		return err
	}
	// Third life: write more, close, and reopen without a crash.
	if _, err = live(rng, s, fs, m, 10); err != nil {
		return err
	}
	if err := s.Close(); err != nil {
		return fmt.Errorf("life 3: close: %w", err)
	}
	s, err = powerOpen(fs)
	if err != nil {
		return fmt.Errorf("life 3: reopen after Close: %w", err)
	}
	defer s.Close()
	got, err := readView(s)
	if err != nil {
		return fmt.Errorf("life 3: read back: %w", err)
	}
	if !matches(got, m.pview, m.hs.Commit) {
		return fmt.Errorf("life 3: reopened after Close: %s, want %s", describeView(got), describeView(m.pview))
	}
	return nil
}

// powerRuns returns about points runs: every operation of the first life
// of consecutive seeds, in turn dropping and tearing unsynced writes, and
// every fifth scrambling their sectors.
func powerRuns(points int, seed uint64) ([]*powerRun, error) {
	var runs []*powerRun
	for len(runs) < points {
		count := &powerRun{seed: seed}
		if err := count.run(); err != nil {
			return nil, fmt.Errorf("seed %d without a crash: %w", seed, err)
		}
		for cut := 1; cut <= count.ops && len(runs) < points; cut++ {
			mode := []crashfs.Mode{crashfs.DropUnsynced, crashfs.TearWrites}[cut%2]
			if cut%5 == 0 {
				mode = crashfs.ScrambleSectors
			}
			runs = append(runs, &powerRun{seed: seed, cut: cut, mode: mode})
		}
		seed++
	}
	return runs, nil
}

// killRuns returns about points kill runs: every operation of the first
// life of consecutive seeds, the second life's power failure in turn
// dropping and tearing unsynced writes.
func killRuns(points int, seed uint64) ([]*powerRun, error) {
	runs, err := powerRuns(points, seed)
	for i, r := range runs {
		r.kill = true
		r.mode = []crashfs.Mode{crashfs.DropUnsynced, crashfs.TearWrites}[i%2]
	}
	return runs, err
}

func defaultPowerPoints() int {
	switch {
	case *powerPoints > 0:
		return *powerPoints
	case testing.Short():
		return 120
	}
	return 400
}

func TestPowerLoss(t *testing.T) {
	runs, err := powerRuns(defaultPowerPoints(), *powerSeed)
	if err != nil {
		t.Fatal(err)
	}
	corrupt, openCut := 0, 0
	for _, r := range runs {
		if err := r.run(); err != nil {
			t.Fatalf("%v: %v", r, err)
		}
		if r.corrupt {
			corrupt++
		}
		openCut += r.openCut
	}
	if openCut < len(runs)/10 {
		t.Errorf("only %d crashes during Open in %d runs", openCut, len(runs))
	}
	t.Logf("%d crash points, %d more during Open; %d reopens refused a log whose last segment had scrambled sectors", len(runs), openCut, corrupt)
}

func TestPowerLossAfterKill(t *testing.T) {
	runs, err := killRuns(defaultPowerPoints()/2, *powerSeed)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		if err := r.run(); err != nil {
			t.Fatalf("%v: %v", r, err)
		}
	}
	t.Logf("%d kill points", len(runs))
}
