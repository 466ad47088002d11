package quorum

import (
	"math"
	"strconv"
)

// Index is a log index as seen by quorum arithmetic. math.MaxUint64 stands
// for "no constraint": it is what an empty configuration commits, so that in
// a joint configuration an empty half defers to the other one.
type Index uint64

// String prints the index in decimal, or "∞" for math.MaxUint64.
func (i Index) String() string {
	if i == math.MaxUint64 {
		return "∞"
	}
	return strconv.FormatUint(uint64(i), 10)
}

// AckedIndexer reports, for a voter, the highest log index it is known to
// have durably acknowledged. found is false when nothing is known about the
// voter; quorum arithmetic then treats it as having acked index 0.
// Implementations are called on the commit hot path and should not allocate.
type AckedIndexer interface {
	AckedIndex(voterID uint64) (idx Index, found bool)
}

// MapAckIndexer is an AckedIndexer backed by a plain map from voter ID to
// acked index. It is convenient in tests and for one-off computations.
type MapAckIndexer map[uint64]Index

// AckedIndex implements AckedIndexer.
func (m MapAckIndexer) AckedIndex(id uint64) (Index, bool) {
	idx, ok := m[id]
	return idx, ok
}
