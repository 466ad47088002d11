package tracker

import (
	"fmt"

	"github.com/raftcore/raft/invariants"
)

// Inflights is a bounded FIFO of the appends sent to one peer and not yet
// acknowledged, each recorded by the last log index it carried and its size
// in bytes. A leader in StateReplicate stops sending when it is Full.
//
// The ring buffer is allocated lazily and grows by doubling up to size, so a
// peer that is idle or in StateProbe costs no buffer at all. A nil
// *Inflights is an empty window that nothing can be added to: a follower's
// Progress carries none (the leader creates them when it takes office), and
// every method but Add accepts it.
type Inflights struct {
	// start is the buffer position of the oldest in-flight append.
	// Invariant: 0 <= start < len(buffer) whenever count > 0.
	start int
	// count is the number of appends in flight.
	// Invariant: 0 <= count <= len(buffer) <= size.
	count int
	// bytes is the total size of the appends in flight.
	bytes uint64
	// last is the index of the newest append added since the last Reset, 0 if
	// none. Invariant: indexes in the ring increase strictly from start, and the
	// newest one equals last.
	last uint64

	size     int    // maximum number of appends in flight; > 0
	maxBytes uint64 // maximum bytes in flight; 0 means unlimited

	buffer []inflight
}

// inflight is one unacknowledged append.
type inflight struct {
	index uint64 // last log index carried by the append
	bytes uint64 // payload size of its entries
}

// NewInflights returns an empty Inflights that allows at most size appends
// and, when maxBytes > 0, stops accepting once maxBytes or more are in
// flight. It panics if size is not positive: a zero window would stall
// replication forever and is a configuration mistake the caller must reject
// earlier.
func NewInflights(size int, maxBytes uint64) *Inflights {
	if size <= 0 {
		panic(fmt.Sprintf("raft: inflights size must be positive, got %d", size))
	}
	return &Inflights{size: size, maxBytes: maxBytes}
}

// Clone returns an independent deep copy (nil for nil).
func (in *Inflights) Clone() *Inflights {
	if in == nil {
		return nil
	}
	c := *in
	c.buffer = append([]inflight(nil), in.buffer...)
	return &c
}

// Add records an append whose last entry has the given index and whose
// entries total bytes. The caller must check Full first, and indexes must
// increase strictly between Resets; Add panics otherwise, and on a nil
// Inflights.
func (in *Inflights) Add(index, bytes uint64) {
	if in == nil {
		panic(fmt.Sprintf("raft: Inflights.Add(%d) on a nil Inflights; the leader creates them with NewInflights", index))
	}
	if in.Full() {
		panic(fmt.Sprintf("raft: Inflights.Add(%d) while full (count=%d size=%d bytes=%d maxBytes=%d); check Full first",
			index, in.count, in.size, in.bytes, in.maxBytes))
	}
	if index <= in.last {
		panic(fmt.Sprintf("raft: Inflights.Add(%d) not above the last added index %d; indexes must increase",
			index, in.last))
	}
	if in.count == len(in.buffer) {
		in.grow()
	}
	pos := in.start + in.count
	if pos >= len(in.buffer) {
		pos -= len(in.buffer)
	}
	in.buffer[pos] = inflight{index: index, bytes: bytes}
	in.count++
	in.bytes += bytes
	in.last = index
	if invariants.Enabled {
		in.checkInvariants()
	}
}

// grow doubles the buffer, capped at size, and unwraps the ring so that the
// oldest append sits at position 0.
func (in *Inflights) grow() {
	n := min(max(2*len(in.buffer), 1), in.size)
	buf := make([]inflight, n)
	k := copy(buf, in.buffer[in.start:])
	copy(buf[k:], in.buffer[:in.start])
	in.buffer, in.start = buf, 0
}

// FreeLE forgets every append whose index is at most index: the peer has
// acknowledged them. It never allocates.
func (in *Inflights) FreeLE(index uint64) {
	if in == nil {
		return
	}
	freed := 0
	pos := in.start
	for freed < in.count && in.buffer[pos].index <= index {
		in.bytes -= in.buffer[pos].bytes
		freed++
		if pos++; pos == len(in.buffer) {
			pos = 0
		}
	}
	in.count -= freed
	in.start = pos
	if in.count == 0 {
		in.start = 0 // keeps the ring unwrapped while traffic is light
	}
	if invariants.Enabled {
		in.checkInvariants()
	}
}

// FreeFirstOne forgets the oldest append in flight, if any. A leader uses
// it when a peer answers a heartbeat while the window is full: the
// acknowledgements may have been lost, and one more append lets the peer
// either acknowledge everything or reject the gap.
func (in *Inflights) FreeFirstOne() {
	if in == nil || in.count == 0 {
		return
	}
	in.FreeLE(in.buffer[in.start].index)
}

// Full reports whether no further append may be added: size appends are in
// flight, or maxBytes > 0 and at least maxBytes are. A nil Inflights is
// full: nothing may be added to it.
func (in *Inflights) Full() bool {
	if in == nil {
		return true
	}
	return in.count == in.size || (in.maxBytes > 0 && in.bytes >= in.maxBytes)
}

// Count returns the number of appends in flight.
func (in *Inflights) Count() int {
	if in == nil {
		return 0
	}
	return in.count
}

// Reset forgets every append in flight, including the last added index, so
// that indexes may start lower again. The buffer is kept for reuse.
func (in *Inflights) Reset() {
	if in == nil {
		return
	}
	in.start, in.count, in.bytes, in.last = 0, 0, 0, 0
}

// checkInvariants panics, naming the invariant, if the ring disagrees with
// its count, byte total or newest index. It takes time in the number of
// appends in flight (at most the window size).
func (in *Inflights) checkInvariants() {
	if in.count < 0 || in.count > len(in.buffer) || len(in.buffer) > in.size {
		panic(fmt.Sprintf("raft: invariant: inflights count(%d) <= len(buffer)(%d) <= size(%d) does not hold",
			in.count, len(in.buffer), in.size))
	}
	if in.count > 0 && in.start >= len(in.buffer) {
		panic(fmt.Sprintf("raft: invariant: inflights start(%d) outside the buffer (len %d)", in.start, len(in.buffer)))
	}
	var sum, prev uint64
	for i := 0; i < in.count; i++ {
		f := in.buffer[(in.start+i)%len(in.buffer)]
		if i > 0 && f.index <= prev {
			panic(fmt.Sprintf("raft: invariant: inflights indexes not increasing: %d after %d", f.index, prev))
		}
		sum += f.bytes
		prev = f.index
	}
	if sum != in.bytes {
		panic(fmt.Sprintf("raft: invariant: inflights bytes(%d) != sum of the appends in flight(%d)", in.bytes, sum))
	}
	if in.count > 0 && prev != in.last {
		panic(fmt.Sprintf("raft: invariant: inflights last(%d) != newest index in flight(%d)", in.last, prev))
	}
}
