package quorum

import (
	"fmt"
	"strconv"
	"strings"
)

// Describe renders the voters, the index each has acked and the resulting
// committed index as a small table for logs and test failures, e.g.
//
//	voters (1 2 3): quorum 2, committed 5
//	id  acked
//	1   7      ≥ committed
//	2   5      ≥ committed
//	3   -      not found, counts as 0
//
// It allocates and is meant for diagnostics, not for the hot path.
func (c MajorityConfig) Describe(l AckedIndexer) string {
	var b strings.Builder
	c.describeTo(&b, "voters", l)
	return b.String()
}

// Describe renders both halves (see MajorityConfig.Describe), each marked
// against its own committed index, followed by the joint committed index and
// which half holds it back.
func (c JointConfig) Describe(l AckedIndexer) string {
	if len(c[1]) == 0 {
		return c[0].Describe(l)
	}
	var b strings.Builder
	c[0].describeTo(&b, "incoming", l)
	c[1].describeTo(&b, "outgoing", l)
	in, out := c[0].CommittedIndex(l), c[1].CommittedIndex(l)
	fmt.Fprintf(&b, "joint committed %s", min(in, out))
	switch {
	case in < out:
		b.WriteString(" (incoming holds it back)")
	case out < in:
		b.WriteString(" (outgoing holds it back)")
	}
	b.WriteByte('\n')
	return b.String()
}

func (c MajorityConfig) describeTo(b *strings.Builder, label string, l AckedIndexer) {
	if len(c) == 0 {
		fmt.Fprintf(b, "%s (): empty, commits ∞\n", label)
		return
	}
	committed := c.CommittedIndex(l)
	fmt.Fprintf(b, "%s %s: quorum %d, committed %s\n", label, c, c.quorumSize(), committed)
	ids := c.Slice()
	idW, ackW := len("id"), len("acked")
	for _, id := range ids {
		idx, _ := l.AckedIndex(id)
		idW = max(idW, len(strconv.FormatUint(id, 10)))
		ackW = max(ackW, len(idx.String()))
	}
	fmt.Fprintf(b, "%-*s  %s\n", idW, "id", "acked")
	for _, id := range ids {
		idx, found := l.AckedIndex(id)
		switch {
		case !found:
			fmt.Fprintf(b, "%-*d  %-*s  not found, counts as 0\n", idW, id, ackW, "-")
		case idx >= committed:
			fmt.Fprintf(b, "%-*d  %-*s  ≥ committed\n", idW, id, ackW, idx)
		default:
			fmt.Fprintf(b, "%-*d  %s\n", idW, id, idx)
		}
	}
}
