package main

import (
	"bytes"
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
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
	"github.com/raftcore/raft/tracker"
)

// apiError is every error response's body.
type apiError struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// methods are one path's handlers by HTTP method.
type methods map[string]http.HandlerFunc

// allowed is the Allow header for the path: its methods, and HEAD where GET
// is.
func (ms methods) allowed() string {
	var names []string
	for name := range ms {
		names = append(names, name)
	}
	if ms[http.MethodGet] != nil {
		names = append(names, http.MethodHead)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// router is the API's routing, by hand rather than with http.ServeMux: a
// key is everything after /kv/ (slashes, dots and all), which the mux would
// clean and redirect, and every answer, 404 and 405 included, is JSON.
// Paths are matched as sent (escaped), so only the key's escapes are
// decoded, once.
type router struct {
	static  map[string]methods // exact paths
	kv      methods            // /kv/{key}
	member  methods            // /cluster/members/{id}
	promote methods            // /cluster/members/{id}/promote
}

func (m *member) routes() http.Handler {
	return &router{
		static: map[string]methods{
			"/cluster":         {http.MethodGet: m.handleCluster},
			"/cluster/members": {http.MethodPost: m.handleAddMember},
			"/cluster/leader":  {http.MethodPost: m.handleTransfer},
			"/status":          {http.MethodGet: m.handleStatus},
			"/metrics":         {http.MethodGet: promhttp.HandlerFor(m.metrics.registry, promhttp.HandlerOpts{}).ServeHTTP},
		},
		kv:      methods{http.MethodPut: m.handlePut, http.MethodGet: m.handleGet, http.MethodDelete: m.handleDelete},
		member:  methods{http.MethodDelete: m.handleRemoveMember},
		promote: methods{http.MethodPost: m.handlePromote},
	}
}

func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ms := rt.match(r)
	if ms == nil {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no route for %s %s", r.Method, r.URL.EscapedPath()))
		return
	}
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	h := ms[method]
	if h == nil {
		w.Header().Set("Allow", ms.allowed())
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed",
			fmt.Sprintf("%s is not allowed on %s; allowed: %s", r.Method, r.URL.EscapedPath(), ms.allowed()))
		return
	}
	h(w, r)
}

// match finds the path's methods and sets its path values ("key", "id").
func (rt *router) match(r *http.Request) methods {
	path := r.URL.EscapedPath()
	if strings.HasPrefix(path, "/kv/") {
		// r.URL.Path is the escaped path decoded once; "/kv/" holds no
		// escape, so what follows it there is the key decoded once.
		r.SetPathValue("key", strings.TrimPrefix(r.URL.Path, "/kv/"))
		return rt.kv
	}
	if ms, ok := rt.static[path]; ok {
		return ms
	}
	rest, ok := strings.CutPrefix(path, "/cluster/members/")
	if !ok {
		return nil
	}
	id, sub, hasSub := strings.Cut(rest, "/")
	if id == "" {
		return nil
	}
	r.SetPathValue("id", id)
	switch {
	case !hasSub:
		return rt.member
	case sub == "promote":
		return rt.promote
	}
	return nil
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

// writeFailure answers a request the cluster did not serve: 410 on a
// member removed from the cluster, otherwise 503 (could not serve now).
func writeFailure(w http.ResponseWriter, err error) {
	status, code := failureStatus(err)
	writeError(w, status, code, err.Error())
}

// failureStatus is the HTTP status and error code answering err.
func failureStatus(err error) (int, string) {
	if errors.Is(err, errRemoved) {
		return http.StatusGone, "member_removed"
	}
	if errors.Is(err, errConfChangeRefused) {
		return http.StatusConflict, "conf_change_refused"
	}
	code := "unavailable"
	switch {
	case errors.Is(err, errNoLeader):
		code = "no_leader"
	case errors.Is(err, errTimeout):
		code = "timeout"
	case errors.Is(err, errStopped):
		code = "shutting_down"
	case errors.Is(err, errFailed):
		code = "member_failed"
	case errors.Is(err, errLeaderChanged):
		code = "leader_changed"
	case errors.Is(err, errProposalLost):
		code = "proposal_lost"
	case errors.Is(err, errSnapshotted):
		code = "outcome_unknown"
	}
	return http.StatusServiceUnavailable, code
}

func (m *member) checkKey(w http.ResponseWriter, key string) bool { return checkKey(w, key, m.cfg) }

// checkKey answers 400 and returns false if key is empty or too long.
func checkKey(w http.ResponseWriter, key string, cfg memberConfig) bool {
	if key == "" || len(key) > cfg.MaxKeySize {
		writeError(w, http.StatusBadRequest, "bad_key", fmt.Sprintf("keys are 1 to %d bytes", cfg.MaxKeySize))
		return false
	}
	return true
}

// readValue reads the body of PUT /kv/{key}; on a value too large or an
// unreadable body it answers (413, 400) and returns false.
func readValue(w http.ResponseWriter, r *http.Request, cfg memberConfig) ([]byte, bool) {
	value, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(cfg.MaxValueSize)))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "value_too_large", fmt.Sprintf("values are at most %d bytes", cfg.MaxValueSize))
			return nil, false
		}
		writeError(w, http.StatusBadRequest, "bad_body", "reading the value: "+err.Error())
		return nil, false
	}
	return value, true
}

