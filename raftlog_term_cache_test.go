package raft

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	pb "github.com/raftcore/raft/raftpb"
)

// termCacheModel drives a raftLog over MemoryStorage through random
// appends, leader changes that replace the tail, writes that land in
// Storage before (or long before) they are acknowledged, compactions at any
// time (also between a write and its acknowledgement), and snapshots.
type termCacheModel struct {
	t      *testing.T
	rnd    *rand.Rand
	ms     *MemoryStorage
	l      *raftLog
	term   uint64
	writes []pendingWrite // handed out, not yet in Storage
	acks   []pendingWrite // in Storage, not yet acknowledged
	// written is the term each index had when last written to Storage.
	written map[uint64]uint64
}

type pendingWrite struct {
	snap *pb.Snapshot
	ents []pb.Entry
}

func (m *termCacheModel) step() string {
	l := m.l
	switch op := m.rnd.IntN(8); op {
	case 0: // the leader appends
		n := 1 + m.rnd.IntN(3)
		l.append(entsFrom(l.lastIndex()+1, repeatTerm(m.term, n)...)...)
		return fmt.Sprintf("append %d", n)
	case 1: // a new leader replaces the tail from an uncommitted index
		from := l.committed + 1 + uint64(m.rnd.IntN(int(l.lastIndex()-l.committed)+1))
		if s := l.unstable.snapshot; s != nil && from <= s.Metadata.Index {
			return "skip"
		}
		m.term++
		l.append(entsFrom(from, repeatTerm(m.term, 1+m.rnd.IntN(3))...)...)
		return fmt.Sprintf("replace from %d (term %d)", from, m.term)
	case 2: // a Ready hands out the tail
		w := pendingWrite{snap: l.nextUnstableSnapshot(), ents: l.nextUnstableEnts()}
		l.acceptUnstable()
		if w.snap != nil || len(w.ents) > 0 {
			m.writes = append(m.writes, w)
		}
		return "hand out"
	case 3, 4: // the oldest write lands in Storage
		if len(m.writes) == 0 {
			return "skip"
		}
		w := m.writes[0]
		m.writes = m.writes[1:]
		if w.snap != nil {
			if err := m.ms.ApplySnapshot(*w.snap); err != nil && !errors.Is(err, ErrSnapOutOfDate) {
				m.t.Fatal(err)
			}
		}
		if err := m.ms.Append(w.ents); err != nil {
			m.t.Fatal(err)
		}
		if w.snap != nil {
			m.written[w.snap.Metadata.Index] = w.snap.Metadata.Term
		}
		for _, e := range w.ents {
			m.written[e.Index] = e.Term
		}
		m.acks = append(m.acks, w)
		return "write"
	case 5: // the oldest write in Storage is acknowledged
		if len(m.acks) == 0 {
			return "skip"
		}
		w := m.acks[0]
		m.acks = m.acks[1:]
		if w.snap != nil {
			l.stableSnapTo(w.snap.Metadata.Index)
		}
		if n := len(w.ents); n > 0 {
			last := w.ents[n-1]
			l.stableTo(entryID{term: last.Term, index: last.Index})
		}
		return "ack"
	case 6: // commit, and compact Storage up to what is committed and in it
		l.commitTo(l.committed + uint64(m.rnd.IntN(int(l.lastIndex()-l.committed)+1)))
		first, _ := m.ms.FirstIndex()
		last, _ := m.ms.LastIndex()
		if hi := min(l.committed, last); hi >= first {
			c := first + uint64(m.rnd.IntN(int(hi-first+1)))
			if err := m.ms.Compact(c); err != nil {
				m.t.Fatal(err)
			}
			return fmt.Sprintf("commit %d, compact %d", l.committed, c)
		}
		return fmt.Sprintf("commit %d", l.committed)
	default: // a snapshot from a leader of a later term
		m.term++
		s := pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: l.committed + 1 + uint64(m.rnd.IntN(4)), Term: m.term}}
		l.restore(s)
		return fmt.Sprintf("restore snapshot %d (term %d)", s.Metadata.Index, m.term)
	}
}

func repeatTerm(term uint64, n int) []uint64 {
	terms := make([]uint64, n)
	for i := range terms {
		terms[i] = term
	}
	return terms
}

// referenceTerm looks the term up the long way, with no memory of earlier
// answers: the unstable tail, then Storage within its current bounds.
func (m *termCacheModel) referenceTerm(i uint64) (uint64, error) {
	u := &m.l.unstable
	if i >= u.offset {
		if k := i - u.offset; k < uint64(len(u.entries)) {
			return u.entries[k].Term, nil
		}
		return 0, ErrUnavailable
	}
	if u.snapshot != nil {
		if i == u.snapshot.Metadata.Index {
			return u.snapshot.Metadata.Term, nil
		}
		return 0, ErrCompacted
	}
	if first, _ := m.ms.FirstIndex(); i+1 < first {
		return 0, ErrCompacted
	}
	return m.ms.Term(i)
}

// check compares every term the log answers with the reference. The one
// allowed difference: the entry right before the unstable tail, once
// compacted away in Storage before the tail's write was acknowledged, is
// still answered, with the term it was written with.
func (m *termCacheModel) check(history []string) {
	m.t.Helper()
	for i := uint64(0); i <= m.l.lastIndex()+2; i++ {
		got, gerr := m.l.term(i)
		want, werr := m.referenceTerm(i)
		if gerr == nil && errors.Is(werr, ErrCompacted) && i+1 == m.l.unstable.offset {
			want, werr = m.written[i], nil
		}
		if got != want || !errors.Is(gerr, werr) || (gerr == nil) != (werr == nil) {
			m.t.Fatalf("term(%d) = %d, %v; want %d, %v\nafter: %v", i, got, gerr, want, werr, history)
		}
	}
}

// The log's memory of the term before its unstable tail never answers
// with a term Storage does not hold, nor hides ErrCompacted or
// ErrUnavailable, across random appends, replaced tails, snapshots,
// compactions and writes that land before they are acknowledged.
func TestLogTermCacheMatchesStorage(t *testing.T) {
	for seed := uint64(1); seed <= 300; seed++ {
		ms := NewMemoryStorage()
		m := &termCacheModel{
			t: t, rnd: rand.New(rand.NewPCG(seed, 7)), ms: ms,
			l: newLog(ms, DiscardLogger), term: 1, written: map[uint64]uint64{},
		}
		var history []string
		for range 150 {
			history = append(history, m.step())
			m.check(history)
		}
	}
}
