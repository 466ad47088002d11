package wal

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
)

// multiModel is the reference for a MultiLog: one refLog per live group,
// with the term each writes in, and the removed groups.
type multiModel struct {
	groups  map[uint64]*refLog
	terms   map[uint64]uint64
	removed []uint64
}

func newMultiModel() *multiModel {
	return &multiModel{groups: map[uint64]*refLog{}, terms: map[uint64]uint64{}}
}

func (m *multiModel) group(id uint64) *refLog {
	r := m.groups[id]
	if r == nil {
		r = &refLog{all: make([]pb.Entry, 1)}
		m.groups[id] = r
		m.terms[id] = 1
	}
	return r
}

// genUpdate returns a random update of group id valid for its reference,
// as runModel's Saves: appends, replaced suffixes, snapshots from a leader.
func (m *multiModel) genUpdate(rng *rand.Rand, id uint64) GroupUpdate {
	r := m.group(id)
	if rng.IntN(8) == 0 {
		m.terms[id]++
		term := m.terms[id]
		idx := r.snap.Metadata.Index + 1 + rng.Uint64N(r.last()+10-r.snap.Metadata.Index)
		snap := pb.Snapshot{Data: fmt.Appendf(nil, "group %d at %d", id, idx), Metadata: pb.SnapshotMetadata{
			Index: idx, Term: term, ConfState: pb.ConfState{Voters: []uint64{1, 2, uint64(3 + rng.IntN(3))}},
		}}
		ents := randomEntries(rng, idx+1, idx+1+uint64(rng.IntN(5)), term)
		return GroupUpdate{GroupID: id, HardState: pb.HardState{Term: term, Commit: idx}, Entries: ents, Snapshot: snap}
	}
	lo := max(r.base, r.snap.Metadata.Index, r.hs.Commit) + 1
	from := r.last() + 1
	if from > lo && rng.IntN(3) == 0 {
		from = lo + rng.Uint64N(from-lo)
		m.terms[id]++
	}
	term := m.terms[id]
	ents := randomEntries(rng, from, from+uint64(rng.IntN(8)), term)
	hs := pb.HardState{Term: term, Vote: 1, Commit: r.hs.Commit}
	if newLast := from + uint64(len(ents)) - 1; newLast > hs.Commit && rng.IntN(2) == 0 {
		hs.Commit += rng.Uint64N(newLast - hs.Commit + 1)
	}
	return GroupUpdate{GroupID: id, HardState: hs, Entries: ents}
}

// check compares every group of ml with the model, and the log's own
// bookkeeping with what it must be.
func (m *multiModel) check(t *testing.T, rng *rand.Rand, ml *MultiLog) {
	t.Helper()
	var ids []uint64
	for id, r := range m.groups {
		if !raft.IsEmptyHardState(r.hs) || r.last() > 0 || r.snap.Metadata.Index > 0 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	require.Equal(t, fmt.Sprint(ids), fmt.Sprint(ml.Groups()), "Groups")
	require.Equal(t, fmt.Sprint(m.removed), fmt.Sprint(ml.Removed()), "Removed")
	for id, r := range m.groups {
		g, err := ml.Group(id)
		require.NoError(t, err)
		r.check(t, rng, g)
	}
	checkPins(t, ml)
}

// checkPins checks that the pin counts are those of the groups' pins and
// that every group's pin is at or before the segment of the first entry
// a restart needs.
func checkPins(t *testing.T, ml *MultiLog) {
	t.Helper()
	ml.wmu.Lock()
	defer ml.wmu.Unlock()
	want := map[uint64]int{}
	for id, g := range ml.groups {
		if g.pin != 0 {
			want[g.pin]++
		}
		need := min(g.base, g.snap.Metadata.Index) + 1
		if need > g.base && need <= g.lastIndex() {
			require.NotZero(t, g.pin, "group %d needs entry %d but pins no segment", id, need)
			require.LessOrEqual(t, g.pin, g.loc(need).seq, "group %d pins a segment after the one of entry %d", id, need)
		}
		if g.pin != 0 {
			require.GreaterOrEqual(t, g.pin, ml.segs[0].seq, "group %d pins a deleted segment", id)
		}
		if len(g.cache) > 0 {
			require.Equal(t, g.lastIndex(), g.cacheFirst+uint64(len(g.cache))-1, "group %d: the cache ends at the last index", id)
			require.Greater(t, g.cacheFirst, g.base, "group %d: the cache holds compacted entries", id)
			for i, e := range g.cache {
				require.Equal(t, g.cacheFirst+uint64(i), e.Index, "group %d: cache", id)
			}
		}
	}
	require.Equal(t, want, ml.pins)
}

// TestMultiLogMatchesModel runs random Saves of several groups at once,
// per-group snapshots and compactions, group removals and reopenings
// against a MultiLog with small segments, and checks every group's reads
// against a reference log after each step.
func TestMultiLogMatchesModel(t *testing.T) {
	seeds := 6
	if testing.Short() {
		seeds = 3
	}
	for seed := range seeds {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			runMultiModel(t, uint64(seed), 150)
		})
	}
}

