package raft

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/raftcore/raft/invariants"
	pb "github.com/raftcore/raft/raftpb"
)

// handout is a slice of entries or messages a Ready handed out, and a copy
// of it taken at that moment.
type handout struct {
	what     string
	entries  []pb.Entry
	entCopy  []pb.Entry
	messages []pb.Message
	msgCopy  []pb.Message
}

// handoutRecorder keeps every array a Ready hands out, checks that each
// is capped (so an append by the application cannot write into the node's
// memory), and later that none was written since.
type handoutRecorder struct {
	t    testing.TB
	kept []handout
}

func cloneMessages(ms []pb.Message) []pb.Message {
	out := slices.Clone(ms)
	for i := range out {
		out[i].Entries = slices.Clone(out[i].Entries)
		out[i].Responses = cloneMessages(out[i].Responses)
	}
	return out
}

func (h *handoutRecorder) entries(what string, ents []pb.Entry) {
	h.t.Helper()
	if len(ents) == 0 {
		return
	}
	require.Equal(h.t, len(ents), cap(ents), "%s handed out with spare capacity", what)
	h.kept = append(h.kept, handout{what: what, entries: ents, entCopy: slices.Clone(ents)})
}

func (h *handoutRecorder) messages(what string, ms []pb.Message) {
	h.t.Helper()
	if len(ms) == 0 {
		return
	}
	require.Equal(h.t, len(ms), cap(ms), "%s handed out with spare capacity", what)
	h.kept = append(h.kept, handout{what: what, messages: ms, msgCopy: cloneMessages(ms)})
	for i := range ms {
		h.entries(fmt.Sprintf("%s[%d].Entries", what, i), ms[i].Entries)
		h.messages(fmt.Sprintf("%s[%d].Responses", what, i), ms[i].Responses)
	}
}

func (h *handoutRecorder) ready(id uint64, rd Ready) {
	h.t.Helper()
	h.entries(fmt.Sprintf("node %d Entries", id), rd.Entries)
	h.entries(fmt.Sprintf("node %d CommittedEntries", id), rd.CommittedEntries)
	h.messages(fmt.Sprintf("node %d Messages", id), rd.Messages)
}

// check fails if anything handed out was written since.
func (h *handoutRecorder) check() {
	h.t.Helper()
	for _, k := range h.kept {
		if k.entries != nil {
			require.Equal(h.t, k.entCopy, k.entries, "%s written after it was handed out", k.what)
		} else {
			require.Equal(h.t, k.msgCopy, k.messages, "%s written after it was handed out", k.what)
		}
	}
}

// handoutNode is a node of the randomized handout test.
type handoutNode struct {
	id      uint64
	rn      *RawNode
	s       *MemoryStorage
	cs      pb.ConfState
	applied uint64
	// held is true while a Ready was taken and not yet advanced: messages
	// are stepped into the node meanwhile, as Node does.
	held bool
	rd   Ready
}

// TestReadyHandoutsNeverRewritten drives three nodes through random
// proposals (single and batched), message deliveries and drops, ticks,
// elections, compactions and snapshots, with Readys sometimes held
// across Steps before Advance (so entries handed out for writing are
// replaced by a new leader's while being written). The application keeps
// every slice a Ready hands out; none may ever change, and none may have
// spare capacity an application append could write into the node's
// memory through.
func TestReadyHandoutsNeverRewritten(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			runHandoutSim(t, seed, 1500)
		})
	}
}

