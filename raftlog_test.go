package raft

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
)

// testLog describes a log to build: a storage snapshot point, stable
// entries in Storage after it, and unstable entries after those.
type testLog struct {
	snap     entryID
	stable   []uint64 // terms of entries snap.index+1, ...
	unstable []uint64 // terms of the entries after the stable ones
	maxApply uint64   // 0 means no limit
}

// build returns the log, with its invariants checked when the test ends.
func (tl testLog) build(t *testing.T) *raftLog {
	t.Helper()
	s := NewMemoryStorage()
	if tl.snap.index > 0 {
		require.NoError(t, s.ApplySnapshot(pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: tl.snap.index, Term: tl.snap.term}}))
	}
	require.NoError(t, s.Append(entsFrom(tl.snap.index+1, tl.stable...)))
	maxApply := tl.maxApply
	if maxApply == 0 {
		maxApply = noLimit
	}
	l := newLogWithSize(s, DiscardLogger, maxApply)
	if len(tl.unstable) > 0 {
		l.append(entsFrom(l.lastIndex()+1, tl.unstable...)...)
	}
	t.Cleanup(func() { checkLogInvariants(t, l) })
	return l
}

// checkLogInvariants verifies the invariants written beside raftLog's
// fields and the log-matching shape of its entries.
func checkLogInvariants(t *testing.T, l *raftLog) {
	t.Helper()
	checkUnstable(t, &l.unstable)
	require.LessOrEqual(t, l.applied, l.applying, "applied <= applying")
	require.LessOrEqual(t, l.applying, l.committed, "applying <= committed")
	require.LessOrEqual(t, l.committed, l.lastIndex(), "committed <= lastIndex")
	_, err := l.term(l.firstIndex() - 1)
	require.NoError(t, err, "the term of firstIndex-1 must be known")
	ents := l.allEntries()
	prev := l.zeroTermOnOutOfBounds(l.term(l.firstIndex() - 1))
	for i, e := range ents {
		require.Equal(t, l.firstIndex()+uint64(i), e.Index, "entries must be contiguous")
		require.GreaterOrEqual(t, e.Term, prev, "terms never decrease along the log")
		prev = e.Term
	}
}

func TestLogNewFromStorage(t *testing.T) {
	l := testLog{snap: entryID{term: 2, index: 10}, stable: []uint64{2, 3}}.build(t)
	require.Equal(t, uint64(11), l.firstIndex())
	require.Equal(t, uint64(12), l.lastIndex())
	require.Equal(t, uint64(10), l.committed, "committed starts at the snapshot")
	require.Equal(t, uint64(10), l.applied)
	require.Equal(t, uint64(13), l.unstable.offset)
	require.Equal(t, entryID{term: 3, index: 12}, l.lastEntryID())
}

func TestLogTermAcrossBoundaries(t *testing.T) {
	l := testLog{snap: entryID{term: 2, index: 10}, stable: []uint64{2, 3}, unstable: []uint64{4, 4}}.build(t)
	tests := []struct {
		name    string
		index   uint64
		want    uint64
		wantErr error
	}{
		{name: "compacted", index: 9, wantErr: ErrCompacted},
		{name: "far compacted", index: 0, wantErr: ErrCompacted},
		{name: "snapshot point", index: 10, want: 2},
		{name: "first stable", index: 11, want: 2},
		{name: "last stable", index: 12, want: 3},
		{name: "first unstable", index: 13, want: 4},
		{name: "last unstable", index: 14, want: 4},
		{name: "past the end", index: 15, wantErr: ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			term, err := l.term(tt.index)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, term)
		})
	}
}

func TestLogTermWithUnstableSnapshot(t *testing.T) {
	l := testLog{stable: []uint64{1, 1, 1}}.build(t)
	l.restore(pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 20, Term: 5}})
	require.Equal(t, uint64(21), l.firstIndex())
	require.Equal(t, uint64(20), l.lastIndex())
	require.Equal(t, uint64(20), l.committed)
	term, err := l.term(20)
	require.NoError(t, err)
	require.Equal(t, uint64(5), term)
	_, err = l.term(2)
	require.ErrorIs(t, err, ErrCompacted, "stable entries before an unstable snapshot are gone")
	// The log may not be applied past the snapshot before it is applied.
	l.appliedTo(0, 0, 0)
	require.False(t, l.hasNextCommittedEnts(true), "nothing applies before the snapshot")
}

