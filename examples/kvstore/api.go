package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	pb "github.com/raftcore/raft/raftpb"
)

// apiError is every error response's body.
type apiError struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

func (m *member) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /kv/{key}", m.handlePut)
	mux.HandleFunc("GET /kv/{key}", m.handleGet)
	mux.HandleFunc("DELETE /kv/{key}", m.handleDelete)
	mux.HandleFunc("GET /cluster", m.handleCluster)
	mux.HandleFunc("POST /cluster/members", m.handleAddMember)
	mux.HandleFunc("POST /cluster/members/{id}/promote", m.handlePromote)
	mux.HandleFunc("DELETE /cluster/members/{id}", m.handleRemoveMember)
	mux.HandleFunc("POST /cluster/leader", m.handleTransfer)
	mux.HandleFunc("GET /status", m.handleStatus)
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.metrics.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path))
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, apiError{Error: msg, Code: code})
}

// writeUnavailable answers a request the cluster could not serve now.
func writeUnavailable(w http.ResponseWriter, err error) {
	code := "unavailable"
	switch {
	case errors.Is(err, errNoLeader):
		code = "no_leader"
	case errors.Is(err, errTimeout):
		code = "timeout"
	case errors.Is(err, errStopped):
		code = "shutting_down"
	case errors.Is(err, errLeaderChanged):
		code = "leader_changed"
	}
	writeError(w, http.StatusServiceUnavailable, code, err.Error())
}

func (m *member) checkKey(w http.ResponseWriter, key string) bool {
	if key == "" || len(key) > m.cfg.MaxKeySize {
		writeError(w, http.StatusBadRequest, "bad_key", fmt.Sprintf("keys are 1 to %d bytes", m.cfg.MaxKeySize))
		return false
	}
	return true
}

func (m *member) handlePut(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if !m.checkKey(w, key) {
		return
	}
	value, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(m.cfg.MaxValueSize)))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "value_too_large", fmt.Sprintf("values are at most %d bytes", m.cfg.MaxValueSize))
			return
		}
		writeError(w, http.StatusBadRequest, "bad_body", "reading the value: "+err.Error())
		return
	}
	res, err := m.write(r.Context(), command{Op: opPut, Key: key, Value: value})
	if err != nil {
		writeUnavailable(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"index": res.index, "created": !res.existed})
}

func (m *member) handleDelete(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if !m.checkKey(w, key) {
		return
	}
	res, err := m.write(r.Context(), command{Op: opDelete, Key: key})
	if err != nil {
		writeUnavailable(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"index": res.index, "deleted": res.existed})
}

func (m *member) handleGet(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if !m.checkKey(w, key) {
		return
	}
	switch c := r.URL.Query().Get("consistency"); c {
	case "", "linearizable":
		if err := m.linearizableRead(r.Context()); err != nil {
			writeUnavailable(w, err)
			return
		}
	case "stale":
	default:
		writeError(w, http.StatusBadRequest, "bad_consistency", fmt.Sprintf("consistency is linearizable (default) or stale, not %q", c))
		return
	}
	value, ok, applied := m.sm.get(key)
	w.Header().Set("X-Raft-Applied-Index", strconv.FormatUint(applied, 10))
	if !ok {
		writeError(w, http.StatusNotFound, "key_not_found", fmt.Sprintf("key %q not found", key))
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(value)
}

// write proposes c and waits until it is applied.
func (m *member) write(ctx context.Context, c command) (applyResult, error) {
	c.ID = m.newRequestID()
	data := encodeCommand(c)
	w := m.newWaiter()
	ok := m.do(ctx, func() {
		if m.lead == 0 {
			w.finish(errNoLeader)
			return
		}
		m.metrics.proposals.Inc()
		if err := m.rn.Propose(data); err != nil {
			m.metrics.proposalsFailed.Inc()
			w.finish(fmt.Errorf("%w (%v)", errNoLeader, err))
			return
		}
		m.waiters[c.ID] = w
	})
	if !ok {
		return applyResult{}, errStopped
	}
	err := m.wait(ctx, w)
	return w.result, err
}

func (m *member) newWaiter() *waiter {
	return &waiter{done: make(chan error, 1), deadline: time.Now().Add(m.cfg.RequestTimeout)}
}

// wait waits for w, the request's context, or the request timeout.
func (m *member) wait(ctx context.Context, w *waiter) error {
	t := time.NewTimer(m.cfg.RequestTimeout)
	defer t.Stop()
	select {
	case err := <-w.done:
		return err
	case <-t.C:
		return errTimeout
	case <-ctx.Done():
		return errTimeout
	}
}

// linearizableRead returns once the state machine has applied everything
// committed when the read arrived, confirmed by a quorum (ReadIndex).
func (m *member) linearizableRead(ctx context.Context) error {
	w := m.newWaiter()
	rctx := m.newRequestID()
	ok := m.do(ctx, func() {
		if m.lead == 0 {
			w.finish(errNoLeader)
			return
		}
		m.metrics.readIndex.Inc()
		m.reads[rctx] = w
		m.rn.ReadIndex([]byte(rctx))
	})
	if !ok {
		return errStopped
	}
	return m.wait(ctx, w)
}

func (m *member) handleStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, m.status.Load())
}