func runMultiModel(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, 9))
	dir := t.TempDir()
	// The syncs are the power-loss tests' business.
	opts := Options{SegmentSize: int64(4096 << rng.IntN(3)), NoSync: true}
	switch rng.IntN(3) {
	case 0:
		opts.CacheSize = -1
	case 1:
		opts.CacheSize = 1 + rng.IntN(8000) // a few entries of a few groups
	}
	ml, err := OpenMulti(dir, opts)
	require.NoError(t, err)
	defer func() {
		if ml != nil {
			ml.Close()
		}
	}()
	m := newMultiModel()
	nextID := uint64(1)
	live := func() []uint64 {
		var ids []uint64
		for id := range m.groups {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		return ids
	}
	for step := range steps {
		switch op := rng.IntN(40); {
		case op < 24 || len(m.groups) == 0: // one Save of several groups
			ids := live()
			if len(ids) == 0 || rng.IntN(6) == 0 {
				ids = append(ids, nextID)
				nextID++
			}
			rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
			ids = ids[:1+rng.IntN(len(ids))]
			var ups []GroupUpdate
			for _, id := range ids {
				ups = append(ups, m.genUpdate(rng, id))
			}
			require.NoError(t, ml.Save(ups), "step %d", step)
			for _, u := range ups {
				m.group(u.GroupID).save(u.HardState, u.Entries, u.Snapshot)
			}
		case op < 29: // snapshot a group's state machine at its commit index
			id := live()[rng.IntN(len(m.groups))]
			r := m.groups[id]
			i := r.hs.Commit
			if i <= r.snap.Metadata.Index || i < r.base {
				continue
			}
			g, err := ml.Group(id)
			require.NoError(t, err)
			snap, err := g.CreateSnapshot(i, nil, fmt.Appendf(nil, "group %d applied %d", id, i))
			require.NoError(t, err)
			r.snap = snap
		case op < 35: // compact a group before its commit index
			id := live()[rng.IntN(len(m.groups))]
			r := m.groups[id]
			if r.hs.Commit <= r.base {
				continue
			}
			c := r.base + 1 + rng.Uint64N(r.hs.Commit-r.base)
			g, err := ml.Group(id)
			require.NoError(t, err)
			require.NoError(t, g.Compact(c), "step %d", step)
			r.baseTerm = r.all[c].Term
			r.base = c
		case op < 36: // remove a group
			id := live()[rng.IntN(len(m.groups))]
			g, err := ml.Group(id)
			require.NoError(t, err)
			require.NoError(t, ml.RemoveGroup(id))
			_, err = g.LastIndex()
			require.ErrorIs(t, err, ErrGroupRemoved)
			require.ErrorIs(t, g.Save(pb.HardState{Term: 99}, nil, pb.Snapshot{}), ErrGroupRemoved)
			_, err = ml.Group(id)
			require.ErrorIs(t, err, ErrGroupRemoved)
			delete(m.groups, id)
			m.removed = append(m.removed, id)
			slices.Sort(m.removed)
		default:
			require.NoError(t, ml.Close())
			ml, err = OpenMulti(dir, opts)
			require.NoError(t, err, "reopen at step %d", step)
			for _, r := range m.groups {
				r.reopened()
			}
		}
		m.check(t, rng, ml)
	}
}

