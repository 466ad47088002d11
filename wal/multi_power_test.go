package wal_test

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/raftcore/raft/wal"
	"github.com/raftcore/raft/wal/crashfs"
)

// TestMultiPowerLoss is TestPowerLoss for a MultiLog: seeded workloads of
// Saves of several groups at once, per-group snapshots received and
// created, compactions deleting segments, new groups and removed ones, in
// 4 KiB segments; the power is cut before every file system operation of
// the first life, and again during Open and in a second life. After each
// crash every group must hold every acknowledged Save, in order, with its
// hard state (a commit index at least that of the last synced Save of any
// group it was saved with), and nothing that was never written; a removed
// group must stay removed.
//
// TestMultiPowerLossAfterKill kills the process at each of those points
// instead, and cuts the power in the second life, as
// TestPowerLossAfterKill does for one log.

const multiPowerDir = "/data/multi"

var multiPowerOptions = wal.Options{SegmentSize: 4096}

func multiPowerOpen(fs *crashfs.FS) (*wal.MultiLog, error) {
	o := multiPowerOptions
	o.FS = fs
	return wal.OpenMulti(multiPowerDir, o)
}

// mstep is one call into a MultiLog: a Save of several groups' steps
// (all stepSave), one group's CreateSnapshot or Compact, or a removal.
type mstep struct {
	ids    []uint64
	steps  []pstep
	remove bool // RemoveGroup(ids[0])
}

