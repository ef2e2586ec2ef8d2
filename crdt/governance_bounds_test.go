package crdt_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
)

// uuidN returns the n-th of a series of distinct canonical UUIDs.
func uuidN(n int) string {
	return fmt.Sprintf("%08x-4a3b-4c1e-9a55-0d6f0f7a1b2c", n)
}

// A member's ballots may carry votes on up to 20,000 proposal ids per
// message, none of which exists: the governance document must not keep
// them all.
func TestPendingVotesAreBoundedPerMember(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	doc := automerge.New()
	if err := crdt.InitGovernance(doc); err != nil {
		t.Fatal(err)
	}
	vote := crdt.CastVote{Choice: "yes", At: now}
	kept := 0
	var refusal error
	for i := range 1000 {
		err := crdt.AddPendingVote(doc, uuidN(i), "mallory", vote)
		if err != nil {
			refusal = err
			break
		}
		kept++
	}
	if refusal == nil || kept > 100 {
		t.Fatalf("AddPendingVote kept %d votes of one member on unknown proposals (refusal %v), want at most 100 and then a refusal", kept, refusal)
	}
	if kept != crdt.MaxPendingVotesPerMember || !errors.Is(refusal, crdt.ErrTooManyPending) {
		t.Fatalf("kept %d, refusal %v; want %d, ErrTooManyPending", kept, refusal, crdt.MaxPendingVotesPerMember)
	}
	wantRuleError(t, refusal, crdt.RuleGovernance, "")
	// Another member is not held back by mallory.
	if err := crdt.AddPendingVote(doc, uuidN(0), "alice", vote); err != nil {
		t.Fatalf("AddPendingVote(alice) = %v", err)
	}
	// When a proposal opens, its pending votes are taken and the slot is
	// free again.
	doc = mustReload(t, doc)
	got, err := crdt.TakePendingVotes(doc, uuidN(0))
	if err != nil || len(got) != 2 || got["mallory"].Choice != "yes" || got["alice"].Choice != "yes" {
		t.Fatalf("TakePendingVotes = %v, %v; want mallory's and alice's", got, err)
	}
	if err := crdt.AddPendingVote(doc, uuidN(5000), "mallory", vote); err != nil {
		t.Fatalf("AddPendingVote after one was taken = %v, want nil", err)
	}
	if err := crdt.AddPendingVote(doc, uuidN(5001), "mallory", vote); !errors.Is(err, crdt.ErrTooManyPending) {
		t.Fatalf("AddPendingVote over the bound again = %v, want ErrTooManyPending", err)
	}
	// A second vote on the same proposal is still ErrVoted.
	if err := crdt.AddPendingVote(doc, uuidN(1), "alice", vote); err != nil {
		t.Fatal(err)
	}
	if err := crdt.AddPendingVote(doc, uuidN(1), "alice", vote); !errors.Is(err, crdt.ErrVoted) {
		t.Fatalf("AddPendingVote(second) = %v, want ErrVoted", err)
	}
}

