package rafttest

import (
	"encoding/json"
	"errors"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
)

// kvState is a node's state machine: a key-value map with per-client
// deduplication. It is durable: it survives crashes, together with the
// configuration it has applied.
type kvState struct {
	Applied uint64            `json:"applied"`
	Data    map[string]string `json:"data"`
	// LastSeq is the last operation applied per client; retries of it (or
	// of older ones) are skipped.
	LastSeq   map[int]uint64 `json:"lastSeq"`
	ConfState pb.ConfState   `json:"confState"`
}

func newKVState() *kvState {
	return &kvState{Data: map[string]string{}, LastSeq: map[int]uint64{}}
}

func (s *kvState) encode() []byte {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return b
}

func decodeKVState(b []byte) (*kvState, error) {
	s := newKVState()
	if err := json.Unmarshal(b, s); err != nil {
		return nil, err
	}
	if s.Data == nil {
		s.Data = map[string]string{}
	}
	if s.LastSeq == nil {
		s.LastSeq = map[int]uint64{}
	}
	return s, nil
}

// simOp is a client operation, as proposed and applied.
type simOp struct {
	Client int    `json:"c"`
	Seq    uint64 `json:"s"`
	Get    bool   `json:"g,omitempty"`
	Key    string `json:"k"`
	Value  string `json:"v,omitempty"`
}

func (s *Sim) installSnapshot(n *simNode, snap pb.Snapshot) {
	rec, ok := s.committed[snap.Metadata.Index]
	if ok && rec.term != snap.Metadata.Term {
		s.violate("node %d: snapshot at %d has term %d, committed term is %d", n.id, snap.Metadata.Index, snap.Metadata.Term, rec.term)
	}
	if err := n.storage.ApplySnapshot(snap); err != nil {
		s.violate("node %d: apply snapshot: %v", n.id, err)
		return
	}
	sm, err := decodeKVState(snap.Data)
	if err != nil {
		s.violate("node %d: snapshot data: %v", n.id, err)
		return
	}
	if sm.Applied != snap.Metadata.Index {
		s.violate("node %d: snapshot at %d holds state applied to %d", n.id, snap.Metadata.Index, sm.Applied)
	}
	if snap.Metadata.Index < n.sm.Applied {
		s.violate("node %d: snapshot at %d is behind applied %d", n.id, snap.Metadata.Index, n.sm.Applied)
	}
	sm.ConfState = snap.Metadata.ConfState
	n.sm = sm
	s.event("node %d installed snapshot at %d", n.id, snap.Metadata.Index)
}

// maybeCompact snapshots and compacts n's log every CompactEvery entries.
func (s *Sim) maybeCompact(n *simNode) {
	every := s.cfg.CompactEvery
	if every == 0 || !s.chaos {
		return
	}
	snap, err := n.storage.Snapshot()
	if err != nil {
		return
	}
	if n.sm.Applied < snap.Metadata.Index+every {
		return
	}
	if _, err := n.storage.CreateSnapshot(n.sm.Applied, &n.sm.ConfState, n.sm.encode()); err != nil {
		s.violate("node %d: create snapshot: %v", n.id, err)
		return
	}
	// Keep a few entries so that slightly behind followers need no
	// snapshot.
	keep := uint64(s.rnd.IntN(4))
	if n.sm.Applied > keep+1 {
		if err := n.storage.Compact(n.sm.Applied - keep); err != nil && !errors.Is(err, raft.ErrCompacted) {
			s.violate("node %d: compact: %v", n.id, err)
		}
	}
}

// apply applies one committed entry to n's state machine and checks that
// every node applies the same entry at each index.
func (s *Sim) apply(n *simNode, e pb.Entry) {
	if e.Index != n.sm.Applied+1 {
		s.violate("node %d applies index %d after %d", n.id, e.Index, n.sm.Applied)
	}
	rec := entryRecord{term: e.Term, data: string(e.Data), seenTerm: s.maxTerm}
	if want, ok := s.proposed[[2]uint64{e.Index, e.Term}]; ok && want != rec.data {
		s.violate("node %d applied %q at index %d term %d, where a node reported appending %q", n.id, rec.data, e.Index, e.Term, want)
	}
	if prev, ok := s.committed[e.Index]; ok {
		if prev.term != rec.term || prev.data != rec.data {
			s.violate("node %d applied term %d at index %d where another node applied term %d", n.id, e.Term, e.Index, prev.term)
		}
	} else {
		s.committed[e.Index] = rec
		s.lastIndex = max(s.lastIndex, e.Index)
	}
	n.sm.Applied = e.Index
	switch e.Type {
	case pb.EntryConfChange, pb.EntryConfChangeV2:
		cc, err := pb.UnmarshalConfChange(e)
		if err != nil {
			s.violate("node %d: conf change at %d: %v", n.id, e.Index, err)
			return
		}
		n.sm.ConfState = *n.rn.ApplyConfChange(cc)
		if e.Index > s.confIndex {
			s.confIndex, s.conf = e.Index, n.sm.ConfState
			s.membershipChanged()
		}
		return
	}
	if len(e.Data) == 0 {
		return
	}
	var op simOp
	if err := json.Unmarshal(e.Data, &op); err != nil {
		s.violate("node %d: entry %d: %v", n.id, e.Index, err)
		return
	}
	var out string
	if op.Seq <= n.sm.LastSeq[op.Client] {
		return // a retry of an operation already applied
	}
	n.sm.LastSeq[op.Client] = op.Seq
	if op.Get {
		out = n.sm.Data[op.Key]
	} else {
		n.sm.Data[op.Key] = op.Value
	}
	key := [2]uint64{uint64(op.Client), op.Seq}
	if _, ok := s.done[key]; !ok {
		s.done[key] = out
	}
}
