package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/raftcore/raft"
	pb "github.com/raftcore/raft/raftpb"
)

// Membership changes with --shards above 1 (leader transfer:
// sharded_transfer.go). Every member hosts every shard, so a member is
// added to, promoted in and removed from every shard: one request proposes
// the same conf change to each shard (a shard whose leader is another
// member forwards the proposal to it, as the single group does), waits
// until each shard has applied it here, and answers with what each shard
// did: "applied", "already" (the shard's configuration had the change:
// re-issuing a request that failed on some shards completes the others)
// or "failed" with the reason.
//
// The shards' configurations stay equal only as far as every request
// reaches every shard: after a partial failure they differ until the
// request is re-issued. GET /cluster shows, for each member, how many
// shards it is a voter and a learner of.

// shardOutcome is what one shard did with a request.
type shardOutcome struct {
	Shard  uint64      `json:"shard"`
	Result string      `json:"result"` // see the result constants
	Index  uint64      `json:"index,omitempty"`
	Leader uint64      `json:"leader,omitempty"` // a transfer's new leader
	Code   string      `json:"code,omitempty"`
	Error  string      `json:"error,omitempty"`
	Lag    *learnerLag `json:"lag,omitempty"` // a promotion refused: how far behind the learner is
	status int         // a failure's HTTP status
}

// The results of a shard in a report.
const (
	resultApplied = "applied" // the change was applied here (a transfer: leadership moved)
	resultAlready = "already" // the shard had the change before the request
	resultFailed  = "failed"
	// resultSkipped: the shard could take the change, but another shard
	// refused it (a promotion waits until every shard's learner is ready).
	resultSkipped = "skipped"
)

// reportFailures is how many failed shards a report lists.
const reportFailures = 8

// shardReport answers a request made of every shard.
type shardReport struct {
	Error   string `json:"error,omitempty"`
	Code    string `json:"code,omitempty"`
	Shards  int    `json:"shards"` // the shards the request concerned
	Applied int    `json:"applied"`
	Already int    `json:"already"`
	Failed  int    `json:"failed"`
	Skipped int    `json:"skipped,omitempty"`
	// Results are every shard's, when there are at most statusListAll
	// (?shards=all: always); Failures the first reportFailures failed.
	Results  []shardOutcome `json:"results,omitempty"`
	Failures []shardOutcome `json:"failures,omitempty"`
}

// errAlready: the shard's configuration already has the change.
var errAlready = errors.New("the shard already has the change")

// shardRefusal is a shard's refusal of a change, with its status and code.
type shardRefusal struct {
	status int
	code   string
	msg    string
}

func (e *shardRefusal) Error() string { return e.msg }

func failedOutcome(shard uint64, err error) shardOutcome {
	status, code := failureStatus(err)
	var ref *shardRefusal
	if errors.As(err, &ref) {
		status, code = ref.status, ref.code
	}
	return shardOutcome{Shard: shard, Result: resultFailed, Code: code, Error: err.Error(), status: status}
}

func outcomeOf(shard uint64, w *waiter, err error) shardOutcome {
	switch {
	case err == nil:
		return shardOutcome{Shard: shard, Result: resultApplied, Index: w.result.index}
	case errors.Is(err, errAlready):
		return shardOutcome{Shard: shard, Result: resultAlready}
	}
	return failedOutcome(shard, err)
}

// writeShardReport answers with outs: okStatus if no shard failed (200
// rather than 201 when none applied anything), else the first failure's
// status and code.
func writeShardReport(w http.ResponseWriter, r *http.Request, okStatus int, what string, outs []shardOutcome) {
	rep := shardReport{Shards: len(outs)}
	var first *shardOutcome
	for i := range outs {
		o := &outs[i]
		switch o.Result {
		case resultApplied:
			rep.Applied++
		case resultAlready:
			rep.Already++
		case resultSkipped:
			rep.Skipped++
		case resultFailed:
			rep.Failed++
			if len(rep.Failures) < reportFailures {
				rep.Failures = append(rep.Failures, *o)
			}
			if first == nil {
				first = o
			}
		}
	}
	if len(outs) <= statusListAll || r.URL.Query().Get("shards") == "all" {
		rep.Results = outs
	}
	status := okStatus
	if status == http.StatusCreated && rep.Applied == 0 {
		status = http.StatusOK
	}
	if first != nil {
		status, rep.Code = first.status, first.Code
		rep.Error = fmt.Sprintf("%s: %d of %d shards failed (first: shard %d: %s); retry: shards that have the change already say so",
			what, rep.Failed, len(outs), first.Shard, first.Error)
	}
	writeJSON(w, status, rep)
}