func TestLogMaybeAppend(t *testing.T) {
	base := testLog{stable: []uint64{1, 2}, unstable: []uint64{3}} // 1:1 2:2 3:3
	tests := []struct {
		name          string
		committed     uint64
		prev          entryID
		leaderCommit  uint64
		ents          []pb.Entry
		wantLastNew   uint64
		wantOK        bool
		wantErr       error
		wantCommitted uint64
		wantTerms     []uint64
	}{
		{
			name: "prev does not match", prev: entryID{term: 2, index: 3}, leaderCommit: 3,
			ents: entsFrom(4, 4), wantTerms: []uint64{1, 2, 3},
		},
		{
			name: "prev past the end", prev: entryID{term: 3, index: 4}, leaderCommit: 3,
			ents: entsFrom(5, 4), wantTerms: []uint64{1, 2, 3},
		},
		{
			name: "heartbeat-like empty append", prev: entryID{term: 3, index: 3}, leaderCommit: 3,
			wantLastNew: 3, wantOK: true, wantCommitted: 3, wantTerms: []uint64{1, 2, 3},
		},
		{
			name: "commit capped at the last new entry", prev: entryID{term: 1, index: 1}, leaderCommit: 3,
			wantLastNew: 1, wantOK: true, wantCommitted: 1, wantTerms: []uint64{1, 2, 3},
		},
		{
			name: "append after the end", prev: entryID{term: 3, index: 3}, leaderCommit: 4,
			ents: entsFrom(4, 4, 4), wantLastNew: 5, wantOK: true, wantCommitted: 4, wantTerms: []uint64{1, 2, 3, 4, 4},
		},
		{
			name: "all entries already present", prev: entryID{term: 1, index: 1}, leaderCommit: 2,
			ents: entsFrom(2, 2, 3), wantLastNew: 3, wantOK: true, wantCommitted: 2, wantTerms: []uint64{1, 2, 3},
		},
		{
			name: "shorter append keeps later matching entries", prev: entryID{term: 1, index: 1}, leaderCommit: 3,
			ents: entsFrom(2, 2), wantLastNew: 2, wantOK: true, wantCommitted: 2, wantTerms: []uint64{1, 2, 3},
		},
		{
			name: "conflict truncates the suffix", prev: entryID{term: 1, index: 1}, leaderCommit: 1,
			ents: entsFrom(2, 4), wantLastNew: 2, wantOK: true, wantCommitted: 1, wantTerms: []uint64{1, 4},
		},
		{
			name: "conflict in the stable part", committed: 1, prev: entryID{term: 1, index: 1}, leaderCommit: 1,
			ents: entsFrom(2, 5, 5, 5), wantLastNew: 4, wantOK: true, wantCommitted: 1, wantTerms: []uint64{1, 5, 5, 5},
		},
		{
			name: "conflict with a committed entry is refused", committed: 2, prev: entryID{term: 1, index: 1}, leaderCommit: 3,
			ents: entsFrom(2, 4), wantErr: errCommittedConflict, wantCommitted: 2, wantTerms: []uint64{1, 2, 3},
		},
		{
			name: "commit never moves back", committed: 3, prev: entryID{term: 1, index: 1}, leaderCommit: 1,
			wantLastNew: 1, wantOK: true, wantCommitted: 3, wantTerms: []uint64{1, 2, 3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := base.build(t)
			l.commitTo(tt.committed)
			lastNew, ok, err := l.maybeAppend(tt.prev, tt.leaderCommit, tt.ents)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, tt.wantOK, ok)
			require.Equal(t, tt.wantLastNew, lastNew)
			require.Equal(t, tt.wantCommitted, l.committed)
			var terms []uint64
			for _, e := range l.allEntries() {
				terms = append(terms, e.Term)
			}
			require.Equal(t, tt.wantTerms, terms)
		})
	}
}

