package crdt

import (
	"fmt"

	"github.com/automerge/automerge-go"
)

// Bounds on what one member's ballots document holds over its whole life.
// MaxNewPerBatch bounds one sync message; without these, a member could
// send message after message and grow their ballots document (which the
// server stores and every member's device may sync) without end. They are
// far above what a member of a circle of 3–30 people writes: a proposal a
// week for 38 years, a vote on 20,000 proposals.
const (
	MaxBallotProposals = 2000
	MaxBallotVotes     = 20000
	MaxBallotResets    = 1000
)

// ballotBounds maps each container of a ballots document to its bound.
var ballotBounds = map[string]int{"proposals": MaxBallotProposals, "votes": MaxBallotVotes, "resets": MaxBallotResets}

// CheckBallotsGrowth checks, before a batch of changes is applied to a
// member's ballots document doc, that the keys it adds (as CheckAppendOnly
// returns them) keep each container within its bound. It returns a
// *RuleError of rule "schema" naming the container.
func CheckBallotsGrowth(doc *automerge.Doc, added []Added) error {
	adds := map[string]int{}
	for _, a := range added {
		adds[a.Container]++
	}
	for name, n := range adds {
		limit, ok := ballotBounds[name]
		if !ok {
			continue
		}
		have := 0
		if v, err := doc.Path(name).Get(); err == nil && v.Kind() == automerge.KindMap {
			have = v.Map().Len()
		}
		if have+n > limit {
			return &RuleError{Rule: RuleSchema, Message: fmt.Sprintf(
				"a ballots document holds at most %d %s; this one has %d and the message adds %d", limit, name, have, n)}
		}
	}
	return nil
}
