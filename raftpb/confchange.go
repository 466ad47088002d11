package raftpb

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ConfChangeI is a configuration change in either wire form: ConfChange (v1,
// a single change) or ConfChangeV2 (a list of changes plus a transition).
// The core works on the v2 form; AsV1 lets callers keep writing v1 entries
// where a change can be expressed that way.
type ConfChangeI interface {
	// AsV2 returns the change in v2 form. A v1 change becomes a v2 change
	// with one item and the automatic transition.
	AsV2() ConfChangeV2
	// AsV1 returns the change in v1 form and true, or false when the change
	// has no v1 form (a v2 change).
	AsV1() (ConfChange, bool)
}

var (
	_ ConfChangeI = ConfChange{}
	_ ConfChangeI = ConfChangeV2{}
)

// AsV2 implements ConfChangeI.
func (c ConfChange) AsV2() ConfChangeV2 {
	return ConfChangeV2{
		Changes: []ConfChangeSingle{{Type: c.Type, NodeID: c.NodeID}},
		Context: c.Context,
	}
}

// AsV1 implements ConfChangeI.
func (c ConfChange) AsV1() (ConfChange, bool) { return c, true }

// AsV2 implements ConfChangeI.
func (c ConfChangeV2) AsV2() ConfChangeV2 { return c }

// AsV1 implements ConfChangeI; a v2 change has no v1 form.
func (c ConfChangeV2) AsV1() (ConfChange, bool) { return ConfChange{}, false }

// EnterJoint reports whether applying c enters a joint configuration, and
// if so whether the joint configuration is left automatically (autoLeave).
//
// A change enters a joint configuration when it asks for one explicitly
// (a JointImplicit or JointExplicit transition) or when it changes more than
// one node (more than one change, under the Auto transition). The leave is
// automatic unless the transition is JointExplicit.
func (c ConfChangeV2) EnterJoint() (autoLeave bool, ok bool) {
	if c.Transition == ConfChangeTransitionAuto && len(c.Changes) <= 1 {
		return false, false
	}
	switch c.Transition {
	case ConfChangeTransitionAuto, ConfChangeTransitionJointImplicit:
		return true, true
	case ConfChangeTransitionJointExplicit:
		return false, true
	}
	// An unknown transition from a newer peer: treat it like an explicit
	// joint change, the conservative choice (the application leaves it).
	return false, true
}

// LeaveJoint reports whether c is the empty change that leaves a joint
// configuration. Its context is ignored.
func (c ConfChangeV2) LeaveJoint() bool {
	return c.Transition == ConfChangeTransitionAuto && len(c.Changes) == 0
}

// MarshalConfChange encodes c for the Data of a log entry and returns the
// entry type to use with it: EntryConfChange for a v1 change,
// EntryConfChangeV2 for a v2 change.
func MarshalConfChange(c ConfChangeI) (EntryType, []byte, error) {
	if v1, ok := c.AsV1(); ok {
		data, err := v1.Marshal()
		return EntryConfChange, data, err
	}
	v2 := c.AsV2()
	data, err := v2.Marshal()
	return EntryConfChangeV2, data, err
}

// UnmarshalConfChange decodes the conf change carried by a log entry of type
// EntryConfChange or EntryConfChangeV2. Other entry types are an error.
func UnmarshalConfChange(e Entry) (ConfChangeI, error) {
	switch e.Type {
	case EntryConfChange:
		var cc ConfChange
		if err := cc.Unmarshal(e.Data); err != nil {
			return nil, fmt.Errorf("raft: decoding conf change at index %d: %w", e.Index, err)
		}
		return cc, nil
	case EntryConfChangeV2:
		var cc ConfChangeV2
		if err := cc.Unmarshal(e.Data); err != nil {
			return nil, fmt.Errorf("raft: decoding conf change v2 at index %d: %w", e.Index, err)
		}
		return cc, nil
	}
	return nil, fmt.Errorf("raft: entry %d of type %s carries no conf change", e.Index, e.Type)
}

// Equivalent returns nil when cs and other describe the same configuration,
// that is when their member lists hold the same IDs (in any order) and they
// agree on AutoLeave; otherwise an error that shows both.
func (cs ConfState) Equivalent(other ConfState) error {
	if sameMembers(cs.Voters, other.Voters) &&
		sameMembers(cs.Learners, other.Learners) &&
		sameMembers(cs.VotersOutgoing, other.VotersOutgoing) &&
		sameMembers(cs.LearnersNext, other.LearnersNext) &&
		cs.AutoLeave == other.AutoLeave {
		return nil
	}
	return fmt.Errorf("raft: conf states differ: %s != %s", cs.Describe(), other.Describe())
}

// sameMembers compares two ID lists as sets. Duplicates count once, so a
// list that repeats an ID is the same set as one that does not.
func sameMembers(a, b []uint64) bool {
	inA := make(map[uint64]struct{}, len(a))
	for _, id := range a {
		inA[id] = struct{}{}
	}
	inB := make(map[uint64]struct{}, len(b))
	for _, id := range b {
		if _, ok := inA[id]; !ok {
			return false
		}
		inB[id] = struct{}{}
	}
	return len(inA) == len(inB)
}

// Describe renders cs compactly for logs and test output, e.g.
// "voters=(1 2 3)&&(1 2 4) learners=(5) learners_next=(4) autoleave".
func (cs ConfState) Describe() string {
	var b strings.Builder
	b.WriteString("voters=")
	writeIDs(&b, cs.Voters)
	if len(cs.VotersOutgoing) > 0 {
		b.WriteString("&&")
		writeIDs(&b, cs.VotersOutgoing)
	}
	if len(cs.Learners) > 0 {
		b.WriteString(" learners=")
		writeIDs(&b, cs.Learners)
	}
	if len(cs.LearnersNext) > 0 {
		b.WriteString(" learners_next=")
		writeIDs(&b, cs.LearnersNext)
	}
	if cs.AutoLeave {
		b.WriteString(" autoleave")
	}
	return b.String()
}

func writeIDs(b *strings.Builder, ids []uint64) {
	b.WriteByte('(')
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatUint(id, 10))
	}
	b.WriteByte(')')
}

