package wal_test

import (
	"bytes"
	"fmt"
	"testing"

	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/wal"
	"github.com/raftcore/raft/wal/crashfs"
)

// notNeeded are the sync sites the log does not rely on for safety: a
// crash that loses the directory sync after Compact deleted segments
// brings back segments the snapshot covers, which Open replays and drops
// again.
var notNeeded = map[string]bool{"compact-dir": true}

// TestPowerLossNeedsEverySync disables each sync the log relies on in
// turn and shows that the power-loss tests then lose an acknowledged Save
// or leave a log that does not reopen: every sync is needed, and the tests
// would notice one going missing. The one sync that is not needed is shown
// not to be. Open's syncs of what it read are needed after a process died
// without a power failure (reopenScenarios).
func TestPowerLossNeedsEverySync(t *testing.T) {
	// Fixed: the first 400 crash points and 200 kill points from seed 1
	// catch every site.
	runs, err := powerRuns(400, 1)
	if err != nil {
		t.Fatal(err)
	}
	kills, err := killRuns(200, 1)
	if err != nil {
		t.Fatal(err)
	}
	runs = append(runs, kills...)
	for _, site := range wal.SyncSitesForTest() {
		t.Run(site, func(t *testing.T) {
			restore := wal.SkipSyncForTest(site)
			defer restore()
			err := tornBeforeRotation()
			for i := 0; err == nil && i < len(runs); i++ {
				if err = runs[i].run(); err != nil {
					err = fmt.Errorf("%v: %w", runs[i], err)
				}
			}
			if err == nil {
				// Last: without the sync a scenario's injected error
				// stands for, the scenario fails for that reason.
				err = allReopenScenarios()
			}
			switch {
			case notNeeded[site] && err != nil:
				t.Errorf("the sync %q was thought unneeded, but without it: %v", site, err)
			case notNeeded[site]:
				t.Logf("not needed: %d runs pass without it", len(runs))
			case err == nil:
				t.Errorf("no run noticed the sync %q missing", site)
			default:
				t.Logf("caught: %v", err)
			}
		})
	}
}

// TestPowerLossTornBeforeRotation: a commit-only Save is written but not
// synced, then the next Save starts a new segment. A crash may tear that
// record, which Open accepts only at the end of the log, not in a full
// segment: the full segment must be synced before the next one starts.
func TestPowerLossTornBeforeRotation(t *testing.T) {
	if err := tornBeforeRotation(); err != nil {
		t.Fatal(err)
	}
}

func tornBeforeRotation() error {
	// The first entry's size moves the commit-only record across a
	// sector boundary; crashes tear it or scramble its sectors.
	for size := 400; size < 520; size += 8 {
		for seed := range uint64(12) {
			for _, mode := range []crashfs.Mode{crashfs.TearWrites, crashfs.ScrambleSectors} {
				if err := tornBeforeRotationOnce(size, mode, seed); err != nil {
					return fmt.Errorf("entry of %d bytes, %s crash (seed %d): %w", size, mode, seed, err)
				}
			}
		}
	}
	return nil
}

func tornBeforeRotationOnce(size int, mode crashfs.Mode, seed uint64) error {
	fs := crashfs.New()
	s, err := powerOpen(fs)
	if err != nil {
		return err
	}
	ents := []pb.Entry{
		{Term: 1, Index: 1, Data: bytes.Repeat([]byte{'a'}, size)},
		{Term: 1, Index: 2, Data: bytes.Repeat([]byte{'b'}, 3800)},
	}
	steps := []pstep{
		{hs: pb.HardState{Term: 1, Vote: 1}, ents: ents[:1]},
		{hs: pb.HardState{Term: 1, Vote: 1, Commit: 1}},
		{hs: pb.HardState{Term: 1, Vote: 1, Commit: 1}, ents: ents[1:]},
	}
	m := &pmodel{}
	for i := range steps {
		if err := steps[i].run(s); err != nil {
			return err
		}
		*m = m.after(&steps[i])
	}
	fs.Crash(mode, seed)
	if s, err = powerOpen(fs); err != nil {
		return err
	}
	defer s.Close()
	got, err := readView(s)
	if err != nil {
		return err
	}
	if !matches(got, m.pview, m.floor) {
		return fmt.Errorf("reopened: %s, want %s", describeView(got), describeView(m.pview))
	}
	return nil
}
