package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/google/uuid"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/mobile-api/client"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

func propose(t *testing.T, url string, d *servertest.Device, id, kind, title string, payload map[string]any) servertest.Response {
	t.Helper()
	return servertest.Call(t, url, "POST", "/v1/proposals", d.Token, servertest.MustJSON(t, wire.ProposalRequest{ID: id, Kind: kind, Title: title, Payload: payload}))
}

func mustPropose(t *testing.T, url string, d *servertest.Device, kind, title string, payload map[string]any) wire.Proposal {
	t.Helper()
	r := propose(t, url, d, uuid.NewString(), kind, title, payload)
	if r.Status != http.StatusCreated {
		t.Fatalf("propose %s: %d %s", kind, r.Status, r.Body)
	}
	var p wire.Proposal
	_ = json.Unmarshal(r.Body, &p)
	return p
}

func vote(t *testing.T, url string, d *servertest.Device, id, choice string) servertest.Response {
	t.Helper()
	return servertest.Call(t, url, "POST", "/v1/proposals/"+id+"/votes", d.Token, servertest.MustJSON(t, wire.VoteRequest{Choice: choice, Reason: "because " + choice}))
}

// mustVote votes and returns the proposal's status after the vote.
func mustVote(t *testing.T, url string, d *servertest.Device, id, choice string) wire.Proposal {
	t.Helper()
	r := vote(t, url, d, id, choice)
	if r.Status != http.StatusOK {
		t.Fatalf("vote %s on %s: %d %s", choice, id, r.Status, r.Body)
	}
	var p wire.Proposal
	_ = json.Unmarshal(r.Body, &p)
	return p
}

func getProposal(t *testing.T, url string, d *servertest.Device, id string) wire.Proposal {
	t.Helper()
	r := servertest.Call(t, url, "GET", "/v1/proposals/"+id, d.Token, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET proposal %s: %d %s", id, r.Status, r.Body)
	}
	var p wire.Proposal
	_ = json.Unmarshal(r.Body, &p)
	return p
}

func roles(t *testing.T, url string, d *servertest.Device) map[string]wire.Role {
	t.Helper()
	r := servertest.Call(t, url, "GET", "/v1/roles", d.Token, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /v1/roles: %d %s", r.Status, r.Body)
	}
	var l wire.RoleList
	_ = json.Unmarshal(r.Body, &l)
	out := map[string]wire.Role{}
	for _, role := range l.Roles {
		out[role.Name] = role
	}
	return out
}

func auditKinds(t *testing.T, url string, d *servertest.Device) []wire.AuditEntry {
	t.Helper()
	r := servertest.Call(t, url, "GET", "/v1/audit?limit=1000", d.Token, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /v1/audit: %d %s", r.Status, r.Body)
	}
	var page wire.AuditPage
	_ = json.Unmarshal(r.Body, &page)
	return page.Entries
}

// wantAudit checks that the audit log has an entry of kind whose data
// mentions every one of words.
func wantAudit(t *testing.T, entries []wire.AuditEntry, kind string, words ...string) {
	t.Helper()
	for _, e := range entries {
		if e.Kind != kind {
			continue
		}
		all := true
		for _, w := range words {
			all = all && strings.Contains(string(e.Data), w)
		}
		if all {
			return
		}
	}
	t.Errorf("no audit entry %s mentioning %v", kind, words)
}

// followEvents subscribes to GET /v1/events and returns the channel of
// event types it hears.
func followEvents(t *testing.T, url string, d *servertest.Device) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+d.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/events: %v %v", err, resp)
	}
	events := make(chan string, 64)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if ev, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				events <- ev
			}
		}
	}()
	return events
}

func treasurer(limit int) map[string]any {
	return map[string]any{"name": "treasurer", "purpose": "keeps the cash box", "term": "2160h", "term_limit": limit}
}

