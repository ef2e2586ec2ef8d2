package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

func rolesOf(t *testing.T, url string, d *servertest.Device, status string) map[string]wire.Role {
	t.Helper()
	var l wire.RoleList
	servertest.MustGetJSON(t, url, d, "/v1/roles?status="+status, &l)
	out := map[string]wire.Role{}
	for _, role := range l.Roles {
		out[role.Name] = role
	}
	return out
}

// TestRoleChangeAndRetire: in a circle of two, a role is changed (its
// running term kept), refused changes are rejected with the reason, and a
// retired role leaves the active list, stays in the retired one, and can
// no longer be assigned while its name can be taken again.
func TestRoleChangeAndRetire(t *testing.T) {
	c, _, _, devs := resetCircle(t, "Alice", "Bob")
	url := c.URL()
	alice, bob := devs[0], devs[1]
	pass := func(kind, title string, payload map[string]any) wire.Proposal {
		t.Helper()
		p := mustPropose(t, url, alice, kind, title, payload)
		mustVote(t, url, alice, p.ID, "yes")
		return mustVote(t, url, bob, p.ID, "yes")
	}
	servertest.RunScenarios(t, url, []servertest.Scenario{
		{Name: "a change of nothing", Method: "POST", Path: "/v1/proposals", Token: alice.Token, Body: wire.ProposalRequest{ID: uuid.NewString(), Kind: "role.change", Title: "x", Payload: map[string]any{"role": "cook"}}, WantStatus: http.StatusBadRequest, WantContains: []string{"at least one of"}},
		{Name: "a change to an empty name", Method: "POST", Path: "/v1/proposals", Token: alice.Token, Body: wire.ProposalRequest{ID: uuid.NewString(), Kind: "role.change", Title: "x", Payload: map[string]any{"role": "cook", "name": ""}}, WantStatus: http.StatusBadRequest, WantContains: []string{"payload.name"}},
		{Name: "a change to a short term", Method: "POST", Path: "/v1/proposals", Token: alice.Token, Body: wire.ProposalRequest{ID: uuid.NewString(), Kind: "role.change", Title: "x", Payload: map[string]any{"role": "cook", "term": "1m"}}, WantStatus: http.StatusBadRequest, WantContains: []string{"payload.term"}},
		{Name: "a retirement of no role", Method: "POST", Path: "/v1/proposals", Token: alice.Token, Body: wire.ProposalRequest{ID: uuid.NewString(), Kind: "role.retire", Title: "x", Payload: map[string]any{}}, WantStatus: http.StatusBadRequest, WantContains: []string{"payload.role"}},
	})

	cook := pass("role.create", "A cook", map[string]any{"name": "cook", "purpose": "meals", "term": "720h", "term_limit": 1})
	if p := pass("role.assign", "Bob cooks", map[string]any{"role": "cook", "member": bob.Member}); p.Status != "passed" {
		t.Fatalf("role.assign: %s (%s)", p.Status, p.Reason)
	}
	before := roles(t, url, alice)["cook"]
	change := pass("role.change", "Chef, longer terms", map[string]any{"role": "cook", "name": "chef", "purpose": "hot meals", "term": "1440h", "term_limit": 2})
	if change.Status != "passed" || !change.Applied {
		t.Fatalf("role.change: %s (%s)", change.Status, change.Reason)
	}
	chef, ok := roles(t, url, alice)["chef"]
	if !ok || chef.ID != cook.ID || chef.Purpose != "hot meals" || chef.Term != "1440h0m0s" || chef.TermLimit != 2 || chef.Status != "active" ||
		chef.Holder != bob.Member || chef.TermsServed != 1 || !chef.TermEnd.Equal(*before.TermEnd) {
		t.Fatalf("the role after role.change = %+v, want chef, 1440h, limit 2, Bob still in the term he started", chef)
	}
	if p := pass("role.change", "Too many terms", map[string]any{"role": "chef", "term_limit": 9}); p.Status != "rejected" || !strings.Contains(p.Reason, "role.term_limit") {
		t.Errorf("a term limit above the charter's: %s (%s), want rejected", p.Status, p.Reason)
	}
	pass("role.create", "A baker", map[string]any{"name": "baker", "purpose": "", "term": "720h", "term_limit": 1})
	if p := pass("role.change", "Chef bakes", map[string]any{"role": "chef", "name": "Baker"}); p.Status != "rejected" || !strings.Contains(p.Reason, "already exists") {
		t.Errorf("a change to a name taken: %s (%s), want rejected", p.Status, p.Reason)
	}

	retire := pass("role.retire", "No more chef", map[string]any{"role": "chef"})
	if retire.Status != "passed" || !retire.Applied {
		t.Fatalf("role.retire: %s (%s)", retire.Status, retire.Reason)
	}
	if _, ok := roles(t, url, alice)["chef"]; ok {
		t.Errorf("GET /v1/roles still lists the retired chef")
	}
	old, ok := rolesOf(t, url, alice, "retired")["chef"]
	if !ok || old.Status != "retired" || old.Holder != "" || old.TermsServed != 0 || old.RetiredAt == nil {
		t.Errorf("GET /v1/roles?status=retired chef = %+v, %v, want vacant and retired", old, ok)
	}
	if all := rolesOf(t, url, alice, "all"); len(all) != 2 {
		t.Errorf("GET /v1/roles?status=all lists %d roles, want 2 (baker, chef)", len(all))
	}
	if r := servertest.Call(t, url, "GET", "/v1/roles?status=gone", alice.Token, nil); r.Status != http.StatusBadRequest {
		t.Errorf("GET /v1/roles?status=gone = %d, want 400", r.Status)
	}
	if p := pass("role.assign", "Alice cooks", map[string]any{"role": cook.ID, "member": alice.Member}); p.Status != "rejected" || !strings.Contains(p.Reason, "retired") {
		t.Errorf("assigning a retired role: %s (%s), want rejected", p.Status, p.Reason)
	}
	if p := pass("role.retire", "Again", map[string]any{"role": cook.ID}); p.Status != "rejected" || !strings.Contains(p.Reason, "already retired") {
		t.Errorf("retiring a retired role: %s (%s), want rejected", p.Status, p.Reason)
	}
	if p := pass("role.create", "A new chef", map[string]any{"name": "Chef", "purpose": "", "term": "720h", "term_limit": 1}); p.Status != "passed" {
		t.Errorf("a new role with a retired role's name: %s (%s), want passed", p.Status, p.Reason)
	}

	audit := auditKinds(t, url, alice)
	wantAudit(t, audit, crdt.AuditRoleChanged, change.ID, `"chef"`, "1440h", "term_limit")
	wantAudit(t, audit, crdt.AuditRoleRetired, retire.ID, cook.ID, bob.Member)
}

