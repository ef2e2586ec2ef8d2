package server_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/automerge/automerge-go"
	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/circles-coop/circles/federation/replica"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

const fedID = "food"

// fedCircle is a circle of the federation test: three members, Alice
// (index 0) the delegate once her mandate is granted.
type fedCircle struct {
	c    *servertest.Circle
	clk  *servertest.Clock
	id   string
	devs []*servertest.Device
	url  string
	port int // the hub's leaf port
}

// startFedHub starts a hub nats-server whose leaf users mirror the
// federation's permission contract: circle X may publish only
// fed.<F>.c.X.> and subscribe to fed.<F>.>. It returns the leaf port.
func startFedHub(t *testing.T, circles ...string) (*natsserver.Server, int) {
	t.Helper()
	opts := &natsserver.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true, ServerName: "hub"}
	opts.LeafNode.Host, opts.LeafNode.Port = "127.0.0.1", -1
	for _, c := range circles {
		opts.Users = append(opts.Users, &natsserver.User{Username: c, Password: c + "-pw", Permissions: &natsserver.Permissions{
			Publish:   &natsserver.SubjectPermission{Allow: []string{replica.CircleSubject(fedID, c, ">")}},
			Subscribe: &natsserver.SubjectPermission{Allow: []string{replica.FederationWildcard(fedID)}},
		}})
	}
	s, err := natsserver.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("hub not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s, opts.LeafNode.Port // nats-server writes the bound port back
}

// linkToHub adds a leaf remote to the circle's embedded nats-server at
// runtime and attaches the circle's replica of the federation: the seam
// the federation link (join) uses.
func linkToHub(t *testing.T, fc *fedCircle, leafPort int) {
	t.Helper()
	fc.port = leafPort
	setLink(t, fc, true)
	n := fc.c.Server.NATS()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := fc.c.Server.Replicas().Attach(ctx, n.Conn(), fedID, "Food alliance"); err != nil {
		t.Fatalf("attach: %v", err)
	}
}

// setLink adds or enables (up) or disables the circle's leaf remote at
// runtime, and waits until the link is in that state.
func setLink(t *testing.T, fc *fedCircle, up bool) {
	t.Helper()
	n := fc.c.Server.NATS()
	opts := n.Options()
	u, _ := url.Parse(fmt.Sprintf("nats-leaf://%s:%s-pw@127.0.0.1:%d", fc.id, fc.id, fc.port))
	opts.LeafNode.Remotes = []*natsserver.RemoteLeafOpts{{URLs: []*url.URL{u}, Disabled: !up}}
	if err := n.Server().ReloadOptions(opts); err != nil {
		t.Fatalf("leaf remote: %v", err)
	}
	want := 0
	if up {
		want = 1
	}
	for deadline := time.Now().Add(10 * time.Second); n.Server().NumLeafNodes() != want; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("circle %s: leaf link not in state %v", fc.id, up)
		}
	}
}