// TestProposalsByREST walks a circle of four (quorum 0.5: two voters)
// through proposals made and voted over REST: a role is created once
// everyone has voted, a member is assigned to it when the period ends with
// three of four votes, an objection blocks a policy, too few votes reject
// at the end, and every decision is in the audit log.
func TestProposalsByREST(t *testing.T) {
	c, clk, _, devs := resetCircle(t, "Alice", "Bob", "Carol", "Dave")
	url := c.URL()
	alice, bob, carol, dave := devs[0], devs[1], devs[2], devs[3]

	// Opening, retrying, refusing.
	id := uuid.NewString()
	r := propose(t, url, alice, id, "role.create", "A treasurer", treasurer(2))
	if r.Status != http.StatusCreated {
		t.Fatalf("POST /v1/proposals: %d %s", r.Status, r.Body)
	}
	var create wire.Proposal
	_ = json.Unmarshal(r.Body, &create)
	if create.Status != "open" || create.Author != alice.Member || !create.ClosesAt.Equal(create.OpenedAt.Add(168*time.Hour)) || create.Tally.Needed != 2 || create.Tally.Eligible != 4 {
		t.Errorf("created proposal = %+v, want open, by Alice, closing 168h after it opened, needing 2 of 4", create)
	}
	servertest.RunScenarios(t, url, []servertest.Scenario{
		{Name: "the same again: a safe retry", Method: "POST", Path: "/v1/proposals", Token: alice.Token, Body: wire.ProposalRequest{ID: id, Kind: "role.create", Title: "A treasurer", Payload: treasurer(2)}, WantStatus: 200},
		{Name: "the same id, another title", Method: "POST", Path: "/v1/proposals", Token: alice.Token, Body: wire.ProposalRequest{ID: id, Kind: "role.create", Title: "A cashier", Payload: treasurer(2)}, WantStatus: 409, WantContains: []string{"conflict"}},
		{Name: "the same id by someone else", Method: "POST", Path: "/v1/proposals", Token: bob.Token, Body: wire.ProposalRequest{ID: id, Kind: "role.create", Title: "A treasurer", Payload: treasurer(2)}, WantStatus: 409, WantContains: []string{"conflict"}},
		{Name: "a term that is no duration", Method: "POST", Path: "/v1/proposals", Token: alice.Token, Body: wire.ProposalRequest{ID: uuid.NewString(), Kind: "role.create", Title: "x", Payload: map[string]any{"name": "x", "purpose": "", "term": "soon", "term_limit": 1}}, WantStatus: 400, WantContains: []string{"payload.term"}},
		{Name: "a missing payload field", Method: "POST", Path: "/v1/proposals", Token: alice.Token, Body: wire.ProposalRequest{ID: uuid.NewString(), Kind: "role.assign", Title: "x", Payload: map[string]any{"role": "x"}}, WantStatus: 400, WantContains: []string{"payload.member"}},
		{Name: "a nested payload value", Method: "POST", Path: "/v1/proposals", Token: alice.Token, Body: map[string]any{"id": uuid.NewString(), "kind": "policy.set", "title": "x", "payload": map[string]any{"name": "reset.quorum", "value": map[string]any{"n": 4}}}, WantStatus: 400, WantContains: []string{"payload.value"}},
		{Name: "an unknown policy", Method: "POST", Path: "/v1/proposals", Token: alice.Token, Body: wire.ProposalRequest{ID: uuid.NewString(), Kind: "policy.set", Title: "x", Payload: map[string]any{"name": "coffee.strength", "value": "9"}}, WantStatus: 400, WantContains: []string{"coffee.strength"}},
		{Name: "an unknown kind", Method: "POST", Path: "/v1/proposals", Token: alice.Token, Body: wire.ProposalRequest{ID: uuid.NewString(), Kind: "king.crown", Title: "x"}, WantStatus: 400, WantContains: []string{"kind"}},
		{Name: "an id that is no UUID", Method: "POST", Path: "/v1/proposals", Token: alice.Token, Body: wire.ProposalRequest{ID: "one", Kind: "charter.ratify", Title: "x"}, WantStatus: 400, WantContains: []string{"id"}},
	})
	if r := servertest.Call(t, url, "GET", "/v1/proposals", "", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("GET /v1/proposals without a token: %d, want 401", r.Status)
	}
	if r := servertest.Call(t, url, "GET", "/v1/proposals/"+uuid.NewString(), alice.Token, nil); r.Status != http.StatusNotFound {
		t.Errorf("GET an unknown proposal: %d, want 404", r.Status)
	}
	if r := vote(t, url, alice, uuid.NewString(), "yes"); r.Status != http.StatusNotFound {
		t.Errorf("vote on an unknown proposal: %d, want 404", r.Status)
	}
	if r := vote(t, url, alice, id, "perhaps"); r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "choice") {
		t.Errorf("vote perhaps: %d %s, want 400 naming choice", r.Status, r.Body)
	}

	// Three yes: still open, since Dave may object until the period ends.
	for _, d := range []*servertest.Device{alice, bob, carol} {
		if p := mustVote(t, url, d, id, "yes"); p.Status != "open" {
			t.Fatalf("after %s's yes: %s (%s), want open", d.Member, p.Status, p.Reason)
		}
	}
	if r := vote(t, url, alice, id, "no"); r.Status != http.StatusConflict {
		t.Errorf("a second vote: %d %s, want 409", r.Status, r.Body)
	}
	if _, ok := roles(t, url, alice)["treasurer"]; ok {
		t.Fatalf("the role exists before the proposal passed")
	}
	// Dave's vote settles it: passed and carried out at once.
	p := mustVote(t, url, dave, id, "yes")
	if p.Status != "passed" || !p.Applied || p.DecidedAt == nil || p.Tally.Yes != 4 || len(p.Votes) != 4 || p.Votes[bob.Member].Reason != "because yes" {
		t.Fatalf("after the fourth yes: %+v, want passed and applied with 4 votes", p)
	}
	role, ok := roles(t, url, alice)["treasurer"]
	if !ok || role.ID != id || role.Term != "2160h0m0s" || role.TermLimit != 2 || role.Holder != "" {
		t.Fatalf("roles after role.create = %+v, want a vacant treasurer with the proposal's id", role)
	}
	if r := vote(t, url, dave, id, "no"); r.Status != http.StatusConflict {
		t.Errorf("a vote on a passed proposal: %d, want 409", r.Status)
	}

	// Assigning Bob: three of four vote yes; it passes when the period ends.
	assign := mustPropose(t, url, carol, "role.assign", "Bob keeps the cash", map[string]any{"role": "treasurer", "member": bob.Member})
	for _, d := range []*servertest.Device{alice, bob, carol} {
		mustVote(t, url, d, assign.ID, "yes")
	}
	if err := c.Server.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p := getProposal(t, url, alice, assign.ID); p.Status != "open" {
		t.Fatalf("role.assign before its period ended: %s, want open", p.Status)
	}
	clk.Set(8*day + 169*time.Hour)
	for _, d := range devs {
		servertest.MustRefresh(t, url, c.CircleID, d, clk.Now())
	}
	if r := vote(t, url, dave, assign.ID, "object"); r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "closed") {
		t.Errorf("an objection after the period: %d %s, want 409 (closed)", r.Status, r.Body)
	}
	if err := c.Server.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p := getProposal(t, url, alice, assign.ID); p.Status != "passed" || !p.Applied {
		t.Fatalf("role.assign after its period: %+v, want passed and applied", p)
	}
	role = roles(t, url, alice)["treasurer"]
	if role.Holder != bob.Member || role.TermsServed != 1 || role.TermStart == nil || role.TermEnd == nil || !role.TermEnd.Equal(role.TermStart.Add(2160*time.Hour)) {
		t.Errorf("treasurer after role.assign = %+v, want Bob for a first term of 2160h", role)
	}

	// An objection blocks a policy at once, whatever the others say.
	policy := mustPropose(t, url, alice, "policy.set", "Shorter votes", map[string]any{"name": "proposal.period", "value": "24h"})
	mustVote(t, url, alice, policy.ID, "yes")
	mustVote(t, url, bob, policy.ID, "yes")
	if p := mustVote(t, url, carol, policy.ID, "object"); p.Status != "rejected" || !strings.Contains(p.Reason, "objection") {
		t.Fatalf("after an objection: %s (%s), want rejected by the objection", p.Status, p.Reason)
	}
	if r := vote(t, url, dave, policy.ID, "yes"); r.Status != http.StatusConflict {
		t.Errorf("a vote on a rejected proposal: %d, want 409", r.Status)
	}
	if p := mustPropose(t, url, alice, "charter.ratify", "Too early", nil); !p.ClosesAt.Equal(p.OpenedAt.Add(168 * time.Hour)) {
		t.Errorf("after a blocked policy.set the period is %v, want still 168h", p.ClosesAt.Sub(p.OpenedAt))
	}

	// Too few votes: rejected when the period ends.
	lonely := mustPropose(t, url, dave, "mandate.grant", "Dave to the council", map[string]any{
		"member": dave.Member, "issue": "regional council", "scope": "vote on the budget", "deadline": clk.Now().Add(30 * day).Format(time.RFC3339)})
	mustVote(t, url, dave, lonely.ID, "yes")
	clk.Set(8*day + 169*time.Hour + 8*day)
	for _, d := range devs {
		servertest.MustRefresh(t, url, c.CircleID, d, clk.Now())
	}
	if err := c.Server.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p := getProposal(t, url, alice, lonely.ID); p.Status != "rejected" || !strings.Contains(p.Reason, "quorum not reached: 1 of 4") {
		t.Errorf("a proposal with one vote of four after its period: %s (%s), want rejected for the quorum", p.Status, p.Reason)
	}
	var list wire.ProposalList
	_ = json.Unmarshal(servertest.Call(t, url, "GET", "/v1/proposals?status=rejected", alice.Token, nil).Body, &list)
	if len(list.Proposals) != 3 { // the blocked policy, the early ratification (too few votes) and the lonely mandate
		t.Errorf("GET /v1/proposals?status=rejected lists %d, want 3", len(list.Proposals))
	}
	if r := servertest.Call(t, url, "GET", "/v1/proposals?status=maybe", alice.Token, nil); r.Status != http.StatusBadRequest {
		t.Errorf("?status=maybe: %d, want 400", r.Status)
	}

	audit := auditKinds(t, url, alice)
	wantAudit(t, audit, crdt.AuditProposalOpened, id, "role.create")
	wantAudit(t, audit, crdt.AuditProposalDecided, id, `"passed"`)
	wantAudit(t, audit, crdt.AuditRoleCreated, id, "treasurer")
	wantAudit(t, audit, crdt.AuditProposalDecided, assign.ID, `"passed"`)
	wantAudit(t, audit, crdt.AuditRoleAssigned, assign.ID, bob.Member)
	wantAudit(t, audit, crdt.AuditProposalDecided, policy.ID, `"rejected"`, "objection")
	wantAudit(t, audit, crdt.AuditProposalDecided, lonely.ID, `"rejected"`, "quorum")
}