// clusterMember is one entry of GET /cluster.
type clusterMember struct {
	ID      uint64        `json:"id"`
	Role    string        `json:"role"` // voter, learner
	Peer    string        `json:"peer"`
	Client  string        `json:"client,omitempty"`
	Status  *memberStatus `json:"status,omitempty"`
	Problem string        `json:"problem,omitempty"`
}

// handleCluster lists the members with each one's own status, asked over
// HTTP (members announce their client address to each other).
func (m *member) handleCluster(w http.ResponseWriter, r *http.Request) {
	cs, peers := m.sm.members()
	clients := m.tr.peerClients()
	clients[m.cfg.ID] = m.clientL.Addr().String()
	self := m.status.Load()
	var out []clusterMember
	add := func(ids []uint64, role string) {
		for _, id := range ids {
			out = append(out, clusterMember{ID: id, Role: role, Peer: peers[id], Client: clients[id]})
		}
	}
	add(cs.Voters, "voter")
	add(cs.Learners, "learner")
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	var wg sync.WaitGroup
	for i := range out {
		cm := &out[i]
		if cm.ID == m.cfg.ID {
			cm.Status = self
			continue
		}
		if cm.Client == "" {
			cm.Problem = "not connected to this member yet"
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cm.Status, cm.Problem = fetchStatus(r.Context(), cm.Client)
		}()
	}
	wg.Wait()
	writeJSON(w, http.StatusOK, map[string]any{"leader": self.Lead, "term": self.Term, "members": out})
}

func fetchStatus(ctx context.Context, addr string) (*memberStatus, string) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/status", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err.Error()
	}
	defer resp.Body.Close()
	var st memberStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, err.Error()
	}
	return &st, ""
}

// addMemberRequest is the body of POST /cluster/members.
type addMemberRequest struct {
	ID      uint64 `json:"id"`
	Peer    string `json:"peer"`
	Learner bool   `json:"learner"`
}

func (m *member) handleAddMember(w http.ResponseWriter, r *http.Request) {
	var req addMemberRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "bad_body", `want {"id": N, "peer": "host:port", "learner": true|false}: `+err.Error())
		return
	}
	if req.ID == 0 {
		writeError(w, http.StatusBadRequest, "bad_id", "member ids are positive integers")
		return
	}
	if _, _, err := net.SplitHostPort(req.Peer); err != nil {
		writeError(w, http.StatusBadRequest, "bad_peer", fmt.Sprintf("peer must be host:port: %v", err))
		return
	}
	cs, _ := m.sm.members()
	if slices.Contains(cs.Voters, req.ID) || slices.Contains(cs.Learners, req.ID) {
		writeError(w, http.StatusConflict, "member_exists", fmt.Sprintf("member %d is already in the cluster", req.ID))
		return
	}
	typ := pb.ConfChangeAddNode
	if req.Learner {
		typ = pb.ConfChangeAddLearnerNode
	}
	m.changeMembership(w, r, pb.ConfChange{Type: typ, NodeID: req.ID}, req.Peer, http.StatusCreated)
}

