package wal

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
)

// refLog is the reference the Storage is checked against: the whole live
// log in a slice, never compacted, plus the compaction point.
type refLog struct {
	all      []pb.Entry // all[i] is the entry at index i (all[0] unused)
	base     uint64
	baseTerm uint64
	snap     pb.Snapshot
	hs       pb.HardState
}

func (r *refLog) last() uint64 { return uint64(len(r.all)) - 1 }

func (r *refLog) save(hs pb.HardState, ents []pb.Entry, snap pb.Snapshot) {
	if !raft.IsEmptySnap(snap) {
		r.snap = snap
		r.base, r.baseTerm = snap.Metadata.Index, snap.Metadata.Term
		r.all = make([]pb.Entry, snap.Metadata.Index+1)
	}
	for _, e := range ents {
		if e.Index <= r.base {
			continue
		}
		r.all = append(r.all[:e.Index], e)
	}
	if !raft.IsEmptyHardState(hs) {
		r.hs = hs
	}
}

// reopened is what a Storage holds after Close and Open: the log restarts
// at the snapshot.
func (r *refLog) reopened() {
	r.base, r.baseTerm = r.snap.Metadata.Index, r.snap.Metadata.Term
}

// check compares every read of s (a Storage or a GroupStorage) with the
// reference.
func (r *refLog) check(t *testing.T, rng *rand.Rand, s raft.Storage) {
	t.Helper()
	first, err := s.FirstIndex()
	require.NoError(t, err)
	require.Equal(t, r.base+1, first, "FirstIndex")
	last, err := s.LastIndex()
	require.NoError(t, err)
	require.Equal(t, r.last(), last, "LastIndex")
	hs, cs, err := s.InitialState()
	require.NoError(t, err)
	require.Equal(t, r.hs, hs)
	require.Equal(t, r.snap.Metadata.ConfState, cs)
	snap, err := s.Snapshot()
	require.NoError(t, err)
	require.Equal(t, r.snap, snap)

	if r.base > 0 {
		_, err = s.Term(r.base - 1)
		require.ErrorIs(t, err, raft.ErrCompacted)
	}
	term, err := s.Term(r.base)
	require.NoError(t, err)
	require.Equal(t, r.baseTerm, term)
	for i := r.base + 1; i <= r.last(); i++ {
		term, err := s.Term(i)
		require.NoError(t, err)
		require.Equal(t, r.all[i].Term, term, "Term(%d)", i)
	}
	_, err = s.Term(r.last() + 1)
	require.ErrorIs(t, err, raft.ErrUnavailable)

	for range 5 {
		lo := r.base + 1 + rng.Uint64N(r.last()-r.base+1)
		hi := lo + rng.Uint64N(r.last()+2-lo)
		maxSize := uint64(math.MaxUint64)
		if rng.IntN(2) == 0 {
			maxSize = rng.Uint64N(3000)
		}
		got, err := s.Entries(lo, hi, maxSize)
		require.NoError(t, err)
		want := r.all[lo:hi]
		if lo < hi {
			n, size := 1, uint64(want[0].Size())
			for ; n < len(want); n++ {
				if size += uint64(want[n].Size()); size > maxSize {
					break
				}
			}
			want = want[:n]
		} else {
			want = nil
		}
		require.Equal(t, want, got, "Entries(%d, %d, %d)", lo, hi, maxSize)
	}
	_, err = s.Entries(r.base, r.base+1, math.MaxUint64)
	require.ErrorIs(t, err, raft.ErrCompacted)
	_, err = s.Entries(r.base+1, r.last()+2, math.MaxUint64)
	require.ErrorIs(t, err, raft.ErrUnavailable)
}

func randomEntries(rng *rand.Rand, from, to, term uint64) []pb.Entry {
	var ents []pb.Entry
	for i := from; i < to; i++ {
		e := pb.Entry{Index: i, Term: term, Type: pb.EntryType(rng.IntN(3))}
		switch rng.IntN(10) {
		case 0:
		case 1:
			e.Data = make([]byte, 2000+rng.IntN(6000)) // spans segments and sectors
		default:
			e.Data = make([]byte, 1+rng.IntN(300))
		}
		for j := range e.Data {
			e.Data[j] = byte(rng.IntN(256))
		}
		ents = append(ents, e)
	}
	return ents
}