// TestMultiSaveChecksFirst: an invalid update anywhere in a Save writes
// nothing of any group.
func TestMultiSaveChecksFirst(t *testing.T) {
	ml, err := OpenMulti(t.TempDir(), Options{})
	require.NoError(t, err)
	defer ml.Close()
	ok := GroupUpdate{GroupID: 1, HardState: pb.HardState{Term: 1, Commit: 1}, Entries: []pb.Entry{{Index: 1, Term: 1}}}
	require.NoError(t, ml.RemoveGroup(3))
	for _, tc := range []struct {
		name string
		bad  GroupUpdate
		want error
	}{
		{"gap", GroupUpdate{GroupID: 2, Entries: []pb.Entry{{Index: 5, Term: 1}}}, raft.ErrUnavailable},
		{"removed group", GroupUpdate{GroupID: 3, HardState: pb.HardState{Term: 1}}, ErrGroupRemoved},
		{"twice", ok, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ml.Save([]GroupUpdate{ok, tc.bad})
			require.Error(t, err)
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
			}
			g, err := ml.Group(1)
			require.NoError(t, err)
			last, _ := g.LastIndex()
			require.Zero(t, last, "nothing of group 1 is written")
		})
	}
}

// saveGroups saves n entries of size bytes to each of groups 1...k, one
// Save per round, so that every segment holds entries of every group.
func saveGroups(t *testing.T, ml *MultiLog, k, rounds, size int) {
	t.Helper()
	for round := range rounds {
		var ups []GroupUpdate
		for id := uint64(1); id <= uint64(k); id++ {
			i := uint64(round + 1)
			ups = append(ups, GroupUpdate{GroupID: id,
				HardState: pb.HardState{Term: 1, Vote: 1, Commit: i},
				Entries:   []pb.Entry{{Index: i, Term: 1, Data: make([]byte, size)}}})
		}
		require.NoError(t, ml.Save(ups))
	}
}

// TestMultiSegmentsDeletedOnceEveryGroupCompacted: a segment holding
// entries of several groups stays until every one of them has snapshotted
// and compacted past it; the last group to do so deletes it. Reopened,
// every group has its log from its snapshot on.
func TestMultiSegmentsDeletedOnceEveryGroupCompacted(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: 4096}
	ml, err := OpenMulti(dir, opts)
	require.NoError(t, err)
	saveGroups(t, ml, 3, 60, 100)
	before, err := listNumbered(osFS{}, dir, segmentExt)
	require.NoError(t, err)
	require.Greater(t, len(before), 4)

	compact := func(id, i uint64) {
		g, err := ml.Group(id)
		require.NoError(t, err)
		_, err = g.CreateSnapshot(i, &pb.ConfState{Voters: []uint64{1}}, []byte("state"))
		require.NoError(t, err)
		require.NoError(t, g.Compact(i))
	}
	compact(1, 50)
	compact(2, 50)
	segs, _ := listNumbered(osFS{}, dir, segmentExt)
	require.Equal(t, before, segs, "group 3 still needs every segment")
	compact(3, 30)
	segs, _ = listNumbered(osFS{}, dir, segmentExt)
	require.Less(t, len(segs), len(before), "every group compacted past the first segments")
	require.Equal(t, before[len(before)-1], segs[len(segs)-1])
	require.NoError(t, ml.Close())

	ml, err = OpenMulti(dir, opts)
	require.NoError(t, err)
	defer ml.Close()
	for id, snap := range map[uint64]uint64{1: 50, 2: 50, 3: 30} {
		g, err := ml.Group(id)
		require.NoError(t, err)
		first, _ := g.FirstIndex()
		last, _ := g.LastIndex()
		require.Equal(t, snap+1, first, "group %d", id)
		require.Equal(t, uint64(60), last, "group %d", id)
		ents, err := g.Entries(first, last+1, 1<<30)
		require.NoError(t, err)
		require.Len(t, ents, int(last-snap))
		require.Equal(t, pb.HardState{Term: 1, Vote: 1, Commit: 60}, g.HardState())
	}
}