// memberConfs parses the request's member id and returns each shard's
// configuration; it answers 404 if no shard holds the member, and 410 if
// this member was removed.
func (m *shardedMember) memberConfs(w http.ResponseWriter, r *http.Request) (uint64, []pb.ConfState, bool) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || id == 0 {
		writeError(w, http.StatusBadRequest, "bad_id", fmt.Sprintf("member ids are positive integers, not %q", r.PathValue("id")))
		return 0, nil, false
	}
	confs := make([]pb.ConfState, m.n)
	known := false
	for i, s := range m.shards {
		confs[i] = s.sm.confState()
		known = known || inConfig(id, confs[i])
	}
	if !known {
		writeError(w, http.StatusNotFound, "unknown_member", fmt.Sprintf("member %d is in no shard's configuration", id))
		return 0, nil, false
	}
	if m.removed.Load() {
		writeFailure(w, errRemoved)
		return 0, nil, false
	}
	return id, confs, true
}

func (m *shardedMember) handleAddMember(w http.ResponseWriter, r *http.Request) {
	if m.removed.Load() {
		writeFailure(w, errRemoved)
		return
	}
	req, ok := readAddMember(w, r)
	if !ok {
		return
	}
	typ := pb.ConfChangeAddNode
	if req.Learner {
		typ = pb.ConfChangeAddLearnerNode
	} else if n := m.learnerOf(req.ID); n > 0 {
		// Adding it as a voter would promote it without the checks of
		// a promotion.
		writeError(w, http.StatusConflict, "member_is_learner",
			fmt.Sprintf("member %d is a learner of %d shards: promote it (POST /cluster/members/%d/promote)", req.ID, n, req.ID))
		return
	}
	m.changeEveryShard(w, r, pb.ConfChange{Type: typ, NodeID: req.ID}, req.Peer, http.StatusCreated, fmt.Sprintf("adding member %d", req.ID))
}

// learnerOf counts the shards whose configuration holds member id as a
// learner.
func (m *shardedMember) learnerOf(id uint64) int {
	n := 0
	for _, s := range m.shards {
		if slices.Contains(s.sm.confState().Learners, id) {
			n++
		}
	}
	return n
}

func (m *shardedMember) handleRemoveMember(w http.ResponseWriter, r *http.Request) {
	id, _, ok := m.memberConfs(w, r)
	if !ok {
		return
	}
	m.changeEveryShard(w, r, pb.ConfChange{Type: pb.ConfChangeRemoveNode, NodeID: id}, "", http.StatusOK, fmt.Sprintf("removing member %d", id))
}

// handlePromote promotes a learner in every shard, once it is ready in
// every shard where it is a learner (see learnerLag); otherwise it
// proposes nothing and answers 409 learner_not_ready with each lagging
// shard's lag.
func (m *shardedMember) handlePromote(w http.ResponseWriter, r *http.Request) {
	id, confs, ok := m.memberConfs(w, r)
	if !ok {
		return
	}
	var learnerOf []uint64
	for i, cs := range confs {
		if slices.Contains(cs.Learners, id) {
			learnerOf = append(learnerOf, uint64(i+1))
		}
	}
	lags, errs := m.learnerLags(r.Context(), id, learnerOf)
	what := fmt.Sprintf("promoting member %d", id)
	outs := make([]shardOutcome, m.n)
	refused := false
	for i, cs := range confs {
		shard := uint64(i + 1)
		outs[i] = shardOutcome{Shard: shard, Result: resultSkipped}
		switch lag, isLearner := lags[shard]; {
		case slices.Contains(cs.Voters, id):
			outs[i].Result = resultAlready
		case errs[shard] != nil:
			outs[i], refused = failedOutcome(shard, errs[shard]), true
		case !isLearner:
			outs[i] = failedOutcome(shard, &shardRefusal{http.StatusConflict, "unknown_member",
				fmt.Sprintf("member %d is not in shard %d as this member has applied it: add it again (POST /cluster/members), or retry if it was just added", id, shard)})
			refused = true
		case !lag.ready():
			outs[i] = failedOutcome(shard, &shardRefusal{http.StatusConflict, "learner_not_ready", lag.String(id)})
			outs[i].Lag, refused = &lag, true
		}
	}
	if refused {
		writeShardReport(w, r, http.StatusOK, what, outs)
		return
	}
	m.changeEveryShard(w, r, pb.ConfChange{Type: pb.ConfChangeAddNode, NodeID: id}, "", http.StatusOK, what)
}

