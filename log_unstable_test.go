package raft

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
)

// entsFrom builds contiguous entries starting at index first with the given
// terms, each carrying a small payload naming its position.
func entsFrom(first uint64, terms ...uint64) []pb.Entry {
	ents := make([]pb.Entry, len(terms))
	for i, t := range terms {
		idx := first + uint64(i)
		ents[i] = pb.Entry{Index: idx, Term: t, Data: []byte{byte(idx), byte(t)}}
	}
	return ents
}

func snapAt(index, term uint64) *pb.Snapshot {
	return &pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: index, Term: term}}
}

// checkUnstable verifies the invariants written beside unstable's fields.
func checkUnstable(t *testing.T, u *unstable) {
	t.Helper()
	if u.snapshot != nil {
		require.Equal(t, u.snapshot.Metadata.Index+1, u.offset, "offset must follow the snapshot")
	} else {
		require.False(t, u.snapshotInProgress, "snapshotInProgress without a snapshot")
	}
	require.LessOrEqual(t, u.offset, u.offsetInProgress)
	require.LessOrEqual(t, u.offsetInProgress, u.offset+uint64(len(u.entries)))
	for i := range u.entries {
		require.Equal(t, u.offset+uint64(i), u.entries[i].Index, "entries must be contiguous from offset")
	}
}

func TestUnstableIndexesAndTerms(t *testing.T) {
	tests := []struct {
		name      string
		u         unstable
		wantFirst uint64
		okFirst   bool
		wantLast  uint64
		okLast    bool
		termAt    uint64
		wantTerm  uint64
		okTerm    bool
	}{
		{name: "empty", u: unstable{offset: 5, offsetInProgress: 5}, termAt: 4},
		{
			name: "entries only", u: unstable{offset: 5, offsetInProgress: 5, entries: entsFrom(5, 1, 2)},
			wantLast: 6, okLast: true, termAt: 6, wantTerm: 2, okTerm: true,
		},
		{
			name: "entries only, index before offset", u: unstable{offset: 5, offsetInProgress: 5, entries: entsFrom(5, 1)},
			wantLast: 5, okLast: true, termAt: 4,
		},
		{
			name: "entries only, index past the end", u: unstable{offset: 5, offsetInProgress: 5, entries: entsFrom(5, 1)},
			wantLast: 5, okLast: true, termAt: 6,
		},
		{
			name: "snapshot only", u: unstable{offset: 5, offsetInProgress: 5, snapshot: snapAt(4, 3)},
			wantFirst: 5, okFirst: true, wantLast: 4, okLast: true, termAt: 4, wantTerm: 3, okTerm: true,
		},
		{
			name: "snapshot and entries", u: unstable{offset: 5, offsetInProgress: 5, snapshot: snapAt(4, 3), entries: entsFrom(5, 3, 4)},
			wantFirst: 5, okFirst: true, wantLast: 6, okLast: true, termAt: 5, wantTerm: 3, okTerm: true,
		},
		{
			name: "snapshot, index before it", u: unstable{offset: 5, offsetInProgress: 5, snapshot: snapAt(4, 3)},
			wantFirst: 5, okFirst: true, wantLast: 4, okLast: true, termAt: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkUnstable(t, &tt.u)
			first, ok := tt.u.maybeFirstIndex()
			require.Equal(t, tt.okFirst, ok)
			require.Equal(t, tt.wantFirst, first)
			last, ok := tt.u.maybeLastIndex()
			require.Equal(t, tt.okLast, ok)
			require.Equal(t, tt.wantLast, last)
			term, ok := tt.u.maybeTerm(tt.termAt)
			require.Equal(t, tt.okTerm, ok)
			require.Equal(t, tt.wantTerm, term)
		})
	}
}

func TestUnstableTruncateAndAppend(t *testing.T) {
	tests := []struct {
		name           string
		entries        []pb.Entry
		inProgress     uint64
		appendEnts     []pb.Entry
		wantOffset     uint64
		wantInProgress uint64
		wantEntries    []pb.Entry
	}{
		{
			name:    "continue the tail",
			entries: entsFrom(5, 1), inProgress: 6, appendEnts: entsFrom(6, 1, 1),
			wantOffset: 5, wantInProgress: 6, wantEntries: entsFrom(5, 1, 1, 1),
		},
		{
			name:    "replace everything from offset",
			entries: entsFrom(5, 1), inProgress: 6, appendEnts: entsFrom(5, 2, 2),
			wantOffset: 5, wantInProgress: 5, wantEntries: entsFrom(5, 2, 2),
		},
		{
			name:    "replace from before offset",
			entries: entsFrom(5, 1), inProgress: 6, appendEnts: entsFrom(4, 2, 2, 2),
			wantOffset: 4, wantInProgress: 4, wantEntries: entsFrom(4, 2, 2, 2),
		},
		{
			name:    "truncate in the middle, in progress part kept",
			entries: entsFrom(5, 1, 1, 1), inProgress: 6, appendEnts: entsFrom(6, 2),
			wantOffset: 5, wantInProgress: 6, wantEntries: entsFrom(5, 1, 2),
		},
		{
			name:    "truncate inside the in-progress part",
			entries: entsFrom(5, 1, 1, 1), inProgress: 8, appendEnts: entsFrom(6, 2),
			wantOffset: 5, wantInProgress: 6, wantEntries: entsFrom(5, 1, 2),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := unstable{entries: tt.entries, offset: 5, offsetInProgress: tt.inProgress, logger: DiscardLogger}
			checkUnstable(t, &u)
			u.truncateAndAppend(tt.appendEnts)
			checkUnstable(t, &u)
			require.Equal(t, tt.wantOffset, u.offset)
			require.Equal(t, tt.wantInProgress, u.offsetInProgress)
			require.Equal(t, tt.wantEntries, u.entries)
		})
	}
}