// TestMultiHardStatesSurviveDeletedSegments: a group that wrote only in
// the first segments keeps its hard state after they are deleted (every
// segment starts with every group's hard state).
func TestMultiHardStatesSurviveDeletedSegments(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: 4096}
	ml, err := OpenMulti(dir, opts)
	require.NoError(t, err)
	require.NoError(t, ml.Save([]GroupUpdate{{GroupID: 7, HardState: pb.HardState{Term: 3, Vote: 2}}}))
	saveGroups(t, ml, 1, 80, 200)
	g, _ := ml.Group(1)
	_, err = g.CreateSnapshot(80, nil, nil)
	require.NoError(t, err)
	require.NoError(t, g.Compact(80))
	segs, _ := listNumbered(osFS{}, dir, segmentExt)
	require.Greater(t, segs[0], uint64(1), "the first segments are deleted")
	require.NoError(t, ml.Close())
	ml, err = OpenMulti(dir, opts)
	require.NoError(t, err)
	defer ml.Close()
	g, err = ml.Group(7)
	require.NoError(t, err)
	require.Equal(t, pb.HardState{Term: 3, Vote: 2}, g.HardState())
}

// TestMultiRemovedGroupMidLog: a group removed in the middle of the log
// is reported removed after reopening, its records before and after the
// removal ignored, its snapshot file deleted; the other groups are whole.
// The removal survives the deletion of the segment that recorded it.
func TestMultiRemovedGroupMidLog(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: 4096}
	ml, err := OpenMulti(dir, opts)
	require.NoError(t, err)
	saveGroups(t, ml, 3, 20, 100)
	g2, _ := ml.Group(2)
	_, err = g2.CreateSnapshot(10, nil, []byte("group 2"))
	require.NoError(t, err)
	require.NoError(t, ml.RemoveGroup(2))
	_, err = os.Stat(filepath.Join(dir, groupSnapshotName(2, 10)))
	require.True(t, errors.Is(err, os.ErrNotExist), "the removed group's snapshot file is deleted")
	saveGroups(t, ml, 1, 30, 100)
	require.NoError(t, ml.Close())

	check := func(ml *MultiLog) {
		t.Helper()
		require.Equal(t, []uint64{2}, ml.Removed())
		require.Equal(t, []uint64{1, 3}, ml.Groups())
		_, err := ml.Group(2)
		require.ErrorIs(t, err, ErrGroupRemoved)
		g3, _ := ml.Group(3)
		last, _ := g3.LastIndex()
		require.Equal(t, uint64(20), last)
	}
	ml, err = OpenMulti(dir, opts)
	require.NoError(t, err)
	check(ml)
	// Compact every group past every segment: the removal must survive.
	for _, id := range []uint64{1, 3} {
		g, _ := ml.Group(id)
		last, _ := g.LastIndex()
		_, err = g.CreateSnapshot(last, nil, nil)
		require.NoError(t, err)
		require.NoError(t, g.Compact(last))
	}
	require.NoError(t, ml.Save([]GroupUpdate{{GroupID: 1, HardState: pb.HardState{Term: 2, Vote: 1, Commit: 30}}}))
	segs, _ := listNumbered(osFS{}, dir, segmentExt)
	require.Len(t, segs, 1, "one segment is left")
	require.NoError(t, ml.Close())
	ml, err = OpenMulti(dir, opts)
	require.NoError(t, err)
	defer ml.Close()
	check(ml)
}