func fedView(t *testing.T, fc *fedCircle) wire.FederationView {
	t.Helper()
	r := servertest.Call(t, fc.url, "GET", "/v1/federations/"+fedID, fc.devs[2].Token, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /v1/federations/%s: %d %s", fedID, r.Status, r.Body)
	}
	var v wire.FederationView
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func delegatesOf(v wire.FederationView, circle string) []wire.FederationDelegate {
	for _, c := range v.Circles {
		if c.CircleID == circle {
			return c.Delegates
		}
	}
	return nil
}

// within polls cond every 20 ms until it holds, failing after d.
func within(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFederated waits until every circle lists every circle, each with
// its delegate.
func waitFederated(t *testing.T, fcs []*fedCircle, mandates []string) {
	t.Helper()
	within(t, 5*time.Second, "every circle to list every circle's delegate", func() bool {
		for _, fc := range fcs {
			v := fedView(t, fc)
			if len(v.Circles) != 3 || v.Circles[0].CircleID != fc.id {
				return false
			}
			for _, o := range fcs {
				d := delegatesOf(v, o.id)
				if len(d) != 1 || d[0].Member != o.devs[0].Member || d[0].Name != "Alice" || d[0].Mandate != mandates[indexOf(fcs, o)] {
					return false
				}
			}
		}
		return true
	})
}

// TestFederationDocs runs three real circles linked to a hub: delegates
// granted by mandates scoped "federation:food" appear everywhere; the
// council's proposals and votes, credits and blueprints go through the
// REST routes; and when a mandate ends — done, recalled, or revoked by a
// hard reset — the other circles stop listing that delegate within 2 s.
// fedSetup starts three circles of three members, a hub, links them, and
// grants each circle's Alice a mandate scoped "federation:food"; it
// returns the circles, the hub's leaf port and the mandates' ids.
func fedSetup(t *testing.T) ([]*fedCircle, int, []string) {
	t.Helper()
	fcs := make([]*fedCircle, 3)
	var ids []string
	for i := range fcs {
		c, clk, id, devs := resetCircle(t, "Alice", "Bob", "Carol")
		if !replica.ValidID(id) {
			t.Fatalf("circle id %q is not a subject token", id)
		}
		fcs[i] = &fedCircle{c: c, clk: clk, id: id, devs: devs, url: c.URL()}
		ids = append(ids, id)
	}
	_, leafPort := startFedHub(t, ids...)
	mandates := make([]string, 3)
	for i, fc := range fcs {
		linkToHub(t, fc, leafPort)
		p := passer(t, fc.url, fc.devs)("mandate.grant", "Food council delegate", map[string]any{
			"member": fc.devs[0].Member, "issue": "food council", "scope": "federation:" + fedID,
			"deadline": fc.clk.Now().Add(60 * day).UTC().Format(time.RFC3339),
		})
		if p.Status != "passed" {
			t.Fatalf("mandate.grant in circle %d: %s (%s)", i, p.Status, p.Reason)
		}
		mandates[i] = p.ID
	}
	return fcs, leafPort, mandates
}

func TestFederationDocs(t *testing.T) {
	fcs, _, mandates := fedSetup(t)
	a, b, c := fcs[0], fcs[1], fcs[2]
	defer func() {
		if t.Failed() {
			for _, fc := range fcs {
				j, _ := json.Marshal(fedView(t, fc))
				t.Logf("view of %s: %s", fc.id, j)
			}
		}
	}()
	waitFederated(t, fcs, mandates)

	// The council.
	expel := map[string]any{"id": "expel-c", "kind": "federation.expel", "title": "Expel C", "payload": map[string]any{"circle_id": c.id}}
	servertest.RunScenarios(t, a.url, []servertest.Scenario{
		{Name: "no token", Method: "GET", Path: "/v1/federations/" + fedID, WantStatus: http.StatusUnauthorized},
		{Name: "unknown federation", Method: "GET", Path: "/v1/federations/energy", Token: a.devs[1].Token, WantStatus: http.StatusNotFound},
		{Name: "not a delegate", Method: "POST", Path: "/v1/federations/" + fedID + "/proposals", Token: a.devs[1].Token, Body: servertest.MustJSON(t, expel), WantStatus: http.StatusForbidden, WantContains: []string{"delegates"}},
		{Name: "unknown kind", Method: "POST", Path: "/v1/federations/" + fedID + "/proposals", Token: a.devs[0].Token, Body: servertest.MustJSON(t, map[string]any{"id": "x", "kind": "charter.amend", "title": "x"}), WantStatus: http.StatusBadRequest},
		{Name: "the delegate", Method: "POST", Path: "/v1/federations/" + fedID + "/proposals", Token: a.devs[0].Token, Body: servertest.MustJSON(t, expel), WantStatus: http.StatusCreated, WantContains: []string{`"status":"open"`, `"author_circle":"` + a.id}},
		{Name: "again: a safe retry", Method: "POST", Path: "/v1/federations/" + fedID + "/proposals", Token: a.devs[0].Token, Body: servertest.MustJSON(t, expel), WantStatus: http.StatusOK},
		{Name: "a vote", Method: "POST", Path: "/v1/federations/" + fedID + "/proposals/expel-c/votes", Token: a.devs[0].Token, Body: []byte(`{"choice":"yes"}`), WantStatus: http.StatusOK, WantContains: []string{`"votes":{"` + a.id + `":"yes"}`}},
		{Name: "a second vote of the circle", Method: "POST", Path: "/v1/federations/" + fedID + "/proposals/expel-c/votes", Token: a.devs[0].Token, Body: []byte(`{"choice":"no"}`), WantStatus: http.StatusConflict},
		{Name: "a credit", Method: "POST", Path: "/v1/federations/" + fedID + "/credits", Token: a.devs[0].Token, Body: servertest.MustJSON(t, map[string]any{"id": "cr1", "to_circle": b.id, "amount": 2.5, "note": "van"}), WantStatus: http.StatusCreated},
		{Name: "a credit by a non-delegate", Method: "POST", Path: "/v1/federations/" + fedID + "/credits", Token: a.devs[2].Token, Body: servertest.MustJSON(t, map[string]any{"id": "cr2", "to_circle": b.id, "amount": 1}), WantStatus: http.StatusForbidden},
		{Name: "a negative credit", Method: "POST", Path: "/v1/federations/" + fedID + "/credits", Token: a.devs[0].Token, Body: servertest.MustJSON(t, map[string]any{"id": "cr3", "to_circle": b.id, "amount": -1}), WantStatus: http.StatusBadRequest},
		{Name: "a blueprint", Method: "POST", Path: "/v1/blueprints", Token: a.devs[1].Token, Body: servertest.MustJSON(t, map[string]any{"id": "audit", "title": "Quarterly audit", "body": "Two members chosen by lot check the books."}), WantStatus: http.StatusCreated},
		{Name: "a blueprint without body", Method: "POST", Path: "/v1/blueprints", Token: a.devs[1].Token, Body: servertest.MustJSON(t, map[string]any{"id": "x", "title": "x"}), WantStatus: http.StatusBadRequest},
	})
	within(t, 5*time.Second, "B to see A's proposal with A's vote", func() bool {
		var l struct{ Proposals []wire.FederationProposal }
		_ = json.Unmarshal(servertest.Call(t, b.url, "GET", "/v1/federations/"+fedID+"/proposals", b.devs[1].Token, nil).Body, &l)
		return len(l.Proposals) == 1 && l.Proposals[0].Votes[a.id] == "yes"
	})
	r := servertest.Call(t, b.url, "POST", "/v1/federations/"+fedID+"/proposals/expel-c/votes", b.devs[0].Token, []byte(`{"choice":"yes"}`))
	if r.Status != http.StatusOK || !json.Valid(r.Body) {
		t.Fatalf("B's vote: %d %s", r.Status, r.Body)
	}
	var p wire.FederationProposal
	_ = json.Unmarshal(r.Body, &p)
	if p.Status != "passed" {
		t.Errorf("after 2 of 3 circles voted yes: %s, want passed", p.Status)
	}
	// Balances agree everywhere and sum to zero.
	within(t, 5*time.Second, "balances to agree", func() bool {
		var first string
		for _, fc := range fcs {
			r := servertest.Call(t, fc.url, "GET", "/v1/federations/"+fedID+"/balances", fc.devs[1].Token, nil)
			var bs struct{ Balances []wire.FederationBalance }
			_ = json.Unmarshal(r.Body, &bs)
			sum := 0.0
			for _, x := range bs.Balances {
				sum += x.Balance
			}
			if len(bs.Balances) != 3 || math.Abs(sum) > 1e-9 {
				return false
			}
			if first == "" {
				first = string(r.Body)
			} else if string(r.Body) != first {
				return false
			}
		}
		return true
	})
	// Adopting A's blueprint in C credits A.
	within(t, 5*time.Second, "C to adopt A's blueprint", func() bool {
		r := servertest.Call(t, c.url, "POST", "/v1/blueprints/audit/adopt", c.devs[1].Token, servertest.MustJSON(t, map[string]any{"federation": fedID, "circle_id": a.id}))
		return r.Status == http.StatusCreated && json.Valid(r.Body) && containsAll(string(r.Body), `"origin":{"federation":"food","circle_id":"`+a.id+`","blueprint":"audit"}`)
	})

	// Mandates end; the others stop listing the delegate within 2 s.
	gone := func(who *fedCircle, start time.Time) {
		t.Helper()
		for _, o := range fcs {
			if o == who {
				continue
			}
			within(t, 2*time.Second-time.Since(start), "circle "+o.id+" to stop listing "+who.id+"'s delegate", func() bool {
				return len(delegatesOf(fedView(t, o), who.id)) == 0
			})
		}
	}
	// Done.
	start := time.Now()
	if r := servertest.Call(t, a.url, "POST", "/v1/mandates/"+mandates[0]+"/done", a.devs[0].Token, nil); r.Status != http.StatusOK {
		t.Fatalf("mandate done: %d %s", r.Status, r.Body)
	}
	gone(a, start)
	// Recalled.
	rp := mustPropose(t, b.url, b.devs[1], "mandate.recall", "Recall the food delegate", map[string]any{"mandate": mandates[1]})
	for _, d := range b.devs[1:] {
		mustVote(t, b.url, d, rp.ID, "yes")
	}
	start = time.Now()
	if p := mustVote(t, b.url, b.devs[0], rp.ID, "yes"); p.Status != "passed" {
		t.Fatalf("recall: %s (%s)", p.Status, p.Reason)
	}
	gone(b, start)
	// Revoked by a hard reset.
	now := c.clk.Now()
	for i, d := range c.devs {
		if i == 2 {
			start = time.Now()
		}
		if r := servertest.Call(t, c.url, "POST", "/v1/resets/signatures", d.Token, resetStatement(t, c.id, d, 0, now)); r.Status != http.StatusAccepted {
			t.Fatalf("reset signature %d: %d %s", i, r.Status, r.Body)
		}
	}
	gone(c, start)
	// Past its deadline (no scheduler tick needed: a mandate is not
	// active past its deadline, and the replica rereads its delegates).
	p2 := passer(t, a.url, a.devs)("mandate.grant", "Short delegate", map[string]any{
		"member": a.devs[1].Member, "issue": "harvest fair", "scope": "federation:" + fedID,
		"deadline": a.clk.Now().Add(day).UTC().Format(time.RFC3339),
	})
	if p2.Status != "passed" {
		t.Fatalf("mandate.grant: %s (%s)", p2.Status, p2.Reason)
	}
	within(t, 2*time.Second, "B to list A's new delegate", func() bool { return len(delegatesOf(fedView(t, b), a.id)) == 1 })
	start = time.Now()
	a.clk.Set(8*day + 2*day) // resetCircle's clock starts at 8 days
	gone(a, start)
	for _, d := range a.devs {
		servertest.MustRefresh(t, a.url, a.id, d, a.clk.Now())
	}
	// A former delegate can no longer act for the circle.
	if r := servertest.Call(t, a.url, "POST", "/v1/federations/"+fedID+"/credits", a.devs[0].Token, servertest.MustJSON(t, map[string]any{"id": "cr9", "to_circle": b.id, "amount": 1})); r.Status != http.StatusForbidden {
		t.Errorf("a credit by a former delegate: %d %s, want 403", r.Status, r.Body)
	}
}

func indexOf(fcs []*fedCircle, x *fedCircle) int {
	for i, f := range fcs {
		if f == x {
			return i
		}
	}
	return -1
}

func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}

// balances is GET /v1/federations/food/balances at fc, by circle.
func balances(t *testing.T, fc *fedCircle) map[string]float64 {
	t.Helper()
	r := servertest.Call(t, fc.url, "GET", "/v1/federations/"+fedID+"/balances", fc.devs[1].Token, nil)
	var bs struct{ Balances []wire.FederationBalance }
	if r.Status != http.StatusOK || json.Unmarshal(r.Body, &bs) != nil {
		t.Fatalf("balances: %d %s", r.Status, r.Body)
	}
	out := map[string]float64{}
	for _, b := range bs.Balances {
		out[b.CircleID] = b.Balance
	}
	return out
}

// TestFederationPartition: circle C's link stops; A and C both change
// through the API; C still answers from its replica; once the link is
// back every circle converges with nothing lost. A change forged on A's
// own subject with B's actor is refused by the others.
func TestFederationPartition(t *testing.T) {
	fcs, _, mandates := fedSetup(t)
	a, b, c := fcs[0], fcs[1], fcs[2]
	waitFederated(t, fcs, mandates)
	setLink(t, c, false)
	post := func(fc *fedCircle, d *servertest.Device, path string, body any, want int) {
		t.Helper()
		if r := servertest.Call(t, fc.url, "POST", path, d.Token, servertest.MustJSON(t, body)); r.Status != want {
			t.Fatalf("POST %s: %d %s, want %d", path, r.Status, r.Body, want)
		}
	}
	post(a, a.devs[0], "/v1/federations/"+fedID+"/credits", map[string]any{"id": "a-c", "to_circle": c.id, "amount": 4, "note": "seedlings"}, http.StatusCreated)
	post(a, a.devs[0], "/v1/federations/"+fedID+"/proposals", map[string]any{"id": "van", "kind": "federation.text", "title": "Share a van"}, http.StatusCreated)
	post(c, c.devs[0], "/v1/federations/"+fedID+"/credits", map[string]any{"id": "c-a", "to_circle": a.id, "amount": 1.5, "note": "offline"}, http.StatusCreated)
	post(c, c.devs[1], "/v1/blueprints", map[string]any{"id": "lots", "title": "Roles by lot", "body": "Draw the facilitator each month."}, http.StatusCreated)
	within(t, 5*time.Second, "C to notice it is cut off", func() bool { return !fedView(t, c).Connected })
	if v := fedView(t, c); len(v.Circles) != 3 || len(delegatesOf(v, a.id)) != 1 {
		t.Errorf("C's view while cut off: %+v, want its replica of all three", v)
	}
	within(t, 5*time.Second, "B to hold A's credit", func() bool { return balances(t, b)[a.id] == -4 })
	time.Sleep(200 * time.Millisecond)
	if bal := balances(t, b); bal[c.id] != 4 || bal[a.id] != -4 {
		t.Errorf("B's balances while C is cut off: %v, want A -4, C +4 (C's own credit not yet)", bal)
	}
	setLink(t, c, true)
	within(t, 10*time.Second, "every circle to converge", func() bool {
		want := map[string]float64{a.id: -4 + 1.5, b.id: 0, c.id: 4 - 1.5}
		for _, fc := range fcs {
			bal := balances(t, fc)
			for id, w := range want {
				if math.Abs(bal[id]-w) > 1e-9 {
					return false
				}
			}
			var l struct{ Proposals []wire.FederationProposal }
			_ = json.Unmarshal(servertest.Call(t, fc.url, "GET", "/v1/federations/"+fedID+"/proposals", fc.devs[1].Token, nil).Body, &l)
			if len(l.Proposals) != 1 {
				return false
			}
			for _, cv := range fedView(t, fc).Circles {
				if cv.CircleID == c.id && (len(cv.Blueprints) != 1 || cv.Blueprints[0].ID != "lots") {
					return false
				}
			}
		}
		return true
	})

	// Forged: A's own NATS publishes on A's subject a change written with
	// B's federation actor.
	d := automerge.New()
	if err := d.SetActorID(replica.ActorFor(fedID, b.id)); err != nil {
		t.Fatal(err)
	}
	_ = d.RootMap().Set("profile", `{"name":"Forged"}`)
	if _, err := d.Commit("forged"); err != nil {
		t.Fatal(err)
	}
	chs, _ := d.Changes()
	raw := chs[0].Save()
	msg := append(binary.AppendUvarint(nil, uint64(len(raw))), raw...)
	if err := a.c.Server.NATS().Conn().Publish(replica.CircleSubject(fedID, a.id, replica.SuffixChanges), msg); err != nil {
		t.Fatal(err)
	}
	rb, err := b.c.Server.Replicas().Replica(fedID)
	if err != nil {
		t.Fatal(err)
	}
	within(t, 5*time.Second, "B to refuse the forged change", func() bool { return rb.Refused() >= 1 })
	for _, cv := range fedView(t, b).Circles {
		if cv.Name != "Reset Circle" {
			t.Errorf("B's view of %s after a forged change: name %q", cv.CircleID, cv.Name)
		}
	}
}
