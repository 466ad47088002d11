package raft

import (
	"encoding/json"
	"sort"
	"strconv"

	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/tracker"
)

// BasicStatus is the part of a node's status that is cheap to collect.
type BasicStatus struct {
	ID uint64

	pb.HardState
	SoftState

	Applied uint64

	// LeadTransferee is the node leadership is being handed to, or None.
	LeadTransferee uint64
}

// Status is a node's state for monitoring, including, on a leader, what it
// knows about every peer. It encodes to JSON.
type Status struct {
	BasicStatus
	Config tracker.Config
	// Progress is set on the leader only. The values are copies: changing
	// them changes nothing in the node.
	Progress map[uint64]tracker.Progress
}

func getBasicStatus(r *raft) BasicStatus {
	return BasicStatus{
		ID:             r.id,
		HardState:      r.hardState(),
		SoftState:      r.softState(),
		Applied:        r.raftLog.applied,
		LeadTransferee: r.transferee(),
	}
}

func getStatus(r *raft) Status {
	s := Status{BasicStatus: getBasicStatus(r), Config: r.trackerConfig()}
	if s.RaftState == StateLeader {
		s.Progress = make(map[uint64]tracker.Progress, len(r.trk.Progress))
		r.trk.Visit(func(id uint64, pr *tracker.Progress) {
			p := *pr
			p.Inflights = pr.Inflights.Clone()
			s.Progress[id] = p
		})
	}
	return s
}

// Status returns the node's current status. It allocates: call BasicStatus
// on hot paths.
func (rn *RawNode) Status() Status { return getStatus(rn.raft) }

// BasicStatus returns the node's status without the configuration and
// progress; it does not allocate.
func (rn *RawNode) BasicStatus() BasicStatus { return getBasicStatus(rn.raft) }

// ProgressType tells whether a Progress visited by WithProgress belongs to
// a voter or to a learner.
type ProgressType byte

const (
	// ProgressTypePeer marks the Progress of a voter.
	ProgressTypePeer ProgressType = iota
	// ProgressTypeLearner marks the Progress of a learner.
	ProgressTypeLearner
)

// WithProgress calls visitor with the Progress of every member of the
// configuration, this node included, in increasing ID order; it does not
// allocate for configurations of up to seven members. Each pr is a copy
// whose Inflights is nil (call Status for in-flight counts). Only a leader
// tracks its peers' progress; on other nodes every member shows Match 0 and
// Next the index after this node's last, as a new leader would start them.
func (rn *RawNode) WithProgress(visitor func(id uint64, typ ProgressType, pr tracker.Progress)) {
	r := rn.raft
	if r.state != StateLeader {
		next := r.raftLog.lastIndex() + 1
		for _, m := range r.conf.members {
			learner := m.roles&roleLearner != 0
			typ := ProgressTypePeer
			if learner {
				typ = ProgressTypeLearner
			}
			pr := tracker.Progress{Next: next, IsLearner: learner}
			if m.id == r.id {
				pr.Match = next - 1 // its own log, as a leader starts it
			}
			visitor(m.id, typ, pr)
		}
		return
	}
	r.trk.Visit(func(id uint64, pr *tracker.Progress) {
		typ := ProgressTypePeer
		if pr.IsLearner {
			typ = ProgressTypeLearner
		}
		p := *pr
		p.Inflights = nil
		visitor(id, typ, p)
	})
}

type progressJSON struct {
	Match           uint64 `json:"match"`
	Next            uint64 `json:"next"`
	State           string `json:"state"`
	Learner         bool   `json:"learner,omitempty"`
	PendingSnapshot uint64 `json:"pendingSnapshot,omitempty"`
	RecentActive    bool   `json:"recentActive"`
	Paused          bool   `json:"paused,omitempty"`
	Inflight        int    `json:"inflight,omitempty"`
}

type statusJSON struct {
	ID             string                  `json:"id"`
	Term           uint64                  `json:"term"`
	Vote           string                  `json:"vote"`
	Commit         uint64                  `json:"commit"`
	Lead           string                  `json:"lead"`
	RaftState      StateType               `json:"raftState"`
	Applied        uint64                  `json:"applied"`
	Config         string                  `json:"config"`
	Progress       map[string]progressJSON `json:"progress"`
	LeadTransferee string                  `json:"leadtransferee"`
}

func hexID(id uint64) string { return strconv.FormatUint(id, 16) }

// MarshalJSON renders the status with node IDs in hex (as logs show them)
// and per-peer progress on the leader.
func (s Status) MarshalJSON() ([]byte, error) {
	j := statusJSON{
		ID:             hexID(s.ID),
		Term:           s.Term,
		Vote:           hexID(s.Vote),
		Commit:         s.Commit,
		Lead:           hexID(s.Lead),
		RaftState:      s.RaftState,
		Applied:        s.Applied,
		Config:         s.Config.String(),
		Progress:       map[string]progressJSON{},
		LeadTransferee: hexID(s.LeadTransferee),
	}
	ids := make([]uint64, 0, len(s.Progress))
	for id := range s.Progress {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, k int) bool { return ids[i] < ids[k] })
	for _, id := range ids {
		pr := s.Progress[id]
		pj := progressJSON{
			Match: pr.Match, Next: pr.Next, State: pr.State.String(), Learner: pr.IsLearner,
			PendingSnapshot: pr.PendingSnapshot, RecentActive: pr.RecentActive, Paused: pr.IsPaused(),
		}
		if pr.Inflights != nil {
			pj.Inflight = pr.Inflights.Count()
		}
		j.Progress[hexID(id)] = pj
	}
	return json.Marshal(j)
}

// String renders the status as JSON.
func (s Status) String() string {
	b, err := s.MarshalJSON()
	if err != nil {
		return "raft: status: " + err.Error()
	}
	return string(b)
}
