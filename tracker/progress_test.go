package tracker

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"
)

// newProgressForTest returns a Progress in state with the given Match and
// Next (and PendingSnapshot in StateSnapshot); its invariants are checked
// when the test ends.
func newProgressForTest(t *testing.T, state StateType, match, next, pending uint64) *Progress {
	t.Helper()
	pr := &Progress{
		Match: match, Next: next, State: state,
		Inflights:    NewInflights(4, 0),
		RecentActive: true,
	}
	if state == StateSnapshot {
		pr.PendingSnapshot = pending
	}
	t.Cleanup(func() { checkProgress(t, pr) })
	return pr
}

func checkProgress(t *testing.T, pr *Progress) {
	t.Helper()
	require.Less(t, pr.Match, pr.Next, "Match < Next: %s", pr)
	if pr.State != StateSnapshot {
		require.Zero(t, pr.PendingSnapshot, "pending snapshot outside StateSnapshot: %s", pr)
	}
	if pr.State != StateReplicate {
		require.Zero(t, pr.Inflights.Count(), "inflights outside StateReplicate: %s", pr)
	}
	checkInflights(t, pr.Inflights)
}

func TestProgressBecome(t *testing.T) {
	tests := []struct {
		name      string
		state     StateType
		match     uint64
		next      uint64
		pending   uint64
		become    func(pr *Progress)
		wantState StateType
		wantNext  uint64
		wantSnap  uint64
	}{
		{"probe from replicate", StateReplicate, 5, 9, 0, (*Progress).BecomeProbe, StateProbe, 6, 0},
		{"probe from probe", StateProbe, 5, 7, 0, (*Progress).BecomeProbe, StateProbe, 6, 0},
		{"probe from snapshot above match", StateSnapshot, 5, 21, 20, (*Progress).BecomeProbe, StateProbe, 21, 0},
		{"probe from snapshot below match", StateSnapshot, 30, 21, 20, (*Progress).BecomeProbe, StateProbe, 31, 0},
		{"probe from snapshot at match", StateSnapshot, 20, 21, 20, (*Progress).BecomeProbe, StateProbe, 21, 0},
		{"replicate from probe", StateProbe, 5, 9, 0, (*Progress).BecomeReplicate, StateReplicate, 6, 0},
		{"replicate from snapshot", StateSnapshot, 20, 21, 20, (*Progress).BecomeReplicate, StateReplicate, 21, 0},
		{"snapshot from probe", StateProbe, 5, 6, 0,
			func(pr *Progress) { pr.BecomeSnapshot(40) }, StateSnapshot, 41, 40},
		{"snapshot from replicate", StateReplicate, 5, 9, 0,
			func(pr *Progress) { pr.BecomeSnapshot(40) }, StateSnapshot, 41, 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr := newProgressForTest(t, tt.state, tt.match, max(tt.next, tt.match+1), tt.pending)
			if tt.state == StateReplicate {
				pr.SentEntries(1, 10)
			}
			pr.MsgAppFlowPaused = true
			tt.become(pr)
			require.Equal(t, tt.wantState, pr.State)
			require.Equal(t, tt.match, pr.Match, "Match never changes")
			require.Equal(t, tt.wantNext, pr.Next)
			require.Equal(t, tt.wantSnap, pr.PendingSnapshot)
			require.False(t, pr.MsgAppFlowPaused)
			require.Zero(t, pr.Inflights.Count())
		})
	}
}

func TestProgressResetState(t *testing.T) {
	pr := newProgressForTest(t, StateReplicate, 3, 4, 0)
	pr.SentEntries(2, 100)
	pr.MsgAppFlowPaused = true
	pr.ResetState(StateProbe)
	require.Equal(t, StateProbe, pr.State)
	require.False(t, pr.MsgAppFlowPaused)
	require.Zero(t, pr.Inflights.Count())
	require.Equal(t, uint64(6), pr.Next, "ResetState leaves Next alone")
}

func TestProgressSentEntries(t *testing.T) {
	tests := []struct {
		name       string
		state      StateType
		sends      []int // entry counts of consecutive appends, 10 bytes each
		wantNext   uint64
		wantInfl   []uint64
		wantPaused bool
	}{
		{"replicate one append", StateReplicate, []int{3}, 9, []uint64{8}, false},
		{"replicate empty append", StateReplicate, []int{0}, 6, nil, false},
		{"replicate fills window", StateReplicate, []int{1, 1, 2, 1}, 11, []uint64{6, 7, 9, 10}, true},
		{"probe pauses", StateProbe, []int{3}, 6, nil, true},
		{"probe empty append pauses", StateProbe, []int{0}, 6, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr := newProgressForTest(t, tt.state, 5, 6, 0)
			for _, n := range tt.sends {
				pr.SentEntries(n, 10)
			}
			require.Equal(t, tt.wantNext, pr.Next)
			require.Equal(t, tt.wantInfl, indexes(pr.Inflights))
			if tt.state == StateProbe {
				require.Equal(t, tt.wantPaused, pr.MsgAppFlowPaused)
			}
			require.Equal(t, tt.wantPaused, pr.IsPaused())
		})
	}
}

