package crdt_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
)

// votesOf builds a vote map from "member=choice" pairs.
func votesOf(pairs ...string) map[string]string {
	out := map[string]string{}
	for _, p := range pairs {
		m, c, _ := strings.Cut(p, "=")
		out[m] = c
	}
	return out
}

func members(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("m%d", i+1)
	}
	return out
}

func policies(t *testing.T, kv ...string) crdt.Policies {
	t.Helper()
	p := crdt.DefaultPolicies()
	for i := 0; i+1 < len(kv); i += 2 {
		if err := p.Set(kv[i], kv[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// TestDecide walks the decision rule with hand-computed cases. Unless a
// case says otherwise, five members m1..m5, proposal.quorum 0.5 (so
// ceil(2.5) = 3 voters needed) and proposal.threshold 0.5.
func TestDecide(t *testing.T) {
	tests := []struct {
		name       string
		votes      map[string]string
		active     int
		pol        []string
		closed     bool
		want       string
		wantNeeded int
		reason     string // a part of the reason
	}{
		{"no votes yet", votesOf(), 5, nil, false, crdt.ProposalOpen, 3, ""},
		{"no votes at the end", votesOf(), 5, nil, true, crdt.ProposalRejected, 3, "quorum not reached: 0 of 5 members voted, 3 needed"},
		{"two yes, three may still object", votesOf("m1=yes", "m2=yes"), 5, nil, false, crdt.ProposalOpen, 3, ""},
		{"two yes at the end: no quorum", votesOf("m1=yes", "m2=yes"), 5, nil, true, crdt.ProposalRejected, 3, "quorum not reached: 2 of 5"},
		{"three yes at the end", votesOf("m1=yes", "m2=yes", "m3=yes"), 5, nil, true, crdt.ProposalPassed, 3, "3 yes, 0 no"},
		{"three yes, two may still object", votesOf("m1=yes", "m2=yes", "m3=yes"), 5, nil, false, crdt.ProposalOpen, 3, ""},
		{"everyone yes: passes early", votesOf("m1=yes", "m2=yes", "m3=yes", "m4=yes", "m5=yes"), 5, nil, false, crdt.ProposalPassed, 3, "5 yes"},
		{"one objection blocks four yes", votesOf("m1=yes", "m2=yes", "m3=yes", "m4=yes", "m5=object"), 5, nil, false, crdt.ProposalRejected, 3, "blocked by 1 objection"},
		{"an objection alone decides at once", votesOf("m2=object"), 5, nil, false, crdt.ProposalRejected, 3, "blocked by 1 objection"},
		{"two objections", votesOf("m2=object", "m3=object"), 5, nil, true, crdt.ProposalRejected, 3, "blocked by 2 objections"},
		// 3 no: even with m4 and m5 yes, 2 > 0.5 × 5 fails.
		{"three no: cannot pass any more", votesOf("m1=no", "m2=no", "m3=no"), 5, nil, false, crdt.ProposalRejected, 3, "threshold not met: 0 yes against 3 no"},
		// 2 no: three yes would give 3 > 2.5.
		{"two no: could still pass", votesOf("m1=no", "m2=no"), 5, nil, false, crdt.ProposalOpen, 3, ""},
		{"a tie fails", votesOf("m1=yes", "m2=yes", "m3=no", "m4=no", "m5=abstain"), 5, nil, false, crdt.ProposalRejected, 3, "threshold not met: 2 yes against 2 no"},
		{"three to one with an abstention", votesOf("m1=yes", "m2=yes", "m3=yes", "m4=no", "m5=abstain"), 5, nil, false, crdt.ProposalPassed, 3, "3 yes, 1 no, 1 abstaining of 5"},
		{"abstentions count toward the quorum", votesOf("m1=yes", "m2=yes", "m3=abstain"), 5, nil, true, crdt.ProposalPassed, 3, ""},
		{"abstentions only", votesOf("m1=abstain", "m2=abstain", "m3=abstain"), 5, nil, true, crdt.ProposalRejected, 3, "threshold not met: 0 yes against 0 no"},
		{"votes of non-members do not count", votesOf("x1=yes", "x2=yes", "x3=yes", "m1=yes"), 5, nil, true, crdt.ProposalRejected, 3, "quorum not reached: 1 of 5"},
		{"an unknown choice does not count", votesOf("m1=yes", "m2=yes", "m3=maybe"), 5, nil, true, crdt.ProposalRejected, 3, "2 of 5"},
		// 0.6 × 5 = 3: three of five is not more than 60%.
		{"threshold 0.6, three of five", votesOf("m1=yes", "m2=yes", "m3=yes", "m4=no", "m5=no"), 5, []string{"proposal.threshold", "0.6"}, false, crdt.ProposalRejected, 3, "more than 60% yes needed"},
		{"threshold 0.6, four of five", votesOf("m1=yes", "m2=yes", "m3=yes", "m4=yes", "m5=no"), 5, []string{"proposal.threshold", "0.6"}, false, crdt.ProposalPassed, 3, ""},
		{"threshold 1 is unanimity", votesOf("m1=yes", "m2=yes", "m3=yes", "m4=yes", "m5=abstain"), 5, []string{"proposal.threshold", "1"}, false, crdt.ProposalPassed, 3, ""},
		{"threshold 1: one no decides at once", votesOf("m1=no"), 5, []string{"proposal.threshold", "1"}, false, crdt.ProposalRejected, 3, "threshold not met"},
		{"quorum 1: everyone must vote", votesOf("m1=yes", "m2=yes", "m3=yes", "m4=yes"), 5, []string{"proposal.quorum", "1"}, true, crdt.ProposalRejected, 5, "quorum not reached: 4 of 5"},
		// 0.7 × 10 is 7.000000000000001 in floating point: still 7 voters.
		{"quorum 0.7 of ten", votesOf("m1=yes", "m2=yes", "m3=yes", "m4=yes", "m5=yes", "m6=yes", "m7=yes"), 10, []string{"proposal.quorum", "0.7"}, true, crdt.ProposalPassed, 7, ""},
		{"quorum 0.1 of three: one voter", votesOf("m2=yes"), 3, []string{"proposal.quorum", "0.1"}, true, crdt.ProposalPassed, 1, ""},
		{"one member decides alone", votesOf("m1=yes"), 1, nil, false, crdt.ProposalPassed, 1, ""},
		{"no active members", votesOf(), 0, nil, false, crdt.ProposalRejected, 1, "quorum not reached: 0 of 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := crdt.Decide(tt.votes, members(tt.active), policies(t, tt.pol...), tt.closed)
			if d.Status != tt.want {
				t.Errorf("Decide() status = %q (%s), want %q", d.Status, d.Reason, tt.want)
			}
			if d.Tally.Needed != tt.wantNeeded || d.Tally.Eligible != tt.active {
				t.Errorf("Decide() tally = %+v, want needed %d of %d", d.Tally, tt.wantNeeded, tt.active)
			}
			if !strings.Contains(d.Reason, tt.reason) || (tt.want == crdt.ProposalOpen) != (d.Reason == "") {
				t.Errorf("Decide() reason = %q, want it to contain %q (and empty only while open)", d.Reason, tt.reason)
			}
		})
	}
}

// TestDecideIsFinal: once Decide decides early, no later votes of the
// members who had not voted change the outcome.
func TestDecideIsFinal(t *testing.T) {
	choices := crdt.VoteChoices
	active := members(4)
	pol := crdt.DefaultPolicies()
	// Every sequence of votes by m1..m4 (each may also not vote).
	options := append([]string{""}, choices...)
	var walk func(i int, votes map[string]string, early string)
	checked := 0
	walk = func(i int, votes map[string]string, early string) {
		d := crdt.Decide(votes, active, pol, false)
		if early != "" && d.Status != early {
			t.Fatalf("votes %v: decided %s early, later %s", votes, early, d.Status)
		}
		if early == "" && d.Status != crdt.ProposalOpen {
			early = d.Status
		}
		if i == len(active) {
			checked++
			closed := crdt.Decide(votes, active, pol, true)
			if early != "" && closed.Status != early {
				t.Fatalf("votes %v: decided %s early, %s at the end", votes, early, closed.Status)
			}
			return
		}
		for _, c := range options {
			next := map[string]string{}
			for k, v := range votes {
				next[k] = v
			}
			if c != "" {
				next[active[i]] = c
			}
			walk(i+1, next, early)
		}
	}
	walk(0, map[string]string{}, "")
	if checked != 625 {
		t.Errorf("checked %d sequences, want 5^4 = 625", checked)
	}
}

func TestNewRoleAndAssign(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	p := crdt.Proposal{ID: "6f1c1a8e-4a3b-4c1e-9a55-0d6f0f7a1b2c", Kind: "role.create", Title: "A treasurer", At: now,
		Payload: map[string]any{"name": "treasurer", "purpose": "keeps the cash box", "term": "2160h", "term_limit": 2}}
	role, err := crdt.NewRole(p, 2)
	if err != nil {
		t.Fatalf("NewRole() = %v", err)
	}
	if role.ID != p.ID || role.Name != "treasurer" || role.Term != 2160*time.Hour || role.TermLimit != 2 || role.Holder != "" {
		t.Errorf("NewRole() = %+v", role)
	}
	p.Payload["term_limit"] = 3
	_, err = crdt.NewRole(p, 2)
	wantRuleError(t, err, crdt.RuleGovernance, "role.term_limit of 2")

	roles := map[string]*crdt.Role{role.ID: role}
	if r, ok := crdt.FindRole(roles, "Treasurer"); !ok || r != role {
		t.Errorf("FindRole(by name) = %v, %v", r, ok)
	}
	if r, ok := crdt.FindRole(roles, role.ID); !ok || r != role {
		t.Errorf("FindRole(by id) = %v, %v", r, ok)
	}
	if _, ok := crdt.FindRole(roles, "cook"); ok {
		t.Errorf("FindRole(cook) found a role")
	}

	first, err := crdt.AssignRole(*role, "alice", now, 2)
	if err != nil {
		t.Fatalf("AssignRole(first) = %v", err)
	}
	if first.Holder != "alice" || first.TermsServed != 1 || !first.TermStart.Equal(now) || !first.TermEnd.Equal(now.Add(2160*time.Hour)) {
		t.Errorf("first term = %+v", first)
	}
	// Renewed a month into the term: the second term follows the first.
	second, err := crdt.AssignRole(first, "alice", now.Add(30*24*time.Hour), 2)
	if err != nil {
		t.Fatalf("AssignRole(second) = %v", err)
	}
	if second.TermsServed != 2 || !second.TermStart.Equal(*first.TermEnd) || !second.TermEnd.Equal(first.TermEnd.Add(2160*time.Hour)) {
		t.Errorf("second term = %+v, want it to start when the first ends", second)
	}
	_, err = crdt.AssignRole(second, "alice", now.Add(200*24*time.Hour), 2)
	wantRuleError(t, err, crdt.RuleGovernance, "term limit is 2")
	// Someone else starts afresh, now.
	later := now.Add(200 * 24 * time.Hour)
	bob, err := crdt.AssignRole(second, "bob", later, 2)
	if err != nil || bob.Holder != "bob" || bob.TermsServed != 1 || !bob.TermStart.Equal(later) {
		t.Errorf("AssignRole(bob) = %+v, %v", bob, err)
	}
	// The charter's limit binds when it is lower than the role's.
	_, err = crdt.AssignRole(first, "alice", now, 1)
	wantRuleError(t, err, crdt.RuleGovernance, "term limit is 1")
}

func TestNewMandate(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	p := crdt.Proposal{ID: "0b7d9a52-4d7e-4a41-8f3e-6b7b1d9e2c11", Kind: "mandate.grant", Title: "A delegate", At: now,
		Payload: map[string]any{"member": "alice", "issue": "the regional seed bank", "scope": "vote on the budget", "deadline": "2026-06-01T00:00:00Z"}}
	m, err := crdt.NewMandate(p, now)
	if err != nil {
		t.Fatalf("NewMandate() = %v", err)
	}
	if m.ID != p.ID || m.Member != "alice" || m.Status != crdt.MandateActive || !m.GrantedAt.Equal(now) || m.Deadline.Month() != time.June {
		t.Errorf("NewMandate() = %+v", m)
	}
	_, err = crdt.NewMandate(p, time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC))
	wantRuleError(t, err, crdt.RuleGovernance, "already passed")
}

func TestRatifyDraft(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ch := crdt.Charter{Name: "Tool Library", Policies: crdt.DefaultPolicies(), Status: crdt.CharterNeedsRatification, Version: 1}
	_, err := crdt.RatifyDraft(ch, crdt.CharterDraftText{Text: "  "}, now)
	wantRuleError(t, err, crdt.RuleGovernance, "draft is empty")
	got, err := crdt.RatifyDraft(ch, crdt.CharterDraftText{Text: "We lend tools.", Principles: []string{"share", "rotate"}}, now)
	if err != nil {
		t.Fatalf("RatifyDraft() = %v", err)
	}
	if got.Text != "We lend tools." || len(got.Principles) != 2 || got.Version != 2 || got.Status != crdt.CharterRatified ||
		!got.RatifiedAt.Equal(now) || !got.ExpiresAt.Equal(now.Add(8760*time.Hour)) {
		t.Errorf("RatifyDraft() = %+v", got)
	}
	// It survives a write and a read.
	doc := automerge.New()
	if err := crdt.PutCharter(doc, got); err != nil {
		t.Fatal(err)
	}
	back, err := crdt.ReadCharter(mustReload(t, doc))
	if err != nil || back.Text != got.Text || back.Version != 2 {
		t.Errorf("ReadCharter() = %+v, %v", back, err)
	}
}

func TestProposalStates(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	doc := automerge.New()
	if err := crdt.InitGovernance(doc); err != nil {
		t.Fatal(err)
	}
	p1 := crdt.ProposalState{
		Proposal: crdt.Proposal{ID: "6f1c1a8e-4a3b-4c1e-9a55-0d6f0f7a1b2c", Kind: "role.create", Title: "A treasurer", At: now,
			Payload: map[string]any{"name": "treasurer", "purpose": "", "term": "2160h", "term_limit": 2}},
		Author: "alice", OpenedAt: now, ClosesAt: now.Add(168 * time.Hour),
	}
	p2 := p1
	p2.Proposal = crdt.Proposal{ID: "0b7d9a52-4d7e-4a41-8f3e-6b7b1d9e2c11", Kind: "charter.ratify", Title: "Ratify", At: now}
	p2.OpenedAt = now.Add(-time.Hour)
	for _, p := range []crdt.ProposalState{p1, p2} {
		if err := crdt.OpenProposal(doc, p); err != nil {
			t.Fatalf("OpenProposal(%s) = %v", p.ID, err)
		}
	}
	if err := crdt.OpenProposal(doc, p1); !errors.Is(err, crdt.ErrEntryExists) {
		t.Errorf("OpenProposal(again) = %v, want ErrEntryExists", err)
	}
	bad := p1
	bad.Proposal.ID = "1b7d9a52-4d7e-4a41-8f3e-6b7b1d9e2c11"
	bad.Payload = map[string]any{"name": "x"}
	wantRuleError(t, crdt.OpenProposal(doc, bad), crdt.RuleSchema, "payload.")

	vote := crdt.CastVote{Choice: "yes", Reason: "we need one", At: now.Add(time.Minute)}
	if err := crdt.AddVote(doc, p1.ID, "bob", vote); err != nil {
		t.Fatalf("AddVote() = %v", err)
	}
	if err := crdt.AddVote(doc, p1.ID, "bob", crdt.CastVote{Choice: "no", At: now}); !errors.Is(err, crdt.ErrVoted) {
		t.Errorf("AddVote(second) = %v, want ErrVoted", err)
	}
	if err := crdt.AddVote(doc, "2b7d9a52-4d7e-4a41-8f3e-6b7b1d9e2c11", "bob", vote); !errors.Is(err, crdt.ErrNoProposal) {
		t.Errorf("AddVote(unknown proposal) = %v, want ErrNoProposal", err)
	}
	wantRuleError(t, crdt.AddVote(doc, p1.ID, "carol", crdt.CastVote{Choice: "maybe", At: now}), crdt.RuleSchema, "choice")
	if err := crdt.DecideProposal(doc, p1.ID, crdt.ProposalPassed, "3 yes", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := crdt.MarkApplied(doc, p1.ID); err != nil {
		t.Fatal(err)
	}

	// Votes on a proposal not opened yet wait for it.
	p3 := "3b7d9a52-4d7e-4a41-8f3e-6b7b1d9e2c11"
	if err := crdt.AddPendingVote(doc, p3, "carol", crdt.CastVote{Choice: "object", At: now}); err != nil {
		t.Fatal(err)
	}
	if err := crdt.AddPendingVote(doc, p3, "carol", crdt.CastVote{Choice: "yes", At: now}); !errors.Is(err, crdt.ErrVoted) {
		t.Errorf("AddPendingVote(second) = %v, want ErrVoted", err)
	}
	doc = mustReload(t, doc)
	pending, err := crdt.TakePendingVotes(doc, p3)
	if err != nil || len(pending) != 1 || pending["carol"].Choice != "object" {
		t.Errorf("TakePendingVotes() = %v, %v; want carol's first vote", pending, err)
	}
	if again, err := crdt.TakePendingVotes(doc, p3); err != nil || len(again) != 0 {
		t.Errorf("TakePendingVotes(again) = %v, %v; want none", again, err)
	}

	all, err := crdt.ReadProposalStates(mustReload(t, doc))
	if err != nil {
		t.Fatalf("ReadProposalStates() = %v", err)
	}
	if len(all) != 2 || all[0].ID != p2.ID || all[1].ID != p1.ID {
		t.Fatalf("ReadProposalStates() = %+v, want p2 (opened earlier) then p1", all)
	}
	got := all[1]
	if got.Status != crdt.ProposalPassed || !got.Applied || got.Reason != "3 yes" || got.DecidedAt == nil || got.Author != "alice" ||
		!got.ClosesAt.Equal(p1.ClosesAt) || got.Votes["bob"].Choice != "yes" || got.Votes["bob"].Reason != "we need one" ||
		got.Payload["term_limit"] != float64(2) || !got.Proposal.Same(p1.Proposal) {
		t.Errorf("proposal read back = %+v", got)
	}
	if c := got.Choices(); len(c) != 1 || c["bob"] != "yes" {
		t.Errorf("Choices() = %v", c)
	}
	if all[0].Status != crdt.ProposalOpen || all[0].Applied || all[0].DecidedAt != nil {
		t.Errorf("open proposal read back = %+v", all[0])
	}
	if _, ok, err := crdt.LookupProposalState(doc, p3); ok || err != nil {
		t.Errorf("LookupProposalState(unknown) = %v, %v", ok, err)
	}
}
