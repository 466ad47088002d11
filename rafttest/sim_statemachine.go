package rafttest

import (
	"encoding/json"
	"errors"
	"fmt"

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
	// of older ones) are not applied again. LastOut is what it returned
	// (a read's value), the answer to a retry of it.
	LastSeq   map[int]uint64 `json:"lastSeq"`
	LastOut   map[int]string `json:"lastOut"`
	ConfState pb.ConfState   `json:"confState"`
}

func newKVState() *kvState {
	return &kvState{Data: map[string]string{}, LastSeq: map[int]uint64{}, LastOut: map[int]string{}}
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
	if s.LastOut == nil {
		s.LastOut = map[int]string{}
	}
	return s, nil
}

// simOp is a client operation, as proposed and applied: Seq is its
// Op.ID, which grows with each operation of a client.
type simOp struct {
	Client int    `json:"c"`
	Seq    uint64 `json:"s"`
	Get    bool   `json:"g,omitempty"`
	Key    string `json:"k"`
	Value  string `json:"v,omitempty"`
}

// checkSnapshot checks a snapshot the node is to install and returns the
// state machine it holds.
func (s *simServer) checkSnapshot(snap pb.Snapshot) (*kvState, error) {
	md := snap.Metadata
	if rec, ok := s.env.run.committed[md.Index]; ok && rec.term != md.Term {
		return nil, fmt.Errorf("snapshot at %d has term %d, committed term is %d", md.Index, md.Term, rec.term)
	}
	sm, err := decodeKVState(snap.Data)
	if err != nil {
		return nil, fmt.Errorf("snapshot data: %w", err)
	}
	if sm.Applied != md.Index {
		return nil, fmt.Errorf("snapshot at %d holds state applied to %d", md.Index, sm.Applied)
	}
	if md.Index < s.durable.sm.Applied {
		return nil, fmt.Errorf("snapshot at %d is behind applied %d", md.Index, s.durable.sm.Applied)
	}
	sm.ConfState = md.ConfState
	return sm, nil
}

// maybeCompact snapshots and compacts the log every CompactEvery entries,
// in the chaos phase.
func (s *simServer) maybeCompact() error {
	every, sm := s.sim.cfg.CompactEvery, s.durable.sm
	if every == 0 || !s.env.run.chaos {
		return nil
	}
	snap, err := s.storage.Snapshot()
	if err != nil || sm.Applied < snap.Metadata.Index+every {
		return nil
	}
	if _, err := s.storage.CreateSnapshot(sm.Applied, &sm.ConfState, sm.encode()); err != nil {
		return fmt.Errorf("create snapshot: %w", err)
	}
	// Keep a few entries so that slightly behind followers need no
	// snapshot.
	keep := uint64(s.env.Rand.IntN(4))
	if sm.Applied > keep+1 {
		if err := s.storage.Compact(sm.Applied - keep); err != nil && !errors.Is(err, raft.ErrCompacted) {
			return fmt.Errorf("compact: %w", err)
		}
	}
	return nil
}

// apply applies one committed entry to the state machine, checking that
// it is the next one, and answers the operation it completes.
func (s *simServer) apply(e pb.Entry) error {
	sm := s.durable.sm
	if e.Index != sm.Applied+1 {
		return fmt.Errorf("applies index %d after %d", e.Index, sm.Applied)
	}
	sm.Applied = e.Index
	switch e.Type {
	case pb.EntryConfChange, pb.EntryConfChangeV2:
		cc, err := pb.UnmarshalConfChange(e)
		if err != nil {
			return fmt.Errorf("conf change at %d: %w", e.Index, err)
		}
		sm.ConfState = *s.rn.ApplyConfChange(cc)
		return nil
	}
	if len(e.Data) == 0 {
		return nil
	}
	var op simOp
	if err := json.Unmarshal(e.Data, &op); err != nil {
		return fmt.Errorf("entry %d: %w", e.Index, err)
	}
	switch last := sm.LastSeq[op.Client]; {
	case op.Seq < last:
		return nil // a retry of an operation answered already
	case op.Seq > last:
		sm.LastSeq[op.Client], sm.LastOut[op.Client] = op.Seq, ""
		if op.Get {
			sm.LastOut[op.Client] = sm.Data[op.Key]
		} else {
			sm.Data[op.Key] = op.Value
		}
	}
	if done := s.waiting[op.Seq]; done != nil {
		delete(s.waiting, op.Seq)
		out := KVOutput{Unknown: true}
		if op.Get {
			v := sm.LastOut[op.Client]
			out = KVOutput{Found: v != "", Value: v}
		}
		done(out)
	}
	return nil
}