func (m *member) handlePut(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if !m.checkKey(w, key) {
		return
	}
	value, ok := readValue(w, r, m.cfg)
	if !ok {
		return
	}
	res, err := m.write(r.Context(), command{Op: opPut, Key: key, Value: value})
	if err != nil {
		writeFailure(w, err)
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
		writeFailure(w, err)
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
			writeFailure(w, err)
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
	if m.removed.Load() {
		return applyResult{}, errRemoved
	}
	c.ID = m.newRequestID()
	data := encodeCommand(c)
	w := m.newWaiter()
	if !m.do(ctx, func() { m.propose(w, c.ID, data) }) {
		return applyResult{}, m.stoppedErr()
	}
	err := m.wait(ctx, w)
	return w.result, err
}

// unserved is why a group (this member's, or a shard) takes no proposal or
// read now: this member was removed from it, or it has no leader; nil if
// it may.
func unserved(removed bool, lead uint64) error {
	if removed {
		return errRemoved
	}
	if lead == 0 {
		return errNoLeader
	}
	return nil
}

// propose proposes a command (data, with request id reqID), on the loop
// goroutine; w is answered when it is applied, or fails.
func (m *member) propose(w *waiter, reqID string, data []byte) {
	if err := unserved(m.removed.Load(), m.lead); err != nil {
		w.finish(err)
		return
	}
	m.metrics.proposals.Inc()
	res, err := m.rn.ProposeWithResult(data)
	if err != nil {
		m.metrics.proposalsFailed.Inc()
		w.finish(fmt.Errorf("%w (%v)", errNoLeader, err))
		return
	}
	m.track(w, reqID, res, m.lead)
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
	case <-m.failedC:
		return errFailed
	case <-t.C:
		return errTimeout
	case <-ctx.Done():
		return errTimeout
	}
}

// linearizableRead returns once the state machine has applied everything
// committed when the read arrived, confirmed by a quorum (ReadIndex).
func (m *member) linearizableRead(ctx context.Context) error {
	if m.removed.Load() {
		return errRemoved
	}
	w := m.newWaiter()
	rctx := m.newRequestID()
	if !m.do(ctx, func() { m.readIndex(w, rctx) }) {
		return m.stoppedErr()
	}
	return m.wait(ctx, w)
}

// readIndex asks for a read index (the request context rctx), on the loop
// goroutine; w is answered once the state machine has applied it, or
// fails.
func (m *member) readIndex(w *waiter, rctx string) {
	if err := unserved(m.removed.Load(), m.lead); err != nil {
		w.finish(err)
		return
	}
	m.metrics.readIndex.Inc()
	m.reads[rctx] = w
	m.rn.ReadIndex([]byte(rctx))
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
	out := []clusterMember{}
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
			cm.Status, cm.Problem = fetchStatus(r.Context(), m.cfg.TLS.statusClient(), m.cfg.TLS.clientURL(cm.Client))
		}()
	}
	wg.Wait()
	voters, learners := memberLists(cs)
	writeJSON(w, http.StatusOK, map[string]any{"leader": self.Lead, "term": self.Term, "voters": voters, "learners": learners, "members": out})
}