// TestMemberAdmit: a passed member.admit makes a one-time member invite
// that only the proposal's author sees; the newcomer joins with it under
// the admitted name, and it works once.
func TestMemberAdmit(t *testing.T) {
	c, clk, _, devs := resetCircle(t, "Alice", "Bob")
	url := c.URL()
	alice, bob := devs[0], devs[1]
	if r := propose(t, url, alice, uuid.NewString(), "member.admit", "x", map[string]any{"name": " "}); r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "payload.name") {
		t.Errorf("member.admit without a name: %d %s, want 400", r.Status, r.Body)
	}
	admit := mustPropose(t, url, alice, "member.admit", "Dora joins", map[string]any{"name": "Dora"})
	mustVote(t, url, alice, admit.ID, "yes")
	if p := getProposal(t, url, alice, admit.ID); p.Invite != nil {
		t.Fatalf("an open member.admit shows an invite: %+v", p.Invite)
	}
	if p := mustVote(t, url, bob, admit.ID, "yes"); p.Status != "passed" || !p.Applied || p.Invite != nil {
		t.Fatalf("member.admit after two yes, to Bob: %+v, want passed and applied, with no invite for Bob", p)
	}
	p := getProposal(t, url, alice, admit.ID)
	if p.Invite == nil || p.Invite.Code == "" || p.Invite.Name != "Dora" || p.Invite.UsedAt != nil || !p.Invite.ExpiresAt.Equal(p.DecidedAt.Add(7*24*time.Hour)) {
		t.Fatalf("member.admit to its author: invite %+v, want an unused code for Dora valid 7 days", p.Invite)
	}
	code := p.Invite.Code
	// Nobody else sees the code, anywhere.
	for _, path := range []string{"/v1/proposals/" + admit.ID, "/v1/proposals", "/v1/audit?limit=1000"} {
		if r := servertest.Call(t, url, "GET", path, bob.Token, nil); r.Status != http.StatusOK || strings.Contains(string(r.Body), code) {
			t.Errorf("GET %s by Bob = %d, shows the invite code: %v", path, r.Status, strings.Contains(string(r.Body), code))
		}
	}
	if r := servertest.Call(t, url, "GET", "/v1/audit?limit=1000", alice.Token, nil); strings.Contains(string(r.Body), code) {
		t.Errorf("the audit log holds the invite code")
	}
	var list wire.ProposalList
	servertest.MustGetJSON(t, url, alice, "/v1/proposals?status=passed", &list)
	if len(list.Proposals) != 1 || list.Proposals[0].Invite == nil || list.Proposals[0].Invite.Code != code {
		t.Errorf("GET /v1/proposals to the author = %+v, want the invite", list.Proposals)
	}

	dora := servertest.MustEnroll(t, url, code, "Someone else")
	servertest.MustRefresh(t, url, c.CircleID, dora, clk.Now())
	found := false
	for _, m := range servertest.MustCircle(t, url, dora).Members {
		found = found || (m.MemberID == dora.Member && m.Name == "Dora")
	}
	if !found {
		t.Errorf("the newcomer is not a member named Dora")
	}
	if p := getProposal(t, url, alice, admit.ID); p.Invite == nil || p.Invite.UsedAt == nil {
		t.Errorf("the invite after Dora joined = %+v, want used", p.Invite)
	}
	if r := servertest.Call(t, url, "POST", "/v1/enroll", "", servertest.MustJSON(t, wire.EnrollRequest{Invite: code, MemberName: "Eve", DeviceName: "phone", PublicKey: make([]byte, 32), ActorID: "abcd"})); r.Status != http.StatusForbidden {
		t.Errorf("a second use of the invite = %d %s, want 403", r.Status, r.Body)
	}
	audit := auditKinds(t, url, alice)
	wantAudit(t, audit, crdt.AuditMemberAdmitted, admit.ID, "Dora", alice.Member)
	wantAudit(t, audit, crdt.AuditMemberEnrolled, admit.ID, dora.Member)
}

