package raft

import (
	"context"
	"errors"

	pb "github.com/raftcore/raft/raftpb"
)

// ProposalResult says where a proposal went.
//
// On the leader it was appended at (Index, Term): the proposal is committed
// when an entry with that index and that term is; if the entry applied at
// Index has another term, the proposal was overwritten after a leader change
// and is lost (retry it). On a follower it was forwarded to Leader and its
// place is not known yet (Forwarded; Index and Term are 0): the follower
// looks for its entry among those the leader sends, and
// RawNode.ForwardedOutcomes reports, under ForwardID, where it was
// appended, or that this is not known.
type ProposalResult struct {
	Index, Term uint64
	Forwarded   bool
	Leader      uint64
	// ForwardID names a forwarded proposal in RawNode.ForwardedOutcomes
	// (or ForwardedOutcomes, for a Node); 0 on the leader.
	ForwardID uint64
}

// ProposeWithResult proposes data, like Propose, and says where the
// proposal went. The error is Propose's: one of the ErrProposal… reasons,
// each matching ErrProposalDropped. A forwarded proposal is looked for by
// its bytes: do not modify data until its outcome is known.
func (rn *RawNode) ProposeWithResult(data []byte) (ProposalResult, error) {
	return rn.proposeWithResult(pb.Entry{Data: data})
}

// ProposeConfChangeWithResult proposes a configuration change, like
// ProposeConfChange, and says where the proposal went.
func (rn *RawNode) ProposeConfChangeWithResult(cc pb.ConfChangeI) (ProposalResult, error) {
	typ, data, err := pb.MarshalConfChange(cc)
	if err != nil {
		return ProposalResult{}, err
	}
	return rn.proposeWithResult(pb.Entry{Type: typ, Data: data})
}

func (rn *RawNode) proposeWithResult(e pb.Entry) (ProposalResult, error) {
	r := rn.raft
	if err := r.Step(pb.Message{Type: pb.MsgProp, From: r.id, Entries: []pb.Entry{e}}); err != nil {
		return ProposalResult{}, err
	}
	res := rn.proposalResult()
	if res.Forwarded {
		res.ForwardID = r.watchForwarded(e)
	}
	return res, nil
}

// proposalResult says where the one-entry proposal just taken went.
func (rn *RawNode) proposalResult() ProposalResult {
	r := rn.raft
	if r.state != StateLeader {
		return ProposalResult{Forwarded: true, Leader: r.lead}
	}
	// The leader appended the entry at the end of its log.
	last := r.raftLog.lastEntryID()
	return ProposalResult{Index: last.index, Term: last.term, Leader: r.id}
}

// errNotOwnNode is returned by ProposeWithResult for a Node it cannot see
// into.
var errNotOwnNode = errors.New("raft: ProposeWithResult and ForwardedOutcomes need a Node made by StartNode or RestartNode")

// ProposeWithResult proposes data through n, like n.Propose (waiting for a
// leader, until ctx is done), and says where the proposal went, as
// RawNode.ProposeWithResult does. n must come from StartNode or
// RestartNode. (Node's method set is etcd raft's, so this is a function.)
func ProposeWithResult(ctx context.Context, n Node, data []byte) (ProposalResult, error) {
	nd, ok := n.(*node)
	if !ok {
		return ProposalResult{}, errNotOwnNode
	}
	var where ProposalResult
	req := stepRequest{m: pb.Message{Type: pb.MsgProp, Entries: []pb.Entry{{Data: data}}}, local: true, where: &where}
	if err := nd.submitRequest(ctx, nd.propc, req, true); err != nil {
		return ProposalResult{}, err
	}
	return where, nil
}

// ForwardedOutcomes is RawNode.ForwardedOutcomes for a Node made by
// StartNode or RestartNode: what it learned, since the last call, of the
// proposals it forwarded through ProposeWithResult (named by their
// ProposalResult.ForwardID). It returns ctx's error if ctx is done first,
// and nothing once the node has stopped.
func ForwardedOutcomes(ctx context.Context, n Node) ([]ForwardedOutcome, error) {
	nd, ok := n.(*node)
	if !ok {
		return nil, errNotOwnNode
	}
	c := make(chan []ForwardedOutcome, 1)
	select {
	case nd.forwardc <- c:
		return <-c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-nd.done:
		return nil, nil
	}
}
