package crdt

import (
	"fmt"
	"math"
)

// The statuses of a proposal.
const (
	ProposalOpen     = "open"     // still taking votes
	ProposalPassed   = "passed"   // decided for, and taken effect
	ProposalRejected = "rejected" // decided against, or its effect was impossible
	// ProposalCancelled: a hard reset ended the epoch it was open in
	// (CancelOpenProposals); it takes no more votes and has no effect.
	ProposalCancelled = "cancelled"
)

// The choices of a vote (VoteChoices lists them).
const (
	ChoiceYes     = "yes"
	ChoiceNo      = "no"
	ChoiceObject  = "object"  // a standing objection: it blocks the proposal
	ChoiceAbstain = "abstain" // counts toward the quorum, not the threshold
)

// Tally counts the votes of the members who may vote on a proposal.
type Tally struct {
	Yes      int `json:"yes"`
	No       int `json:"no"`
	Object   int `json:"object"`
	Abstain  int `json:"abstain"`
	Eligible int `json:"eligible"` // active members
	Needed   int `json:"needed"`   // voters (any choice) the quorum needs
}

// Voted is the number of eligible members who have voted.
func (t Tally) Voted() int { return t.Yes + t.No + t.Object + t.Abstain }

// Decision is what Decide concludes about a proposal.
type Decision struct {
	Status string // ProposalOpen, ProposalPassed or ProposalRejected
	Reason string // why it was decided so; empty while open
	Tally  Tally
}

// fractionSlack absorbs the rounding of fraction policies (0.6 × 5 is
// not 3 in binary floating point).
const fractionSlack = 1e-9

// Decide applies the circle's decision rule to a proposal's votes.
//
// votes maps a member id to that member's choice; active lists the members
// who may vote (the circle's active members); p gives proposal.quorum and
// proposal.threshold; closed says whether the proposal's period has ended.
// Votes of members not in active are ignored.
//
// The rule:
//
//   - Quorum: at least ceil(proposal.quorum × active members) members must
//     have voted, whatever their choice (at least one).
//   - Threshold: the yes votes must be more than proposal.threshold of the
//     yes and no votes; abstentions and objections do not enter the share.
//     A threshold of 1 asks for unanimity: at least one yes and no no.
//   - Objection: "object" is a standing objection, as in consent
//     decision-making. One objection blocks the proposal whatever the other
//     votes say, and since a vote is final (a ballots document is
//     append-only) it can never be lifted: the proposal is rejected at once.
//
// Decide decides early, as soon as the outcome can no longer change: a
// proposal is rejected before its period ends once it could not pass even
// if every member who has not voted voted yes, and it passes before its
// period ends only once every active member has voted, since until then
// anyone who has not voted may still object. When closed, whatever is not
// passed is rejected.
func Decide(votes map[string]string, active []string, p Policies, closed bool) Decision {
	t := Tally{Eligible: len(active)}
	for _, m := range active {
		switch votes[m] {
		case ChoiceYes:
			t.Yes++
		case ChoiceNo:
			t.No++
		case ChoiceObject:
			t.Object++
		case ChoiceAbstain:
			t.Abstain++
		}
	}
	t.Needed = max(1, int(math.Ceil(p.Float("proposal.quorum")*float64(t.Eligible)-fractionSlack)))
	threshold := p.Float("proposal.threshold")
	d := Decision{Status: ProposalOpen, Tally: t}
	if t.Object > 0 {
		d.Status, d.Reason = ProposalRejected, fmt.Sprintf("blocked by %s", countNoun(t.Object, "objection", "objections"))
		return d
	}
	remaining := t.Eligible - t.Voted()
	if t.Voted()+remaining < t.Needed { // no active members at all
		d.Status, d.Reason = ProposalRejected, quorumReason(t)
		return d
	}
	// Could it still pass if everyone left voted yes?
	if !clears(t.Yes+remaining, t.No, threshold) {
		d.Status, d.Reason = ProposalRejected, thresholdReason(t, threshold)
		return d
	}
	if remaining > 0 && !closed {
		return d
	}
	switch {
	case t.Voted() < t.Needed:
		d.Status, d.Reason = ProposalRejected, quorumReason(t)
	case !clears(t.Yes, t.No, threshold):
		d.Status, d.Reason = ProposalRejected, thresholdReason(t, threshold)
	default:
		d.Status, d.Reason = ProposalPassed, fmt.Sprintf("%d yes, %d no, %d abstaining of %d members", t.Yes, t.No, t.Abstain, t.Eligible)
	}
	return d
}

// clears reports whether yes votes are more than threshold of yes and no.
func clears(yes, no int, threshold float64) bool {
	if yes == 0 {
		return false
	}
	if threshold >= 1 {
		return no == 0
	}
	return float64(yes)-threshold*float64(yes+no) > fractionSlack
}

func quorumReason(t Tally) string {
	return fmt.Sprintf("quorum not reached: %d of %d members voted, %d needed", t.Voted(), t.Eligible, t.Needed)
}

func thresholdReason(t Tally, threshold float64) string {
	return fmt.Sprintf("threshold not met: %d yes against %d no, more than %g%% yes needed", t.Yes, t.No, threshold*100)
}

func countNoun(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