func TestProgressSentEntriesFullByBytes(t *testing.T) {
	pr := newProgressForTest(t, StateReplicate, 5, 6, 0)
	pr.Inflights = NewInflights(100, 1000)
	pr.SentEntries(2, 600)
	require.False(t, pr.IsPaused())
	pr.SentEntries(2, 600)
	require.True(t, pr.IsPaused())
}

func TestProgressSentEntriesMisusePanics(t *testing.T) {
	tests := []struct {
		name  string
		state StateType
		n     int
		want  string
	}{
		{"in snapshot", StateSnapshot, 1,
			"raft: SentEntries in StateSnapshot: no appends may be sent while a snapshot is in flight"},
		{"negative count", StateReplicate, -1, "raft: SentEntries with negative entry count -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr := newProgressForTest(t, tt.state, 5, 11, 10)
			require.PanicsWithValue(t, tt.want, func() { pr.SentEntries(tt.n, 1) })
		})
	}
}

func TestProgressMaybeUpdate(t *testing.T) {
	tests := []struct {
		name      string
		match     uint64
		next      uint64
		ack       uint64
		want      bool
		wantMatch uint64
		wantNext  uint64
	}{
		{"ack raises match", 3, 10, 7, true, 7, 10},
		{"ack at next-1", 3, 10, 9, true, 9, 10},
		{"ack beyond next pushes next", 3, 10, 15, true, 15, 16},
		{"ack equal to match is stale", 3, 10, 3, false, 3, 10},
		{"ack below match is stale", 5, 10, 2, false, 5, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr := newProgressForTest(t, StateProbe, tt.match, tt.next, 0)
			pr.MsgAppFlowPaused = true
			require.Equal(t, tt.want, pr.MaybeUpdate(tt.ack))
			require.Equal(t, tt.wantMatch, pr.Match)
			require.Equal(t, tt.wantNext, pr.Next)
			require.Equal(t, !tt.want, pr.MsgAppFlowPaused, "an update unpauses; a stale ack does not")
		})
	}
}

func TestProgressMaybeUpdateFreesInflights(t *testing.T) {
	pr := newProgressForTest(t, StateReplicate, 0, 1, 0)
	for i := 0; i < 4; i++ {
		pr.SentEntries(2, 10)
	}
	require.True(t, pr.IsPaused())
	require.True(t, pr.MaybeUpdate(4))
	require.False(t, pr.IsPaused())
	require.Equal(t, []uint64{6, 8}, indexes(pr.Inflights))
	require.Equal(t, uint64(9), pr.Next)
}

func TestProgressMaybeDecrTo(t *testing.T) {
	tests := []struct {
		name       string
		state      StateType
		match      uint64
		next       uint64
		rejected   uint64
		hint       uint64
		want       bool
		wantNext   uint64
		wantPaused bool
	}{
		{"replicate rejection above match", StateReplicate, 5, 10, 8, 7, true, 6, true},
		{"replicate stale at match", StateReplicate, 5, 10, 5, 5, false, 10, true},
		{"replicate stale below match", StateReplicate, 5, 10, 3, 3, false, 10, true},
		{"probe steps back by one", StateProbe, 0, 10, 9, 9, true, 9, false},
		{"probe hint above rejected", StateProbe, 0, 10, 9, 50, true, 9, false},
		{"probe jumps to hint", StateProbe, 0, 10, 9, 3, true, 4, false},
		{"probe hint below match", StateProbe, 5, 10, 9, 1, true, 6, false},
		{"probe hint zero", StateProbe, 0, 10, 9, 0, true, 1, false},
		{"probe huge hint does not overflow", StateProbe, 0, 10, 9, ^uint64(0), true, 9, false},
		{"probe rejection of match", StateProbe, 5, 6, 5, 2, true, 6, false},
		{"probe stale older probe", StateProbe, 0, 10, 7, 3, false, 10, true},
		{"probe stale newer index", StateProbe, 0, 10, 12, 3, false, 10, true},
		{"snapshot is always stale", StateSnapshot, 5, 21, 20, 3, false, 21, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr := newProgressForTest(t, tt.state, tt.match, tt.next, tt.next-1)
			pr.MsgAppFlowPaused = true
			require.Equal(t, tt.want, pr.MaybeDecrTo(tt.rejected, tt.hint))
			require.Equal(t, tt.wantNext, pr.Next)
			require.Equal(t, tt.match, pr.Match)
			require.Equal(t, tt.wantPaused, pr.MsgAppFlowPaused)
		})
	}
}

