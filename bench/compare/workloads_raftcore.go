package main

// The workloads, written once, in workloads_raftcore.go against raftcore.
// workloads_etcd_gen.go is the same text against etcd raft, produced by
// cmd/mirror (import paths and the name suffix rewritten, nothing else);
// TestMirrorUpToDate fails if it has drifted.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	raft "github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
)

// runRaftcore runs workload kind once with p.
func runRaftcore(kind string, p params) (sample, error) {
	switch kind {
	case "single":
		return singleVoterRaftcore(p)
	case "three":
		return threeVotersRaftcore(p)
	case "codec":
		return codecRaftcore(p)
	case "idle":
		return idleGroupsRaftcore(p)
	case "node":
		return nodeFsyncRaftcore(p)
	case "file":
		return fileClusterRaftcore(p)
	}
	return sample{}, fmt.Errorf("unknown workload kind %q", kind)
}

func configRaftcore(id uint64, s *raft.MemoryStorage) *raft.Config {
	return &raft.Config{
		ID:                       id,
		ElectionTick:             10,
		HeartbeatTick:            1,
		Storage:                  s,
		MaxSizePerMsg:            1 << 20,
		MaxCommittedSizePerReady: 1 << 30,
		MaxInflightMsgs:          4096,
		Logger:                   discardLogger{},
	}
}

// peerRaftcore is one voter driven by a plain Ready loop: persist to its
// MemoryStorage (and to its file log, if any), collect messages, apply,
// Advance.
type peerRaftcore struct {
	rn *raft.RawNode
	s  *raft.MemoryStorage
	// log, if set, receives every Ready's entries and hard state.
	log *fileLog
	// applied is the index of the last applied entry; appliedData counts
	// applied normal entries that carry data.
	applied     uint64
	appliedData int64
	compacted   uint64
}

func newPeerRaftcore(cfg *raft.Config, s *raft.MemoryStorage, peers []raft.Peer) (*peerRaftcore, error) {
	rn, err := raft.NewRawNode(cfg)
	if err != nil {
		return nil, err
	}
	if err := rn.Bootstrap(peers); err != nil {
		return nil, err
	}
	return &peerRaftcore{rn: rn, s: s}, nil
}

// handleReady handles one Ready, appending its messages to out.
func (n *peerRaftcore) handleReady(out *[]pb.Message) error {
	rd := n.rn.Ready()
	if n.log != nil {
		for i := range rd.Entries {
			e := &rd.Entries[i]
			if _, err := e.MarshalTo(n.log.reserve(e.Size())); err != nil {
				return err
			}
		}
		if !raft.IsEmptyHardState(rd.HardState) {
			hs := rd.HardState
			if _, err := hs.MarshalTo(n.log.reserve(hs.Size())); err != nil {
				return err
			}
		}
		if err := n.log.flush(rd.MustSync); err != nil {
			return err
		}
	}
	if err := n.s.Append(rd.Entries); err != nil {
		return err
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		if err := n.s.SetHardState(rd.HardState); err != nil {
			return err
		}
	}
	*out = append(*out, rd.Messages...)
	for i := range rd.CommittedEntries {
		e := &rd.CommittedEntries[i]
		switch e.Type {
		case pb.EntryNormal:
			if len(e.Data) > 0 {
				n.appliedData++
			}
		case pb.EntryConfChange:
			var cc pb.ConfChange
			if err := cc.Unmarshal(e.Data); err != nil {
				return err
			}
			n.rn.ApplyConfChange(cc)
		case pb.EntryConfChangeV2:
			var cc pb.ConfChangeV2
			if err := cc.Unmarshal(e.Data); err != nil {
				return err
			}
			n.rn.ApplyConfChange(cc)
		}
		n.applied = e.Index
	}
	n.rn.Advance(rd)
	// Compact now and then so that long runs keep memory flat.
	if n.applied >= n.compacted+8192 {
		if err := n.s.Compact(n.applied); err != nil {
			return err
		}
		n.compacted = n.applied
	}
	return nil
}

// drain handles every pending Ready.
func (n *peerRaftcore) drain(out *[]pb.Message) error {
	for n.rn.HasReady() {
		if err := n.handleReady(out); err != nil {
			return err
		}
	}
	return nil
}

