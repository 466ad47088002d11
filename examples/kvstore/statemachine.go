package main

import (
	"fmt"
	"sync"

	pb "github.com/raftcore/raft/raftpb"
)

// confContext is a conf change's Context.
type confContext struct {
	RequestID string `json:"request_id"`
	Peer      string `json:"peer,omitempty"`
}

// stateMachine is the replicated state: the key-value map, the peer
// addresses of the members, and the index of the last entry applied. The
// member's Ready loop applies entries; HTTP handlers read concurrently.
type stateMachine struct {
	mu      sync.RWMutex
	data    map[string][]byte
	peers   map[uint64]string
	conf    pb.ConfState
	applied uint64
}

func newStateMachine() *stateMachine {
	return &stateMachine{data: map[string][]byte{}, peers: map[uint64]string{}}
}

// applyResult is what applying a write tells the member that proposed it.
type applyResult struct {
	index   uint64
	existed bool // the key existed before the write
}

// apply applies a normal entry and returns the command's id and result
// (an empty id for entries that are not commands, like the leader's empty
// entry at the start of its term).
func (s *stateMachine) apply(e pb.Entry) (string, applyResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applied = e.Index
	if len(e.Data) == 0 {
		return "", applyResult{}, nil
	}
	c, err := decodeCommand(e.Data)
	if err != nil {
		return "", applyResult{}, fmt.Errorf("entry %d: %w", e.Index, err)
	}
	_, existed := s.data[c.Key]
	switch c.Op {
	case opPut:
		s.data[c.Key] = c.Value
	case opDelete:
		delete(s.data, c.Key)
	}
	return c.ID, applyResult{index: e.Index, existed: existed}, nil
}

// applyConf records a conf change's effect: the new configuration, and
// the address of an added member or the removal of one.
func (s *stateMachine) applyConf(index uint64, cs pb.ConfState, added map[uint64]string, removed []uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applied = index
	s.conf = cs
	for id, addr := range added {
		if addr != "" {
			s.peers[id] = addr
		}
	}
	for _, id := range removed {
		delete(s.peers, id)
	}
}

func (s *stateMachine) get(key string) ([]byte, bool, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.data[key]
	return v, ok, s.applied
}

func (s *stateMachine) appliedIndex() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.applied
}

func (s *stateMachine) members() (pb.ConfState, map[uint64]string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	peers := make(map[uint64]string, len(s.peers))
	for id, a := range s.peers {
		peers[id] = a
	}
	return s.conf, peers
}

// confState is the configuration last applied.
func (s *stateMachine) confState() pb.ConfState {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.conf
}

// snapshot returns the state machine encoded for a snapshot (see
// encodeSnapshot), with its configuration and applied index.
func (s *stateMachine) snapshot() ([]byte, pb.ConfState, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return encodeSnapshot(s.data, s.peers), s.conf, s.applied
}

func (s *stateMachine) restore(snap pb.Snapshot) error {
	data, peers, err := decodeSnapshot(snap.Data)
	if err != nil {
		return fmt.Errorf("snapshot at %d: %w", snap.Metadata.Index, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data, s.peers = data, peers
	s.conf = snap.Metadata.ConfState
	s.applied = snap.Metadata.Index
	return nil
}
