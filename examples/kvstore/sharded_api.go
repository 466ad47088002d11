package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The HTTP API of a sharded member: the same paths as the single group's;
// membership changes and leader transfer are in sharded_membership.go.

func (m *shardedMember) routes() http.Handler {
	return &router{
		static: map[string]methods{
			"/cluster":         {http.MethodGet: m.handleCluster},
			"/cluster/members": {http.MethodPost: m.handleAddMember},
			"/cluster/leader":  {http.MethodPost: m.handleTransfer},
			"/status":          {http.MethodGet: m.handleStatus},
			"/metrics":         {http.MethodGet: promhttp.HandlerFor(m.metrics.registry, promhttp.HandlerOpts{}).ServeHTTP},
		},
		kv:      methods{http.MethodPut: m.handlePut, http.MethodGet: m.handleGet, http.MethodDelete: m.handleDelete},
		member:  methods{http.MethodDelete: m.handleRemoveMember, http.MethodGet: m.handleMemberLags},
		promote: methods{http.MethodPost: m.handlePromote},
	}
}

func (m *shardedMember) checkKey(w http.ResponseWriter, key string) bool {
	return checkKey(w, key, m.cfg)
}

func (m *shardedMember) handlePut(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if !m.checkKey(w, key) {
		return
	}
	value, ok := readValue(w, r, m.cfg)
	if !ok {
		return
	}
	sh, res, err := m.write(r.Context(), command{Op: opPut, Key: key, Value: value})
	if err != nil {
		writeFailure(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"index": res.index, "created": !res.existed, "shard": sh})
}

func (m *shardedMember) handleDelete(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if !m.checkKey(w, key) {
		return
	}
	sh, res, err := m.write(r.Context(), command{Op: opDelete, Key: key})
	if err != nil {
		writeFailure(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"index": res.index, "deleted": res.existed, "shard": sh})
}

