//go:build invariants

package raft

import (
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
)

// With the invariants build tag, corrupting the log's internal state makes
// the next change to the log panic with a message naming the invariant and
// the values that break it.
func TestInvariantsLogChecksFire(t *testing.T) {
	// newLog builds a log with entries 1-3 in Storage and 4-5 unstable,
	// committed at 3.
	newLog := func() *raftLog {
		s := NewMemoryStorage()
		require.NoError(t, s.Append(entsFrom(1, 1, 1, 1)))
		l := newLog(s, DiscardLogger)
		l.append(entsFrom(4, 2, 2)...)
		l.commitTo(3)
		return l
	}
	for _, tt := range []struct {
		name    string
		corrupt func(l *raftLog)
		change  func(l *raftLog)
		want    string
	}{
		{
			name:    "committed past the last index",
			corrupt: func(l *raftLog) { l.committed = 9 },
			change:  func(l *raftLog) { l.acceptUnstable() },
			want:    "raft: invariant: committed(9) > lastIndex(5)",
		},
		{
			name:    "applying past committed",
			corrupt: func(l *raftLog) { l.applying = 4 },
			change:  func(l *raftLog) { l.acceptUnstable() },
			want:    "raft: invariant: applied(0) <= applying(4) <= committed(3) does not hold",
		},
		{
			name:    "applied past applying",
			corrupt: func(l *raftLog) { l.applied = 2 },
			change:  func(l *raftLog) { l.stableTo(entryID{term: 2, index: 4}) },
			want:    "raft: invariant: applied(2) <= applying(0) <= committed(3) does not hold",
		},
		{
			name:    "in-progress offset past the entries",
			corrupt: func(l *raftLog) { l.unstable.offsetInProgress = 7 },
			change:  func(l *raftLog) { l.commitTo(4) },
			want:    "raft: invariant: unstable offsetInProgress(7) outside [offset(4), offset+len(entries)(6)]",
		},
		{
			name:    "unstable entries not where offset says",
			corrupt: func(l *raftLog) { l.unstable.entries[0].Index = 5 },
			change:  func(l *raftLog) { l.commitTo(4) },
			want:    "raft: invariant: unstable entries not contiguous from offset(4): first index 5, last index 5, len 2",
		},
		{
			name:    "offset not after the pending snapshot",
			corrupt: func(l *raftLog) { l.unstable.offset = 12 },
			change: func(l *raftLog) {
				l.unstable.snapshot = &pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 10, Term: 2}}
				l.acceptUnstable()
			},
			want: "raft: invariant: unstable offset(12) != snapshot index(10)+1",
		},
		{
			name: "gap between stable and unstable entries",
			corrupt: func(l *raftLog) {
				l.unstable.offset, l.unstable.offsetInProgress = 6, 6
				for i := range l.unstable.entries {
					l.unstable.entries[i].Index += 2
				}
			},
			change: func(l *raftLog) { l.acceptUnstable() },
			want:   "raft: invariant: unstable offset(6) > stable lastIndex(3)+1: a gap between the stable and unstable entries",
		},
		{
			name: "stable log not ending before the empty tail",
			corrupt: func(l *raftLog) {
				l.unstable.entries = nil
				l.unstable.offset, l.unstable.offsetInProgress = 3, 3
			},
			change: func(l *raftLog) { l.lastIndex() },
			want:   "raft: invariant: the unstable tail is empty but storage's last index 3 is not before its offset 3",
		},
		{
			name:    "appended entries with a hole",
			corrupt: func(*raftLog) {},
			change:  func(l *raftLog) { l.append(pb.Entry{Index: 6, Term: 2}, pb.Entry{Index: 8, Term: 2}) },
			want:    "raft: invariant: appended entries not contiguous: (index 6, term 2) followed by (index 8, term 2)",
		},
		{
			name:    "appended entries after a gap",
			corrupt: func(*raftLog) {},
			change:  func(l *raftLog) { l.append(entsFrom(7, 2)...) },
			want:    "raft: invariant: appended entries start at 7, leaving a gap after the last index 5",
		},
		{
			name:    "appended entry of a lower term",
			corrupt: func(*raftLog) {},
			change:  func(l *raftLog) { l.append(entsFrom(6, 1)...) },
			want:    "raft: invariant: appended entry (index 6, term 1) follows (index 5, term 2): terms must not decrease",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := newLog()
			tt.corrupt(l)
			require.PanicsWithValue(t, tt.want, func() { tt.change(l) })
		})
	}
}

// The untouched log of the test above passes every check, so the panics
// come from the corruption alone.
func TestInvariantsLogChecksPassOnAHealthyLog(t *testing.T) {
	s := NewMemoryStorage()
	require.NoError(t, s.Append(entsFrom(1, 1, 1, 1)))
	l := newLog(s, DiscardLogger)
	require.NotPanics(t, func() {
		l.append(entsFrom(4, 2, 2)...)
		l.commitTo(3)
		l.acceptUnstable()
		l.checkInvariants()
	})
}

// With the invariants build tag, a persisted hard state that goes back
// (term, the term's vote, or the commit index), or a node whose term goes
// back, panics with the invariant's name.
func TestInvariantsHardStateChecksFire(t *testing.T) {
	for _, tt := range []struct {
		name    string
		corrupt func(r *raft)
		want    string
	}{
		{"term goes back", func(r *raft) { r.Term = 1 }, "raft: invariant: hard state term(1) < previous term(2)"},
		{"vote changes within the term", func(r *raft) { r.Vote = 3 }, "raft: invariant: vote changed from 1 to 3 within term 2"},
		{"commit goes back", func(r *raft) {
			// applied and applying too, or the log's own check fires first.
			r.raftLog.committed, r.raftLog.applying, r.raftLog.applied = 1, 1, 1
		}, "raft: invariant: hard state commit(1) < previous commit(2)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rn, s := newBootstrapped(t, 1, 1)
			handle(t, rn, s, rn.Ready())
			require.NoError(t, rn.Campaign())
			for rn.HasReady() {
				handle(t, rn, s, rn.Ready())
			}
			hs := rn.raft.hardState()
			require.Equal(t, pb.HardState{Term: 2, Vote: 1, Commit: 2}, hs)
			tt.corrupt(rn.raft)
			require.PanicsWithValue(t, tt.want, func() { rn.Ready() })
		})
	}

	rn, _ := newBootstrapped(t, 1, 1)
	rn.raft.Term = 5
	require.PanicsWithValue(t, "raft: invariant: term(5) going back to 4", func() { rn.raft.becomeFollower(4, None) })
}