// singleVoterRaftcore: one voter; propose p.batch entries, then handle
// Readys until they are applied; p.n entries in all.
func singleVoterRaftcore(p params) (sample, error) {
	s := raft.NewMemoryStorage()
	n, err := newPeerRaftcore(configRaftcore(1, s), s, []raft.Peer{{ID: 1}})
	if err != nil {
		return sample{}, err
	}
	var out []pb.Message
	if err := n.drain(&out); err != nil {
		return sample{}, err
	}
	if err := n.rn.Campaign(); err != nil {
		return sample{}, err
	}
	if err := n.drain(&out); err != nil {
		return sample{}, err
	}
	if n.rn.BasicStatus().RaftState != raft.StateLeader {
		return sample{}, errors.New("single voter did not become leader")
	}
	m := startMeter()
	for proposed := 0; proposed < p.n; {
		k := min(p.batch, p.n-proposed)
		for range k {
			if err := n.rn.Propose(payload); err != nil {
				return sample{}, err
			}
		}
		proposed += k
		if err := n.drain(&out); err != nil {
			return sample{}, err
		}
		out = out[:0]
	}
	res := m.stop(n.appliedData)
	res.expected, res.observed = int64(p.n), n.appliedData
	return res, nil
}

// clusterRaftcore is three voters in one goroutine; messages go from one
// to another as values, or marshaled and unmarshaled when wire is set.
// Marshaled, each message goes through one buffer the cluster reuses, as
// a transport writing length-prefixed frames to a connection and reading
// them back reuses its buffers: the decoded message owns its payloads, so
// the buffer is free again once it is decoded.
type clusterRaftcore struct {
	peers []*peerRaftcore
	wire  bool
	msgs  []pb.Message
	spare []pb.Message
	frame []byte
}

func newClusterRaftcore(wire, optIn bool, dir string) (*clusterRaftcore, error) {
	c := &clusterRaftcore{wire: wire}
	ids := []raft.Peer{{ID: 1}, {ID: 2}, {ID: 3}}
	for _, id := range ids {
		s := raft.NewMemoryStorage()
		cfg := configRaftcore(id.ID, s)
		if optIn {
			optInRaftcore(cfg)
		}
		n, err := newPeerRaftcore(cfg, s, ids)
		if err != nil {
			return nil, err
		}
		if dir != "" {
			if n.log, err = openFileLog(filepath.Join(dir, fmt.Sprintf("node-%d.log", id.ID))); err != nil {
				return nil, err
			}
		}
		c.peers = append(c.peers, n)
	}
	if err := c.pump(); err != nil {
		return nil, err
	}
	if err := c.peers[0].rn.Campaign(); err != nil {
		return nil, err
	}
	if err := c.pump(); err != nil {
		return nil, err
	}
	if c.peers[0].rn.BasicStatus().RaftState != raft.StateLeader {
		return nil, errors.New("node 1 did not become leader")
	}
	return c, nil
}

// pump handles Readys and delivers messages until every voter is idle.
func (c *clusterRaftcore) pump() error {
	for {
		for _, n := range c.peers {
			if err := n.drain(&c.msgs); err != nil {
				return err
			}
		}
		if len(c.msgs) == 0 {
			return nil
		}
		msgs := c.msgs
		c.msgs = c.spare[:0]
		for i := range msgs {
			m := msgs[i]
			if c.wire {
				size := m.Size()
				c.frame = slices.Grow(c.frame[:0], size)[:size]
				n, err := m.MarshalTo(c.frame)
				if err != nil {
					return err
				}
				m = pb.Message{}
				if err := m.Unmarshal(c.frame[:n]); err != nil {
					return err
				}
			}
			if m.To < 1 || int(m.To) > len(c.peers) {
				return fmt.Errorf("message to unknown node %d", m.To)
			}
			if err := c.peers[m.To-1].rn.Step(m); err != nil {
				return err
			}
		}
		clear(msgs)
		c.spare = msgs[:0]
	}
}

// commit proposes p.n entries at the leader, p.batch at a time, each batch
// replicated and applied everywhere before the next.
func (c *clusterRaftcore) commit(p params) (sample, error) {
	leader := c.peers[0]
	base := make([]int64, len(c.peers))
	for i, n := range c.peers {
		base[i] = n.appliedData
	}
	m := startMeter()
	for proposed := 0; proposed < p.n; {
		k := min(p.batch, p.n-proposed)
		if err := c.propose(k, p.propMsg); err != nil {
			return sample{}, err
		}
		proposed += k
		if err := c.pump(); err != nil {
			return sample{}, err
		}
	}
	committed := leader.appliedData - base[0]
	res := m.stop(committed)
	res.expected, res.observed = int64(p.n), committed
	for i, n := range c.peers {
		res.observed = min(res.observed, n.appliedData-base[i])
	}
	return res, nil
}