func fetchStatus(ctx context.Context, client *http.Client, base string) (*memberStatus, string) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/status", nil)
	resp, err := client.Do(req)
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

// readAddMember decodes and checks the body of POST /cluster/members; on
// a bad one it answers 400 and returns false.
func readAddMember(w http.ResponseWriter, r *http.Request) (addMemberRequest, bool) {
	var req addMemberRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "bad_body", `want {"id": N, "peer": "host:port", "learner": true|false}: `+err.Error())
		return req, false
	}
	if req.ID == 0 {
		writeError(w, http.StatusBadRequest, "bad_id", "member ids are positive integers")
		return req, false
	}
	if _, _, err := net.SplitHostPort(req.Peer); err != nil {
		writeError(w, http.StatusBadRequest, "bad_peer", fmt.Sprintf("peer must be host:port: %v", err))
		return req, false
	}
	return req, true
}

func (m *member) handleAddMember(w http.ResponseWriter, r *http.Request) {
	req, ok := readAddMember(w, r)
	if !ok || !m.catchUp(w, r) {
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

// catchUp waits until this member has applied everything committed when
// the request arrived (a read index), before a membership request is
// checked against its configuration: a member behind the log would
// otherwise propose a change again after a later one (an addition as a
// learner retried after the promotion would demote the voter, a removal
// retried after a re-addition would remove it again). If it cannot catch
// up it answers the failure (503, nothing proposed) and returns false.
func (m *member) catchUp(w http.ResponseWriter, r *http.Request) bool {
	if err := m.linearizableRead(r.Context()); err != nil {
		writeFailure(w, err)
		return false
	}
	return true
}

// memberID reads the member id of the request's path and, once this
// member has caught up (catchUp), checks that it is in the configuration.
func (m *member) memberID(w http.ResponseWriter, r *http.Request) (uint64, pb.ConfState, bool) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || id == 0 {
		writeError(w, http.StatusBadRequest, "bad_id", fmt.Sprintf("member ids are positive integers, not %q", r.PathValue("id")))
		return 0, pb.ConfState{}, false
	}
	if !m.catchUp(w, r) {
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
	if m.removed.Load() {
		writeFailure(w, errRemoved)
		return
	}
	lag, err := m.learnerLag(r.Context(), id)
	if err != nil {
		writeFailure(w, err)
		return
	}
	if !lag.ready() {
		writeJSON(w, http.StatusConflict, struct {
			apiError
			learnerLag
		}{apiError{Error: lag.String(id), Code: "learner_not_ready"}, lag})
		return
	}
	m.changeMembership(w, r, pb.ConfChange{Type: pb.ConfChangeAddNode, NodeID: id}, "", http.StatusOK)
}

// promoteMaxLag is how far, in entries, a learner's log may be behind the
// leader's commit index and still be promoted.
const promoteMaxLag = 100

// learnerLag is what the leader knows of a learner: whether it may be
// promoted, and if not, why. A learner is promoted only if the leader
// streams appends to it (StateReplicate), heard from it within the last
// election timeout (recently active), and its log matches the leader's up
// to at most promoteMaxLag entries before the leader's commit index, so
// that as a voter it can acknowledge new entries at once instead of
// holding up commits (or, with a dead learner, quorum) while it catches
// up.
type learnerLag struct {
	Match        uint64 `json:"match"`             // the learner's log matches the leader's up to here
	LeaderCommit uint64 `json:"leader_commit"`     // the leader's commit index
	LeaderLast   uint64 `json:"leader_last_index"` // the leader's last index
	MaxLag       uint64 `json:"max_lag"`           // promoteMaxLag
	State        string `json:"state"`             // the leader's progress state for the learner
	RecentActive bool   `json:"recent_active"`
}

func learnerLagOf(lead *memberStatus, id uint64) learnerLag {
	pr, ok := lead.Progress[id]
	if !ok {
		pr.State = "unknown to the leader"
	}
	return learnerLag{
		Match: pr.Match, LeaderCommit: lead.Commit, LeaderLast: lead.Progress[lead.ID].Match,
		MaxLag: promoteMaxLag, State: pr.State, RecentActive: pr.RecentActive,
	}
}

func (l learnerLag) ready() bool {
	return l.State == tracker.StateReplicate.String() && l.RecentActive && l.Match+l.MaxLag >= l.LeaderCommit
}

func (l learnerLag) String(id uint64) string {
	return fmt.Sprintf("member %d is not ready to be promoted: its log matches the leader's up to index %d, "+
		"the leader's commit index is %d and last index %d (a learner may be at most %d entries behind the commit index), "+
		"the leader's progress state for it is %s, recently active %t: retry once it has caught up",
		id, l.Match, l.LeaderCommit, l.LeaderLast, l.MaxLag, l.State, l.RecentActive)
}

// learnerLag asks the leader how far behind learner id is. The leader
// clears every member's RecentActive at the start of each election timeout
// and sets it again at the member's next response, so one look may catch a
// live learner inactive: until the learner is ready, look again each tick
// for up to two election timeouts.
func (m *member) learnerLag(ctx context.Context, id uint64) (learnerLag, error) {
	deadline := time.Now().Add(2 * electionTick * m.cfg.TickInterval)
	for {
		lead, err := m.leaderStatus(ctx)
		if err != nil {
			return learnerLag{}, err
		}
		lag := learnerLagOf(lead, id)
		if lag.ready() || time.Now().After(deadline) {
			return lag, nil
		}
		select {
		case <-ctx.Done():
			return learnerLag{}, errTimeout
		case <-time.After(m.cfg.TickInterval):
		}
	}
}

// leaderStatus is the leader's status with its progress of every member:
// this member's own if it leads, otherwise asked of the leader over HTTP.
func (m *member) leaderStatus(ctx context.Context) (*memberStatus, error) {
	self := m.status.Load()
	if self.Lead == 0 {
		return nil, errNoLeader
	}
	st := self
	if self.Lead != m.cfg.ID {
		addr := m.tr.peerClients()[self.Lead]
		if addr == "" {
			return nil, fmt.Errorf("%w: the leader's client address is not known here yet", errNoLeader)
		}
		var problem string
		if st, problem = fetchStatus(ctx, m.cfg.TLS.statusClient(), m.cfg.TLS.clientURL(addr)); st == nil {
			return nil, fmt.Errorf("%w: asking the leader, member %d: %s", errNoLeader, self.Lead, problem)
		}
	}
	if st.ID != self.Lead || st.State != raft.StateLeader.String() {
		return nil, fmt.Errorf("%w: member %d no longer leads", errLeaderChanged, self.Lead)
	}
	return st, nil
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

// errConfChangeRefused: the leader refused a membership change that is not
// safe now (another is still being applied, …); retry after it.
var errConfChangeRefused = errors.New("the leader refused the membership change")

// confChangeFailure says why proposing a membership change failed: a
// refusal by the leader (409, with the library's reason) or no leader to
// take it (503).
func confChangeFailure(err error) error {
	if errors.Is(err, raft.ErrProposalConfChangeRefused) {
		return fmt.Errorf("%w: %v", errConfChangeRefused, err)
	}
	return fmt.Errorf("%w (%v)", errNoLeader, err)
}

// changeMembership proposes cc and answers once it is applied here.
func (m *member) changeMembership(w http.ResponseWriter, r *http.Request, cc pb.ConfChange, peer string, status int) {
	if m.removed.Load() {
		writeFailure(w, errRemoved)
		return
	}
	reqID := m.newRequestID()
	if peer == "" {
		_, peers := m.sm.members()
		peer = peers[cc.NodeID]
	}
	cc.Context = mustJSON(confContext{RequestID: reqID, Peer: peer})
	wt := m.newWaiter()
	ok := m.do(r.Context(), func() { m.proposeConfChange(wt, reqID, cc) })
	if !ok {
		writeFailure(w, m.stoppedErr())
		return
	}
	if err := m.wait(r.Context(), wt); err != nil {
		if errors.Is(err, errTimeout) {
			err = fmt.Errorf("%w (another membership change may be in progress: retry)", err)
		}
		writeFailure(w, err)
		return
	}
	cs, _ := m.sm.members()
	voters, learners := memberLists(cs)
	writeJSON(w, status, map[string]any{"index": wt.result.index, "voters": voters, "learners": learners})
}

// proposeConfChange proposes cc, whose context names request reqID, on
// the loop; wt finishes when it is applied or fails.
func (m *member) proposeConfChange(wt *waiter, reqID string, cc pb.ConfChange) {
	if err := unserved(m.removed.Load(), m.lead); err != nil {
		wt.finish(err)
		return
	}
	m.metrics.proposals.Inc()
	res, err := m.rn.ProposeConfChangeWithResult(cc)
	if err != nil {
		m.metrics.proposalsFailed.Inc()
		wt.finish(confChangeFailure(err))
		return
	}
	m.track(wt, reqID, res, m.lead)
}

// memberLists returns the configuration's voters and learners, never nil:
// an empty list is [] in JSON, not null.
func memberLists(cs pb.ConfState) (voters, learners []uint64) {
	return append([]uint64{}, cs.Voters...), append([]uint64{}, cs.Learners...)
}

// transferRequest is the body of POST /cluster/leader.
type transferRequest struct {
	ID uint64 `json:"id"` // 0: any other voter
}

// readTransfer decodes the body of POST /cluster/leader (none: ID 0); on a
// bad one it answers 400, and on a member removed 410, and returns false.
func readTransfer(w http.ResponseWriter, r *http.Request, removed bool) (transferRequest, bool) {
	var req transferRequest
	if removed {
		writeFailure(w, errRemoved)
		return req, false
	}
	if r.ContentLength != 0 {
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, "bad_body", `want {"id": N} or no body: `+err.Error())
			return req, false
		}
	}
	return req, true
}

func (m *member) handleTransfer(w http.ResponseWriter, r *http.Request) {
	req, ok := readTransfer(w, r, m.removed.Load())
	if !ok {
		return
	}
	cs, _ := m.sm.members()
	st := m.status.Load()
	if st.Lead == 0 {
		writeFailure(w, errNoLeader)
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
		writeFailure(w, m.stoppedErr())
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
	writeFailure(w, fmt.Errorf("%w: leadership did not move to %d", errTimeout, req.ID))
}

// jsonServerErrors wraps the client listener so that the errors Go's HTTP
// server answers by itself, before any handler runs (a request line that
// does not parse, such as PUT /kv/%zz; headers too large; an unsupported
// transfer encoding), are JSON like every other error. The server writes
// those in one Write straight to the connection, as a response of a fixed
// shape (a status line, Content-Type text/plain, Connection: close, the
// status as the body) that a handler's response, which always carries a
// Date, never has.
type jsonServerErrors struct{ net.Listener }

func (l jsonServerErrors) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &jsonErrorConn{Conn: c}, nil
}

type jsonErrorConn struct{ net.Conn }

func (c *jsonErrorConn) Write(b []byte) (int, error) {
	status, text, ok := parseServerError(b)
	if !ok {
		return c.Conn.Write(b)
	}
	if _, err := c.Conn.Write(serverErrorAsJSON(status, text)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// CloseWrite lets the server half-close the connection as it would the
// TCP connection underneath.
func (c *jsonErrorConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

const serverErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// parseServerError recognizes a response written by the HTTP server
// itself: its status code and body text.
func parseServerError(b []byte) (int, string, bool) {
	rest, ok := bytes.CutPrefix(b, []byte("HTTP/1.1 "))
	if !ok {
		return 0, "", false
	}
	line, body, ok := bytes.Cut(rest, []byte(serverErrorHeaders))
	if !ok || len(line) < 3 || bytes.Contains(line, []byte("\r\n")) {
		return 0, "", false
	}
	status, err := strconv.Atoi(string(line[:3]))
	if err != nil || status < 400 || status > 599 {
		return 0, "", false
	}
	return status, string(body), true
}

// serverErrorAsJSON is the whole response replacing the server's: the
// same status, closing the connection as the server does, a JSON error
// whose code is the status text in snake case ("bad_request").
func serverErrorAsJSON(status int, text string) []byte {
	code := strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", "_")
	msg := "the HTTP server refused the request: " + text
	if status == http.StatusBadRequest {
		msg += " (a malformed request: in a path, % must start a %XX escape)"
	}
	body, _ := json.Marshal(apiError{Error: msg, Code: code})
	return fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s\n",
		status, http.StatusText(status), len(body)+1, body)
}
