package wal

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLocIndexMatchesSlice runs random appends, truncations, front drops
// and resets on a locIndex and on a plain slice, across chunk boundaries.
func TestLocIndexMatchesSlice(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var x locIndex
	var ref []loc
	next := uint64(1)
	for step := range 20000 {
		switch op := rng.IntN(100); {
		case op < 70:
			for range 1 + rng.IntN(300) {
				l := loc{term: next, off: uint32(next)}
				next++
				x.append(l)
				ref = append(ref, l)
			}
		case op < 85 && len(ref) > 0:
			n := rng.IntN(len(ref) + 1)
			x.truncate(n)
			ref = ref[:n]
		case op < 99 && len(ref) > 0:
			k := rng.IntN(len(ref) + 1)
			x.dropFront(k)
			ref = ref[k:]
		default:
			x.reset()
			ref = nil
		}
		require.Equal(t, len(ref), x.len(), "step %d", step)
		for _, i := range []int{0, len(ref) / 2, len(ref) - 1} {
			if i >= 0 && i < len(ref) {
				require.Equal(t, ref[i], x.at(i), "step %d, at(%d)", step, i)
			}
		}
		require.LessOrEqual(t, len(x.chunks), (x.skip+x.n)/indexChunk+1, "no chunks kept beyond the end")
		require.Less(t, x.skip, indexChunk, "whole dropped chunks are released")
	}
}