// multiCorruptionDir writes groups' entries over several segments and
// returns the directory and the number of segments.
func multiCorruptionDir(t *testing.T) (string, int) {
	dir := t.TempDir()
	ml, err := OpenMulti(dir, Options{SegmentSize: 8 << 10})
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := uint64(1); i <= 60; i++ {
		var ups []GroupUpdate
		for id := uint64(1); id <= 3; id++ {
			e := pb.Entry{Index: i, Term: 1, Data: make([]byte, 1+rng.IntN(200))}
			ups = append(ups, GroupUpdate{GroupID: id, HardState: pb.HardState{Term: 1, Commit: i - 1}, Entries: []pb.Entry{e}})
		}
		require.NoError(t, ml.Save(ups))
	}
	n := len(ml.segs)
	require.NoError(t, ml.Close())
	require.Greater(t, n, 2)
	return dir, n
}

// TestMultiOpenRefusesCorruption flips a byte in records followed by
// others, in the first and the last segment: OpenMulti fails with
// ErrCorrupt naming the file and the damaged record.
func TestMultiOpenRefusesCorruption(t *testing.T) {
	dir, nsegs := multiCorruptionDir(t)
	rng := rand.New(rand.NewPCG(5, 6))
	for _, seq := range []uint64{1, uint64(nsegs)} {
		name := segmentName(seq)
		data, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		offs := recordOffsets(t, data)
		require.Greater(t, len(offs), 3)
		for _, off := range offs[:len(offs)-1] {
			at := off + rng.IntN(int(recordBodyEnd(data, off))-off)
			d := copyDir(t, dir)
			b := append([]byte(nil), data...)
			b[at] ^= byte(1 + rng.IntN(255))
			require.NoError(t, os.WriteFile(filepath.Join(d, name), b, 0o600))
			_, err := OpenMulti(d, Options{SegmentSize: 8 << 10})
			require.ErrorIs(t, err, ErrCorrupt, "segment %d, byte %d flipped", seq, at)
			var ce *CorruptError
			require.True(t, errors.As(err, &ce))
			require.Equal(t, filepath.Join(d, name), ce.File)
			require.Equal(t, int64(off), ce.Offset, "segment %d, byte %d flipped: %v", seq, at, err)
		}
	}
}

// TestMultiOpenCutsTornTail cuts the last segment at every offset inside
// its last records (truncated, or zeroed from a sector boundary on): Open
// succeeds with every group holding a prefix of what was written, in the
// order it was written, and goes on writing.
func TestMultiOpenCutsTornTail(t *testing.T) {
	dir, nsegs := multiCorruptionDir(t)
	name := segmentName(uint64(nsegs))
	data, err := os.ReadFile(filepath.Join(dir, name))
	require.NoError(t, err)
	offs := recordOffsets(t, data)
	end := int64(recordBodyEnd(data, offs[len(offs)-1]))
	from := int64(offs[len(offs)-7])
	lastOf := func(ml *MultiLog, id uint64) uint64 {
		g, err := ml.Group(id)
		require.NoError(t, err)
		last, err := g.LastIndex()
		require.NoError(t, err)
		return last
	}
	// Every offset would take long (each reopen syncs); a random stride
	// of up to 6 bytes crosses every record boundary and header.
	rng := rand.New(rand.NewPCG(7, 8))
	for at := from; at <= end; at += 1 + int64(rng.IntN(6)) {
		for _, mode := range []string{"truncate", "zero"} {
			cut := at
			d := copyDir(t, dir)
			p := filepath.Join(d, name)
			if mode == "truncate" {
				require.NoError(t, os.Truncate(p, cut))
			} else {
				cut = (cut + sectorSize - 1) / sectorSize * sectorSize
				b := append([]byte(nil), data...)
				clear(b[min(int(cut), len(b)):])
				require.NoError(t, os.WriteFile(p, b, 0o600))
			}
			msg := fmt.Sprintf("%s at %d", mode, cut)
			ml, err := OpenMulti(d, Options{SegmentSize: 8 << 10, NoSync: true})
			require.NoError(t, err, msg)
			// Groups were written in order 1, 2, 3 each round: a torn
			// round leaves the earlier groups at most one entry ahead.
			l1, l2, l3 := lastOf(ml, 1), lastOf(ml, 2), lastOf(ml, 3)
			require.True(t, l1 >= l2 && l2 >= l3 && l1 <= l3+1 && l3 >= 56, "%s: last indexes %d %d %d", msg, l1, l2, l3)
			for id := uint64(1); id <= 3; id++ {
				g, _ := ml.Group(id)
				last := lastOf(ml, id)
				_, err := g.Entries(1, last+1, 1<<30)
				require.NoError(t, err, msg)
				require.NoError(t, g.Save(pb.HardState{Term: 2, Commit: last}, []pb.Entry{{Index: last + 1, Term: 2}}, pb.Snapshot{}), msg)
			}
			require.NoError(t, ml.Close())
			ml, err = OpenMulti(d, Options{SegmentSize: 8 << 10, NoSync: true})
			require.NoError(t, err, msg+", written on")
			require.Equal(t, []uint64{l1 + 1, l2 + 1, l3 + 1}, []uint64{lastOf(ml, 1), lastOf(ml, 2), lastOf(ml, 3)}, msg)
			require.NoError(t, ml.Close())
		}
	}
}