// changeEveryShard proposes cc (with peer, the address of a member it
// adds) to every shard and answers with what each did.
//
// Whether a shard has the change already is decided on this member's
// configuration of the shard, so it first catches up with each shard (a
// read index: it waits until it has applied everything the shard had
// committed when asked). Otherwise a member behind its shard's log could
// propose a change again after a later one: an addition as a learner re-sent
// after the promotion would demote the voter.
func (m *shardedMember) changeEveryShard(w http.ResponseWriter, r *http.Request, cc pb.ConfChange, peer string, okStatus int, what string) {
	caughtUp := make([]*waiter, m.n)
	for i := range caughtUp {
		caughtUp[i] = m.newWaiter()
	}
	rctx := m.newRequestID()
	if !m.do(r.Context(), func() {
		for i, s := range m.shards {
			m.readIndex(s, caughtUp[i], rctx)
		}
	}) {
		writeFailure(w, m.stoppedErr())
		return
	}
	barrier := m.waitErrs(r.Context(), caughtUp)
	reqID := m.newRequestID()
	cc.Context = mustJSON(confContext{RequestID: reqID, Peer: peer})
	ws := make([]*waiter, m.n)
	for i := range ws {
		ws[i] = m.newWaiter()
		if barrier[i] != nil {
			ws[i].finish(barrier[i])
		}
	}
	if !m.do(r.Context(), func() {
		for i, s := range m.shards {
			if barrier[i] == nil {
				m.proposeConfChange(s, ws[i], reqID, cc)
			}
		}
	}) {
		writeFailure(w, m.stoppedErr())
		return
	}
	errs := m.waitErrs(r.Context(), ws)
	outs := make([]shardOutcome, m.n)
	for i, err := range errs {
		outs[i] = outcomeOf(uint64(i+1), ws[i], err)
	}
	writeShardReport(w, r, okStatus, what, outs)
}

// proposeConfChange proposes cc to shard s unless its configuration has it
// already, on the loop goroutine; w is answered when s applies it here,
// or as soon as the entry the shard's leader appended it as is replaced
// (proposal_lost), as a write is (proposals.go).
func (m *shardedMember) proposeConfChange(s *shard, w *waiter, reqID string, cc pb.ConfChange) {
	if s.removed {
		w.finish(errRemoved)
		return
	}
	if err := checkConfChange(s.id, s.sm.confState(), cc); err != nil {
		w.finish(err)
		return
	}
	if s.lead == 0 {
		w.finish(errNoLeader)
		return
	}
	m.metrics.proposals.Inc()
	res, err := m.host.ProposeConfChangeWithResult(s.id, cc)
	if err != nil {
		m.metrics.proposalsFailed.Inc()
		w.finish(confChangeFailure(err))
		return
	}
	s.track(w, reqID, res, s.lead)
	m.waiting[s.id] = s
}

// checkConfChange says whether configuration cs of shard has cc already
// (errAlready) or cannot take it.
func checkConfChange(shard uint64, cs pb.ConfState, cc pb.ConfChange) error {
	id := cc.NodeID
	switch cc.Type {
	case pb.ConfChangeAddNode:
		if slices.Contains(cs.Voters, id) {
			return errAlready
		}
	case pb.ConfChangeAddLearnerNode:
		if slices.Contains(cs.Voters, id) || slices.Contains(cs.Learners, id) {
			return errAlready
		}
	case pb.ConfChangeRemoveNode:
		if !inConfig(id, cs) {
			return errAlready
		}
		if slices.Equal(cs.Voters, []uint64{id}) {
			return &shardRefusal{http.StatusConflict, "last_voter", fmt.Sprintf("member %d is the last voter of shard %d", id, shard)}
		}
	}
	return nil
}

// waitErrs waits, up to the request timeout, for every shard's waiter,
// and returns what each was answered.
func (m *shardedMember) waitErrs(ctx context.Context, ws []*waiter) []error {
	t := time.NewTimer(m.cfg.RequestTimeout)
	defer t.Stop()
	out := make([]error, len(ws))
	var gaveUp error
	for i, w := range ws {
		if gaveUp == nil {
			select {
			case out[i] = <-w.done:
				continue
			case <-m.failedC:
				gaveUp = errFailed
			case <-t.C:
				gaveUp = fmt.Errorf("%w (another membership change may be in progress: retry)", errTimeout)
			case <-ctx.Done():
				gaveUp = errTimeout
			}
		}
		select {
		case out[i] = <-w.done:
		default:
			out[i] = gaveUp
		}
	}
	return out
}

