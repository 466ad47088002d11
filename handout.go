package raft

import pb "github.com/raftcore/raft/raftpb"

// Arrays handed out in a Ready belong to the application from then on: it
// may keep them forever, so the node never writes into them again. Giving
// every Ready fresh arrays would cost an allocation per Ready, so small
// arrays are carved from a larger one instead: each Ready gets the next
// unused stretch, capped (s[lo:hi:hi]) so that an append by the application
// reallocates rather than reaching into the next stretch, and the node
// moves on past it. A stretch is written only before it is handed out.

// Bounds on the length of a messageArena's chunks: a chunk pins the
// messages handed out from it (and their entries) until the application
// drops every one of them, so chunks stay small.
const (
	minMessageChunk = 4
	maxMessageChunk = 64
)

// messageArena hands out message arrays for Readys.
type messageArena struct {
	// free is the part of the current chunk never handed out.
	free []pb.Message
	// chunk is the length of the next chunk to allocate.
	chunk int
}

// peek returns n message slots that were never handed out, capped at n.
// Until take(n) is called the same slots are returned again, so a Ready
// that is built but not handed out costs nothing.
func (a *messageArena) peek(n int) []pb.Message {
	if n == 0 {
		return nil
	}
	if len(a.free) < n {
		a.chunk = min(max(2*a.chunk, minMessageChunk), maxMessageChunk)
		a.free = make([]pb.Message, max(n, a.chunk))
	}
	return a.free[:n:n]
}

// take marks the n slots last returned by peek as handed out: they are
// never written again.
func (a *messageArena) take(n int) {
	a.free = a.free[n:]
}