// TestProposalEffects: in a circle of two, every vote settles a proposal
// at once. It checks the term limit, policy.set, mandates, the
// ratification of the draft and the removal of a member.
func TestProposalEffects(t *testing.T) {
	c, _, _, devs := resetCircle(t, "Alice", "Bob")
	url := c.URL()
	alice, bob := devs[0], devs[1]
	events := followEvents(t, url, bob)
	pass := func(kind, title string, payload map[string]any) wire.Proposal {
		t.Helper()
		p := mustPropose(t, url, alice, kind, title, payload)
		mustVote(t, url, alice, p.ID, "yes")
		return mustVote(t, url, bob, p.ID, "yes")
	}

	if p := pass("role.create", "A cook", map[string]any{"name": "cook", "purpose": "", "term": "720h", "term_limit": 1}); p.Status != "passed" {
		t.Fatalf("role.create: %s (%s)", p.Status, p.Reason)
	}
	var heard []string
	for timeout := time.After(5 * time.Second); len(heard) < 2; {
		select {
		case ev := <-events:
			heard = append(heard, ev)
		case <-timeout:
			t.Fatalf("events heard %v, want proposal.opened and proposal.decided", heard)
		}
	}
	if strings.Join(heard, " ") != "proposal.opened proposal.decided" {
		t.Errorf("events heard %v, want proposal.opened then proposal.decided", heard)
	}
	if p := pass("role.create", "Another cook", map[string]any{"name": "Cook", "purpose": "", "term": "720h", "term_limit": 1}); p.Status != "rejected" || !strings.Contains(p.Reason, "already exists") {
		t.Errorf("a second role named cook: %s (%s), want rejected", p.Status, p.Reason)
	}
	if p := pass("role.create", "Too long", map[string]any{"name": "steward", "purpose": "", "term": "720h", "term_limit": 5}); p.Status != "rejected" || !strings.Contains(p.Reason, "role.term_limit") {
		t.Errorf("a term limit above the charter's: %s (%s), want rejected", p.Status, p.Reason)
	}
	if p := pass("role.assign", "Bob cooks", map[string]any{"role": "cook", "member": bob.Member}); p.Status != "passed" {
		t.Fatalf("role.assign: %s (%s)", p.Status, p.Reason)
	}
	again := pass("role.assign", "Bob cooks again", map[string]any{"role": "cook", "member": bob.Member})
	if again.Status != "rejected" || !strings.Contains(again.Reason, "term limit is 1") || again.Applied {
		t.Errorf("a second consecutive term beyond the limit: %s (%s), want rejected for the term limit", again.Status, again.Reason)
	}
	if role := roles(t, url, alice)["cook"]; role.Holder != bob.Member || role.TermsServed != 1 {
		t.Errorf("cook after the refused renewal = %+v, want Bob still in his first term", role)
	}
	if p := pass("role.assign", "Nobody", map[string]any{"role": "cook", "member": "m_nobody"}); p.Status != "rejected" || !strings.Contains(p.Reason, "not an active member") {
		t.Errorf("assigning a stranger: %s (%s)", p.Status, p.Reason)
	}

	// policy.set changes the charter and the server's policies at once.
	if p := pass("policy.set", "Shorter votes", map[string]any{"name": "proposal.period", "value": "24h"}); p.Status != "passed" {
		t.Fatalf("policy.set: %s (%s)", p.Status, p.Reason)
	}
	if p := mustPropose(t, url, alice, "member.remove", "probe", map[string]any{"member": "m_nobody"}); !p.ClosesAt.Equal(p.OpenedAt.Add(24 * time.Hour)) {
		t.Errorf("after policy.set proposal.period=24h, a new proposal closes %v after it opened", p.ClosesAt.Sub(p.OpenedAt))
	}

	// Mandates: granted, then recalled.
	grant := pass("mandate.grant", "Alice to the council", map[string]any{"member": alice.Member, "issue": "regional council", "scope": "the budget", "deadline": time.Now().Add(90 * day).UTC().Format(time.RFC3339)})
	if grant.Status != "passed" {
		t.Fatalf("mandate.grant: %s (%s)", grant.Status, grant.Reason)
	}
	mandates := func() []wire.Mandate {
		var l wire.MandateList
		_ = json.Unmarshal(servertest.Call(t, url, "GET", "/v1/mandates", alice.Token, nil).Body, &l)
		return l.Mandates
	}
	if m := mandates(); len(m) != 1 || m[0].ID != grant.ID || m[0].Member != alice.Member || m[0].Status != "active" || m[0].Issue != "regional council" {
		t.Fatalf("mandates after the grant = %+v", m)
	}
	if p := pass("mandate.recall", "Recall", map[string]any{"mandate": grant.ID}); p.Status != "passed" {
		t.Fatalf("mandate.recall: %s (%s)", p.Status, p.Reason)
	}
	if m := mandates(); len(m) != 1 || m[0].Status != "recalled" {
		t.Errorf("mandates after the recall = %+v, want recalled", m)
	}

	// Ratifying an empty draft is refused; a written one is copied.
	if p := pass("charter.ratify", "Ratify the empty draft", nil); p.Status != "rejected" || !strings.Contains(p.Reason, "draft is empty") {
		t.Errorf("ratifying an empty draft: %s (%s)", p.Status, p.Reason)
	}
	draft := servertest.MustCircle(t, url, alice).Docs[string(crdt.KindCharterDraft)]
	msg := servertest.MustChangeMessage(t, url, alice, draft, alice.Actor, func(d *automerge.Doc) error {
		v, err := d.Path("text").Get()
		if err != nil {
			return err
		}
		if err := v.Text().Insert(0, "We lend tools to each other."); err != nil {
			return err
		}
		return d.Path("principles").List().Append("Every role rotates.")
	})
	if r := servertest.Call(t, url, "POST", "/v1/sync", alice.Token, servertest.SyncBody(t, wire.SyncMessage{Doc: draft, Data: msg})); r.Status != http.StatusOK {
		t.Fatalf("draft edit: %d %s", r.Status, r.Body)
	}
	ratify := pass("charter.ratify", "Ratify", nil)
	if ratify.Status != "passed" {
		t.Fatalf("charter.ratify: %s (%s)", ratify.Status, ratify.Reason)
	}
	doc, _ := servertest.MustPull(t, url, alice, servertest.MustCircle(t, url, alice).Docs["charter"], automerge.NewActorID())
	ch, err := crdt.ReadCharter(doc)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Text != "We lend tools to each other." || len(ch.Principles) != 1 || ch.Principles[0] != "Every role rotates." ||
		ch.Version != 1 || ch.Status != crdt.CharterRatified || ch.RatifiedAt == nil || ch.ExpiresAt == nil ||
		!ch.ExpiresAt.Equal(ch.RatifiedAt.Add(8760*time.Hour)) || ch.Policies["proposal.period"] != "24h" {
		t.Errorf("charter after ratification = %+v", ch)
	}

	// Removing Bob: his token stops working at once.
	if p := pass("member.remove", "Bob leaves", map[string]any{"member": bob.Member}); p.Status != "passed" {
		t.Fatalf("member.remove: %s (%s)", p.Status, p.Reason)
	}
	if r := servertest.Call(t, url, "GET", "/v1/proposals", bob.Token, nil); r.Status != http.StatusUnauthorized {
		t.Errorf("a removed member's call: %d, want 401", r.Status)
	}
	if role := roles(t, url, alice)["cook"]; role.Holder != "" || role.TermsServed != 0 {
		t.Errorf("cook after Bob left = %+v, want vacant", role)
	}
	// Alice alone decides now.
	if p := mustVote(t, url, alice, mustPropose(t, url, alice, "role.create", "A gardener", map[string]any{"name": "gardener", "purpose": "", "term": "720h", "term_limit": 1}).ID, "yes"); p.Status != "passed" || p.Tally.Eligible != 1 {
		t.Errorf("after Bob left, Alice's yes: %s with %d eligible, want passed with 1", p.Status, p.Tally.Eligible)
	}

	audit := auditKinds(t, url, alice)
	wantAudit(t, audit, crdt.AuditProposalDecided, again.ID, "term limit")
	wantAudit(t, audit, crdt.AuditPolicySet, "proposal.period", "24h")
	wantAudit(t, audit, crdt.AuditMandateGranted, grant.ID)
	wantAudit(t, audit, crdt.AuditMandateRecalled, grant.ID)
	wantAudit(t, audit, crdt.AuditCharterRatified, ratify.ID)
	wantAudit(t, audit, crdt.AuditMemberRemoved, bob.Member)
}