func (st *mstep) String() string {
	if st == nil {
		return "nothing"
	}
	if st.remove {
		return fmt.Sprintf("RemoveGroup(%d)", st.ids[0])
	}
	var parts []string
	for i, id := range st.ids {
		parts = append(parts, fmt.Sprintf("group %d: %v", id, &st.steps[i]))
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

// part returns the step of group id in st, or nil.
func (st *mstep) part(id uint64) *pstep {
	if st == nil || st.remove {
		return nil
	}
	if i := slices.Index(st.ids, id); i >= 0 {
		return &st.steps[i]
	}
	return nil
}

func (st *mstep) run(ml *wal.MultiLog) error {
	if st.remove {
		return ml.RemoveGroup(st.ids[0])
	}
	if st.steps[0].kind != stepSave {
		g, err := ml.Group(st.ids[0])
		if err != nil {
			return err
		}
		p := &st.steps[0]
		if p.kind == stepCreateSnapshot {
			_, err = g.CreateSnapshot(p.index, p.cs, p.data)
			return err
		}
		return g.Compact(p.index)
	}
	ups := make([]wal.GroupUpdate, len(st.ids))
	for i, id := range st.ids {
		p := &st.steps[i]
		ups[i] = wal.GroupUpdate{GroupID: id, HardState: p.hs, Entries: p.ents, Snapshot: p.snap}
	}
	return ml.Save(ups)
}

// mmodel is the workload's state: a pmodel per live group, the removed
// groups, the next new group's ID.
type mmodel struct {
	groups  map[uint64]pmodel
	removed []uint64
	next    uint64
}

func newMModel() *mmodel { return &mmodel{groups: map[uint64]pmodel{}, next: 1} }

func (m *mmodel) ids() []uint64 { return slices.Sorted(maps.Keys(m.groups)) }

func genMStep(rng *rand.Rand, m *mmodel) mstep {
	ids := m.ids()
	r := rng.IntN(100)
	if r < 3 && len(ids) > 1 {
		return mstep{ids: []uint64{ids[rng.IntN(len(ids))]}, remove: true}
	}
	if r < 10 || len(ids) == 0 {
		ids = append(ids, m.next)
	}
	rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	ids = ids[:1+rng.IntN(len(ids))]
	st := mstep{}
	for _, id := range ids {
		gm := m.groups[id]
		p := genStep(rng, &gm)
		if p.kind != stepSave {
			return mstep{ids: []uint64{id}, steps: []pstep{p}}
		}
		st.ids = append(st.ids, id)
		st.steps = append(st.steps, p)
	}
	return st
}

// after returns the state once st is done. A Save that syncs makes every
// group's part durable, commit index included.
func (m *mmodel) after(st *mstep) *mmodel {
	n := &mmodel{groups: maps.Clone(m.groups), removed: slices.Clone(m.removed), next: m.next}
	if st.remove {
		delete(n.groups, st.ids[0])
		n.removed = append(n.removed, st.ids[0])
		slices.Sort(n.removed)
		return n
	}
	synced := false
	for i, id := range st.ids {
		before := n.groups[id]
		after := before.after(&st.steps[i])
		p := &st.steps[i]
		synced = synced || p.kind == stepSave && (len(p.ents) > 0 || p.snap.Metadata.Index > 0 || p.hs.Term != before.hs.Term || p.hs.Vote != before.hs.Vote)
		n.groups[id] = after
		if id >= n.next {
			n.next = id + 1
		}
	}
	if synced {
		for _, id := range st.ids {
			g := n.groups[id]
			g.floor = g.hs.Commit
			n.groups[id] = g
		}
	}
	return n
}

// mlive runs up to n steps from m; it returns the step the power was cut
// in, or nil.
func mlive(rng *rand.Rand, ml *wal.MultiLog, m **mmodel, n int) (*mstep, error) {
	for range n {
		st := genMStep(rng, *m)
		if err := st.run(ml); err != nil {
			if !errors.Is(err, crashfs.ErrPowerCut) {
				return &st, fmt.Errorf("%v: %w", &st, err)
			}
			return &st, nil
		}
		*m = (*m).after(&st)
	}
	return nil, nil
}

type multiPowerRun struct {
	seed    uint64
	cut     int
	mode    crashfs.Mode
	kill    bool // as in powerRun
	ops     int
	corrupt bool
}

func (r *multiPowerRun) String() string {
	if r.kill {
		return fmt.Sprintf("seed %d, process killed before operation %d, then %s", r.seed, r.cut, r.mode)
	}
	return fmt.Sprintf("seed %d, power cut before operation %d, %s", r.seed, r.cut, r.mode)
}

// interrupt ends a life as powerRun.interrupt does.
func (r *multiPowerRun) interrupt(rng *rand.Rand, fs *crashfs.FS, life int) {
	if r.kill && life == 1 {
		fs.Kill()
		return
	}
	fs.Crash(r.mode, rng.Uint64())
}

// check compares the reopened log with what m and the step in flight
// allow, and returns the model of what it holds.
func checkMulti(ml *wal.MultiLog, m *mmodel, inflight *mstep) (*mmodel, error) {
	removed := ml.Removed()
	wantRemoved := m.removed
	if inflight != nil && inflight.remove && slices.Contains(removed, inflight.ids[0]) {
		wantRemoved = m.after(inflight).removed
	}
	if fmt.Sprint(removed) != fmt.Sprint(wantRemoved) {
		return nil, fmt.Errorf("removed groups %v, want %v", removed, wantRemoved)
	}
	ids := m.ids()
	if inflight != nil && !inflight.remove {
		for _, id := range inflight.ids {
			if _, ok := m.groups[id]; !ok {
				ids = append(ids, id)
			}
		}
	}
	found := &mmodel{groups: map[uint64]pmodel{}, removed: removed, next: m.next}
	for _, id := range ids {
		if slices.Contains(removed, id) {
			continue
		}
		g, err := ml.Group(id)
		if err != nil {
			return nil, err
		}
		got, err := readView(g)
		if err != nil {
			return nil, fmt.Errorf("group %d: read back: %w", id, err)
		}
		gm := m.groups[id]
		ok := false
		for _, want := range gm.allowed(inflight.part(id)) {
			if matches(got, want, gm.floor) {
				ok = true
				break
			}
		}
		if !ok {
			var b strings.Builder
			fmt.Fprintf(&b, "group %d holds\n\t%s\nbut may only hold (commit from %d)", id, describeView(got), gm.floor)
			for _, want := range gm.allowed(inflight.part(id)) {
				fmt.Fprintf(&b, "\n\t%s", describeView(want))
			}
			return nil, errors.New(b.String())
		}
		found.groups[id] = pmodel{pview: got, base: got.snap.Metadata.Index, floor: got.hs.Commit}
		if id >= found.next {
			found.next = id + 1
		}
	}
	return found, nil
}

// recover crashes fs (and sometimes again during Open), reopens and
// checks; m becomes what was found.
func (r *multiPowerRun) recover(rng *rand.Rand, fs *crashfs.FS, m **mmodel, inflight *mstep, life int) (*wal.MultiLog, error) {
	r.interrupt(rng, fs, life)
	if rng.IntN(3) == 0 {
		fs.CutPowerAfter(rng.IntN(6))
		if ml, err := multiPowerOpen(fs); err == nil {
			ml.Close()
		}
		r.interrupt(rng, fs, life)
	}
	ml, err := multiPowerOpen(fs)
	if err != nil {
		if r.mode == crashfs.ScrambleSectors && errors.Is(err, wal.ErrCorrupt) && inLastSegmentOf(fs, multiPowerDir, err) {
			r.corrupt = true
			return nil, nil
		}
		return nil, fmt.Errorf("life %d: reopen after a crash during %v: %w", life, inflight, err)
	}
	found, err := checkMulti(ml, *m, inflight)
	if err != nil {
		ml.Close()
		return nil, fmt.Errorf("life %d: crash during %v: %w", life, inflight, err)
	}
	*m = found
	return ml, nil
}

func (r *multiPowerRun) run() error {
	fs := crashfs.New()
	rng := rand.New(rand.NewPCG(r.seed, 11))
	m := newMModel()
	if r.cut > 0 {
		fs.CutPowerAfter(r.cut - 1)
	}
	var inflight *mstep
	ml, err := multiPowerOpen(fs)
	switch {
	case err == nil:
		if inflight, err = mlive(rng, ml, &m, powerSteps); err != nil {
			return err
		}
	case !errors.Is(err, crashfs.ErrPowerCut):
		return fmt.Errorf("open: %w", err)
	}
	if r.cut == 0 {
		r.ops = fs.Ops()
		return ml.Close()
	}
	if !fs.PowerCut() {
		return nil
	}
	if ml, err = r.recover(rng, fs, &m, inflight, 1); ml == nil {
		return err
	}
	fs.CutPowerAfter(rng.IntN(60))
	if inflight, err = mlive(rng, ml, &m, 20); err != nil {
		return err
	}
	if !fs.PowerCut() {
		fs.CutPowerAfter(-1)
	}
	if ml, err = r.recover(rng, fs, &m, inflight, 2); ml == nil {
		return err
	}
	if _, err = mlive(rng, ml, &m, 10); err != nil {
		return err
	}
	if err := ml.Close(); err != nil {
		return fmt.Errorf("life 3: close: %w", err)
	}
	if ml, err = multiPowerOpen(fs); err != nil {
		return fmt.Errorf("life 3: reopen after Close: %w", err)
	}
	defer ml.Close()
	if _, err := checkMulti(ml, m, nil); err != nil {
		return fmt.Errorf("life 3: reopened after Close: %w", err)
	}
	return nil
}

// multiPowerRuns returns about points runs, as powerRuns does.
func multiPowerRuns(points int, seed uint64) ([]*multiPowerRun, error) {
	var runs []*multiPowerRun
	for len(runs) < points {
		count := &multiPowerRun{seed: seed}
		if err := count.run(); err != nil {
			return nil, fmt.Errorf("seed %d without a crash: %w", seed, err)
		}
		for cut := 1; cut <= count.ops && len(runs) < points; cut++ {
			mode := []crashfs.Mode{crashfs.DropUnsynced, crashfs.TearWrites}[cut%2]
			if cut%5 == 0 {
				mode = crashfs.ScrambleSectors
			}
			runs = append(runs, &multiPowerRun{seed: seed, cut: cut, mode: mode})
		}
		seed++
	}
	return runs, nil
}

// multiKillRuns returns about points kill runs, as killRuns does.
func multiKillRuns(points int, seed uint64) ([]*multiPowerRun, error) {
	runs, err := multiPowerRuns(points, seed)
	for i, r := range runs {
		r.kill = true
		r.mode = []crashfs.Mode{crashfs.DropUnsynced, crashfs.TearWrites}[i%2]
	}
	return runs, err
}

func TestMultiPowerLossAfterKill(t *testing.T) {
	runs, err := multiKillRuns(defaultPowerPoints()/2, *powerSeed)
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

func TestMultiPowerLoss(t *testing.T) {
	runs, err := multiPowerRuns(defaultPowerPoints(), *powerSeed)
	if err != nil {
		t.Fatal(err)
	}
	corrupt := 0
	for _, r := range runs {
		if err := r.run(); err != nil {
			t.Fatalf("%v: %v", r, err)
		}
		if r.corrupt {
			corrupt++
		}
	}
	t.Logf("%d crash points; %d reopens refused a log whose last segment had scrambled sectors", len(runs), corrupt)
}

// multiNotNeeded: as for one group's log, the directory sync after
// deleting segments is not needed for safety.
var multiNotNeeded = map[string]bool{"compact-dir": true}

// TestMultiPowerLossNeedsEverySync disables each sync in turn and shows
// that TestMultiPowerLoss's runs then lose an acknowledged Save or leave a
// log that does not reopen.
func TestMultiPowerLossNeedsEverySync(t *testing.T) {
	runs, err := multiPowerRuns(400, 1) // seed 3 is the first to catch a missing "open-tail" sync
	if err != nil {
		t.Fatal(err)
	}
	kills, err := multiKillRuns(200, 1)
	if err != nil {
		t.Fatal(err)
	}
	runs = append(runs, kills...)
	for _, site := range wal.SyncSitesForTest() {
		t.Run(site, func(t *testing.T) {
			restore := wal.SkipSyncForTest(site)
			defer restore()
			var err error
			for i := 0; err == nil && i < len(runs); i++ {
				if err = runs[i].run(); err != nil {
					err = fmt.Errorf("%v: %w", runs[i], err)
				}
			}
			if err == nil {
				err = reopenMultiAfterUnsyncedRename()
			}
			switch {
			case multiNotNeeded[site] && err != nil:
				t.Errorf("the sync %q was thought unneeded, but without it: %v", site, err)
			case multiNotNeeded[site]:
				t.Logf("not needed: %d runs pass without it", len(runs))
			case err == nil:
				t.Errorf("no run noticed the sync %q missing", site)
			default:
				t.Logf("caught: %v", err)
			}
		})
	}
}
