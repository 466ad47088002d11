package quorum

import "fmt"

// VoteResult is the state of an election as far as the votes counted so far
// can tell.
type VoteResult uint8

const (
	// VotePending means the outcome still depends on votes not yet received.
	VotePending VoteResult = 1 + iota
	// VoteLost means a majority can no longer be reached, whatever the
	// missing voters answer.
	VoteLost
	// VoteWon means a majority has granted; further votes cannot change it.
	VoteWon
)

// String returns "VotePending", "VoteLost" or "VoteWon".
func (r VoteResult) String() string {
	switch r {
	case VotePending:
		return "VotePending"
	case VoteLost:
		return "VoteLost"
	case VoteWon:
		return "VoteWon"
	}
	return fmt.Sprintf("VoteResult(%d)", uint8(r))
}