// TestMultiOpenRefusesSingleGroupLog: each kind of log refuses the
// other's directory as corrupt, saying what it is.
func TestMultiOpenRefusesSingleGroupLog(t *testing.T) {
	single := t.TempDir()
	s, err := Open(single, Options{SegmentSize: 4096})
	require.NoError(t, err)
	require.NoError(t, s.Save(pb.HardState{Term: 1}, []pb.Entry{{Index: 1, Term: 1}}, pb.Snapshot{}))
	require.NoError(t, s.Close())
	_, err = OpenMulti(single, Options{SegmentSize: 4096})
	require.ErrorIs(t, err, ErrCorrupt)

	multi := t.TempDir()
	ml, err := OpenMulti(multi, Options{SegmentSize: 4096})
	require.NoError(t, err)
	require.NoError(t, ml.Close())
	_, err = Open(multi, Options{SegmentSize: 4096})
	require.ErrorIs(t, err, ErrCorrupt)
	require.ErrorContains(t, err, "OpenMulti")
}

// TestWalkMultiLog: Walk reads a MultiLog's records and snapshot files,
// each with its group.
func TestWalkMultiLog(t *testing.T) {
	dir := t.TempDir()
	ml, err := OpenMulti(dir, Options{SegmentSize: 4096, NoSync: true})
	require.NoError(t, err)
	require.NoError(t, ml.Save([]GroupUpdate{
		{GroupID: 1, HardState: pb.HardState{Term: 1, Commit: 1}, Entries: []pb.Entry{{Index: 1, Term: 1, Data: []byte("one")}}},
		{GroupID: 2, Snapshot: pb.Snapshot{Data: []byte("two"), Metadata: pb.SnapshotMetadata{Index: 5, Term: 1}}},
	}))
	require.NoError(t, ml.RemoveGroup(3))
	require.NoError(t, ml.Close())
	var got []string
	require.NoError(t, Walk(dir, func(r Record) error {
		s := fmt.Sprintf("%s g%d", r.Kind, r.GroupID)
		switch {
		case r.Entry != nil:
			s += fmt.Sprintf(" entry %d %q", r.Entry.Index, r.Entry.Data)
		case r.HardState != nil:
			s += fmt.Sprintf(" commit %d", r.HardState.Commit)
		case r.Snapshot != nil:
			s += fmt.Sprintf(" snapshot %d", r.Snapshot.Metadata.Index)
		}
		got = append(got, s)
		return nil
	}))
	require.Equal(t, []string{
		"snapshot-file g2 snapshot 5",
		"multi-segment-header g0",
		`group-entry g1 entry 1 "one"`,
		"group-hard-state g1 commit 1",
		"group-snapshot g2 snapshot 5",
		"group-removed g3",
	}, got)
}

