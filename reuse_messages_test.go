package raft

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/raftcore/raft/raftpb"
)

// reuseNode is one node of a cluster driven step by step: its RawNode,
// storage, and the Ready it was handed and has not yet advanced.
type reuseNode struct {
	rn   *RawNode
	s    *MemoryStorage
	held *Ready
	// sent is a copy of held.Messages taken when it was handed out.
	sent []pb.Message
}

// reuseCluster is three voters and the messages in flight between them,
// kept as copies (as a transport's queue keeps them).
type reuseCluster struct {
	t     *testing.T
	nodes []*reuseNode
	net   []pb.Message
}

func newReuseCluster(t *testing.T, seed uint64, opts func(*Config)) *reuseCluster {
	c := &reuseCluster{t: t}
	peers := []Peer{{ID: 1}, {ID: 2}, {ID: 3}}
	for _, p := range peers {
		s := NewMemoryStorage()
		cfg := testConfig(p.ID, s)
		cfg.RandomSource = rand.NewPCG(seed, p.ID)
		opts(cfg)
		rn, err := NewRawNode(cfg)
		require.NoError(t, err)
		require.NoError(t, rn.Bootstrap(peers))
		c.nodes = append(c.nodes, &reuseNode{rn: rn, s: s})
	}
	return c
}

// ready hands out node i's next Ready, persists it, queues copies of its
// messages and holds it until advance.
func (c *reuseCluster) ready(i int) *Ready {
	n := c.nodes[i]
	rd := n.rn.Ready()
	if !IsEmptySnap(rd.Snapshot) {
		require.NoError(c.t, n.s.ApplySnapshot(rd.Snapshot))
	}
	require.NoError(c.t, n.s.Append(rd.Entries))
	if !IsEmptyHardState(rd.HardState) {
		require.NoError(c.t, n.s.SetHardState(rd.HardState))
	}
	c.net = append(c.net, rd.Messages...)
	n.held = &rd
	n.sent = append([]pb.Message(nil), rd.Messages...)
	return &rd
}

// advance applies node i's held Ready and calls Advance.
func (c *reuseCluster) advance(i int) {
	n := c.nodes[i]
	c.requireHeldIntact()
	for _, e := range n.held.CommittedEntries {
		if e.Type == pb.EntryConfChange || e.Type == pb.EntryConfChangeV2 {
			cc, err := pb.UnmarshalConfChange(e)
			require.NoError(c.t, err)
			n.rn.ApplyConfChange(cc)
		}
	}
	n.rn.Advance(*n.held)
	n.held = nil
}

// requireHeldIntact requires every held Ready's messages to be as they
// were handed out: until Advance, they are the application's.
func (c *reuseCluster) requireHeldIntact() {
	for i, n := range c.nodes {
		if n.held != nil {
			require.Equal(c.t, n.sent, n.held.Messages, "node %d: a held Ready's messages changed before Advance", i+1)
		}
	}
}

// settle runs Readys and delivers messages until the cluster is quiet.
func (c *reuseCluster) settle() {
	for busy := true; busy; {
		busy = false
		for i, n := range c.nodes {
			for n.rn.HasReady() {
				busy = true
				c.ready(i)
				c.advance(i)
			}
		}
		msgs := c.net
		c.net = nil
		for _, m := range msgs {
			busy = true
			_ = c.nodes[m.To-1].rn.Step(m)
		}
	}
}

func withReuseReadyMessages(c *Config) { c.ReuseReadyMessages = true }

// TestReuseReadyMessagesSameAsDefault drives two clusters through the same
// random inputs, one with ReuseReadyMessages: they must hand out the same
// Readys, message for message. Nodes step messages, tick and take
// proposals and read requests between a Ready and its Advance, so that
// messages are queued while the handed-out ones are still the
// application's, and move when Advance frees their slots.
func TestReuseReadyMessagesSameAsDefault(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			small := seed%2 == 0
			cfg := func(c *Config) {
				c.PreVote, c.CheckQuorum = true, true
				if small {
					c.MaxSizePerMsg, c.MaxInflightMsgs = 1, 4
				}
			}
			def := newReuseCluster(t, seed, cfg)
			reuse := newReuseCluster(t, seed, func(c *Config) { cfg(c); withReuseReadyMessages(c) })
			both := []*reuseCluster{def, reuse}
			rng := rand.New(rand.NewPCG(seed, 99))
			readys, moved := 0, 0
			for step := 0; step < 3000; step++ {
				i := rng.IntN(3)
				switch k := rng.IntN(10); {
				case k < 2:
					for _, c := range both {
						c.nodes[i].rn.Tick()
					}
				case k < 4:
					data := []byte(fmt.Sprint("v", step))
					errs := [2]error{}
					for j, c := range both {
						errs[j] = c.nodes[i].rn.Propose(data)
					}
					require.Equal(t, errs[0], errs[1])
				case k < 5:
					for _, c := range both {
						c.nodes[i].rn.ReadIndex([]byte(fmt.Sprint("r", step)))
					}
				case k < 7:
					n := def.nodes[i]
					switch {
					case n.held != nil:
						// Queued since the Ready: moved at Advance.
						moved += len(n.rn.raft.msgs)
						def.advance(i)
						reuse.advance(i)
					case n.rn.HasReady():
						require.True(t, reuse.nodes[i].rn.HasReady())
						a, b := def.ready(i), reuse.ready(i)
						require.Equal(t, *a, *b, "Ready %d of node %d", readys, i+1)
						readys++
					}
				default:
					require.Equal(t, len(def.net), len(reuse.net))
					if len(def.net) == 0 {
						continue
					}
					j := rng.IntN(len(def.net))
					drop := rng.IntN(10) == 0
					errs := [2]error{}
					for k, c := range both {
						m := c.net[j]
						c.net = append(c.net[:j], c.net[j+1:]...)
						if !drop {
							errs[k] = c.nodes[m.To-1].rn.Step(m)
						}
					}
					require.Equal(t, errs[0], errs[1])
				}
				reuse.requireHeldIntact()
			}
			require.Positive(t, readys)
			require.Positive(t, moved, "no message was queued between a Ready and its Advance")
			for i := range def.nodes {
				require.Equal(t, def.nodes[i].rn.raft.hardState(), reuse.nodes[i].rn.raft.hardState())
			}
		})
	}
}

