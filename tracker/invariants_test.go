//go:build invariants

package tracker

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// With the invariants build tag, an illegal state transition or corrupted
// Progress or Inflights makes the next change panic with a message naming
// the invariant.
func TestInvariantsProgressChecksFire(t *testing.T) {
	for _, tt := range []struct {
		name string
		do   func(pr *Progress)
		want string
	}{
		{
			name: "snapshot while a snapshot is in flight",
			do: func(pr *Progress) {
				pr.BecomeSnapshot(20)
				pr.BecomeSnapshot(30)
			},
			want: "raft: invariant: illegal progress transition StateSnapshot -> StateSnapshot (StateSnapshot match=5 next=21 pendingSnap=20)",
		},
		{
			name: "replicate while replicating",
			do: func(pr *Progress) {
				pr.BecomeReplicate()
				pr.BecomeReplicate()
			},
			want: "raft: invariant: illegal progress transition StateReplicate -> StateReplicate (StateReplicate match=5 next=6)",
		},
		{
			name: "match caught up with next",
			do: func(pr *Progress) {
				pr.Match = 9
				pr.MaybeUpdate(3)
			},
			want: "raft: invariant: progress match(9) >= next(9) (StateProbe match=9 next=9)",
		},
		{
			name: "pending snapshot outside StateSnapshot",
			do: func(pr *Progress) {
				pr.PendingSnapshot = 7
				pr.MaybeUpdate(6)
			},
			want: "raft: invariant: pending snapshot(7) or snapshot ticks(0) outside StateSnapshot (StateProbe match=6 next=9 pendingSnap=7)",
		},
		{
			name: "appends in flight while probing",
			do: func(pr *Progress) {
				pr.BecomeReplicate()
				pr.SentEntries(2, 10)
				pr.State = StateProbe
				pr.MaybeUpdate(6)
			},
			want: "raft: invariant: 1 appends in flight outside StateReplicate (StateProbe match=6 next=8 inflight=1)",
		},
		{
			name: "inflights bytes disagree",
			do: func(pr *Progress) {
				pr.BecomeReplicate()
				pr.SentEntries(1, 10)
				pr.Inflights.bytes = 3
				pr.SentEntries(1, 10)
			},
			want: "raft: invariant: inflights bytes(13) != sum of the appends in flight(20)",
		},
		{
			name: "inflights last disagrees",
			do: func(pr *Progress) {
				pr.BecomeReplicate()
				pr.SentEntries(1, 10)
				pr.SentEntries(1, 10)
				pr.Inflights.last = 9
				pr.MaybeUpdate(6)
			},
			want: "raft: invariant: inflights last(9) != newest index in flight(7)",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pr := &Progress{Match: 5, Next: 9, State: StateProbe, Inflights: NewInflights(4, 0), RecentActive: true}
			require.PanicsWithValue(t, tt.want, func() { tt.do(pr) })
		})
	}
}
