package tracker

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// newInflightsForTest returns an Inflights whose invariants are checked when
// the test ends.
func newInflightsForTest(t *testing.T, size int, maxBytes uint64) *Inflights {
	t.Helper()
	in := NewInflights(size, maxBytes)
	t.Cleanup(func() { checkInflights(t, in) })
	return in
}

func checkInflights(t *testing.T, in *Inflights) {
	t.Helper()
	require.LessOrEqual(t, in.count, len(in.buffer), "count within buffer")
	require.LessOrEqual(t, len(in.buffer), in.size, "buffer within size")
	var sum uint64
	for i, f := range contents(in) {
		sum += f.bytes
		if i > 0 {
			require.Greater(t, f.index, contents(in)[i-1].index, "indexes increase")
		}
	}
	require.Equal(t, sum, in.bytes, "bytes is the sum of in-flight sizes")
	if in.count > 0 {
		require.Equal(t, in.last, contents(in)[in.count-1].index, "last is the newest")
	}
}

// contents returns the appends in flight, oldest first.
func contents(in *Inflights) []inflight {
	var out []inflight
	for i := 0; i < in.count; i++ {
		out = append(out, in.buffer[(in.start+i)%len(in.buffer)])
	}
	return out
}

// addRange adds indexes from..to, each of the given size.
func addRange(in *Inflights, from, to, bytes uint64) {
	for i := from; i <= to; i++ {
		in.Add(i, bytes)
	}
}

func TestInflightsFull(t *testing.T) {
	tests := []struct {
		name      string
		size      int
		maxBytes  uint64
		adds      int    // indexes 1..adds
		bytesEach uint64 // size of each add
		wantFull  bool
		wantBytes uint64
	}{
		{"empty", 4, 0, 0, 10, false, 0},
		{"partly filled", 4, 0, 3, 10, false, 30},
		{"full by count", 4, 0, 4, 10, true, 40},
		{"size one", 1, 0, 1, 0, true, 0},
		{"no byte limit ignores bytes", 4, 0, 3, 1 << 40, false, 3 << 40},
		{"below byte limit", 10, 100, 3, 30, false, 90},
		{"full at byte limit exactly", 10, 100, 2, 50, true, 100},
		{"full above byte limit", 10, 100, 4, 30, true, 120},
		{"one oversized append fills", 10, 100, 1, 500, true, 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := newInflightsForTest(t, tt.size, tt.maxBytes)
			addRange(in, 1, uint64(tt.adds), tt.bytesEach)
			require.Equal(t, tt.adds, in.Count())
			require.Equal(t, tt.wantFull, in.Full())
			require.Equal(t, tt.wantBytes, in.bytes)
		})
	}
}

func TestInflightsFreeLE(t *testing.T) {
	tests := []struct {
		name      string
		free      uint64
		wantIdx   []uint64
		wantBytes uint64
	}{
		{"below oldest frees none", 4, []uint64{5, 6, 7, 8}, 40},
		{"zero frees none", 0, []uint64{5, 6, 7, 8}, 40},
		{"oldest only", 5, []uint64{6, 7, 8}, 30},
		{"partial", 6, []uint64{7, 8}, 20},
		{"all exactly", 8, nil, 0},
		{"all beyond", 100, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := newInflightsForTest(t, 4, 0)
			addRange(in, 5, 8, 10)
			in.FreeLE(tt.free)
			require.Equal(t, tt.wantIdx, indexes(in))
			require.Equal(t, tt.wantBytes, in.bytes)
			require.Equal(t, len(tt.wantIdx) == 4, in.Full())
		})
	}
}

func indexes(in *Inflights) []uint64 {
	var out []uint64
	for _, f := range contents(in) {
		out = append(out, f.index)
	}
	return out
}

func TestInflightsWrapAround(t *testing.T) {
	in := newInflightsForTest(t, 4, 0)
	addRange(in, 1, 4, 1)
	in.FreeLE(2)
	addRange(in, 5, 6, 1) // lands in positions 0 and 1: the ring has wrapped
	require.Equal(t, 2, in.start)
	require.True(t, in.Full())
	require.Equal(t, []uint64{3, 4, 5, 6}, indexes(in))

	in.FreeLE(4) // frees up to the end of the buffer, start wraps to 0
	require.Equal(t, 0, in.start)
	require.Equal(t, []uint64{5, 6}, indexes(in))

	in.FreeLE(5)
	addRange(in, 7, 9, 1)
	require.Equal(t, []uint64{6, 7, 8, 9}, indexes(in))
	in.FreeLE(8) // frees across the wrap point
	require.Equal(t, []uint64{9}, indexes(in))
	require.Equal(t, uint64(1), in.bytes)
}

func TestInflightsGrowth(t *testing.T) {
	tests := []struct {
		name     string
		size     int
		wantLens []int // buffer length after each add
	}{
		{"doubles up to size", 10, []int{1, 2, 4, 4, 8, 8, 8, 8, 10, 10}},
		{"power of two size", 4, []int{1, 2, 4, 4}},
		{"size one", 1, []int{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := newInflightsForTest(t, tt.size, 0)
			require.Nil(t, in.buffer, "no buffer until the first add")
			for i, want := range tt.wantLens {
				in.Add(uint64(i+1), 1)
				require.Len(t, in.buffer, want, "after add %d", i+1)
			}
		})
	}
}

