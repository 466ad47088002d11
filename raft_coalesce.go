package raft

import (
	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/tracker"
)

// A leader taking several proposals between two Readys appends and
// broadcasts each at once, so each would leave as an append of its own per
// follower: each decoded into its own entries, each answered on its own.
// Instead, an append to a follower in StateReplicate extends the one still
// queued for it (not yet handed out, see handout.go) when the two are
// consecutive: same term, no other message to that follower between them,
// and the new one continuing exactly after the queued one's last entry.
// The follower then gets the same entries in the same order, and the later
// commit index, in one message: it accepts or refuses the merged append
// exactly where it would have accepted or refused the first of the two
// (log matching), and answers once, for the last index.
//
// Flow control is unchanged: each append still records its own Inflights
// entry (by count and bytes) when it is decided, so the leader pauses at
// exactly the points it did before merging. The single answer acknowledges
// the last index, which frees every record at or below it (FreeLE), so no
// record is left behind. Probes, snapshots, heartbeats and every other
// message are never merged nor merged into.
//
// A merge does change a Ready built (readyWithoutAccept) and not yet
// accepted, since its Messages share r.msgs: Node rebuilds its Ready after
// every input that can queue or merge a message, so what it hands out is
// always built after the last merge; RawNode.Ready and the multiraft host
// accept what they build at once.

// maxCoalesceDistance bounds how far back in r.msgs the append being
// extended may sit, so that the check that no other message to the
// follower comes after it stays cheap. It exceeds the number of peers of
// any usual group: a broadcast queues one message per peer.
const maxCoalesceDistance = 64

// queuedAppend notes an append to a peer in StateReplicate queued since the
// last Ready, which a later append to the same peer may extend.
type queuedAppend struct {
	to uint64
	// pos is the append's slot in r.msgs. Slots keep their positions until
	// a Ready hands them out (msgRoom copies the queue to the front of a
	// new chunk), when the notes are dropped (takeMsgs).
	pos int
	// size is the encoded size of its entries, as MaxSizePerMsg counts.
	size uint64
}

// noteQueuedAppend records that the last message in r.msgs is an append to
// a peer in StateReplicate, carrying ents.
func (r *raft) noteQueuedAppend(to uint64, ents []pb.Entry) {
	q := queuedAppend{to: to, pos: len(r.msgs) - 1}
	if r.maxMsgSize != noLimit {
		q.size = entriesSize(ents)
	}
	for i := range r.queuedAppends {
		if r.queuedAppends[i].to == to {
			r.queuedAppends[i] = q
			return
		}
	}
	r.queuedAppends = append(r.queuedAppends, q)
}

// coalesceAppend extends the append queued for peer `to` with ents, which
// follow the entry (prevIndex, prevTerm), if that is equivalent to sending
// them on their own (see above) and the merged entries stay within
// MaxSizePerMsg. It reports whether it did; if not, the caller sends ents
// in an append of their own.
func (r *raft) coalesceAppend(to uint64, pr *tracker.Progress, prevIndex, prevTerm uint64, ents []pb.Entry) bool {
	if pr.State != tracker.StateReplicate || len(ents) == 0 {
		return false
	}
	var q *queuedAppend
	for i := range r.queuedAppends {
		if r.queuedAppends[i].to == to {
			q = &r.queuedAppends[i]
			break
		}
	}
	if q == nil || q.pos >= len(r.msgs) || len(r.msgs)-q.pos > maxCoalesceDistance {
		return false
	}
	m := &r.msgs[q.pos]
	if m.To != to || m.Type != pb.MsgApp || m.Term != r.Term || len(m.Entries) == 0 {
		return false
	}
	if last := m.Entries[len(m.Entries)-1]; last.Index != prevIndex || last.Term != prevTerm {
		return false
	}
	var size uint64
	if r.maxMsgSize != noLimit {
		size = entriesSize(ents)
		if q.size+size > r.maxMsgSize {
			return false
		}
	}
	for i := q.pos + 1; i < len(r.msgs); i++ {
		if r.msgs[i].To == to {
			return false
		}
	}
	m.Entries = r.joinEntries(m.Entries, ents)
	m.Commit = r.raftLog.committed
	q.size += size
	return true
}

// joinEntries returns a followed by b, consecutive entries of this leader's
// log. Neither is written: while both lie in the unstable tail (the usual
// case, proposals not yet persisted) the result is the tail's own slice
// over them, with no allocation; otherwise it is a new array.
func (r *raft) joinEntries(a, b []pb.Entry) []pb.Entry {
	lo, hi := a[0].Index, b[len(b)-1].Index
	u := &r.raftLog.unstable
	if lo >= u.offset && hi < u.offset+uint64(len(u.entries)) {
		// A leader never rewrites its log, so the tail holds the very
		// entries a and b carry (perhaps in a newer array, if the tail
		// grew since a was sliced). Capped: an append to the result by the
		// application reallocates.
		return u.slice(lo, hi+1)
	}
	joined := make([]pb.Entry, 0, len(a)+len(b))
	return append(append(joined, a...), b...)
}

// entriesSize is the encoded size of ents, as limitSize counts it.
func entriesSize(ents []pb.Entry) uint64 {
	var s uint64
	for i := range ents {
		s += uint64(ents[i].Size())
	}
	return s
}