// propose hands k proposals to the leader, node 1: k calls of Propose, or,
// with oneMsg, one MsgProp of k entries through Step, as an application
// that batches its commands before proposing them would. The message owns
// its entries (the leader appends them to its log), so each batch has a
// slice of its own, as each Propose makes one. From and To both name the
// leader.
func (c *clusterRaftcore) propose(k int, oneMsg bool) error {
	leader := c.peers[0].rn
	if !oneMsg {
		for range k {
			if err := leader.Propose(payload); err != nil {
				return err
			}
		}
		return nil
	}
	ents := make([]pb.Entry, k)
	for i := range ents {
		ents[i].Data = payload
	}
	return leader.Step(pb.Message{Type: pb.MsgProp, From: 1, To: 1, Entries: ents})
}

// threeVotersRaftcore: three voters in memory.
func threeVotersRaftcore(p params) (sample, error) {
	c, err := newClusterRaftcore(p.wire, p.optIn, "")
	if err != nil {
		return sample{}, err
	}
	return c.commit(p)
}

// fileClusterRaftcore: three voters, each persisting every Ready to its
// own file (written and synced through fileLog) besides MemoryStorage.
func fileClusterRaftcore(p params) (res sample, err error) {
	c, err := newClusterRaftcore(false, false, p.dir)
	if err != nil {
		return sample{}, err
	}
	defer func() {
		for _, n := range c.peers {
			if cerr := n.log.close(); err == nil {
				err = cerr
			}
		}
	}()
	var syncs int64
	for _, n := range c.peers {
		syncs -= n.log.syncs
	}
	res, err = c.commit(p)
	if err != nil {
		return sample{}, err
	}
	for _, n := range c.peers {
		syncs += n.log.syncs
	}
	res.extra["fsyncs/entry"] = float64(syncs) / float64(res.ops)
	return res, nil
}

// codecRaftcore: marshal and unmarshal a MsgApp of 64 entries of 128 bytes,
// p.n times.
func codecRaftcore(p params) (sample, error) {
	ents := make([]pb.Entry, 64)
	for i := range ents {
		ents[i] = pb.Entry{Term: 7, Index: 1001 + uint64(i), Type: pb.EntryNormal, Data: payload}
	}
	msg := pb.Message{Type: pb.MsgApp, From: 1, To: 2, Term: 7, LogTerm: 7, Index: 1000, Commit: 990, Entries: ents}
	var decoded int64
	m := startMeter()
	for range p.n {
		b, err := msg.Marshal()
		if err != nil {
			return sample{}, err
		}
		var got pb.Message
		if err := got.Unmarshal(b); err != nil {
			return sample{}, err
		}
		decoded += int64(len(got.Entries))
	}
	res := m.stop(int64(p.n))
	res.expected, res.observed = int64(p.n)*int64(len(ents)), decoded
	return res, nil
}

// newIdleFollowerRaftcore makes node 2 of a three-voter group and makes it
// a follower of node 1 at term 2 that has seen one heartbeat. Nothing
// reaches it after that: the follower of a quiesced group, whose leader
// has stopped sending heartbeats.
func newIdleFollowerRaftcore() (*peerRaftcore, error) {
	s := raft.NewMemoryStorage()
	cfg := configRaftcore(2, s)
	cfg.ElectionTick = idleElectionTick
	cfg.MaxInflightMsgs = 256
	n, err := newPeerRaftcore(cfg, s, []raft.Peer{{ID: 1}, {ID: 2}, {ID: 3}})
	if err != nil {
		return nil, err
	}
	var out []pb.Message
	if err := n.drain(&out); err != nil {
		return nil, err
	}
	if err := n.rn.Step(pb.Message{Type: pb.MsgHeartbeat, From: 1, To: 2, Term: 2, Commit: 3}); err != nil {
		return nil, err
	}
	if err := n.drain(&out); err != nil {
		return nil, err
	}
	return n, nil
}