func TestInflightsGrowUnwrapsRing(t *testing.T) {
	in := newInflightsForTest(t, 8, 0)
	addRange(in, 1, 2, 1) // buffer of 2
	in.FreeLE(1)          // start = 1
	in.Add(3, 1)          // wraps into position 0
	require.Equal(t, 1, in.start)
	in.Add(4, 1) // full buffer of 2: grows to 4 and unwraps
	require.Equal(t, 0, in.start)
	require.Len(t, in.buffer, 4)
	require.Equal(t, []uint64{2, 3, 4}, indexes(in))
}

func TestInflightsReset(t *testing.T) {
	in := newInflightsForTest(t, 4, 100)
	addRange(in, 10, 13, 30)
	require.True(t, in.Full())
	buf := in.buffer

	in.Reset()
	require.Zero(t, in.Count())
	require.False(t, in.Full())
	require.Zero(t, in.bytes)
	require.Same(t, &buf[0], &in.buffer[0], "buffer kept for reuse")

	in.Add(3, 1) // lower than before the reset: allowed
	require.Equal(t, []uint64{3}, indexes(in))
}

func TestInflightsClone(t *testing.T) {
	in := newInflightsForTest(t, 4, 0)
	addRange(in, 1, 3, 5)
	c := in.Clone()
	t.Cleanup(func() { checkInflights(t, c) })

	in.FreeLE(2)
	in.Add(4, 5)
	c.Add(10, 7)

	require.Equal(t, []uint64{3, 4}, indexes(in))
	require.Equal(t, []uint64{1, 2, 3, 10}, indexes(c))
	require.Equal(t, uint64(22), c.bytes)
}

func TestInflightsMisusePanics(t *testing.T) {
	tests := []struct {
		name string
		do   func()
		want string
	}{
		{"add when full by count", func() {
			in := NewInflights(2, 0)
			addRange(in, 1, 3, 1)
		}, "raft: Inflights.Add(3) while full (count=2 size=2 bytes=2 maxBytes=0); check Full first"},
		{"add when full by bytes", func() {
			in := NewInflights(10, 5)
			addRange(in, 1, 2, 5)
		}, "raft: Inflights.Add(2) while full (count=1 size=10 bytes=5 maxBytes=5); check Full first"},
		{"add equal index", func() {
			in := NewInflights(4, 0)
			in.Add(5, 1)
			in.Add(5, 1)
		}, "raft: Inflights.Add(5) not above the last added index 5; indexes must increase"},
		{"add lower index after free", func() {
			in := NewInflights(4, 0)
			in.Add(5, 1)
			in.FreeLE(5)
			in.Add(4, 1)
		}, "raft: Inflights.Add(4) not above the last added index 5; indexes must increase"},
		{"zero size", func() { NewInflights(0, 0) }, "raft: inflights size must be positive, got 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.PanicsWithValue(t, tt.want, tt.do)
		})
	}
}

func TestInflightsSteadyStateDoesNotAllocate(t *testing.T) {
	in := NewInflights(64, 0)
	addRange(in, 1, 64, 100) // grow to full size first
	next := uint64(65)
	allocs := testing.AllocsPerRun(1000, func() {
		in.FreeLE(next - 64)
		in.Add(next, 100)
		next++
	})
	require.Zero(t, allocs)
}

func BenchmarkInflightsAddFree(b *testing.B) {
	for _, bc := range []struct {
		name   string
		size   int
		window int // appends kept in flight
	}{
		{"size=256/window=1", 256, 1},
		{"size=256/window=128", 256, 128},
		{"size=256/window=256", 256, 256},
	} {
		b.Run(bc.name, func(b *testing.B) {
			in := NewInflights(bc.size, 0)
			next := uint64(1)
			for ; next <= uint64(bc.window); next++ {
				in.Add(next, 1024)
			}
			b.ReportAllocs()
			for b.Loop() {
				in.FreeLE(next - uint64(bc.window))
				in.Add(next, 1024)
				next++
			}
		})
	}
}

// BenchmarkInflightsFillDrain fills the window, then acks it in one go, as
// a peer that answers in batches does.
func BenchmarkInflightsFillDrain(b *testing.B) {
	in := NewInflights(256, 0)
	next := uint64(1)
	b.ReportAllocs()
	for b.Loop() {
		for !in.Full() {
			in.Add(next, 1024)
			next++
		}
		in.FreeLE(next - 1)
	}
}

// A nil Inflights (a follower's Progress) behaves as an empty window that
// nothing can be added to; only Add panics.
func TestInflightsNil(t *testing.T) {
	var in *Inflights
	require.Equal(t, 0, in.Count())
	require.True(t, in.Full(), "nothing may be added to a nil window")
	require.NotPanics(t, func() {
		in.FreeLE(10)
		in.FreeFirstOne()
		in.Reset()
	})
	require.Nil(t, in.Clone())
	require.PanicsWithValue(t,
		"raft: Inflights.Add(1) on a nil Inflights; the leader creates them with NewInflights",
		func() { in.Add(1, 1) })

	pr := &Progress{Next: 1, State: StateProbe}
	require.NotPanics(t, func() {
		pr.BecomeProbe()
		pr.MaybeUpdate(3)
		_ = pr.IsPaused()
		_ = pr.String()
		pr.checkInvariants()
	}, "a Progress without Inflights works outside StateReplicate")
}
