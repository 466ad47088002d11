package raft

import (
	"fmt"
	"strings"

	pb "github.com/raftcore/raft/raftpb"
)

// EntryFormatter renders an entry's Data for the Describe functions. Nil
// quotes the data as a Go string literal.
type EntryFormatter func([]byte) string

// DescribeHardState renders hs compactly, e.g. "Term:3 Vote:1 Commit:12".
func DescribeHardState(hs pb.HardState) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Term:%d", hs.Term)
	if hs.Vote != 0 {
		fmt.Fprintf(&b, " Vote:%d", hs.Vote)
	}
	fmt.Fprintf(&b, " Commit:%d", hs.Commit)
	return b.String()
}

// DescribeSoftState renders ss, e.g. "Lead:1 State:StateLeader".
func DescribeSoftState(ss SoftState) string {
	return fmt.Sprintf("Lead:%d State:%s", ss.Lead, ss.RaftState)
}

// DescribeConfState renders every field of cs, e.g. "Voters:[1 2 3]
// VotersOutgoing:[] Learners:[] LearnersNext:[] AutoLeave:false", as etcd
// raft does. ConfState.Describe gives the shorter form the rest of
// raftcore prints configurations in ("voters=(1 2 3)").
func DescribeConfState(cs pb.ConfState) string {
	return fmt.Sprintf("Voters:%v VotersOutgoing:%v Learners:%v LearnersNext:%v AutoLeave:%v",
		cs.Voters, cs.VotersOutgoing, cs.Learners, cs.LearnersNext, cs.AutoLeave)
}

// DescribeSnapshot renders snap's position and configuration.
func DescribeSnapshot(snap pb.Snapshot) string {
	m := snap.Metadata
	return fmt.Sprintf("Index:%d Term:%d ConfState:%s", m.Index, m.Term, DescribeConfState(m.ConfState))
}

// DescribeEntry renders e as "term/index type payload", e.g.
// "2/7 EntryNormal \"put x=1\"". A normal entry's payload goes through f
// (nil quotes it); a conf change entry is decoded and shown as its changes
// ("v3 r2": add voter 3, remove 2), or as the decoding error; an entry of
// an unknown type shows no payload.
func DescribeEntry(e pb.Entry, f EntryFormatter) string {
	s := fmt.Sprintf("%d/%d %s", e.Term, e.Index, e.Type)
	if p := describePayload(e, f); p != "" {
		s += " " + p
	}
	return s
}

func describePayload(e pb.Entry, f EntryFormatter) string {
	switch e.Type {
	case pb.EntryNormal:
		if f == nil {
			return fmt.Sprintf("%q", e.Data)
		}
		return f(e.Data)
	// Conf changes are decoded here rather than with pb.UnmarshalConfChange,
	// whose error names the entry's index: etcd raft shows the decoder's
	// own error.
	case pb.EntryConfChange:
		var cc pb.ConfChange
		if err := cc.Unmarshal(e.Data); err != nil {
			return err.Error()
		}
		return pb.ConfChangesToString(cc.AsV2().Changes)
	case pb.EntryConfChangeV2:
		var cc pb.ConfChangeV2
		if err := cc.Unmarshal(e.Data); err != nil {
			return err.Error()
		}
		return pb.ConfChangesToString(cc.Changes)
	}
	return ""
}

// DescribeEntries renders ents one per line.
func DescribeEntries(ents []pb.Entry, f EntryFormatter) string {
	var b strings.Builder
	for _, e := range ents {
		b.WriteString(DescribeEntry(e, f))
		b.WriteByte('\n')
	}
	return b.String()
}

// DescribeMessage renders m, e.g.
// "1->2 MsgApp Term:3 Log:2/5 Commit:4 Entries:[3/6 EntryNormal \"x\"]".
// Several entries, a snapshot and the responses of a local storage
// message go on indented lines of their own.
func DescribeMessage(m pb.Message, f EntryFormatter) string {
	var b strings.Builder
	describeMessage(&b, m, f, "")
	return b.String()
}

// describeMessage writes m to b. indent prefixes every line after the
// first: a response nested in another message is indented two spaces more
// than the message that carries it, and so are its own entries, snapshot
// and responses.
func describeMessage(b *strings.Builder, m pb.Message, f EntryFormatter, indent string) {
	fmt.Fprintf(b, "%s->%s %s Term:%d Log:%d/%d", describeTarget(m.From), describeTarget(m.To), m.Type, m.Term, m.LogTerm, m.Index)
	if m.Reject {
		fmt.Fprintf(b, " Rejected (Hint: %d)", m.RejectHint)
	}
	if m.Commit != 0 {
		fmt.Fprintf(b, " Commit:%d", m.Commit)
	}
	if m.Vote != 0 {
		fmt.Fprintf(b, " Vote:%d", m.Vote)
	}
	switch len(m.Entries) {
	case 0:
	case 1:
		fmt.Fprintf(b, " Entries:[%s]", DescribeEntry(m.Entries[0], f))
	default:
		b.WriteString(" Entries:[")
		for _, e := range m.Entries {
			fmt.Fprintf(b, "\n%s  %s", indent, DescribeEntry(e, f))
		}
		fmt.Fprintf(b, "\n%s]", indent)
	}
	if m.Snapshot != nil && !IsEmptySnap(*m.Snapshot) {
		fmt.Fprintf(b, "\n%s  Snapshot: %s", indent, DescribeSnapshot(*m.Snapshot))
	}
	if len(m.Responses) > 0 {
		b.WriteString(" Responses:[")
		for _, r := range m.Responses {
			fmt.Fprintf(b, "\n%s  ", indent)
			describeMessage(b, r, f, indent+"  ")
		}
		fmt.Fprintf(b, "\n%s]", indent)
	}
}

func describeTarget(id uint64) string {
	switch id {
	case None:
		return "None"
	case LocalAppendThread:
		return "AppendThread"
	case LocalApplyThread:
		return "ApplyThread"
	}
	return fmt.Sprintf("%x", id)
}

// DescribeReady renders everything in rd, one item per line after a
// "Ready MustSync=…:" header; a Ready with nothing in it renders as
// "<empty Ready>".
func DescribeReady(rd Ready, f EntryFormatter) string {
	var b strings.Builder
	if rd.SoftState != nil {
		b.WriteString(DescribeSoftState(*rd.SoftState))
		b.WriteByte('\n')
	}
	if !IsEmptyHardState(rd.HardState) {
		fmt.Fprintf(&b, "HardState %s\n", DescribeHardState(rd.HardState))
	}
	if len(rd.ReadStates) > 0 {
		fmt.Fprintf(&b, "ReadStates %v\n", rd.ReadStates)
	}
	if len(rd.Entries) > 0 {
		b.WriteString("Entries:\n")
		b.WriteString(DescribeEntries(rd.Entries, f))
	}
	if !IsEmptySnap(rd.Snapshot) {
		fmt.Fprintf(&b, "Snapshot %s\n", DescribeSnapshot(rd.Snapshot))
	}
	if len(rd.CommittedEntries) > 0 {
		b.WriteString("CommittedEntries:\n")
		b.WriteString(DescribeEntries(rd.CommittedEntries, f))
	}
	if len(rd.Messages) > 0 {
		b.WriteString("Messages:\n")
		for _, m := range rd.Messages {
			b.WriteString(DescribeMessage(m, f))
			b.WriteByte('\n')
		}
	}
	if b.Len() == 0 {
		return "<empty Ready>"
	}
	return fmt.Sprintf("Ready MustSync=%v:\n%s", rd.MustSync, b.String())
}