// idleGroupsRaftcore: p.groups followers of quiesced groups, which get no
// message after their first heartbeat; the live heap they take once each
// has been ticked twice with no traffic (a node that hands out no Ready for
// a whole tick may let go of the buffers it keeps while busy), and p.n
// passes of Tick and HasReady over all of them, still with no traffic.
// With p.heartbeat, followers of groups that are idle but not quiesced:
// each tick brings a heartbeat from the leader, which the follower answers
// in a Ready; the heap is taken after idleHeartbeatSetupTicks of them.
func idleGroupsRaftcore(p params) (sample, error) {
	hb := pb.Message{Type: pb.MsgHeartbeat, From: 1, To: 2, Term: 2, Commit: 3}
	var out []pb.Message
	readies := 0
	// tick ticks group g once and, with p.heartbeat, steps its leader's
	// heartbeat and handles the Ready answering it.
	tick := func(g *peerRaftcore) error {
		g.rn.Tick()
		if p.heartbeat {
			if err := g.rn.Step(hb); err != nil {
				return err
			}
		}
		if g.rn.HasReady() {
			readies++
			if err := g.drain(&out); err != nil {
				return err
			}
			out = out[:0]
		}
		return nil
	}
	// Quiet groups are ticked twice; heartbeating ones as many times as
	// their buffers need to reach the size traffic grows them to.
	setupTicks := 2
	if p.heartbeat {
		setupTicks = idleHeartbeatSetupTicks
	}
	before := liveHeap()
	groups := make([]*peerRaftcore, p.groups)
	for i := range groups {
		n, err := newIdleFollowerRaftcore()
		if err != nil {
			return sample{}, err
		}
		for range setupTicks {
			if err := tick(n); err != nil {
				return sample{}, err
			}
		}
		groups[i] = n
	}
	after := liveHeap()
	readies = 0
	m := startMeter()
	for range p.n {
		for _, g := range groups {
			if err := tick(g); err != nil {
				return sample{}, err
			}
		}
	}
	res := m.stop(int64(p.n) * int64(len(groups)))
	res.expected = int64(len(groups))
	for _, g := range groups {
		st := g.rn.BasicStatus()
		if st.RaftState == raft.StateFollower && st.Lead == 1 && st.Term == 2 {
			res.observed++
		}
	}
	// A quiet group hands out no Ready; a heartbeating one, one a tick.
	if p.heartbeat {
		readies -= p.n * len(groups)
	}
	res.observed -= int64(readies)
	res.extra["live heap B/group"] = float64(after-before) / float64(len(groups))
	runtime.KeepAlive(groups)
	return res, nil
}

// nodeFsyncRaftcore: a single-voter Node whose Ready loop sleeps fsyncDelay
// for every Ready with entries or a hard state, and p.proposers goroutines
// proposing p.n entries in all, each waiting for its entry to be applied.
func nodeFsyncRaftcore(p params) (sample, error) {
	s := raft.NewMemoryStorage()
	node := raft.StartNode(configRaftcore(1, s), []raft.Peer{{ID: 1}})
	w := newWaiters(p.proposers)
	// The Ready loop closes configured once the bootstrap conf change is
	// applied (before that, both libraries ignore a campaign), and leader
	// once the node leads.
	configured := make(chan struct{})
	leader := make(chan struct{})
	done := make(chan struct{})
	loopDone := make(chan error, 1)
	go func() { loopDone <- nodeReadyLoopRaftcore(node, s, w, configured, leader, done) }()
	stop := func() error {
		close(done)
		node.Stop()
		return <-loopDone
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := waitLeader(ctx, node.Campaign, configured, leader); err != nil {
		return sample{}, errors.Join(err, stop())
	}
	m := startMeter()
	lats, err := runProposers(p.n, w, node.Propose)
	if err != nil {
		return sample{}, errors.Join(err, stop())
	}
	res := m.stop(w.committed.Load())
	if err := stop(); err != nil {
		return sample{}, err
	}
	res.expected, res.observed = int64(p.n), w.committed.Load()
	res.extra["entries/s"] = float64(res.ops) / res.elapsed.Seconds()
	res.extra["p50 latency µs"] = float64(percentile(lats, 50)) / 1e3
	res.extra["p99 latency µs"] = float64(percentile(lats, 99)) / 1e3
	return res, nil
}

func nodeReadyLoopRaftcore(node raft.Node, s *raft.MemoryStorage, w *waiters, configured, leader, done chan struct{}) error {
	isConfigured, isLeader := false, false
	for {
		select {
		case <-done:
			return nil
		case rd := <-node.Ready():
			if len(rd.Entries) > 0 || !raft.IsEmptyHardState(rd.HardState) {
				time.Sleep(fsyncDelay)
			}
			if err := s.Append(rd.Entries); err != nil {
				return err
			}
			if !raft.IsEmptyHardState(rd.HardState) {
				if err := s.SetHardState(rd.HardState); err != nil {
					return err
				}
			}
			if rd.SoftState != nil && rd.SoftState.RaftState == raft.StateLeader && !isLeader {
				isLeader = true
				close(leader)
			}
			for i := range rd.CommittedEntries {
				e := &rd.CommittedEntries[i]
				switch e.Type {
				case pb.EntryNormal:
					w.applied(e.Data)
				case pb.EntryConfChange:
					var cc pb.ConfChange
					if err := cc.Unmarshal(e.Data); err != nil {
						return err
					}
					node.ApplyConfChange(cc)
				}
			}
			node.Advance()
			if !isConfigured && len(rd.CommittedEntries) > 0 {
				isConfigured = true
				close(configured)
			}
		}
	}
}