// learnerLags is how far behind learner id is in each of shards, as their
// leaders know: this member's own view for the shards it leads, the
// others' leaders asked over HTTP (GET /cluster/members/{id}). As
// member.learnerLag does, it looks again each tick for up to two election
// timeouts while some shard's learner is not ready.
func (m *shardedMember) learnerLags(ctx context.Context, id uint64, shards []uint64) (map[uint64]learnerLag, map[uint64]error) {
	deadline := time.Now().Add(2 * electionTick * m.cfg.TickInterval)
	for {
		lags, errs := m.learnerLagsOnce(ctx, id, shards)
		ready := len(errs) == 0
		for _, l := range lags {
			ready = ready && l.ready()
		}
		if ready || time.Now().After(deadline) {
			return lags, errs
		}
		select {
		case <-ctx.Done():
			return lags, errs
		case <-time.After(m.cfg.TickInterval):
		}
	}
}

func (m *shardedMember) learnerLagsOnce(ctx context.Context, id uint64, shards []uint64) (map[uint64]learnerLag, map[uint64]error) {
	lags, errs := map[uint64]learnerLag{}, map[uint64]error{}
	var local map[uint64]learnerLag
	leads := map[uint64]uint64{}
	if !m.call(ctx, func() {
		local = m.ledLags(id)
		for _, sh := range shards {
			leads[sh] = m.shards[sh-1].lead
		}
	}) {
		for _, sh := range shards {
			errs[sh] = m.stoppedErr()
		}
		return lags, errs
	}
	remote := map[uint64]map[uint64]learnerLag{}
	problems := map[uint64]string{}
	clients := m.tr.peerClients()
	var ask []uint64
	for _, lead := range leads {
		if _, seen := remote[lead]; seen || lead == 0 || lead == m.cfg.ID {
			continue
		}
		remote[lead] = nil
		if clients[lead] == "" {
			problems[lead] = "its client address is not known here yet"
			continue
		}
		ask = append(ask, lead)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, lead := range ask {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := fetchLags(ctx, m.cfg.TLS.statusClient(), m.cfg.TLS.clientURL(clients[lead]), id)
			mu.Lock()
			defer mu.Unlock()
			remote[lead] = got
			if err != nil {
				problems[lead] = err.Error()
			}
		}()
	}
	wg.Wait()
	for _, sh := range shards {
		lead := leads[sh]
		from := remote[lead]
		switch {
		case lead == 0:
			errs[sh] = errNoLeader
			continue
		case lead == m.cfg.ID:
			from = local
		case problems[lead] != "":
			errs[sh] = fmt.Errorf("%w: asking shard %d's leader, member %d: %s", errNoLeader, sh, lead, problems[lead])
			continue
		}
		lag, ok := from[sh]
		if !ok {
			lag = learnerLag{MaxLag: promoteMaxLag, State: "unknown to the leader"}
		}
		lags[sh] = lag
	}
	return lags, errs
}

// ledLags is how far behind member id is in each shard this member leads
// and whose configuration holds it; on the loop goroutine.
func (m *shardedMember) ledLags(id uint64) map[uint64]learnerLag {
	out := map[uint64]learnerLag{}
	for _, s := range m.shards {
		if s.state != raft.StateLeader {
			continue
		}
		st, err := m.host.Status(s.id)
		if err != nil || st.RaftState != raft.StateLeader {
			continue
		}
		if _, ok := st.Progress[id]; ok {
			out[s.id] = lagFromStatus(st, id)
		}
	}
	return out
}

// lagFromStatus is learner id's lag as leader status st shows it.
func lagFromStatus(st raft.Status, id uint64) learnerLag {
	pr := st.Progress[id]
	return learnerLag{
		Match: pr.Match, LeaderCommit: st.Commit, LeaderLast: st.Progress[st.ID].Match,
		MaxLag: promoteMaxLag, State: pr.State.String(), RecentActive: pr.RecentActive,
	}
}

// memberLags is GET /cluster/members/{id} of a sharded member: how far
// behind member id is in each shard this member leads.
type memberLags struct {
	ID     uint64                `json:"id"`
	Leader uint64                `json:"leader"` // this member
	Lags   map[uint64]learnerLag `json:"lags"`   // by shard
}

func (m *shardedMember) handleMemberLags(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || id == 0 {
		writeError(w, http.StatusBadRequest, "bad_id", fmt.Sprintf("member ids are positive integers, not %q", r.PathValue("id")))
		return
	}
	var lags map[uint64]learnerLag
	if !m.call(r.Context(), func() { lags = m.ledLags(id) }) {
		writeFailure(w, m.stoppedErr())
		return
	}
	writeJSON(w, http.StatusOK, memberLags{ID: id, Leader: m.cfg.ID, Lags: lags})
}

func fetchLags(ctx context.Context, client *http.Client, base string, id uint64) (map[uint64]learnerLag, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprint(base, "/cluster/members/", id), nil)
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /cluster/members/%d: %s", id, resp.Status)
	}
	var ml memberLags
	if err := json.NewDecoder(resp.Body).Decode(&ml); err != nil {
		return nil, err
	}
	return ml.Lags, nil
}