// TestOpenMultiRefusesCutSnapshotFile: a group's snapshot file that lost
// its last bytes is damage OpenMulti and Walk report, naming the file.
func TestOpenMultiRefusesCutSnapshotFile(t *testing.T) {
	// Data of every length modulo the record alignment: the cut byte is
	// padding in some files, payload in others.
	for n := 1; n <= recAlign+1; n++ {
		cut := 1
		if n == recAlign+1 {
			cut = headerSize
		}
		dir := t.TempDir()
		ml, err := OpenMulti(dir, Options{SegmentSize: 4096, NoSync: true})
		require.NoError(t, err)
		require.NoError(t, ml.Save([]GroupUpdate{
			{GroupID: 2, Snapshot: pb.Snapshot{Data: make([]byte, n), Metadata: pb.SnapshotMetadata{Index: 5, Term: 1}}},
		}))
		require.NoError(t, ml.Close())
		p := filepath.Join(dir, groupSnapshotName(2, 5))
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(p, b[:len(b)-cut], 0o600))
		_, err = OpenMulti(dir, Options{SegmentSize: 4096, NoSync: true})
		require.ErrorIs(t, err, ErrCorrupt, "cut %d", cut)
		require.Contains(t, err.Error(), p)
		err = Walk(dir, func(Record) error { return nil })
		require.ErrorIs(t, err, ErrCorrupt, "cut %d", cut)
		require.Contains(t, err.Error(), p)
	}
}

// TestMultiReadsDuringSaves reads every group (and asks for new ones)
// while Saves of all groups rotate segments and groups compact: every
// read sees whole Saves, with the data each entry was saved with. Run
// with -race.
func TestMultiReadsDuringSaves(t *testing.T) {
	// A cache of a few entries: reads go to the cache and to the disk.
	ml, err := OpenMulti(t.TempDir(), Options{SegmentSize: 4096, NoSync: true, CacheSize: 600})
	require.NoError(t, err)
	defer ml.Close()
	const groups, rounds = 4, 300
	done := make(chan struct{})
	errs := make(chan error, 1)
	go func() {
		defer close(errs)
		for n := uint64(100); ; n++ {
			select {
			case <-done:
				return
			default:
			}
			if _, err := ml.Group(n); err != nil { // adds a group while segments rotate
				errs <- err
				return
			}
			for id := uint64(1); id <= groups; id++ {
				g, _ := ml.Group(id)
				first, _ := g.FirstIndex()
				last, _ := g.LastIndex()
				if last < first {
					continue
				}
				ents, err := g.Entries(first, last+1, 1<<30)
				if errors.Is(err, raft.ErrCompacted) {
					continue // compacted between FirstIndex and Entries
				}
				if err != nil {
					errs <- fmt.Errorf("group %d: Entries(%d, %d): %w", id, first, last+1, err)
					return
				}
				for _, e := range ents {
					if string(e.Data) != entryData(e.Index, id) {
						errs <- fmt.Errorf("group %d: entry %d holds %q", id, e.Index, e.Data)
						return
					}
				}
			}
		}
	}()
	for i := uint64(1); i <= rounds; i++ {
		var ups []GroupUpdate
		for id := uint64(1); id <= groups; id++ {
			ups = append(ups, GroupUpdate{GroupID: id, HardState: pb.HardState{Term: 1, Commit: i},
				Entries: []pb.Entry{{Index: i, Term: 1, Data: []byte(entryData(i, id))}}})
		}
		require.NoError(t, ml.Save(ups))
		if i%50 == 0 {
			for id := uint64(1); id <= groups; id++ {
				g, _ := ml.Group(id)
				_, err := g.CreateSnapshot(i-10, nil, nil)
				require.NoError(t, err)
				require.NoError(t, g.Compact(i-10))
			}
		}
	}
	close(done)
	require.NoError(t, <-errs)
}

