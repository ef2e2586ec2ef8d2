package federation_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// TestJoinedCirclesShareDocuments: the two halves of federation together.
// Three circles join an operator-mode hub by proposal (the link); each
// then sees the others' published documents through its own replica
// (GET /v1/federations/{id}) with no other step: a blueprint published in
// one circle reaches the others over the leaf links. A circle that leaves
// stays in the others' view, marked departed, and its own view still
// answers, from its replica, with the link down.
func TestJoinedCirclesShareDocuments(t *testing.T) {
	h, dir, invite := testHub(t)
	hubURL := "http://" + h.HTTPAddr()
	a, b, c := newMember(t, "Alpha"), newMember(t, "Beta"), newMember(t, "Gamma")
	fed := a.join(t, hubURL, invite)
	b.join(t, hubURL, newInvite(t, dir))
	c.join(t, hubURL, newInvite(t, dir))

	view := func(m *member) wire.FederationView {
		t.Helper()
		var v wire.FederationView
		servertest.MustGetJSON(t, m.URL(), m.founder, "/v1/federations/"+fed, &v)
		return v
	}
	// The replica starts within a moment of the join (the link is looked
	// at every half second).
	for _, m := range []*member{a, b, c} {
		waitFor(t, m.name+"'s replica", 5*time.Second, func() bool {
			return servertest.Call(t, m.URL(), http.MethodGet, "/v1/federations/"+fed, m.founder.Token, nil).Status == http.StatusOK
		})
	}
	find := func(v wire.FederationView, circle string) (wire.FederationCircleView, bool) {
		for _, x := range v.Circles {
			if x.CircleID == circle {
				return x, true
			}
		}
		return wire.FederationCircleView{}, false
	}

	servertest.MustCall(t, a.URL(), http.MethodPost, "/v1/blueprints", a.founder.Token,
		wire.Blueprint{ID: "rotation", Title: "How we rotate facilitation", Body: "Drawn, with rest."}, http.StatusCreated, nil)
	for _, m := range []*member{b, c} {
		waitFor(t, m.name+" sees Alpha's blueprint", 10*time.Second, func() bool {
			x, ok := find(view(m), a.CircleID)
			return ok && x.Name == "Alpha" && len(x.Blueprints) == 1 && x.Blueprints[0].ID == "rotation"
		})
	}
	if v := view(b); v.Status != "joined" || !v.Connected {
		t.Errorf("Beta's view of its federation: status %q connected %v, want joined and connected", v.Status, v.Connected)
	}

	p := c.decide(t, "federation.leave", map[string]any{"federation": fed})
	if p.Status != "passed" {
		t.Fatalf("federation.leave is %s (%s), want passed", p.Status, p.Reason)
	}
	for _, m := range []*member{a, b} {
		waitFor(t, m.name+" sees Gamma departed", 15*time.Second, func() bool {
			x, ok := find(view(m), c.CircleID)
			return ok && x.Departed
		})
	}
	v := view(c)
	if v.Status != "left" || v.Connected {
		t.Errorf("Gamma's own view after leaving: status %q connected %v, want left, not connected", v.Status, v.Connected)
	}
	if x, ok := find(v, a.CircleID); !ok || len(x.Blueprints) != 1 {
		t.Errorf("Gamma's replica after leaving lost Alpha's state: %+v", v.Circles)
	}
}

// TestCouncilExpels: the delegates' council decides to expel a circle,
// and the hub carries it out. Each circle's founder is its delegate (a
// mandate scoped to the federation); Alpha proposes to expel Gamma, Alpha
// and Beta vote yes (two of three circles: passed); each tells the hub its
// own vote, signed with its nkey, and the hub, counting them itself,
// revokes Gamma: Gamma's link is cut and it sees itself expelled.
func TestCouncilExpels(t *testing.T) {
	h, dir, invite := testHub(t)
	hubURL := "http://" + h.HTTPAddr()
	a, b, c := newMember(t, "Alpha"), newMember(t, "Beta"), newMember(t, "Gamma")
	fed := a.join(t, hubURL, invite)
	b.join(t, hubURL, newInvite(t, dir))
	c.join(t, hubURL, newInvite(t, dir))
	for _, m := range []*member{a, b, c} {
		m.decide(t, "mandate.grant", map[string]any{"member": m.founder.Member, "issue": "the alliance",
			"scope": "federation:" + fed, "deadline": time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)})
	}
	// Every circle's replica knows the three circles and their delegates.
	for _, m := range []*member{a, b} {
		waitFor(t, m.name+" sees three circles' delegates", 15*time.Second, func() bool {
			r := servertest.Call(t, m.URL(), http.MethodGet, "/v1/federations/"+fed, m.founder.Token, nil)
			var v wire.FederationView
			if r.Status != http.StatusOK || json.Unmarshal(r.Body, &v) != nil || len(v.Circles) != 3 {
				return false
			}
			for _, x := range v.Circles {
				if len(x.Delegates) == 0 {
					return false
				}
			}
			return true
		})
	}
	base := "/v1/federations/" + fed + "/proposals"
	servertest.MustCall(t, a.URL(), http.MethodPost, base, a.founder.Token,
		map[string]any{"id": "expel-gamma", "kind": "federation.expel", "title": "Gamma broke the seed agreement", "payload": map[string]any{"circle_id": c.CircleID}},
		http.StatusCreated, nil)
	servertest.MustCall(t, a.URL(), http.MethodPost, base+"/expel-gamma/votes", a.founder.Token, map[string]string{"choice": "yes"}, http.StatusOK, nil)
	waitFor(t, "Beta sees the proposal", 10*time.Second, func() bool {
		return servertest.Call(t, b.URL(), http.MethodPost, base+"/expel-gamma/votes", b.founder.Token, []byte(`{"choice":"yes"}`)).Status == http.StatusOK
	})
	waitFor(t, "the hub to expel Gamma", 15*time.Second, func() bool { return len(h.Members()) == 2 })
	waitFor(t, "Gamma to see itself expelled", 15*time.Second, func() bool {
		f, ok := c.federation(t, fed)
		return ok && f.Status == "expelled" && !f.Connected
	})
}
