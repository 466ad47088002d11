package rafttest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
)

// ClusterConfig describes a cluster to build.
type ClusterConfig struct {
	// Size is the number of voters, with IDs 1..Size.
	Size int
	// Seed makes every random choice (election timeouts, drops)
	// reproducible.
	Seed uint64
	// Configure, if set, adjusts each node's config before it starts
	// (e.g. to turn on PreVote or shrink MaxSizePerMsg).
	Configure func(*raft.Config)
}

// Cluster is a set of nodes on MemoryStorage joined by a Network. Every
// node follows the Ready contract exactly: persist, send, apply, advance.
// It is deterministic and not safe for concurrent use.
type Cluster struct {
	cfg   ClusterConfig
	Net   *Network
	nodes map[uint64]*Node
	ids   []uint64
	// StepErrors counts errors returned by Step for delivered messages,
	// by error text.
	StepErrors map[string]int
}

// Node is one member of a Cluster.
type Node struct {
	ID      uint64
	Storage *raft.MemoryStorage
	// RawNode is nil while the node is crashed.
	RawNode *raft.RawNode
	// Applied lists the entries this node applied, in order, across
	// restarts (the state machine is durable).
	Applied []pb.Entry
	// ConfState is the configuration after the last applied conf change.
	ConfState pb.ConfState

	config raft.Config
}

// NewCluster builds and bootstraps a cluster of cfg.Size voters.
func NewCluster(cfg ClusterConfig) (*Cluster, error) {
	if cfg.Size <= 0 {
		return nil, errors.New("rafttest: cluster size must be positive")
	}
	c := &Cluster{
		cfg:        cfg,
		Net:        NewNetwork(cfg.Seed),
		nodes:      map[uint64]*Node{},
		StepErrors: map[string]int{},
	}
	peers := make([]raft.Peer, cfg.Size)
	for i := range peers {
		peers[i] = raft.Peer{ID: uint64(i + 1)}
	}
	for _, p := range peers {
		n := &Node{ID: p.ID, Storage: raft.NewMemoryStorage()}
		n.config = raft.Config{
			ID:              p.ID,
			ElectionTick:    10,
			HeartbeatTick:   1,
			Storage:         n.Storage,
			MaxSizePerMsg:   1 << 20,
			MaxInflightMsgs: 256,
			Logger:          raft.DiscardLogger,
			RandomSource:    rand.NewPCG(cfg.Seed, p.ID),
		}
		if cfg.Configure != nil {
			cfg.Configure(&n.config)
		}
		rn, err := raft.NewRawNode(&n.config)
		if err != nil {
			return nil, err
		}
		if err := rn.Bootstrap(peers); err != nil {
			return nil, err
		}
		n.RawNode = rn
		c.nodes[p.ID] = n
		c.ids = append(c.ids, p.ID)
	}
	return c, nil
}

// IDs returns the node IDs in ascending order.
func (c *Cluster) IDs() []uint64 { return slices.Clone(c.ids) }

// Node returns the node with the given ID, or nil.
func (c *Cluster) Node(id uint64) *Node { return c.nodes[id] }

// Tick advances every running node's clock, and the network's, by one
// tick.
func (c *Cluster) Tick() {
	c.Net.Advance(1)
	for _, id := range c.ids {
		if n := c.nodes[id]; n.RawNode != nil {
			n.RawNode.Tick()
		}
	}
}

// TickNode advances one node's clock (not the network's).
func (c *Cluster) TickNode(id uint64) {
	if n := c.nodes[id]; n.RawNode != nil {
		n.RawNode.Tick()
	}
}

// maxStabilizeRounds bounds Stabilize so that a livelock fails loudly.
const maxStabilizeRounds = 100000

// Stabilize handles Readys and delivers messages until nothing is left to
// do; messages the network delays past now wait for later ticks. It
// returns an error if that does not happen within a bound.
func (c *Cluster) Stabilize() error {
	for round := 0; round < maxStabilizeRounds; round++ {
		busy := c.ProcessReady()
		if c.Net.Due() > 0 {
			busy = true
			c.Deliver()
		}
		if !busy {
			return nil
		}
	}
	return fmt.Errorf("rafttest: cluster did not stabilize in %d rounds", maxStabilizeRounds)
}

// ProcessReady handles one Ready on every running node that has one. It
// reports whether any node had one.
func (c *Cluster) ProcessReady() bool {
	busy := false
	for _, id := range c.ids {
		n := c.nodes[id]
		if n.RawNode == nil || !n.RawNode.HasReady() {
			continue
		}
		busy = true
		c.Net.Send(n.handleReady()...)
	}
	return busy
}

