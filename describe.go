package raft

import (
	"fmt"
	"strings"

	pb "github.com/raftcore/raft/raftpb"
)

// EntryFormatter renders an entry's Data for Describe functions. Nil
// renders the payload's length only.
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

// DescribeConfState renders a configuration as the rest of raftcore prints
// one (ConfState.Describe, tracker.Config.String): "voters=(1 2 3)", with
// "&&(…)" for the outgoing voters of a joint configuration, then
// "learners=(…)", "learners_next=(…)" and "autoleave" when present.
func DescribeConfState(cs pb.ConfState) string { return cs.Describe() }

// DescribeSnapshot renders snap's position and configuration.
func DescribeSnapshot(snap pb.Snapshot) string {
	m := snap.Metadata
	return fmt.Sprintf("Index:%d Term:%d ConfState:%s", m.Index, m.Term, DescribeConfState(m.ConfState))
}

// DescribeEntry renders e as "term/index type payload", e.g.
// "2/7 EntryNormal \"put x=1\"" with a formatter that quotes the data.
// Conf change entries are decoded and shown as their changes.
func DescribeEntry(e pb.Entry, f EntryFormatter) string {
	return fmt.Sprintf("%d/%d %s %s", e.Term, e.Index, e.Type, describePayload(e, f))
}

func describePayload(e pb.Entry, f EntryFormatter) string {
	switch e.Type {
	case pb.EntryConfChange, pb.EntryConfChangeV2:
		cc, err := pb.UnmarshalConfChange(e)
		if err != nil {
			return fmt.Sprintf("<undecodable conf change: %v>", err)
		}
		v2 := cc.AsV2()
		s := pb.ConfChangesToString(v2.Changes)
		if v2.Transition != pb.ConfChangeTransitionAuto {
			s += " " + v2.Transition.String()
		}
		if v2.LeaveJoint() {
			s = "leave-joint"
		}
		return s
	}
	if f != nil {
		return f(e.Data)
	}
	if len(e.Data) == 0 {
		return "(empty)"
	}
	return fmt.Sprintf("(%d bytes)", len(e.Data))
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

// DescribeMessage renders m on one line, e.g.
// "1->2 MsgApp Term:3 Log:2/5 Commit:4 Entries:[3/6 EntryNormal (4 bytes)]".
func DescribeMessage(m pb.Message, f EntryFormatter) string {
	var b strings.Builder
	describeMessage(&b, m, f)
	return b.String()
}

func describeMessage(b *strings.Builder, m pb.Message, f EntryFormatter) {
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
	if len(m.Entries) > 0 {
		b.WriteString(" Entries:[")
		for i, e := range m.Entries {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(DescribeEntry(e, f))
		}
		b.WriteByte(']')
	}
	if len(m.Context) > 0 {
		fmt.Fprintf(b, " Context:%q", m.Context)
	}
	if m.Snapshot != nil && !IsEmptySnap(*m.Snapshot) {
		fmt.Fprintf(b, " Snapshot: %s", DescribeSnapshot(*m.Snapshot))
	}
	if len(m.Responses) > 0 {
		b.WriteString(" Responses:[")
		for i, r := range m.Responses {
			if i > 0 {
				b.WriteString(", ")
			}
			describeMessage(b, r, f)
		}
		b.WriteByte(']')
	}
}

func describeTarget(id uint64) string {
	switch id {
	case None:
		return "_"
	case LocalAppendThread:
		return "AppendThread"
	case LocalApplyThread:
		return "ApplyThread"
	}
	return fmt.Sprintf("%x", id)
}

// DescribeReady renders everything in rd, one item per line; an empty
// Ready renders as "".
func DescribeReady(rd Ready, f EntryFormatter) string {
	var b strings.Builder
	if rd.SoftState != nil {
		fmt.Fprintf(&b, "SoftState %s\n", DescribeSoftState(*rd.SoftState))
	}
	if !IsEmptyHardState(rd.HardState) {
		fmt.Fprintf(&b, "HardState %s\n", DescribeHardState(rd.HardState))
	}
	if len(rd.ReadStates) > 0 {
		b.WriteString("ReadStates:")
		for _, rs := range rd.ReadStates {
			fmt.Fprintf(&b, " %d:%q", rs.Index, rs.RequestCtx)
		}
		b.WriteByte('\n')
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
	if b.Len() > 0 && rd.MustSync {
		b.WriteString("MustSync\n")
	}
	return b.String()
}
