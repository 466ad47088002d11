package raft

import pb "github.com/raftcore/raft/raftpb"

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
		resp := pb.Message{Type: pb.MsgStorageAppendResp, To: r.id, From: LocalAppendThread}
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
// AsyncStorageWrites): a durable append or a finished apply.
func (r *raft) handleStorageResponse(m pb.Message) {
	switch m.Type {
	case pb.MsgStorageAppendResp:
		if m.Snapshot != nil {
			r.raftLog.stableSnapTo(m.Snapshot.Metadata.Index)
			r.appliedSnapshot(m.Snapshot.Metadata.Index)
		}
		if m.Index != 0 {
			// Ignored if the entry was overwritten meanwhile (its term
			// differs): that write no longer matters.
			r.raftLog.stableTo(entryID{term: m.LogTerm, index: m.Index})
		}
	case pb.MsgStorageApplyResp:
		if n := len(m.Entries); n > 0 {
			r.appliedTo(m.Entries[n-1].Index, pb.EntriesSize(m.Entries), pb.PayloadsSize(m.Entries))
			r.staleApplyReported(m.Entries[n-1].Index)
		}
	}
}