// TestUnstableHandedOutEntriesNotOverwritten: a Ready hands out a slice of
// the tail; a later truncation must not write through to that slice, and an
// append by the application to the handed-out slice must not write into the
// tail.
func TestUnstableHandedOutEntriesNotOverwritten(t *testing.T) {
	u := unstable{offset: 1, offsetInProgress: 1, logger: DiscardLogger}
	u.truncateAndAppend(entsFrom(1, 1, 1, 1))
	handedOut := u.nextEntries()
	snapshot := append([]pb.Entry(nil), handedOut...)

	u.truncateAndAppend(entsFrom(2, 2, 2)) // replaces 2 and 3
	require.Equal(t, snapshot, handedOut, "handed-out entries changed by a later truncation")

	next := u.nextEntries()
	_ = append(handedOut, pb.Entry{Index: 99, Term: 99})
	_ = append(next, pb.Entry{Index: 98, Term: 98})
	require.Equal(t, entsFrom(1, 1, 2, 2), u.entries, "an append by the application wrote into the tail")
}

func TestUnstableStableTo(t *testing.T) {
	tests := []struct {
		name           string
		u              unstable
		stable         entryID
		wantOffset     uint64
		wantInProgress uint64
		wantLen        int
	}{
		{
			name: "empty", u: unstable{offset: 1, offsetInProgress: 1}, stable: entryID{term: 1, index: 0},
			wantOffset: 1, wantInProgress: 1, wantLen: 0,
		},
		{
			name: "all in progress stable", u: unstable{offset: 5, offsetInProgress: 7, entries: entsFrom(5, 1, 1)},
			stable: entryID{term: 1, index: 6}, wantOffset: 7, wantInProgress: 7, wantLen: 0,
		},
		{
			name: "prefix stable", u: unstable{offset: 5, offsetInProgress: 7, entries: entsFrom(5, 1, 1)},
			stable: entryID{term: 1, index: 5}, wantOffset: 6, wantInProgress: 7, wantLen: 1,
		},
		{
			name: "stable past the in-progress mark", u: unstable{offset: 5, offsetInProgress: 5, entries: entsFrom(5, 1, 1)},
			stable: entryID{term: 1, index: 5}, wantOffset: 6, wantInProgress: 6, wantLen: 1,
		},
		{
			name: "replaced entry: term mismatch ignored", u: unstable{offset: 5, offsetInProgress: 7, entries: entsFrom(5, 2, 2)},
			stable: entryID{term: 1, index: 6}, wantOffset: 5, wantInProgress: 7, wantLen: 2,
		},
		{
			name: "index before offset ignored", u: unstable{offset: 5, offsetInProgress: 7, entries: entsFrom(5, 1, 1)},
			stable: entryID{term: 1, index: 4}, wantOffset: 5, wantInProgress: 7, wantLen: 2,
		},
		{
			name: "snapshot index is not an entry", u: unstable{offset: 5, offsetInProgress: 6, snapshot: snapAt(4, 1), entries: entsFrom(5, 1)},
			stable: entryID{term: 1, index: 4}, wantOffset: 5, wantInProgress: 6, wantLen: 1,
		},
		{
			name: "entry after snapshot", u: unstable{offset: 5, offsetInProgress: 6, snapshot: snapAt(4, 1), entries: entsFrom(5, 1)},
			stable: entryID{term: 1, index: 5}, wantOffset: 6, wantInProgress: 6, wantLen: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := tt.u
			u.logger = DiscardLogger
			u.stableTo(tt.stable)
			require.Equal(t, tt.wantOffset, u.offset)
			require.Equal(t, tt.wantInProgress, u.offsetInProgress)
			require.Len(t, u.entries, tt.wantLen)
			if u.snapshot == nil {
				checkUnstable(t, &u)
			}
		})
	}
}