// TestReuseReadyMessagesReusesSlots: with ReuseReadyMessages, the messages
// of the next Ready sit where the last Ready's were, and those are cleared
// at Advance; by default every Ready's messages are new memory, left as
// they were.
func TestReuseReadyMessagesReusesSlots(t *testing.T) {
	for _, reuse := range []bool{false, true} {
		t.Run(fmt.Sprint("reuse=", reuse), func(t *testing.T) {
			c := newReuseCluster(t, 1, func(c *Config) { c.ReuseReadyMessages = reuse })
			c.settle()
			require.NoError(t, c.nodes[0].rn.Campaign())
			c.settle()
			require.Equal(t, StateLeader, c.nodes[0].rn.raft.state)

			leader := c.nodes[0]
			require.NoError(t, leader.rn.Propose([]byte("a")))
			first := c.ready(0)
			require.Len(t, first.Messages, 2)
			kept := first.Messages
			want := append([]pb.Message(nil), kept...)
			c.advance(0)
			c.net = nil

			require.NoError(t, leader.rn.Propose([]byte("b")))
			second := c.ready(0)
			require.Len(t, second.Messages, 2)
			if reuse {
				require.Same(t, &kept[0], &second.Messages[0], "the next Ready's messages are not in the reused slots")
				require.Equal(t, "b", string(second.Messages[0].Entries[0].Data))
			} else {
				require.NotSame(t, &kept[0], &second.Messages[0])
				require.Equal(t, want, kept, "a handed-out message changed")
			}
			c.advance(0)
			if reuse {
				require.Equal(t, []pb.Message{{}, {}}, second.Messages, "handed-out messages not cleared at Advance")
			}
		})
	}
}

// TestReuseReadyMessagesQueuedBeforeAdvance: messages queued between a
// Ready and its Advance (a proposal, here) are handed out intact by the
// next Ready once Advance moved them to the freed slots.
func TestReuseReadyMessagesQueuedBeforeAdvance(t *testing.T) {
	c := newReuseCluster(t, 1, withReuseReadyMessages)
	c.settle()
	require.NoError(t, c.nodes[0].rn.Campaign())
	c.settle()
	leader := c.nodes[0]
	require.NoError(t, leader.rn.Propose([]byte("a")))
	first := c.ready(0)
	require.Len(t, first.Messages, 2)
	require.NoError(t, leader.rn.Propose([]byte("b")))
	require.Len(t, leader.rn.raft.msgs, 2, "the appends of b are queued")
	c.advance(0)
	c.net = nil
	second := c.ready(0)
	require.Len(t, second.Messages, 2)
	for _, m := range second.Messages {
		require.Equal(t, pb.MsgApp, m.Type)
		require.Len(t, m.Entries, 1)
		require.Equal(t, "b", string(m.Entries[0].Data))
	}
	require.ElementsMatch(t, []uint64{2, 3}, []uint64{second.Messages[0].To, second.Messages[1].To})
	c.advance(0)
}

func TestReuseReadyMessagesRefusesAsync(t *testing.T) {
	cfg := testConfig(1, NewMemoryStorage())
	cfg.ReuseReadyMessages, cfg.AsyncStorageWrites = true, true
	require.ErrorIs(t, cfg.Validate(), ErrConfigReuseWithAsync)
	_, err := NewRawNode(cfg)
	require.ErrorIs(t, err, ErrConfigReuseWithAsync)
}

// A Tick does not drop the chunk a node with ReuseReadyMessages reuses,
// however few Readys it handed out since the last: a heartbeating leader
// hands out its heartbeats from the same slots tick after tick.
func TestTickKeepsReusedMessageChunk(t *testing.T) {
	c := newTestCluster(t, 3, func(c *Config) { c.ReuseReadyMessages = true })
	c.campaign(1)
	rn := c.nodes[1].rn
	var prev []pb.Message
	for i := 0; i < 3; i++ {
		rn.Tick()
		rd := rn.Ready()
		require.NotEmpty(t, rd.Messages)
		if i > 0 {
			require.Same(t, &prev[0], &rd.Messages[0], "tick %d: the chunk was dropped", i)
		}
		prev = rd.Messages
		rn.Advance(rd)
	}
}
