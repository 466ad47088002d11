package raft

import (
	"fmt"

	pb "github.com/raftcore/raft/raftpb"
)

// LocalAppendThread and LocalApplyThread address the application's storage
// threads in the MsgStorageAppend and MsgStorageApply messages of
// AsyncStorageWrites; their responses come From them. (The values match
// etcd raft's, for mixed tooling.)
const (
	LocalAppendThread uint64 = ^uint64(0)
	LocalApplyThread  uint64 = ^uint64(0) - 1
)

// storageMessages returns, with AsyncStorageWrites, rd's messages: the
// node's messages to peers, then the work for the local storage threads: a
// MsgStorageAppend with what to write (entries, hard state, snapshot) whose
// Responses are delivered once the write is durable (the node's own
// acknowledgement, and the acknowledgements and votes that promise the
// write to peers), and a MsgStorageApply with the committed entries to
// apply. Messages and Responses follow r.msgs in the memory it is handed
// out in (see handout.go), each capped.
func (rn *RawNode) storageMessages(rd *Ready) []pb.Message {
	r := rn.raft
	needAppend := len(rd.Entries) > 0 || !IsEmptyHardState(rd.HardState) || !IsEmptySnap(rd.Snapshot) || len(r.msgsAfterAppend) > 0
	needApply := len(rd.CommittedEntries) > 0
	nmsgs, nresps := len(r.msgs), 0
	if needAppend {
		nmsgs++
		nresps += 1 + len(r.msgsAfterAppend)
	}
	if needApply {
		nmsgs++
		nresps++
	}
	k := len(r.msgs)
	out := r.msgRoom(nmsgs - k + nresps)
	rn.msgSlots = int32(len(out))
	msgs, resps := out[:nmsgs:nmsgs], out[nmsgs:]
	if needAppend {
		m := pb.Message{
			Type:    pb.MsgStorageAppend,
			To:      LocalAppendThread,
			From:    r.id,
			Term:    rd.HardState.Term,
			Vote:    rd.HardState.Vote,
			Commit:  rd.HardState.Commit,
			Entries: rd.Entries,
		}
		// Commit carries the write epoch (see newWriteEpoch); the field
		// means nothing else on this response.
		resp := pb.Message{Type: pb.MsgStorageAppendResp, To: r.id, From: LocalAppendThread, Commit: r.writeEpoch()}
		if n := len(rd.Entries); n > 0 {
			resp.Index, resp.LogTerm = rd.Entries[n-1].Index, rd.Entries[n-1].Term
		}
		if !IsEmptySnap(rd.Snapshot) {
			snap := rd.Snapshot
			m.Snapshot = &snap
			resp.Snapshot = &pb.Snapshot{Metadata: snap.Metadata}
		}
		n := 1 + len(r.msgsAfterAppend)
		m.Responses = resps[:n:n]
		m.Responses[0] = resp
		copy(m.Responses[1:], r.msgsAfterAppend)
		resps = resps[n:]
		msgs[k] = m
		k++
	}
	if needApply {
		m := pb.Message{
			Type:      pb.MsgStorageApply,
			To:        LocalApplyThread,
			From:      r.id,
			Entries:   rd.CommittedEntries,
			Responses: resps[:1:1],
		}
		m.Responses[0] = pb.Message{
			Type:    pb.MsgStorageApplyResp,
			To:      r.id,
			From:    LocalApplyThread,
			Entries: rd.CommittedEntries,
		}
		msgs[k] = m
	}
	if nmsgs == 0 {
		return nil
	}
	return msgs
}

// handleStorageResponse takes a storage thread's response (with
// AsyncStorageWrites): a durable append or a finished apply. A response
// that answers no work handed out (checkStorageResponse) is refused with an
// error wrapping ErrInvalidMessage and changes nothing.
func (r *raft) handleStorageResponse(m pb.Message) error {
	if err := r.checkStorageResponse(&m); err != nil {
		return err
	}
	switch m.Type {
	case pb.MsgStorageAppendResp:
		if s := m.Snapshot; s != nil {
			switch pending := r.raftLog.unstable.snapshot; {
			case pending != nil && pending.Metadata.Index == s.Metadata.Index:
				r.raftLog.stableSnapTo(s.Metadata.Index)
				r.appliedSnapshot(s.Metadata.Index)
			case r.takeSupersededWrite(entryID{term: s.Metadata.Term, index: s.Metadata.Index}):
				// Written and installed by the application although a
				// newer snapshot replaced it since: applied, but not
				// the log's snapshot any more.
				r.appliedSnapshot(s.Metadata.Index)
			}
		}
		switch {
		case m.Index == 0:
		case m.Commit != r.writeEpoch():
			// Written before the log replaced entries handed out for
			// writing: a later write replaces what this one wrote, even
			// where the log holds the same index and term again (see
			// newWriteEpoch). The response of a write of this epoch
			// acknowledges it, and everything before it, in turn.
			r.logger().Debugf("node %x: ignoring the acknowledgement of a write up to %d (term %d) made before the log was replaced",
				r.id, m.Index, m.LogTerm)
		default:
			// Ignored if the entry was overwritten meanwhile (its term
			// differs): that write no longer matters.
			r.raftLog.stableTo(entryID{term: m.LogTerm, index: m.Index})
		}
	case pb.MsgStorageApplyResp:
		n := len(m.Entries)
		r.appliedTo(m.Entries[n-1].Index, pb.EntriesSize(m.Entries), pb.PayloadsSize(m.Entries))
		r.staleApplyReported(m.Entries[n-1].Index)
	}
	return nil
}