func randomOptions(rng *rand.Rand) Options {
	opts := Options{SegmentSize: int64(4096 << rng.IntN(5))}
	switch rng.IntN(3) {
	case 0:
		opts.CacheSize = -1
	case 1:
		opts.CacheSize = 1 + rng.IntN(5000)
	}
	return opts
}

// TestStorageMatchesModel runs random Saves (appends, conflicting
// suffixes, snapshots, hard states), compactions, snapshots and reopenings
// against a Storage and checks every read against a simple reference,
// with small segments so that everything crosses segment boundaries.
func TestStorageMatchesModel(t *testing.T) {
	seeds := 40
	if testing.Short() {
		seeds = 8
	}
	for seed := range seeds {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			runModel(t, uint64(seed), 150)
		})
	}
}

func runModel(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, 7))
	dir := t.TempDir()
	opts := randomOptions(rng)
	s, err := Open(dir, opts)
	require.NoError(t, err)
	defer func() { s.Close() }()
	r := &refLog{all: make([]pb.Entry, 1)}
	term := uint64(1)
	for step := range steps {
		switch op := rng.IntN(20); {
		case op < 12: // append, possibly replacing a suffix after the commit index
			lo := max(r.base, r.snap.Metadata.Index, r.hs.Commit) + 1
			from := r.last() + 1
			if from > lo && rng.IntN(3) == 0 {
				from = lo + rng.Uint64N(from-lo)
				term++
			}
			ents := randomEntries(rng, from, from+uint64(rng.IntN(20)), term)
			hs := pb.HardState{Term: term, Vote: 1}
			newLast := from + uint64(len(ents)) - 1
			hs.Commit = r.hs.Commit
			if newLast > hs.Commit && rng.IntN(2) == 0 {
				hs.Commit += rng.Uint64N(newLast - hs.Commit + 1)
			}
			require.NoError(t, s.Save(hs, ents, pb.Snapshot{}), "step %d", step)
			r.save(hs, ents, pb.Snapshot{})
		case op < 14: // a snapshot from the leader, maybe with entries after it
			term++
			idx := r.snap.Metadata.Index + 1 + rng.Uint64N(r.last()+10-r.snap.Metadata.Index)
			snap := pb.Snapshot{Data: []byte(fmt.Sprint("state at ", idx)), Metadata: pb.SnapshotMetadata{
				Index: idx, Term: term, ConfState: pb.ConfState{Voters: []uint64{1, 2, uint64(3 + rng.IntN(3))}},
			}}
			ents := randomEntries(rng, idx+1, idx+1+uint64(rng.IntN(5)), term)
			hs := pb.HardState{Term: term, Commit: idx}
			require.NoError(t, s.Save(hs, ents, snap))
			r.save(hs, ents, snap)
		case op < 16: // snapshot the state machine at the commit index
			i := r.hs.Commit
			if i <= r.snap.Metadata.Index || i < r.base {
				continue
			}
			cs := &pb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{uint64(4 + rng.IntN(3))}}
			snap, err := s.CreateSnapshot(i, cs, []byte(fmt.Sprint("applied ", i)))
			require.NoError(t, err)
			want := pb.Snapshot{Data: []byte(fmt.Sprint("applied ", i)), Metadata: pb.SnapshotMetadata{Index: i, Term: r.all[i].Term, ConfState: *cs}}
			if i == r.base {
				want.Metadata.Term = r.baseTerm
			}
			require.Equal(t, want, snap)
			r.snap = snap
		case op < 18: // compact up to somewhere before the commit index
			if r.hs.Commit <= r.base {
				continue
			}
			c := r.base + 1 + rng.Uint64N(r.hs.Commit-r.base)
			require.NoError(t, s.Compact(c))
			r.baseTerm = r.all[c].Term
			r.base = c
		default:
			require.NoError(t, s.Close())
			s, err = Open(dir, opts)
			require.NoError(t, err, "reopen at step %d", step)
			r.reopened()
		}
		r.check(t, rng, s)
	}
}