// A member's ballots may carry 20,000 proposals per message, each up to
// ~40 KB: the governance document must not open them all.
func TestOpenProposalsAreBoundedPerAuthor(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	doc := automerge.New()
	if err := crdt.InitGovernance(doc); err != nil {
		t.Fatal(err)
	}
	open := func(n int, author string) error {
		return crdt.OpenProposal(doc, crdt.ProposalState{
			Proposal: crdt.Proposal{ID: uuidN(n), Kind: "charter.ratify", Title: "Ratify", At: now},
			Author:   author, OpenedAt: now, ClosesAt: now.Add(168 * time.Hour),
		})
	}
	opened := 0
	var refusal error
	for i := range 500 {
		if refusal = open(i, "mallory"); refusal != nil {
			break
		}
		opened++
	}
	if refusal == nil || opened > 50 {
		t.Fatalf("OpenProposal opened %d proposals of one author (refusal %v), want at most 50 open at once", opened, refusal)
	}
	if opened != crdt.MaxOpenProposalsPerMember || !errors.Is(refusal, crdt.ErrTooManyOpen) {
		t.Fatalf("opened %d, refusal %v; want %d, ErrTooManyOpen", opened, refusal, crdt.MaxOpenProposalsPerMember)
	}
	wantRuleError(t, refusal, crdt.RuleGovernance, "open proposals")
	mustCommit(t, doc)
	if err := open(499, "mallory"); !errors.Is(err, crdt.ErrTooManyOpen) {
		t.Fatalf("OpenProposal over the bound = %v, want ErrTooManyOpen", err)
	}
	if _, err := doc.Commit("after a refusal"); err == nil {
		t.Fatal("a refused OpenProposal wrote something")
	}
	if err := open(1000, "alice"); err != nil {
		t.Fatalf("OpenProposal(alice) = %v, want nil: mallory's proposals do not hold alice back", err)
	}
	// Once one of mallory's proposals is decided, mallory may open one more.
	doc = mustReload(t, doc)
	if err := crdt.DecideProposal(doc, uuidN(3), crdt.ProposalRejected, "no", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := open(2000, "mallory"); err != nil {
		t.Fatalf("OpenProposal after a decision = %v, want nil", err)
	}
	if err := open(2001, "mallory"); !errors.Is(err, crdt.ErrTooManyOpen) {
		t.Fatalf("OpenProposal over the bound again = %v, want ErrTooManyOpen", err)
	}
	if _, err := crdt.ReadProposalStates(mustReload(t, doc)); err != nil {
		t.Fatalf("ReadProposalStates = %v", err)
	}
}

// API.md: after a hard reset every open proposal is cancelled — a
// proposal of the old epoch must not keep collecting votes in the new one.
func TestCancelOpenProposalsAtReset(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	doc := automerge.New()
	if err := crdt.InitGovernance(doc); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := crdt.OpenProposal(doc, crdt.ProposalState{
			Proposal: crdt.Proposal{ID: uuidN(i), Kind: "charter.ratify", Title: "Ratify", At: now},
			Author:   "alice", OpenedAt: now, ClosesAt: now.Add(168 * time.Hour),
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := crdt.DecideProposal(doc, uuidN(0), crdt.ProposalPassed, "3 yes", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	doc = mustReload(t, doc)
	at := now.Add(2 * time.Hour)
	got, err := crdt.CancelOpenProposals(doc, "the circle was reset (epoch 0 ended)", at)
	if err != nil {
		t.Fatalf("CancelOpenProposals = %v", err)
	}
	if want := []string{uuidN(1), uuidN(2)}; !slices.Equal(got, want) {
		t.Fatalf("CancelOpenProposals = %v, want %v", got, want)
	}
	states, err := crdt.ReadProposalStates(mustReload(t, doc))
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range states {
		want := crdt.ProposalCancelled
		if st.ID == uuidN(0) {
			want = crdt.ProposalPassed
		}
		if st.Status != want {
			t.Errorf("proposal %s status %q, want %q", st.ID, st.Status, want)
		}
		if st.Status == crdt.ProposalCancelled && (st.DecidedAt == nil || !st.DecidedAt.Equal(at) || st.Reason == "") {
			t.Errorf("cancelled proposal %s: decided_at %v, reason %q; want %v and a reason", st.ID, st.DecidedAt, st.Reason, at)
		}
	}
	// The author's open proposals no longer count toward the bound.
	for i := range crdt.MaxOpenProposalsPerMember {
		if err := crdt.OpenProposal(doc, crdt.ProposalState{
			Proposal: crdt.Proposal{ID: uuidN(100 + i), Kind: "charter.ratify", Title: "Ratify", At: at},
			Author:   "alice", OpenedAt: at, ClosesAt: at.Add(168 * time.Hour),
		}); err != nil {
			t.Fatalf("OpenProposal %d after the reset = %v", i, err)
		}
	}
	// Nothing open is left to cancel twice.
	if _, err := crdt.CancelOpenProposals(doc, "again", at); err != nil {
		t.Fatal(err)
	}
	if again, _ := crdt.CancelOpenProposals(doc, "again", at); len(again) != 0 {
		t.Fatalf("CancelOpenProposals(again) = %v, want none", again)
	}
}

// A member who opens proposals and objects to each at once (by REST, which
// has no rate limit) frees their open slots immediately: the number of
// proposals they open per day must still be bounded.
func TestProposalsPerDayAreBoundedPerAuthor(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	doc := automerge.New()
	if err := crdt.InitGovernance(doc); err != nil {
		t.Fatal(err)
	}
	n := 0
	churn := func(at time.Time) error {
		id := uuidN(n)
		n++
		err := crdt.OpenProposal(doc, crdt.ProposalState{
			Proposal: crdt.Proposal{ID: id, Kind: "charter.ratify", Title: "Ratify", At: at},
			Author:   "mallory", OpenedAt: at, ClosesAt: at.Add(168 * time.Hour),
		})
		if err != nil {
			return err
		}
		return crdt.DecideProposal(doc, id, crdt.ProposalRejected, "blocked by 1 objection", at)
	}
	opened := 0
	var refusal error
	for i := range 1000 {
		if refusal = churn(now.Add(time.Duration(i) * time.Second)); refusal != nil {
			break
		}
		opened++
	}
	if refusal == nil || opened > 100 {
		t.Fatalf("one author opened %d proposals in 1000 s (refusal %v), want at most 100 a day", opened, refusal)
	}
	if opened != crdt.MaxProposalsPerMemberPerDay || !errors.Is(refusal, crdt.ErrTooManyToday) {
		t.Fatalf("opened %d, refusal %v; want %d, ErrTooManyToday", opened, refusal, crdt.MaxProposalsPerMemberPerDay)
	}
	wantRuleError(t, refusal, crdt.RuleGovernance, "")
	doc = mustReload(t, doc)
	if err := churn(now.Add(23 * time.Hour)); !errors.Is(err, crdt.ErrTooManyToday) {
		t.Fatalf("OpenProposal 23 h later = %v, want ErrTooManyToday", err)
	}
	if _, err := doc.Commit("after a refusal"); err == nil {
		t.Fatal("a refused OpenProposal wrote something")
	}
	if err := churn(now.Add(25 * time.Hour)); err != nil {
		t.Fatalf("OpenProposal a day later = %v, want nil", err)
	}
}