func TestUnstableSnapshotLifecycle(t *testing.T) {
	u := unstable{offset: 3, offsetInProgress: 3, entries: entsFrom(3, 1), logger: DiscardLogger}
	u.restore(*snapAt(10, 4))
	checkUnstable(t, &u)
	require.Empty(t, u.entries)
	require.Equal(t, uint64(11), u.offset)

	require.NotNil(t, u.nextSnapshot())
	u.truncateAndAppend(entsFrom(11, 4))
	require.Len(t, u.nextEntries(), 1)
	u.acceptInProgress()
	require.Nil(t, u.nextSnapshot(), "an in-progress snapshot is not handed out twice")
	require.Nil(t, u.nextEntries(), "in-progress entries are not handed out twice")
	checkUnstable(t, &u)

	u.stableSnapTo(9) // a different snapshot: ignored
	require.NotNil(t, u.snapshot)
	u.stableSnapTo(10)
	require.Nil(t, u.snapshot)
	require.False(t, u.snapshotInProgress)
	u.stableTo(entryID{term: 4, index: 11})
	require.Empty(t, u.entries)
	require.Equal(t, uint64(12), u.offset)
}

// A large backing array is released once most of it holds stable
// entries, so a node does not pin every entry it appended in a burst.
func TestUnstableShrinkReleasesMemory(t *testing.T) {
	u := unstable{offset: 1, offsetInProgress: 1, logger: DiscardLogger}
	u.truncateAndAppend(entsFrom(1, make([]uint64, 1024)...))
	u.acceptInProgress()
	u.stableTo(entryID{term: 0, index: 1020})
	require.Len(t, u.entries, 4)
	require.LessOrEqual(t, int(u.arrayLen), maxRetainedEntries, "backing array of stable entries should be released")
	u.stableTo(entryID{term: 0, index: 1024})
	require.Empty(t, u.entries)
	require.LessOrEqual(t, int(u.arrayLen), maxRetainedEntries)
	u.release()
	require.Zero(t, u.arrayLen, "an idle tail holds no array")
	require.Nil(t, u.entries)
}

// Arrays start small and double while the node keeps appending: a node
// that appended a few entries holds a small array, a busy one allocates
// ever more rarely (up to maxRetainedEntries per array), and release
// starts it small again.
func TestUnstableArraysGrowWithUse(t *testing.T) {
	u := unstable{offset: 1, offsetInProgress: 1, logger: DiscardLogger}
	var lens []int
	for i := uint64(1); i <= 600; i++ {
		u.truncateAndAppend(entsFrom(i, 1))
		u.acceptInProgress()
		u.stableTo(entryID{term: 1, index: i})
		if n := len(lens); int(u.arrayLen) != 0 && (n == 0 || lens[n-1] != int(u.arrayLen)) {
			lens = append(lens, int(u.arrayLen))
		}
	}
	require.Equal(t, []int{minUnstableEntries, 8, 16, 32, 64, 128, 256}, lens)
	u.release()
	u.truncateAndAppend(entsFrom(601, 1))
	require.Equal(t, minUnstableEntries, int(u.arrayLen))
}

// An array whose every slot holds a stable entry has no room for the next
// one: it is dropped when its last entries become stable, not pinned with
// their payloads until the next append replaces it. Arrays keep growing as
// the node keeps appending.
func TestUnstableDropsSpentArray(t *testing.T) {
	const n = minUnstableEntries
	run := func(first uint64, k int) []pb.Entry {
		return entsFrom(first, slices.Repeat([]uint64{1}, k)...)
	}
	u := unstable{offset: 1, offsetInProgress: 1, logger: DiscardLogger}
	u.truncateAndAppend(run(1, n))
	require.Equal(t, 2*n, int(u.arrayLen))
	u.acceptInProgress()
	u.stableTo(entryID{term: 1, index: n})
	require.Equal(t, 2*n, int(u.arrayLen), "spare room is kept")

	u.truncateAndAppend(run(n+1, n))
	u.acceptInProgress()
	u.stableTo(entryID{term: 1, index: n + 1})
	require.Equal(t, 2*n, int(u.arrayLen), "live entries are kept")
	u.stableTo(entryID{term: 1, index: 2 * n})
	require.Nil(t, u.entries)
	require.Zero(t, u.arrayLen)

	u.truncateAndAppend(run(2*n+1, 1))
	require.Equal(t, 4*n, int(u.arrayLen), "the next array still doubles")
}

// A small backing array is reused: appending one entry at a time, written
// and acknowledged in between, allocates once per many entries, and what
// was handed out is never written again.
func TestUnstableReusesSmallArray(t *testing.T) {
	u := unstable{offset: 1, offsetInProgress: 1, logger: DiscardLogger}
	const runs = minUnstableEntries * 4
	handed := make([][]pb.Entry, 0, runs+2)
	appends := make([][]pb.Entry, runs+2)
	for i := range appends {
		appends[i] = entsFrom(uint64(i+1), 1)
	}
	idx := uint64(1)
	step := func() {
		u.truncateAndAppend(appends[idx-1])
		handed = append(handed, u.nextEntries())
		u.acceptInProgress()
		u.stableTo(entryID{term: 1, index: idx})
		idx++
	}
	step()
	allocs := testing.AllocsPerRun(runs, step)
	require.Less(t, allocs, 0.5, "allocations per appended entry")
	for i, h := range handed {
		require.Equal(t, entsFrom(uint64(i+1), 1), h, "handed-out entry %d was written", i+1)
	}
}
