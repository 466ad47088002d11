package confchange

import pb "github.com/raftcore/raft/raftpb"

// Describe renders the type and node ID of each change, space-separated, in
// the compact form raftpb.ConfChangesFromString parses: v (add voter), l (add
// learner), r (remove) or u (update), followed by the node ID. For example,
// adding voter 1, removing node 2 and adding learner 3 is "v1 r2 l3". A
// change of an unknown type shows as "unknown" and its node ID. No changes
// give the empty string.
func Describe(ccs ...pb.ConfChangeSingle) string {
	return pb.ConfChangesToString(ccs)
}
