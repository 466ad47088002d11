package raft

import (
	"bytes"
	"hash/maphash"

	pb "github.com/raftcore/raft/raftpb"
)

// ForwardedOutcome is what a follower learned about a proposal it
// forwarded with ProposeWithResult (named by ProposalResult.ForwardID).
//
// Appended (Unknown false): the leader of Term appended, at Index, an entry
// whose type and data are exactly the proposal's, after this node
// forwarded it; this node saw that entry arrive from a leader. Wait for it
// as for a proposal made on the leader: the proposal is committed when the
// entry applied at Index has Term, and lost when it has another term.
// Entries are told apart by their bytes only, so this holds for the
// proposal itself only if no other proposal carries the same bytes (put a
// request id in the data); with identical bytes it may be another copy.
// It also assumes the transport delivers a message at most once: a
// forwarded proposal delivered twice could be appended twice.
//
// Unknown: the entry did not show up while this node was looking (see
// RawNode.ForwardedOutcomes). The proposal may have been dropped (a leader
// that refused it says nothing to followers), may still be in flight, or
// may have been appended where this node did not see it (a snapshot
// covered it, or a leader that never reached this node appended it): it
// may still commit. Fall back on what the application can see, such as a
// request id in the state machine, or report the outcome as unknown. A
// forwarded proposal is never reported lost without an entry of the same
// index and another term having been applied: Raft's messages do not let a
// follower learn more.
type ForwardedOutcome struct {
	ForwardID   uint64
	Index, Term uint64
	Unknown     bool
}

// forwardedWatchElections is how long, in election timeouts, a follower
// looks for the entry of a proposal it forwarded: long enough for a leader
// change (noticing the old leader gone, electing a new one, which brings
// this node's log up to date) to pass.
const forwardedWatchElections = 4

// maxForwardedWatched bounds the forwarded proposals a node looks for at
// once; past it, the oldest is given up (Unknown).
const maxForwardedWatched = 4096

// forwardedProposal is a proposal a follower forwarded and looks for.
type forwardedProposal struct {
	id   uint64
	term uint64 // the term it was forwarded in: no leader of an earlier term can append it
	at   uint64 // raft.ticks when it was forwarded
	typ  pb.EntryType
	data []byte
	hash uint64
	done bool
}

// forwardedProposals is a follower's watch over the proposals it forwarded
// (ProposeWithResult only: Propose, as in etcd raft, is not watched). It
// exists once the first one is forwarded, so nodes that never use it pay
// nothing.
type forwardedProposals struct {
	seed   maphash.Seed
	nextID uint64
	// order holds the proposals watched, oldest first (ticks never
	// decrease); found ones are removed lazily.
	order  []*forwardedProposal
	byHash map[uint64][]*forwardedProposal
	// watched is the number of proposals in order not yet resolved.
	watched  int
	outcomes []ForwardedOutcome
}

// watchForwarded starts looking for the one-entry proposal e, just
// forwarded by a follower, and returns its ForwardID.
func (r *raft) watchForwarded(e pb.Entry) uint64 {
	f := r.forwarded()
	if f == nil {
		f = &forwardedProposals{seed: maphash.MakeSeed(), byHash: map[uint64][]*forwardedProposal{}}
		r.rare().forwarded = f
	}
	f.expire(r.ticks, r.forwardedWindow())
	if f.watched >= maxForwardedWatched {
		f.giveUpOldest()
	}
	f.nextID++
	if len(e.Data) == 0 {
		// An empty proposal looks like the empty entry every new leader
		// appends (and a leader's own leave of a joint configuration,
		// for an empty conf change): a match could be that entry, so
		// none is looked for and the outcome is unknown at once.
		f.outcomes = append(f.outcomes, ForwardedOutcome{ForwardID: f.nextID, Unknown: true})
		f.trimOutcomes()
		return f.nextID
	}
	p := &forwardedProposal{id: f.nextID, term: r.Term, at: r.ticks, typ: e.Type, data: e.Data, hash: maphash.Bytes(f.seed, e.Data)}
	f.order = append(f.order, p)
	f.byHash[p.hash] = append(f.byHash[p.hash], p)
	f.watched++
	return p.id
}