func runHandoutSim(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, 7))
	rec := &handoutRecorder{t: t}
	peers := []Peer{{ID: 1}, {ID: 2}, {ID: 3}}
	var nodes []*handoutNode
	for _, p := range peers {
		s := NewMemoryStorage()
		cfg := testConfig(p.ID, s)
		cfg.MaxSizePerMsg = 512
		cfg.RandomSource = rand.NewPCG(seed, p.ID)
		rn, err := NewRawNode(cfg)
		require.NoError(t, err)
		require.NoError(t, rn.Bootstrap(peers))
		nodes = append(nodes, &handoutNode{id: p.ID, rn: rn, s: s})
	}
	var net []pb.Message
	advance := func(n *handoutNode) {
		n.rn.Advance(n.rd)
		n.held = false
		n.rd = Ready{}
	}
	handle := func(n *handoutNode) {
		if n.held {
			advance(n)
			return
		}
		if !n.rn.HasReady() {
			return
		}
		rd := n.rn.Ready()
		rec.ready(n.id, rd)
		if !IsEmptySnap(rd.Snapshot) {
			require.NoError(t, n.s.ApplySnapshot(rd.Snapshot))
			n.cs = rd.Snapshot.Metadata.ConfState
			n.applied = rd.Snapshot.Metadata.Index
		}
		require.NoError(t, n.s.Save(rd.HardState, rd.Entries, pb.Snapshot{}))
		net = append(net, rd.Messages...)
		for _, e := range rd.CommittedEntries {
			if e.Type == pb.EntryConfChange {
				cc, err := pb.UnmarshalConfChange(e)
				require.NoError(t, err)
				n.cs = *n.rn.ApplyConfChange(cc)
			}
			n.applied = e.Index
		}
		n.rd, n.held = rd, true
		if rng.IntN(2) == 0 {
			advance(n)
		}
	}
	for i := 0; i < steps; i++ {
		n := nodes[rng.IntN(len(nodes))]
		switch p := rng.IntN(100); {
		case p < 25:
			for k := rng.IntN(4); k >= 0; k-- {
				_ = n.rn.Propose([]byte(fmt.Sprintf("s%d-%d-%d", seed, i, k)))
			}
		case p < 55 && len(net) > 0:
			j := rng.IntN(len(net))
			m := net[j]
			net = slices.Delete(net, j, j+1)
			if rng.IntN(8) != 0 {
				_ = nodes[m.To-1].rn.Step(m)
			}
		case p < 85:
			handle(n)
		case p < 95:
			n.rn.Tick()
		case p < 97:
			_ = n.rn.Campaign()
		default:
			if n.applied > 10 && !n.held {
				if _, err := n.s.CreateSnapshot(n.applied, &n.cs, nil); err == nil {
					_ = n.s.Compact(n.applied)
				}
			}
		}
		if i%100 == 0 {
			rec.check()
		}
	}
	rec.check()
}

// A follower's proposals are forwarded to the leader in messages the
// application keeps: each carries its own entries, not the memory
// RawNode.Propose uses while stepping.
func TestForwardedProposalsKeepTheirEntries(t *testing.T) {
	c := newTestCluster(t, 3)
	c.campaign(1)
	f := c.nodes[2]
	require.NoError(t, f.rn.Propose([]byte("first")))
	require.NoError(t, f.rn.Propose([]byte("second")))
	rd := f.rn.Ready()
	var got []string
	for _, m := range rd.Messages {
		if m.Type == pb.MsgProp {
			require.Equal(t, uint64(1), m.To)
			for _, e := range m.Entries {
				got = append(got, string(e.Data))
			}
		}
	}
	f.rn.Advance(rd)
	require.Equal(t, []string{"first", "second"}, got)
}

// The node's buffers of acknowledgements and votes are reused between
// Readys, unless a burst made one large: that one is dropped rather than
// kept for the node's lifetime.
func TestReuseMessages(t *testing.T) {
	small := make([]pb.Message, 2, 8)
	got := reuseMessages(small)
	require.Empty(t, got)
	require.Equal(t, 8, cap(got))
	require.Nil(t, reuseMessages(make([]pb.Message, maxReusedMessages+1)), "a large buffer is kept")
}

// Those buffers are reused without clearing, which is safe because an
// acknowledgement or vote pins nothing: the invariants build checks it at
// send.
func TestAfterAppendMessagesCarryNoEntries(t *testing.T) {
	if !invariants.Enabled {
		t.Skip("checked in the invariants build")
	}
	n := newTestNode(t, 1, []uint64{1, 2})
	require.Panics(t, func() {
		n.r().send(pb.Message{To: 2, Type: pb.MsgAppResp, Entries: []pb.Entry{{Data: []byte("x")}}})
	})
}