func TestLogFindConflict(t *testing.T) {
	l := testLog{stable: []uint64{1, 2}, unstable: []uint64{3}}.build(t)
	tests := []struct {
		name string
		ents []pb.Entry
		want uint64
	}{
		{name: "empty", want: 0},
		{name: "all match", ents: entsFrom(1, 1, 2, 3), want: 0},
		{name: "suffix matches", ents: entsFrom(2, 2, 3), want: 0},
		{name: "new entries after a match", ents: entsFrom(2, 2, 3, 4, 4), want: 4},
		{name: "only new entries", ents: entsFrom(4, 4), want: 4},
		{name: "conflict first", ents: entsFrom(1, 4, 4), want: 1},
		{name: "conflict in the middle", ents: entsFrom(2, 2, 4), want: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, l.findConflict(tt.ents))
		})
	}
}

func TestLogFindConflictByTerm(t *testing.T) {
	// Log: snapshot 10@2, then 11:2 12:2 13:3 14:3 15:5
	l := testLog{snap: entryID{term: 2, index: 10}, stable: []uint64{2, 2, 3}, unstable: []uint64{3, 5}}.build(t)
	tests := []struct {
		name      string
		index     uint64
		term      uint64
		floor     uint64
		wantIndex uint64
		wantTerm  uint64
	}{
		{name: "stops at the floor", index: 15, term: 1, floor: 13, wantIndex: 13, wantTerm: 3},
		{name: "the floor does not stop an earlier match", index: 15, term: 4, floor: 13, wantIndex: 14, wantTerm: 3},
		{name: "term of the last entry", index: 15, term: 5, wantIndex: 15, wantTerm: 5},
		{name: "past the end starts at the last entry", index: 30, term: 5, wantIndex: 15, wantTerm: 5},
		{name: "skips a higher term", index: 15, term: 4, wantIndex: 14, wantTerm: 3},
		{name: "skips a run of a higher term", index: 14, term: 2, wantIndex: 12, wantTerm: 2},
		{name: "reaches the snapshot point", index: 15, term: 2, wantIndex: 12, wantTerm: 2},
		{name: "below every known term", index: 15, term: 1, wantIndex: 9, wantTerm: 0},
		{name: "at the snapshot point", index: 10, term: 2, wantIndex: 10, wantTerm: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			idx, term := l.findConflictByTerm(tt.index, tt.term, tt.floor)
			require.Equal(t, tt.wantIndex, idx)
			require.Equal(t, tt.wantTerm, term)
		})
	}
}

func TestLogIsUpToDate(t *testing.T) {
	l := testLog{stable: []uint64{1, 2}, unstable: []uint64{3}}.build(t) // last 3@3
	tests := []struct {
		name string
		last entryID
		want bool
	}{
		{name: "higher term, shorter log", last: entryID{term: 4, index: 1}, want: true},
		{name: "same term, longer log", last: entryID{term: 3, index: 4}, want: true},
		{name: "same term, same length", last: entryID{term: 3, index: 3}, want: true},
		{name: "same term, shorter log", last: entryID{term: 3, index: 2}, want: false},
		{name: "lower term, longer log", last: entryID{term: 2, index: 10}, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, l.isUpToDate(tt.last))
		})
	}
}

func TestLogMaybeCommitOnlyCurrentTerm(t *testing.T) {
	l := testLog{stable: []uint64{1, 2}, unstable: []uint64{3}}.build(t)
	require.False(t, l.maybeCommit(entryID{term: 3, index: 2}), "entry 2 has term 2, not 3")
	require.Equal(t, uint64(0), l.committed)
	require.True(t, l.maybeCommit(entryID{term: 3, index: 3}))
	require.Equal(t, uint64(3), l.committed)
	require.False(t, l.maybeCommit(entryID{term: 2, index: 2}), "commit never moves back")
	require.Equal(t, uint64(3), l.committed)
}

func TestLogCommitPastLastPanics(t *testing.T) {
	l := testLog{stable: []uint64{1}}.build(t)
	require.Panics(t, func() { l.commitTo(5) })
	require.Equal(t, uint64(0), l.committed)
}

func TestLogAppendOverCommittedPanics(t *testing.T) {
	l := testLog{stable: []uint64{1, 1}}.build(t)
	l.commitTo(2)
	require.Panics(t, func() { l.append(entsFrom(2, 2)...) })
}