// TestProposalsFromBallots: proposals and votes written offline on Go
// devices into their ballots documents count once synced, also a vote
// that arrives before the proposal it is on, and the decision survives a
// restart.
func TestProposalsFromBallots(t *testing.T) {
	ctx := context.Background()
	c, clk, phones := joinPhones(t, "Ballot Circle", "P", 3)
	first := phones[0]
	api, err := first.Client()
	if err != nil {
		t.Fatal(err)
	}
	waitFor := func(id string, cond func(*wire.Proposal) bool) *wire.Proposal {
		t.Helper()
		var p *wire.Proposal
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			p, err = api.Proposal(ctx, id)
			if err == nil && cond(p) {
				return p
			}
		}
		t.Fatalf("proposal %s: %+v, %v", id, p, err)
		return nil
	}

	// P1 votes on a proposal P0 has made offline and not synced yet (the
	// id was agreed at a meeting): the vote waits for the proposal.
	prop, err := first.Propose(crdt.Proposal{Kind: "role.create", Title: "A librarian", Payload: map[string]any{"name": "librarian", "purpose": "lends the books", "term": "2160h", "term_limit": 2}})
	if err != nil {
		t.Fatalf("Propose offline: %v", err)
	}
	if _, err := phones[1].Vote(prop.ID, "yes", "finally", clk.Now()); err != nil {
		t.Fatalf("Vote offline: %v", err)
	}
	if _, err := phones[1].Sync(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := first.Sync(ctx, nil); err != nil {
		t.Fatal(err)
	}
	p := waitFor(prop.ID, func(p *wire.Proposal) bool { return len(p.Votes) == 1 })
	if p.Status != "open" || p.Author != first.Info().MemberID || p.Votes[phones[1].Info().MemberID].Choice != "yes" {
		t.Fatalf("proposal from P0's ballots = %+v, want open with P1's waiting vote", p)
	}
	if _, err := first.Vote(prop.ID, "yes", "", clk.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := first.Vote(prop.ID, "no", "", clk.Now()); err == nil {
		t.Errorf("a second vote on the same proposal was written")
	}
	if _, err := phones[2].Vote(prop.ID, "yes", "", clk.Now()); err != nil {
		t.Fatal(err)
	}
	for _, ph := range []*client.Device{first, phones[2]} {
		if _, err := ph.Sync(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	p = waitFor(prop.ID, func(p *wire.Proposal) bool { return p.Status != "open" && p.Applied })
	if p.Status != "passed" || p.Tally.Yes != 3 {
		t.Fatalf("after three yes from ballots: %+v, want passed", p)
	}
	if rl, err := api.Roles(ctx, ""); err != nil || len(rl.Roles) != 1 || rl.Roles[0].Name != "librarian" || rl.Roles[0].ID != prop.ID {
		t.Fatalf("roles = %+v, %v, want the librarian", rl, err)
	}

	// A REST vote and an offline one by the same member: the first counts.
	second, err := api.CreateProposal(ctx, wire.ProposalRequest{ID: uuid.NewString(), Kind: "role.assign", Title: "P2 lends the books", Payload: map[string]any{"role": "librarian", "member": phones[2].Info().MemberID}})
	if err != nil {
		t.Fatal(err)
	}
	p2api, err := phones[2].Client()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p2api.CastVote(ctx, second.ID, wire.VoteRequest{Choice: "no"}); err != nil {
		t.Fatal(err)
	}
	if _, err := phones[2].Vote(second.ID, "yes", "", clk.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := phones[2].Sync(ctx, nil); err != nil {
		t.Fatalf("the sync of a vote already cast over REST must not fail: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	if p, err := api.Proposal(ctx, second.ID); err != nil || p.Votes[phones[2].Info().MemberID].Choice != "no" {
		t.Errorf("P2's vote = %+v, %v; want the REST no", p, err)
	}

	// The decided proposal is still decided after a restart.
	c.Stop()
	c.Start()
	if p, err := api.Proposal(ctx, prop.ID); err != nil || p.Status != "passed" || !p.Applied {
		t.Errorf("after a restart: %+v, %v", p, err)
	}
}