// TestMultiCheckpointDoesNotFillSegments: with more groups than a segment
// holds hard states, the checkpoint at the start of each segment does not
// count against its size, so Saves still fill segments instead of
// starting a new one each (across a reopen too).
func TestMultiCheckpointDoesNotFillSegments(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: 4096, NoSync: true}
	ml, err := OpenMulti(dir, opts)
	require.NoError(t, err)
	var ups []GroupUpdate
	for id := uint64(1000); id < 1300; id++ { // about 10 KiB of checkpoint
		ups = append(ups, GroupUpdate{GroupID: id, HardState: pb.HardState{Term: 1, Vote: 1}})
	}
	require.NoError(t, ml.Save(ups))
	saveGroups(t, ml, 1, 40, 100)
	require.LessOrEqual(t, ml.tailOff-ml.tailHdr, int64(3500), "the last segment has room for the next Save")
	require.NoError(t, ml.Close())
	before, _ := listNumbered(osFS{}, dir, segmentExt)
	ml, err = OpenMulti(dir, opts)
	require.NoError(t, err)
	defer ml.Close()
	g, _ := ml.Group(1)
	require.NoError(t, g.Save(pb.HardState{Term: 1, Vote: 1, Commit: 40}, []pb.Entry{{Index: 41, Term: 1, Data: make([]byte, 100)}}, pb.Snapshot{}))
	after, _ := listNumbered(osFS{}, dir, segmentExt)
	require.Equal(t, before, after, "reopened, the last segment's checkpoint does not count either")
	for i := uint64(42); i <= 80; i++ {
		require.NoError(t, g.Save(pb.HardState{Term: 1, Vote: 1, Commit: i}, []pb.Entry{{Index: i, Term: 1, Data: make([]byte, 100)}}, pb.Snapshot{}))
	}
	segs, _ := listNumbered(osFS{}, dir, segmentExt)
	// 80 Saves of about 150 bytes: 3 segments' worth, not 80 segments.
	require.LessOrEqual(t, len(segs), 6, "segments: %v", segs)
	g1000, _ := ml.Group(1000)
	require.Equal(t, pb.HardState{Term: 1, Vote: 1}, g1000.HardState())
}

// TestMultiOldestSegmentHolders: groups that saved one entry and went idle
// keep the oldest segment, and every later one, while another group
// writes on and compacts; they are the holders named, and once each has
// snapshotted and compacted, the segments the busy group no longer needs
// are deleted.
func TestMultiOldestSegmentHolders(t *testing.T) {
	ml, err := OpenMulti(t.TempDir(), Options{SegmentSize: 4096})
	require.NoError(t, err)
	require.Nil(t, ml.OldestSegmentHolders(), "one segment: nothing to delete")
	compact := func(id, i uint64) {
		t.Helper()
		g, err := ml.Group(id)
		require.NoError(t, err)
		_, err = g.CreateSnapshot(i, &pb.ConfState{Voters: []uint64{1}}, nil)
		require.NoError(t, err)
		require.NoError(t, g.Compact(i))
	}
	for _, id := range []uint64{3, 1} {
		require.NoError(t, ml.Save([]GroupUpdate{{GroupID: id, HardState: pb.HardState{Term: 1, Commit: 1},
			Entries: []pb.Entry{{Term: 1, Index: 1}}}}))
	}
	busy, err := ml.Group(2)
	require.NoError(t, err)
	for i := uint64(1); i <= 200; i++ {
		require.NoError(t, busy.Save(pb.HardState{Term: 1, Commit: i}, []pb.Entry{{Term: 1, Index: i, Data: make([]byte, 300)}}, pb.Snapshot{}))
		if i%10 == 0 {
			compact(2, i-5)
		}
	}
	grown := ml.Segments()
	require.Greater(t, grown, 10, "groups 1 and 3 keep every segment")
	require.Equal(t, []uint64{1, 3}, ml.OldestSegmentHolders())

	compact(1, 1)
	require.Equal(t, []uint64{3}, ml.OldestSegmentHolders())
	require.Equal(t, grown, ml.Segments(), "group 3 still keeps the oldest segment")
	compact(3, 1)
	require.LessOrEqual(t, ml.Segments(), 2, "left: the segments of group 2's last entries")
	if ml.Segments() > 1 {
		require.Equal(t, []uint64{2}, ml.OldestSegmentHolders())
	}
	require.NoError(t, ml.Close())
	require.Zero(t, ml.Segments())
	require.Nil(t, ml.OldestSegmentHolders())
}