func TestLogSliceSizeLimit(t *testing.T) {
	l := testLog{snap: entryID{term: 1, index: 10}, stable: []uint64{1, 1, 1}, unstable: []uint64{2, 2, 2}}.build(t)
	size := uint64(entsFrom(11, 1)[0].Size()) // every test entry has the same size
	tests := []struct {
		name    string
		lo, hi  uint64
		maxSize uint64
		wantLen int
		wantErr error
	}{
		{name: "no limit across the boundary", lo: 11, hi: 17, maxSize: noLimit, wantLen: 6},
		{name: "zero limit still returns one", lo: 11, hi: 17, maxSize: 0, wantLen: 1},
		{name: "limit inside the stable part", lo: 11, hi: 17, maxSize: 2 * size, wantLen: 2},
		{name: "limit one byte short", lo: 11, hi: 17, maxSize: 3*size - 1, wantLen: 2},
		{name: "limit across the boundary", lo: 11, hi: 17, maxSize: 4 * size, wantLen: 4},
		{name: "unstable only", lo: 14, hi: 17, maxSize: noLimit, wantLen: 3},
		{name: "stable only", lo: 12, hi: 14, maxSize: noLimit, wantLen: 2},
		{name: "empty range", lo: 13, hi: 13, maxSize: noLimit, wantLen: 0},
		{name: "compacted", lo: 10, hi: 12, maxSize: noLimit, wantErr: ErrCompacted},
		{name: "past the end", lo: 15, hi: 18, maxSize: noLimit, wantErr: ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ents, err := l.slice(tt.lo, tt.hi, tt.maxSize)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Len(t, ents, tt.wantLen)
			for i, e := range ents {
				require.Equal(t, tt.lo+uint64(i), e.Index)
			}
		})
	}
}

// TestLogSliceDoesNotWriteIntoStorage: joining stable and unstable entries
// must not append into the slice Storage returned.
func TestLogSliceDoesNotWriteIntoStorage(t *testing.T) {
	s := NewMemoryStorage()
	require.NoError(t, s.Append(entsFrom(1, 1, 1, 1)))
	l := newLog(s, DiscardLogger)
	// Make storage's next index (3) look unstable: a stable slice [1,3)
	// followed by an unstable entry 3 of another term.
	l.commitTo(2)
	l.append(entsFrom(3, 2)...)
	ents, err := l.slice(1, 4, noLimit)
	require.NoError(t, err)
	require.Equal(t, uint64(2), ents[2].Term)
	stored, err := s.Entries(1, 4, noLimit)
	require.NoError(t, err)
	require.Equal(t, uint64(1), stored[2].Term, "storage's entry was overwritten through a shared slice")
}

func TestLogNextCommittedEnts(t *testing.T) {
	tests := []struct {
		name          string
		applied       uint64
		committed     uint64
		allowUnstable bool
		snapPending   bool
		want          []uint64 // indexes
	}{
		{name: "nothing committed", applied: 0, committed: 0},
		{name: "stable committed", committed: 2, want: []uint64{1, 2}},
		{name: "unstable committed, not allowed", committed: 4, want: []uint64{1, 2}},
		{name: "unstable committed, allowed", committed: 4, allowUnstable: true, want: []uint64{1, 2, 3, 4}},
		{name: "partly applied", applied: 1, committed: 4, allowUnstable: true, want: []uint64{2, 3, 4}},
		{name: "all applied", applied: 4, committed: 4, allowUnstable: true},
		{name: "snapshot pending", committed: 2, snapPending: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := testLog{stable: []uint64{1, 1}, unstable: []uint64{2, 2}}.build(t)
			l.commitTo(tt.committed)
			l.appliedTo(tt.applied, 0, 0)
			if tt.snapPending {
				l.restore(pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 10, Term: 3}})
			}
			ents := l.nextCommittedEnts(tt.allowUnstable)
			var got []uint64
			for _, e := range ents {
				got = append(got, e.Index)
			}
			require.Equal(t, tt.want, got)
			require.Equal(t, len(tt.want) > 0, l.hasNextCommittedEnts(tt.allowUnstable))
		})
	}
}