// Deliver steps every message the network lets through into its
// recipient. Messages to crashed or unknown nodes are lost.
func (c *Cluster) Deliver() {
	for _, m := range c.Net.Take() {
		n := c.nodes[m.To]
		if n == nil || n.RawNode == nil {
			continue
		}
		if err := n.RawNode.Step(m); err != nil {
			c.StepErrors[err.Error()]++
		}
	}
}

// handleReady follows the Ready contract and returns the messages to send.
func (n *Node) handleReady() []pb.Message {
	rd := n.RawNode.Ready()
	must(n.Storage.Save(rd.HardState, rd.Entries, rd.Snapshot))
	if !raft.IsEmptySnap(rd.Snapshot) {
		n.ConfState = rd.Snapshot.Metadata.ConfState
	}
	for _, e := range rd.CommittedEntries {
		if e.Type == pb.EntryConfChange || e.Type == pb.EntryConfChangeV2 {
			cc, err := pb.UnmarshalConfChange(e)
			must(err)
			n.ConfState = *n.RawNode.ApplyConfChange(cc)
		}
		n.Applied = append(n.Applied, e)
	}
	n.RawNode.Advance(rd)
	return rd.Messages
}

func must(err error) {
	if err != nil {
		panic(fmt.Sprintf("rafttest: %v", err))
	}
}

// AppliedIndex is the index of the last entry the node applied.
func (n *Node) AppliedIndex() uint64 {
	if len(n.Applied) == 0 {
		return 0
	}
	return n.Applied[len(n.Applied)-1].Index
}

// Crash stops the node: everything it had not persisted (an unhandled
// Ready, messages not yet sent) is lost. Its storage is kept.
func (n *Node) Crash() { n.RawNode = nil }

// Restart brings a crashed node back from its storage alone, resuming
// application after the entries it already applied.
func (n *Node) Restart() error {
	cfg := n.config
	cfg.Applied = n.AppliedIndex()
	snap, err := n.Storage.Snapshot()
	if err != nil {
		return err
	}
	switch {
	case cfg.Applied < snap.Metadata.Index:
		cfg.Applied = snap.Metadata.Index
	case cfg.Applied > snap.Metadata.Index:
		// The state machine is durable together with its configuration:
		// record both as a snapshot so that the restarted node knows the
		// configuration it will not be handed again.
		if _, err := n.Storage.CreateSnapshot(cfg.Applied, &n.ConfState, nil); err != nil {
			return err
		}
	}
	rn, err := raft.NewRawNode(&cfg)
	if err != nil {
		return err
	}
	n.RawNode = rn
	return nil
}

// Leader returns the ID of the node that is leader with the highest term
// among running nodes, or 0 if none is.
func (c *Cluster) Leader() uint64 {
	var lead, term uint64
	for _, id := range c.ids {
		n := c.nodes[id]
		if n.RawNode == nil {
			continue
		}
		st := n.RawNode.BasicStatus()
		if st.RaftState == raft.StateLeader && st.Term >= term {
			lead, term = id, st.Term
		}
	}
	return lead
}

// Leaders returns every running node that believes it is leader.
func (c *Cluster) Leaders() []uint64 {
	var out []uint64
	for _, id := range c.ids {
		n := c.nodes[id]
		if n.RawNode != nil && n.RawNode.BasicStatus().RaftState == raft.StateLeader {
			out = append(out, id)
		}
	}
	return out
}

// ElectLeader ticks and stabilizes until some node is leader, up to
// maxTicks ticks, and returns it.
func (c *Cluster) ElectLeader(maxTicks int) (uint64, error) {
	for i := 0; i < maxTicks; i++ {
		if err := c.Stabilize(); err != nil {
			return 0, err
		}
		if lead := c.Leader(); lead != 0 {
			return lead, nil
		}
		c.Tick()
	}
	return 0, fmt.Errorf("rafttest: no leader after %d ticks", maxTicks)
}

// Campaign stabilizes (so that pending conf changes are applied, which a
// node must do before it may campaign), makes node id start an election
// and stabilizes again.
func (c *Cluster) Campaign(id uint64) error {
	if err := c.Stabilize(); err != nil {
		return err
	}
	if err := c.nodes[id].RawNode.Campaign(); err != nil {
		return err
	}
	return c.Stabilize()
}

// Propose proposes data through node id (without stabilizing).
func (c *Cluster) Propose(id uint64, data []byte) error {
	return c.nodes[id].RawNode.Propose(data)
}

// AppliedData returns the payloads of the normal, non-empty entries a node
// applied, in order: the state machine's command history.
func (n *Node) AppliedData() [][]byte {
	var out [][]byte
	for _, e := range n.Applied {
		if e.Type == pb.EntryNormal && len(e.Data) > 0 {
			out = append(out, e.Data)
		}
	}
	return out
}