// forwardedWindow is how many ticks a forwarded proposal is looked for.
func (r *raft) forwardedWindow() uint64 {
	return uint64(forwardedWatchElections) * uint64(r.electionTimeout)
}

// noteAppended looks for watched proposals among entries a leader sent and
// this follower accepted. Each entry is an entry of the log of the leader
// of its term, at its index, so a match says where the proposal was
// appended. It is small enough to inline: a node that watches nothing
// pays a nil check.
func (f *forwardedProposals) noteAppended(ents []pb.Entry) {
	if f != nil && f.watched > 0 {
		f.match(ents)
	}
}

func (f *forwardedProposals) match(ents []pb.Entry) {
	for i := range ents {
		e := &ents[i]
		h := maphash.Bytes(f.seed, e.Data)
		cands := f.byHash[h]
		for j, p := range cands {
			if p.typ != e.Type || p.term > e.Term || !bytes.Equal(p.data, e.Data) {
				continue
			}
			f.resolve(p, ForwardedOutcome{ForwardID: p.id, Index: e.Index, Term: e.Term})
			f.byHash[h] = append(cands[:j:j], cands[j+1:]...)
			if len(f.byHash[h]) == 0 {
				delete(f.byHash, h)
			}
			if f.watched == 0 {
				return
			}
			break
		}
	}
}

// expire gives up, as Unknown, the proposals looked for window ticks or
// more, and drops found ones from the front of order.
func (f *forwardedProposals) expire(now, window uint64) {
	for len(f.order) > 0 {
		p := f.order[0]
		if !p.done && now-p.at < window {
			return
		}
		if !p.done {
			f.giveUp(p)
		}
		f.order[0] = nil
		f.order = f.order[1:]
	}
}

// giveUpOldest gives up the oldest proposal still looked for.
func (f *forwardedProposals) giveUpOldest() {
	for _, p := range f.order {
		if !p.done {
			f.giveUp(p)
			return
		}
	}
}

func (f *forwardedProposals) giveUp(p *forwardedProposal) {
	f.resolve(p, ForwardedOutcome{ForwardID: p.id, Unknown: true})
	cands := f.byHash[p.hash]
	for j, q := range cands {
		if q == p {
			f.byHash[p.hash] = append(cands[:j:j], cands[j+1:]...)
			break
		}
	}
	if len(f.byHash[p.hash]) == 0 {
		delete(f.byHash, p.hash)
	}
}

func (f *forwardedProposals) resolve(p *forwardedProposal, o ForwardedOutcome) {
	p.done = true
	p.data = nil
	f.watched--
	f.outcomes = append(f.outcomes, o)
	f.trimOutcomes()
}

// trimOutcomes drops the oldest outcomes beyond maxForwardedWatched: an
// application that never takes them (ProposeWithResult used only for the
// leader's answer) must not grow the list for ever.
func (f *forwardedProposals) trimOutcomes() {
	if n := len(f.outcomes) - maxForwardedWatched; n > 0 {
		f.outcomes = append(f.outcomes[:0], f.outcomes[n:]...)
	}
}

// ForwardedOutcomes returns what this node learned, since the last call,
// about the proposals it forwarded with ProposeWithResult (or
// ProposeConfChangeWithResult): one ForwardedOutcome per proposal, naming
// it by ProposalResult.ForwardID. A proposal is appended when this node
// sees its entry arrive from a leader, and unknown when that did not
// happen within four election timeouts of forwarding it (counted in
// Ticks; the check runs here and at each new forwarded proposal), or when
// more than 4096 are looked for at once (the oldest is given up). See
// ForwardedOutcome for what each means.
//
// Call it after stepping messages, before applying the next Ready's
// CommittedEntries, so that an appended proposal is known before its entry
// is applied. Outcomes wait here until taken (the newest 4096: older ones
// are dropped); a proposal with empty data is reported unknown at once,
// since a leader's own empty entries would match it. The returned slice belongs
// to the caller. Proposals made with Propose (RawNode or Node) are not
// followed; for a Node, see the package function ForwardedOutcomes.
func (rn *RawNode) ForwardedOutcomes() []ForwardedOutcome {
	f := rn.raft.forwarded()
	if f == nil {
		return nil
	}
	f.expire(rn.raft.ticks, rn.raft.forwardedWindow())
	out := f.outcomes
	f.outcomes = nil
	return out
}