// TestPolicySetCreditLimit: the circle sets its credit limit by a
// policy.set proposal; transfers are judged against it at once.
func TestPolicySetCreditLimit(t *testing.T) {
	c, _, _, devs := resetCircle(t, "Alice", "Bob")
	url := c.URL()
	alice, bob := devs[0], devs[1]
	if r := propose(t, url, alice, uuid.NewString(), "policy.set", "x", map[string]any{"name": "credit.limit", "value": "lots"}); r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "credit.limit") {
		t.Errorf("credit.limit=lots: %d %s, want 400", r.Status, r.Body)
	}
	// 4 h is within the default limit of 20.
	if r, got := postCredit(t, url, alice, creditBody(uuid.NewString(), bob.Member, 4, "2026-03-01T10:00:00Z")); r.Status != http.StatusCreated || got.OverLimit {
		t.Fatalf("credit before the policy = %d %s, want within the limit", r.Status, r.Body)
	}
	p := mustPropose(t, url, alice, "policy.set", "Three hours of credit", map[string]any{"name": "credit.limit", "value": "3"})
	mustVote(t, url, alice, p.ID, "yes")
	if p := mustVote(t, url, bob, p.ID, "yes"); p.Status != "passed" || !p.Applied {
		t.Fatalf("policy.set credit.limit: %s (%s)", p.Status, p.Reason)
	}
	var bal wire.Balances
	servertest.MustGetJSON(t, url, alice, "/v1/balances", &bal)
	for _, b := range bal.Members {
		if b.CreditLimit != 3 || b.CreditOverLimit != (b.MemberID == alice.Member) {
			t.Errorf("%s after credit.limit=3: limit %v over %v, want 3 and over only for Alice (-4)", b.Name, b.CreditLimit, b.CreditOverLimit)
		}
	}
	over := uuid.NewString()
	if r, got := postCredit(t, url, bob, creditBody(over, alice.Member, 8, "2026-03-02T10:00:00Z")); r.Status != http.StatusCreated || !got.OverLimit || got.FromBalance != -4 {
		t.Fatalf("Bob's 8 h with a limit of 3 = %d %s, want flagged at -4", r.Status, r.Body)
	}
	audit := auditKinds(t, url, alice)
	wantAudit(t, audit, crdt.AuditPolicySet, p.ID, "credit.limit", `"3"`)
	wantAudit(t, audit, crdt.AuditCreditOverLimit, over, `"limit":3`)
	n := 0
	for _, e := range audit {
		if e.Kind == crdt.AuditCreditOverLimit {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d credit.over_limit entries, want 1: lowering the limit is no breach by Alice's old transfer", n)
	}
	var raw json.RawMessage
	servertest.MustGetJSON(t, url, alice, "/v1/charter", &raw)
	if !strings.Contains(string(raw), `"credit.limit":"3"`) {
		t.Errorf("GET /v1/charter = %s, want credit.limit 3", raw)
	}
}