func TestProgressIsPaused(t *testing.T) {
	tests := []struct {
		name   string
		state  StateType
		paused bool
		want   bool
	}{
		{"probe", StateProbe, false, false},
		{"probe paused", StateProbe, true, true},
		{"replicate", StateReplicate, false, false},
		{"replicate ignores the probe flag", StateReplicate, true, false},
		{"snapshot", StateSnapshot, false, true},
		{"snapshot paused", StateSnapshot, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr := newProgressForTest(t, tt.state, 1, 2, 1)
			pr.MsgAppFlowPaused = tt.paused
			require.Equal(t, tt.want, pr.IsPaused())
		})
	}
}

// TestProgressReplicatePausedExactlyWhenFull: in StateReplicate the pause is
// the window itself, so no acknowledgement or heartbeat can unpause a peer
// whose window is still full (the next Add would panic).
func TestProgressReplicatePausedExactlyWhenFull(t *testing.T) {
	pr := newProgressForTest(t, StateReplicate, 5, 6, 0)
	for i := 0; i < 4; i++ {
		require.False(t, pr.IsPaused())
		pr.SentEntries(1, 1)
	}
	require.True(t, pr.IsPaused(), "window of 4 is full")
	require.False(t, pr.MaybeUpdate(5), "an old acknowledgement frees nothing")
	pr.MsgAppFlowPaused = false
	require.True(t, pr.IsPaused(), "clearing the probe flag does not open a full window")
	pr.Inflights.FreeFirstOne()
	require.False(t, pr.IsPaused())
	require.Equal(t, 3, pr.Inflights.Count())
}

func TestProgressString(t *testing.T) {
	tests := []struct {
		name  string
		setup func(pr *Progress)
		want  string
	}{
		{"plain", func(*Progress) {}, "StateProbe match=5 next=6"},
		{"everything", func(pr *Progress) {
			pr.BecomeReplicate()
			pr.IsLearner = true
			pr.RecentActive = false
			for i := 0; i < 4; i++ {
				pr.SentEntries(1, 1)
			}
		}, "StateReplicate match=5 next=10 learner paused inflight=4[full] inactive"},
		{"inflight not full", func(pr *Progress) {
			pr.BecomeReplicate()
			pr.SentEntries(2, 1)
		}, "StateReplicate match=5 next=8 inflight=1"},
		{"snapshot", func(pr *Progress) { pr.BecomeSnapshot(9) }, "StateSnapshot match=5 next=10 pendingSnap=9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr := newProgressForTest(t, StateProbe, 5, 6, 0)
			tt.setup(pr)
			require.Equal(t, tt.want, pr.String())
		})
	}
}

func TestProgressMapString(t *testing.T) {
	m := ProgressMap{
		3: {Match: 1, Next: 2, Inflights: NewInflights(1, 0), RecentActive: true},
		1: {Match: 4, Next: 5, Inflights: NewInflights(1, 0), IsLearner: true},
	}
	require.Equal(t, "1: StateProbe match=4 next=5 learner inactive\n3: StateProbe match=1 next=2\n", m.String())
}

func TestStateTypeString(t *testing.T) {
	require.Equal(t, "StateProbe", StateProbe.String())
	require.Equal(t, "StateReplicate", StateReplicate.String())
	require.Equal(t, "StateSnapshot", StateSnapshot.String())
	require.Equal(t, "StateType(7)", StateType(7).String())
}

// TestStateTypeValues pins the numbers behind the states, which match etcd
// raft's.
func TestStateTypeValues(t *testing.T) {
	require.Equal(t, []StateType{0, 1, 2}, []StateType{StateProbe, StateReplicate, StateSnapshot})
}

func TestProgressSentCommit(t *testing.T) {
	tests := []struct {
		name  string
		sent  []uint64 // commit indexes sent, in order
		index uint64
		want  bool
	}{
		{"nothing sent, zero index", nil, 0, false},
		{"nothing sent", nil, 1, true},
		{"same index already sent", []uint64{7}, 7, false},
		{"lower index already sent", []uint64{7}, 5, false},
		{"higher index", []uint64{7}, 8, true},
		{"a lower heartbeat commit does not lower it", []uint64{7, 3}, 5, false},
		{"the highest of several", []uint64{2, 9, 4}, 9, false},
		{"above the highest of several", []uint64{2, 9, 4}, 10, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr := newProgressForTest(t, StateReplicate, 5, 6, 0)
			for _, c := range tt.sent {
				pr.SentCommit(c)
			}
			require.Equal(t, tt.want, pr.CanBumpCommit(tt.index))
		})
	}
}

// TestProgressFieldOrder pins the order of Progress's exported fields to
// etcd raft's, followed by raftcore's additions: code that prints or walks a
// Progress by field position sees the same layout.
func TestProgressFieldOrder(t *testing.T) {
	var got []string
	typ := reflect.TypeOf(Progress{})
	for i := 0; i < typ.NumField(); i++ {
		if f := typ.Field(i); f.IsExported() {
			got = append(got, f.Name)
		}
	}
	require.Equal(t, []string{
		"Match", "Next", "State", "PendingSnapshot", "RecentActive",
		"MsgAppFlowPaused", "Inflights", "IsLearner",
		"SnapshotTicks",
	}, got)
}