func (m *member) memberID(w http.ResponseWriter, r *http.Request) (uint64, pb.ConfState, bool) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || id == 0 {
		writeError(w, http.StatusBadRequest, "bad_id", fmt.Sprintf("member ids are positive integers, not %q", r.PathValue("id")))
		return 0, pb.ConfState{}, false
	}
	cs, _ := m.sm.members()
	if !slices.Contains(cs.Voters, id) && !slices.Contains(cs.Learners, id) {
		writeError(w, http.StatusNotFound, "unknown_member", fmt.Sprintf("member %d is not in the cluster", id))
		return 0, cs, false
	}
	return id, cs, true
}

func (m *member) handlePromote(w http.ResponseWriter, r *http.Request) {
	id, cs, ok := m.memberID(w, r)
	if !ok {
		return
	}
	if !slices.Contains(cs.Learners, id) {
		writeError(w, http.StatusConflict, "not_a_learner", fmt.Sprintf("member %d is already a voter", id))
		return
	}
	m.changeMembership(w, r, pb.ConfChange{Type: pb.ConfChangeAddNode, NodeID: id}, "", http.StatusOK)
}

func (m *member) handleRemoveMember(w http.ResponseWriter, r *http.Request) {
	id, cs, ok := m.memberID(w, r)
	if !ok {
		return
	}
	if slices.Contains(cs.Voters, id) && len(cs.Voters) == 1 {
		writeError(w, http.StatusConflict, "last_voter", "cannot remove the last voter")
		return
	}
	m.changeMembership(w, r, pb.ConfChange{Type: pb.ConfChangeRemoveNode, NodeID: id}, "", http.StatusOK)
}

// changeMembership proposes cc and answers once it is applied here.
func (m *member) changeMembership(w http.ResponseWriter, r *http.Request, cc pb.ConfChange, peer string, status int) {
	reqID := m.newRequestID()
	if peer == "" {
		_, peers := m.sm.members()
		peer = peers[cc.NodeID]
	}
	cc.Context = mustJSON(confContext{RequestID: reqID, Peer: peer})
	wt := m.newWaiter()
	ok := m.do(r.Context(), func() {
		if m.lead == 0 {
			wt.finish(errNoLeader)
			return
		}
		m.metrics.proposals.Inc()
		if err := m.rn.ProposeConfChange(cc); err != nil {
			m.metrics.proposalsFailed.Inc()
			wt.finish(fmt.Errorf("%w (%v)", errNoLeader, err))
			return
		}
		m.waiters[reqID] = wt
	})
	if !ok {
		writeUnavailable(w, errStopped)
		return
	}
	if err := m.wait(r.Context(), wt); err != nil {
		if errors.Is(err, errTimeout) {
			err = fmt.Errorf("%w (another membership change may be in progress: retry)", err)
		}
		writeUnavailable(w, err)
		return
	}
	cs, _ := m.sm.members()
	writeJSON(w, status, map[string]any{"index": wt.result.index, "voters": cs.Voters, "learners": cs.Learners})
}

// transferRequest is the body of POST /cluster/leader.
type transferRequest struct {
	ID uint64 `json:"id"` // 0: any other voter
}

func (m *member) handleTransfer(w http.ResponseWriter, r *http.Request) {
	var req transferRequest
	if r.ContentLength != 0 {
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, "bad_body", `want {"id": N} or no body: `+err.Error())
			return
		}
	}
	cs, _ := m.sm.members()
	st := m.status.Load()
	if st.Lead == 0 {
		writeUnavailable(w, errNoLeader)
		return
	}
	if req.ID == 0 {
		for _, id := range cs.Voters {
			if id != st.Lead {
				req.ID = id
				break
			}
		}
	}
	if !slices.Contains(cs.Voters, req.ID) {
		writeError(w, http.StatusNotFound, "unknown_member", fmt.Sprintf("member %d is not a voter of the cluster", req.ID))
		return
	}
	if req.ID == st.Lead {
		writeJSON(w, http.StatusOK, map[string]any{"leader": req.ID})
		return
	}
	if !m.do(r.Context(), func() { m.rn.TransferLeader(req.ID) }) {
		writeUnavailable(w, errStopped)
		return
	}
	deadline := time.Now().Add(m.cfg.RequestTimeout)
	for time.Now().Before(deadline) {
		if st := m.status.Load(); st.Lead == req.ID {
			writeJSON(w, http.StatusOK, map[string]any{"leader": req.ID, "term": st.Term})
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	writeUnavailable(w, fmt.Errorf("%w: leadership did not move to %d", errTimeout, req.ID))
}