func (m *shardedMember) handleGet(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if !m.checkKey(w, key) {
		return
	}
	s := m.shards[shardOf(key, m.n)-1]
	switch c := r.URL.Query().Get("consistency"); c {
	case "", "linearizable":
		if m.removed.Load() {
			writeFailure(w, errRemoved)
			return
		}
		wt := m.newWaiter()
		rctx := m.newRequestID()
		if !m.do(r.Context(), func() { m.readIndex(s, wt, rctx) }) {
			writeFailure(w, m.stoppedErr())
			return
		}
		if err := m.wait(r.Context(), wt); err != nil {
			writeFailure(w, err)
			return
		}
	case "stale":
	default:
		writeError(w, http.StatusBadRequest, "bad_consistency", fmt.Sprintf("consistency is linearizable (default) or stale, not %q", c))
		return
	}
	value, ok, applied := s.sm.get(key)
	w.Header().Set("X-Raft-Applied-Index", strconv.FormatUint(applied, 10))
	w.Header().Set("X-Kvstore-Shard", strconv.FormatUint(s.id, 10))
	if !ok {
		writeError(w, http.StatusNotFound, "key_not_found", fmt.Sprintf("key %q not found", key))
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(value)
}

// write proposes c to its key's shard and waits until it is applied here.
func (m *shardedMember) write(ctx context.Context, c command) (uint64, applyResult, error) {
	s := m.shards[shardOf(c.Key, m.n)-1]
	if m.removed.Load() {
		return s.id, applyResult{}, errRemoved
	}
	c.ID = m.newRequestID()
	data := encodeCommand(c)
	w := m.newWaiter()
	if !m.do(ctx, func() { m.propose(s, w, c.ID, data) }) {
		return s.id, applyResult{}, m.stoppedErr()
	}
	err := m.wait(ctx, w)
	return s.id, w.result, err
}

func (m *shardedMember) newWaiter() *waiter {
	return &waiter{done: make(chan error, 1), deadline: time.Now().Add(m.cfg.RequestTimeout)}
}

func (m *shardedMember) wait(ctx context.Context, w *waiter) error {
	t := time.NewTimer(m.cfg.RequestTimeout)
	defer t.Stop()
	select {
	case err := <-w.done:
		return err
	case <-m.failedC:
		return errFailed
	case <-t.C:
		return errTimeout
	case <-ctx.Done():
		return errTimeout
	}
}

// statusListAll is the largest shard count whose /status lists every
// shard by default (?shards=all lists them whatever the count).
const statusListAll = 64

// statusListFirst is how many shards /status and /cluster list beyond
// that.
const statusListFirst = 16

func (m *shardedMember) handleStatus(w http.ResponseWriter, r *http.Request) {
	st := *m.status.Load()
	if len(st.Groups) > statusListAll && r.URL.Query().Get("shards") != "all" {
		st.Groups = st.Groups[:statusListFirst]
	}
	writeJSON(w, http.StatusOK, st)
}

// shardedClusterMember is one member in GET /cluster.
type shardedClusterMember struct {
	ID   uint64 `json:"id"`
	Role string `json:"role"` // voter or learner in every shard, else mixed
	// VoterOf and LearnerOf count the shards whose configuration holds it
	// as a voter and as a learner.
	VoterOf   int    `json:"voter_of"`
	LearnerOf int    `json:"learner_of"`
	Peer      string `json:"peer"`
	Client    string `json:"client,omitempty"`
	Leading   int    `json:"leading"` // shards it leads, as this member knows
	// Its own view, asked over HTTP.
	Status  *shardedStatus `json:"status,omitempty"`
	Problem string         `json:"problem,omitempty"`
}

// handleCluster lists the members of the shards' configurations (with the
// number of shards each is a voter and a learner of, and leads), and the
// leader of each shard (the first statusListFirst when there are more than
// statusListAll).
func (m *shardedMember) handleCluster(w http.ResponseWriter, r *http.Request) {
	self := m.status.Load()
	clients := m.tr.peerClients()
	clients[m.cfg.ID] = m.clientL.Addr().String()
	leading := map[uint64]int{}
	type shardLeader struct {
		Shard uint64 `json:"shard"`
		Lead  uint64 `json:"leader"`
		Term  uint64 `json:"term"`
	}
	var shards []shardLeader
	for _, g := range self.Groups {
		if g.Lead != 0 {
			leading[g.Lead]++
		}
		shards = append(shards, shardLeader{g.Shard, g.Lead, g.Term})
	}
	if len(shards) > statusListAll && r.URL.Query().Get("shards") != "all" {
		shards = shards[:statusListFirst]
	}
	out := m.clusterMembers()
	var wg sync.WaitGroup
	for i := range out {
		cm := &out[i]
		cm.Client, cm.Leading = clients[cm.ID], leading[cm.ID]
		if cm.ID == m.cfg.ID {
			cm.Status = summary(self)
			continue
		}
		if cm.Client == "" {
			cm.Problem = "not connected to this member yet"
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cm.Status, cm.Problem = fetchShardedStatus(r.Context(), m.cfg.TLS.statusClient(), m.cfg.TLS.clientURL(cm.Client))
		}()
	}
	wg.Wait()
	writeJSON(w, http.StatusOK, map[string]any{
		"shards": m.n, "shards_without_leader": self.NoLeader, "members": out, "shard_leaders": shards,
	})
}

// clusterMembers are the members some shard's configuration, as applied
// here, holds, by id (the initial cluster's while none does: a joining
// member that has not heard from any shard's leader yet).
func (m *shardedMember) clusterMembers() []shardedClusterMember {
	byID := map[uint64]*shardedClusterMember{}
	get := func(id uint64) *shardedClusterMember {
		cm, ok := byID[id]
		if !ok {
			cm = &shardedClusterMember{ID: id}
			byID[id] = cm
		}
		return cm
	}
	for _, s := range m.shards {
		cs := s.sm.confState()
		for _, id := range cs.Voters {
			get(id).VoterOf++
		}
		for _, id := range cs.Learners {
			get(id).LearnerOf++
		}
	}
	if len(byID) == 0 {
		for id := range m.cfg.InitialCluster {
			get(id)
		}
	}
	var out []shardedClusterMember
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		cm := byID[id]
		switch {
		case cm.VoterOf == m.n:
			cm.Role = "voter"
		case cm.LearnerOf == m.n:
			cm.Role = "learner"
		default:
			cm.Role = "mixed"
		}
		cm.Peer = m.peerAddr(id)
		out = append(out, *cm)
	}
	return out
}

// peerAddr is member id's peer address: from the initial cluster, or as
// the first shard that knows it recorded it.
func (m *shardedMember) peerAddr(id uint64) string {
	if addr, ok := m.cfg.InitialCluster[id]; ok {
		return addr
	}
	for _, s := range m.shards {
		if _, peers := s.sm.members(); peers[id] != "" {
			return peers[id]
		}
	}
	return ""
}

// summary is st without the per-shard list.
func summary(st *shardedStatus) *shardedStatus {
	s := *st
	s.Groups = nil
	return &s
}

func fetchShardedStatus(ctx context.Context, client *http.Client, base string) (*shardedStatus, string) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/status", nil)
	resp, err := client.Do(req)
	if err != nil {
		return nil, err.Error()
	}
	defer resp.Body.Close()
	var st shardedStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, err.Error()
	}
	return summary(&st), ""
}