// TestLogApplyingSizeBudget: committed entries are handed out within the
// MaxCommittedSizePerReady budget, handing out pauses while the budget is
// spent, and resumes as entries are reported applied.
func TestLogApplyingSizeBudget(t *testing.T) {
	size := uint64(entsFrom(1, 1)[0].Size())
	l := testLog{stable: []uint64{1, 1, 1, 1, 1}, maxApply: 2 * size}.build(t)
	l.commitTo(5)

	batch := l.nextCommittedEnts(false)
	require.Len(t, batch, 2)
	l.acceptApplying(2, 2*size, false)
	require.True(t, l.applyingEntsPaused, "budget spent")
	require.Nil(t, l.nextCommittedEnts(false))
	require.False(t, l.hasNextCommittedEnts(false))

	l.appliedTo(1, size, 0) // half applied frees half the budget
	require.False(t, l.applyingEntsPaused)
	batch = l.nextCommittedEnts(false)
	require.Len(t, batch, 1)
	require.Equal(t, uint64(3), batch[0].Index)
	l.acceptApplying(3, size, false)
	require.True(t, l.applyingEntsPaused)

	l.appliedTo(3, 2*size, 0)
	batch = l.nextCommittedEnts(false)
	require.Len(t, batch, 2)
	require.Equal(t, uint64(4), batch[0].Index)
	l.acceptApplying(5, 2*size, false)
	l.appliedTo(5, 2*size, 0)
	require.Nil(t, l.nextCommittedEnts(false))
	require.Zero(t, l.applyingEntsSize)
}

// TestLogApplyingOversizedEntry: an entry larger than the whole budget is
// still handed out (alone), so the log never stalls.
func TestLogApplyingOversizedEntry(t *testing.T) {
	s := NewMemoryStorage()
	big := pb.Entry{Index: 1, Term: 1, Data: make([]byte, 1000)}
	require.NoError(t, s.Append([]pb.Entry{big, {Index: 2, Term: 1}}))
	l := newLogWithSize(s, DiscardLogger, 10)
	l.commitTo(2)
	batch := l.nextCommittedEnts(false)
	require.Len(t, batch, 1)
	l.acceptApplying(1, uint64(batch[0].Size()), false)
	require.Nil(t, l.nextCommittedEnts(false))
	l.appliedTo(1, uint64(batch[0].Size()), 0)
	batch = l.nextCommittedEnts(false)
	require.Len(t, batch, 1)
	require.Equal(t, uint64(2), batch[0].Index)
}

func TestLogStableToAfterTruncation(t *testing.T) {
	l := testLog{stable: []uint64{1}, unstable: []uint64{1, 1}}.build(t) // 1:1 | 2:1 3:1
	require.Len(t, l.nextUnstableEnts(), 2)
	l.acceptUnstable()
	// A new leader replaces entry 3 before the write of the old one is
	// acknowledged.
	l.append(entsFrom(3, 2)...)
	l.stableTo(entryID{term: 1, index: 3}) // the late acknowledgement
	require.Equal(t, uint64(2), l.unstable.offset, "acknowledging a replaced entry must not make it stable")
	next := l.nextUnstableEnts()
	require.Len(t, next, 1)
	require.Equal(t, entryID{term: 2, index: 3}, entryID{term: next[0].Term, index: next[0].Index})
}

func TestLogAppliedOutOfRangePanics(t *testing.T) {
	l := testLog{stable: []uint64{1, 1}}.build(t)
	l.commitTo(1)
	require.Panics(t, func() { l.appliedTo(2, 0, 0) }, "applied past committed")
	l.appliedTo(1, 0, 0)
	require.Panics(t, func() { l.appliedTo(0, 0, 0) }, "applied moving back")
}

func TestLogEntriesFrom(t *testing.T) {
	l := testLog{stable: []uint64{1, 1}, unstable: []uint64{2}}.build(t)
	ents, err := l.entries(2, noLimit)
	require.NoError(t, err)
	require.Len(t, ents, 2)
	ents, err = l.entries(4, noLimit)
	require.NoError(t, err)
	require.Empty(t, ents)
	_, err = l.entries(0, noLimit)
	require.True(t, errors.Is(err, ErrCompacted))
}
