package raft

import (
	"github.com/raftcore/raft/invariants"
	pb "github.com/raftcore/raft/raftpb"
)

// Arrays handed out in a Ready belong to the application from then on: it
// may keep them forever, so the node never writes into them again. Giving
// every Ready fresh arrays would cost an allocation per Ready, so small
// arrays are carved from a larger one (a chunk) instead: each Ready gets
// the next unused stretch, capped (s[lo:hi:hi]) so that an append by the
// application reallocates rather than reaching into the next stretch, and
// the node moves on past it. A stretch is written only before it is handed
// out.
//
// r.msgs lives in such a chunk: the messages queued since the last Ready
// sit at the start of the chunk's part never handed out, so a Ready hands
// them out in place, with whatever it adds after them (see readyMessages
// and storageMessages), and r.msgs then restarts past them (takeMsgs).
// send writes only at len(r.msgs) and beyond, and a leader extending a
// queued append (raft_coalesce.go) only within r.msgs, so neither reaches
// what was handed out. The one exception: with Config.ReuseReadyMessages
// the application gives the messages' stretch back at Advance, and the
// chunk is used again from its start (reuseHandedOut).

// Bounds on the length of a message chunk: a chunk pins the messages
// handed out from it (and their entries) until the application drops
// every one of them, so chunks stay small.
const (
	minMessageChunk = 4
	maxMessageChunk = 64
)

// msgRoom makes room for n messages past len(r.msgs) in memory never
// handed out, and returns r.msgs extended over them (capped, their
// content left for the caller to write). If the chunk is short, the
// queued messages move to a new one.
func (r *raft) msgRoom(n int) []pb.Message {
	k := len(r.msgs)
	if need := k + n; need > r.msgRoomLeft() {
		size := int(min(max(2*r.msgChunk, minMessageChunk), maxMessageChunk))
		if r.msgChunk == 0 && !r.reuseMsgs {
			// The first chunk since the node let go of its memory (at
			// the start, after ReleaseMemory, or after each Ready of a
			// lightly loaded node): exactly what is queued, as a node
			// that sends a message or two a tick (a broadcast reserves
			// its room at once: reserveMsgs) needs no more. Later ones
			// grow from there.
			size = need
			r.msgChunk = int32(min(size, maxMessageChunk))
		} else if r.msgChunk > maxMessageChunk {
			// Readys this large came before (takeMsgs): room for two.
			size = 2 * int(r.msgChunk)
		} else {
			r.msgChunk = int32(size)
		}
		if need > size {
			// A burst: room for as many again, so that queuing it
			// message by message moves it only a few times.
			size = 2 * need
		}
		chunk := r.newChunk(size)
		copy(chunk, r.msgs)
		// The old copies were never handed out: cleared, so that they
		// pin no entries.
		clear(r.msgs)
		r.msgs = chunk[:k]
	}
	return r.msgs[: k+n : k+n]
}

// reserveMsgs makes room for n more messages past r.msgs at once, for a
// broadcast that then queues one per peer: the room grows in one move
// rather than message by message.
func (r *raft) reserveMsgs(n int) {
	if n > 1 {
		r.msgRoom(n) // r.msgs keeps its length, now with the room
	}
}

// msgRoomLeft is how many slots r.msgs's chunk has from the start of
// r.msgs on: its capacity, less the chunk's last slot where Readys'
// messages are reused (see newChunk).
func (r *raft) msgRoomLeft() int {
	if r.reuseMsgs && cap(r.msgs) > 0 {
		return cap(r.msgs) - 1
	}
	return cap(r.msgs)
}

// newChunk returns a chunk of size slots for messages. With
// ReuseReadyMessages it has one slot more, its last, never written
// otherwise nor handed out, whose Responses is the chunk's slots from the
// first: reuseHandedOut, which has only r.msgs (a slice can only be
// extended forward), finds the start of the chunk there. This keeps the
// node's state as small as without the option.
func (r *raft) newChunk(size int) []pb.Message {
	if !r.reuseMsgs {
		return make([]pb.Message, size)
	}
	chunk := make([]pb.Message, size+1)
	chunk[size].Responses = chunk[:size]
	return chunk
}

// takeMsgs records that a Ready handed out the first n slots of r.msgs's
// array (the queued messages and what the Ready added after them): r.msgs
// restarts empty past them. A chunk left with more room than a node
// needs between Readys (after a burst) is dropped rather than kept.
func (r *raft) takeMsgs(n int) {
	if n == 0 {
		return
	}
	r.msgs = r.msgs[n:n]
	if r.leaderState != nil {
		// The appends noted there were handed out: none may be extended.
		r.queuedAppends = r.queuedAppends[:0]
	}
	if r.msgRoomLeft() > maxReusedMessages {
		r.msgs = nil
	}
	switch {
	case n > maxMessageChunk:
		// A leader whose appends do not merge (one entry per append, or
		// more peers than maxCoalesceDistance) queues a burst per batch
		// of proposals: the next chunks are sized for Readys like this
		// one, instead of growing to it by doubling each time
		// (ReleaseMemory forgets it).
		r.msgChunk = int32(min(n, maxReusedMessages))
	case r.msgChunk > maxMessageChunk:
		// Small Readys again: the chunks shrink back. Kept at a burst's
		// size, each would be left with more room than is reused after a
		// small Ready, and dropped, one chunk allocated per Ready.
		r.msgChunk = max(r.msgChunk/2, maxMessageChunk)
	}
}

// reuseHandedOut makes the slots of r.msgs's chunk that Readys handed out
// free again, with Config.ReuseReadyMessages once the application called
// Advance: the messages queued since the last Ready (Step and Tick may
// come between Ready and Advance) move to the start of the chunk, and the
// rest of the handed-out slots are cleared, so that they pin nothing.
// Slots handed out from earlier chunks are left to the garbage collector.
func (r *raft) reuseHandedOut() {
	if cap(r.msgs) == 0 {
		return
	}
	tail := r.msgs[:cap(r.msgs)]
	chunk := tail[len(tail)-1].Responses
	if invariants.Enabled && (cap(chunk) != len(chunk)+1 || &chunk[:cap(chunk)][len(chunk)] != &tail[len(tail)-1]) {
		r.logger().Panicf("raft: invariant: the last slot of a message chunk does not point to the chunk")
	}
	off := len(chunk) - r.msgRoomLeft() // where r.msgs starts
	if off == 0 {
		return
	}
	k := len(r.msgs)
	copy(chunk, r.msgs)
	clear(chunk[k : off+k])
	r.msgs = chunk[:k]
}
