package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/google/uuid"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// TestMandatesEnd: a delegate marks their mandate done (nobody else may);
// the scheduler writes a mandate expired once its deadline passes; each
// end has its audit entry and event, once; an ended mandate cannot end
// again.
func TestMandatesEnd(t *testing.T) {
	c, clk, _, devs := resetCircle(t, "Alice", "Bob")
	url := c.URL()
	alice, bob := devs[0], devs[1]
	pass := passer(t, url, devs)
	events := followEvents(t, url, alice)
	grant := func(d *servertest.Device, issue string, deadline time.Duration) string {
		t.Helper()
		p := pass("mandate.grant", issue, map[string]any{"member": d.Member, "issue": issue, "scope": "", "deadline": clk.Now().Add(deadline).UTC().Format(time.RFC3339)})
		if p.Status != "passed" {
			t.Fatalf("mandate.grant: %s (%s)", p.Status, p.Reason)
		}
		return p.ID
	}
	council := grant(bob, "regional council", 10*day)
	seeds := grant(alice, "seed exchange", 20*day)
	later := grant(bob, "harvest fair", 30*day)
	done := func(d *servertest.Device, id string) servertest.Response {
		return servertest.Call(t, url, "POST", "/v1/mandates/"+id+"/done", d.Token, nil)
	}

	servertest.RunScenarios(t, url, []servertest.Scenario{
		{Name: "someone else's mandate", Method: "POST", Path: "/v1/mandates/" + council + "/done", Token: alice.Token, WantStatus: http.StatusForbidden, WantContains: []string{"only the delegate"}},
		{Name: "an unknown mandate", Method: "POST", Path: "/v1/mandates/" + uuid.NewString() + "/done", Token: bob.Token, WantStatus: http.StatusNotFound, WantContains: []string{"no mandate"}},
		{Name: "one's own", Method: "POST", Path: "/v1/mandates/" + council + "/done", Token: bob.Token, WantStatus: http.StatusOK, WantContains: []string{`"status":"done"`}},
		{Name: "the same again: a safe retry", Method: "POST", Path: "/v1/mandates/" + council + "/done", Token: bob.Token, WantStatus: http.StatusOK, WantContains: []string{`"status":"done"`}},
	})
	if r := servertest.Call(t, url, "POST", "/v1/mandates/"+council+"/done", "", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("without a token: %d, want 401", r.Status)
	}
	waitEvent(t, events, "mandate.done")
	wantAudit(t, auditKinds(t, url, alice), crdt.AuditMandateDone, council, bob.Member)
	if n := countAudit(auditKinds(t, url, alice), crdt.AuditMandateDone); n != 1 {
		t.Errorf("%d mandate.done entries, want 1", n)
	}
	if p := pass("mandate.recall", "Recall a finished mandate", map[string]any{"mandate": council}); p.Status != "rejected" || !strings.Contains(p.Reason, "already done") {
		t.Errorf("recalling a done mandate: %s (%s), want rejected", p.Status, p.Reason)
	}

	// Past the second deadline the scheduler expires that mandate only.
	moveTo(t, c, clk, 8*day+20*day+time.Minute, devs)
	moveTo(t, c, clk, 8*day+20*day+2*time.Minute, devs)
	doc, _ := servertest.MustPull(t, url, alice, servertest.MustCircle(t, url, alice).Docs["roster"], automerge.NewActorID())
	r, err := crdt.ReadRoster(doc)
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{council: "done", seeds: "expired", later: "active"} {
		if got := r.Mandates[id].Status; got != want {
			t.Errorf("stored status of %s = %s, want %s", r.Mandates[id].Issue, got, want)
		}
	}
	var list wire.MandateList
	_ = json.Unmarshal(servertest.Call(t, url, "GET", "/v1/mandates", alice.Token, nil).Body, &list)
	if len(list.Mandates) != 3 || list.Mandates[1].ID != seeds || list.Mandates[1].Status != "expired" || list.Mandates[0].Status != "done" {
		t.Errorf("GET /v1/mandates = %+v", list.Mandates)
	}
	waitEvent(t, events, "mandate.expired")
	audit := auditKinds(t, url, alice)
	wantAudit(t, audit, crdt.AuditMandateExpired, seeds, alice.Member, "seed exchange")
	if n := countAudit(audit, crdt.AuditMandateExpired); n != 1 {
		t.Errorf("%d mandate.expired entries after two Ticks, want 1", n)
	}
	if r := done(alice, seeds); r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "expired") {
		t.Errorf("marking an expired mandate done: %d %s, want 409", r.Status, r.Body)
	}
}