// ConfChangesFromString parses a space-separated list of single changes,
// each a letter and a node ID: v (add voter), l (add learner), r (remove),
// u (update). For example "v1 v2 l3 r4". It is meant for tests and tools.
func ConfChangesFromString(s string) ([]ConfChangeSingle, error) {
	var ccs []ConfChangeSingle
	for _, tok := range strings.Fields(s) {
		if len(tok) < 2 {
			return nil, fmt.Errorf("raft: conf change %q: want a letter and a node ID", tok)
		}
		var cc ConfChangeSingle
		kind, _ := utf8.DecodeRuneInString(tok)
		switch kind {
		case 'v':
			cc.Type = ConfChangeAddNode
		case 'l':
			cc.Type = ConfChangeAddLearnerNode
		case 'r':
			cc.Type = ConfChangeRemoveNode
		case 'u':
			cc.Type = ConfChangeUpdateNode
		default:
			return nil, fmt.Errorf("raft: conf change %q: unknown kind %q", tok, kind)
		}
		id, err := strconv.ParseUint(tok[utf8.RuneLen(kind):], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("raft: conf change %q: %w", tok, errors.Unwrap(err))
		}
		cc.NodeID = id
		ccs = append(ccs, cc)
	}
	return ccs, nil
}

// ConfChangesToString is the inverse of ConfChangesFromString.
func ConfChangesToString(ccs []ConfChangeSingle) string {
	var b strings.Builder
	for i, cc := range ccs {
		if i > 0 {
			b.WriteByte(' ')
		}
		switch cc.Type {
		case ConfChangeAddNode:
			b.WriteByte('v')
		case ConfChangeAddLearnerNode:
			b.WriteByte('l')
		case ConfChangeRemoveNode:
			b.WriteByte('r')
		case ConfChangeUpdateNode:
			b.WriteByte('u')
		default:
			b.WriteString("unknown")
		}
		b.WriteString(strconv.FormatUint(cc.NodeID, 10))
	}
	return b.String()
}
