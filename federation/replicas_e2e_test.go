package federation_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	srv "github.com/circles-coop/circles/server"
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

// TestRestoredCircleStaysFederated: a federated circle backed up while
// serving and restored into a new data directory comes back as itself:
// the backup holds its nkey, memberships and credentials and its
// federation stream, so it links to the hub again with no new join, keeps
// what it published, and what it publishes next reaches the others.
func TestRestoredCircleStaysFederated(t *testing.T) {
	h, dir, invite := testHub(t)
	hubURL := "http://" + h.HTTPAddr()
	a, b := newMember(t, "Alpha"), newMember(t, "Beta")
	fed := a.join(t, hubURL, invite)
	b.join(t, hubURL, newInvite(t, dir))
	blueprints := func(m, of *member) []string {
		var v wire.FederationView
		r := servertest.Call(t, m.URL(), http.MethodGet, "/v1/federations/"+fed, m.founder.Token, nil)
		if r.Status != http.StatusOK || json.Unmarshal(r.Body, &v) != nil {
			return nil
		}
		var out []string
		for _, c := range v.Circles {
			if c.CircleID == of.CircleID {
				for _, bp := range c.Blueprints {
					out = append(out, bp.ID)
				}
			}
		}
		return out
	}
	servertest.MustCall(t, a.URL(), http.MethodPost, "/v1/blueprints", a.founder.Token,
		wire.Blueprint{ID: "before", Title: "Written before the backup", Body: "x"}, http.StatusCreated, nil)
	waitFor(t, "Beta sees Alpha's first blueprint", 10*time.Second, func() bool { return len(blueprints(b, a)) == 1 })

	out := filepath.Join(t.TempDir(), "alpha.backup")
	if _, err := srv.BackupFile(context.Background(), a.DataDir, out, nil); err != nil {
		t.Fatalf("BackupFile: %v", err)
	}
	a.Stop()
	restored := filepath.Join(t.TempDir(), "restored")
	if _, err := srv.Restore(context.Background(), restored, out, nil); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	a.MoveTo(restored)
	a.Start()
	waitFor(t, "the restored Alpha to link to the hub again", 15*time.Second, func() bool {
		f, ok := a.federation(t, fed)
		return ok && f.Status == "joined" && f.Connected
	})
	waitFor(t, "the restored Alpha to show its own blueprint from before the backup", 10*time.Second, func() bool { return len(blueprints(a, a)) == 1 })
	servertest.MustCall(t, a.URL(), http.MethodPost, "/v1/blueprints", a.founder.Token,
		wire.Blueprint{ID: "after", Title: "Written after the restore", Body: "y"}, http.StatusCreated, nil)
	waitFor(t, "Beta sees Alpha's second blueprint", 10*time.Second, func() bool { return len(blueprints(b, a)) == 2 })
	if len(h.Members()) != 2 {
		t.Fatalf("hub members after the restore: %v, want the same two circles", h.Members())
	}
}

// TestCouncilVoteToldAfterHubRestart: a circle whose replica sees the
// council's expel pass while the hub is down keeps trying to tell the hub
// its vote, and the hub expels the target once it is back. Beta votes
// (and so decides) while the hub is stopped; it is told of the decision
// once, so only its retries can bring its vote to the hub.
func TestCouncilVoteToldAfterHubRestart(t *testing.T) {
	dir, res, open := stoppableHub(t, "Tool libraries")
	h := open("127.0.0.1:0", "127.0.0.1:0")
	httpAddr, leafAddr := h.HTTPAddr(), h.LeafAddr()
	hubURL := "http://" + httpAddr
	a, b, c := newMember(t, "Alpha"), newMember(t, "Beta"), newMember(t, "Gamma")
	fed := a.join(t, hubURL, res.Invite)
	b.join(t, hubURL, newInvite(t, dir))
	c.join(t, hubURL, newInvite(t, dir))
	for _, m := range []*member{a, b, c} {
		m.decide(t, "mandate.grant", map[string]any{"member": m.founder.Member, "issue": "the alliance",
			"scope": "federation:" + fed, "deadline": time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)})
	}
	base := "/v1/federations/" + fed + "/proposals"
	waitFor(t, "Alpha sees three circles", 15*time.Second, func() bool {
		var v wire.FederationView
		r := servertest.Call(t, a.URL(), http.MethodGet, "/v1/federations/"+fed, a.founder.Token, nil)
		return r.Status == http.StatusOK && json.Unmarshal(r.Body, &v) == nil && len(v.Circles) == 3
	})
	servertest.MustCall(t, a.URL(), http.MethodPost, base, a.founder.Token,
		map[string]any{"id": "expel-gamma", "kind": "federation.expel", "title": "Gamma sold the shared tools", "payload": map[string]any{"circle_id": c.CircleID}},
		http.StatusCreated, nil)
	servertest.MustCall(t, a.URL(), http.MethodPost, base+"/expel-gamma/votes", a.founder.Token, map[string]string{"choice": "yes"}, http.StatusOK, nil)
	waitFor(t, "Beta sees Alpha's yes", 15*time.Second, func() bool {
		var l struct{ Proposals []wire.FederationProposal }
		r := servertest.Call(t, b.URL(), http.MethodGet, base, b.founder.Token, nil)
		return r.Status == http.StatusOK && json.Unmarshal(r.Body, &l) == nil && len(l.Proposals) == 1 && l.Proposals[0].Votes[a.CircleID] == "yes"
	})

	h.Close()
	waitFor(t, "Beta sees the hub gone", 5*time.Second, func() bool { return !b.Server.Federation().Linked(fed) })
	var p wire.FederationProposal
	servertest.MustCall(t, b.URL(), http.MethodPost, base+"/expel-gamma/votes", b.founder.Token, map[string]string{"choice": "yes"}, http.StatusOK, &p)
	if p.Status != "passed" {
		t.Fatalf("Beta's view after its yes: %s, want passed (two of three circles)", p.Status)
	}
	time.Sleep(2 * time.Second) // Beta's first attempt fails while the hub is down

	h = open(httpAddr, leafAddr)
	defer h.Close()
	waitFor(t, "the restarted hub to expel Gamma", 30*time.Second, func() bool { return len(h.Members()) == 2 })
	waitFor(t, "Gamma to see itself expelled", 15*time.Second, func() bool {
		f, ok := c.federation(t, fed)
		return ok && f.Status == "expelled"
	})
}