// checkStorageResponse checks that m answers work this node handed out:
//   - an append response's snapshot is the one being written, or one a
//     later snapshot superseded (applied then if it was handed out for
//     writing, see noteSupersededWrite, ignored otherwise); its last
//     entry, if it is still in the log with that term and the response is
//     of the current write epoch, was handed out for writing;
//   - an apply response's entries are contiguous and either the next ones
//     to report applied, within what was handed out for applying, or a
//     batch that a snapshot applied meanwhile superseded.
//
// The application steps its storage threads' responses through Step, as it
// steps messages from peers; anything else claiming to come from a thread
// must not move the node's durable or applied state.
func (r *raft) checkStorageResponse(m *pb.Message) error {
	l := r.raftLog
	u := &l.unstable
	switch m.Type {
	case pb.MsgStorageAppendResp:
		if s := m.Snapshot; s != nil {
			i := s.Metadata.Index
			pending := u.snapshot
			switch {
			case pending != nil && u.snapshotInProgress && i == pending.Metadata.Index && s.Metadata.Term == pending.Metadata.Term:
			case pending != nil && i < pending.Metadata.Index, pending == nil && i <= l.applied:
				// Superseded by the newer snapshot: handleStorageResponse
				// takes it as applied if it was handed out for writing,
				// and ignores it otherwise.
			default:
				return fmt.Errorf("%w: append response for a snapshot at %d (term %d) that is not being written", ErrInvalidMessage, i, s.Metadata.Term)
			}
		}
		// A response of another write epoch acknowledges nothing (see
		// handleStorageResponse): the log may hold its index and term
		// again, in an entry not yet handed out, after a write between
		// replaced them.
		if m.Index >= u.offsetInProgress && m.Commit == r.writeEpoch() {
			if term, ok := u.maybeTerm(m.Index); ok && term == m.LogTerm {
				return fmt.Errorf("%w: append response for entry %d (term %d), which was not handed out for writing", ErrInvalidMessage, m.Index, m.LogTerm)
			}
		}
	case pb.MsgStorageApplyResp:
		n := len(m.Entries)
		if n == 0 {
			return fmt.Errorf("%w: apply response without entries", ErrInvalidMessage)
		}
		first, last := m.Entries[0].Index, m.Entries[n-1].Index
		switch {
		case last < first || last-first != uint64(n-1):
			return fmt.Errorf("%w: apply response for entries %d to %d, not contiguous", ErrInvalidMessage, first, last)
		case first == l.applied+1 && last <= l.applying:
		case last < r.snapApplied() && last <= l.applied:
			// Superseded by a snapshot applied meanwhile.
		default:
			return fmt.Errorf("%w: apply response for entries %d to %d, outside the ones being applied (%d, %d]",
				ErrInvalidMessage, first, last, l.applied, l.applying)
		}
	}
	return nil
}

// stepSelfResponse steps, with AsyncStorageWrites, an acknowledgement or
// vote the node addressed to itself and handed out in a MsgStorageAppend's
// Responses, which the application steps back once the write is durable.
// Step cannot tell that message from a copy arriving from the network, so
// it takes only what the node could have issued and not made obsolete: no
// rejection, the term of the current round, and for an acknowledgement no
// entry beyond those its append responses reported durable (the
// MsgStorageAppendResp comes first in the same Responses). One of an
// earlier round is dropped, as Step would drop it; anything else is
// refused with an error wrapping ErrInvalidMessage.
func (r *raft) stepSelfResponse(m pb.Message) error {
	if m.Reject || m.Term == 0 {
		return fmt.Errorf("%w: %s to itself with reject %v at term %d, which this node never sends", ErrInvalidMessage, m.Type, m.Reject, m.Term)
	}
	// A pre-vote is cast for the term after the candidate's.
	term := m.Term
	if m.Type == pb.MsgPreVoteResp {
		term--
	}
	switch {
	case term > r.Term:
		return fmt.Errorf("%w: %s to itself at term %d, ahead of its term %d", ErrInvalidMessage, m.Type, m.Term, r.Term)
	case term < r.Term:
		return nil
	}
	switch m.Type {
	case pb.MsgAppResp:
		if r.state != StateLeader {
			return nil
		}
		if durable := r.durableIndex(); m.Index > durable {
			return fmt.Errorf("%w: acknowledgement to itself of index %d, past the last durable index %d", ErrInvalidMessage, m.Index, durable)
		}
	case pb.MsgVoteResp:
		if r.state != StateCandidate {
			return nil
		}
	case pb.MsgPreVoteResp:
		if r.state != StatePreCandidate {
			return nil
		}
	}
	return r.Step(m)
}

// durableIndex returns the index of the last entry known to be durable: the
// last one before the unstable tail, or 0 while a snapshot awaits writing.
func (r *raft) durableIndex() uint64 {
	u := &r.raftLog.unstable
	if u.snapshot != nil {
		return 0
	}
	return u.offset - 1
}

// writeEpoch is the current write epoch, which each MsgStorageAppendResp
// carries (in Commit) from when its write was handed out.
func (r *raft) writeEpoch() uint64 {
	if r.seldom == nil {
		return 0
	}
	return r.seldom.writeEpoch
}

// newWriteEpoch starts a write epoch: the log replaced entries it had
// handed out for writing, or a snapshot replaced the log. The writes
// handed out before are still carried out, in order, and a later one
// overwrites what they wrote; so their acknowledgements no longer say
// what storage holds. An acknowledgement naming an index and term is not
// enough to tell: after W1 wrote 6@2 and W2 replaced it with 6@3, W3 may
// write 6@2 again (the first leader, back in a later term), and W1's
// acknowledgement would match the log while storage, once W2 lands,
// holds 6@3. Only a write of the current epoch is acknowledged.
func (r *raft) newWriteEpoch() {
	r.rare().writeEpoch++
}
