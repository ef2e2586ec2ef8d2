package browser_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/circles-coop/circles/federation/hub"
	"github.com/circles-coop/circles/server"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// TestBrowserFederation: two circles join a federation hub (operator
// mode, on loopback) by proposal; the first names its founder delegate (a
// mandate scoped to the federation). A new member of the second circle
// opens the phone app's Federation screen and sees both member circles,
// the first circle's delegate, and the credit balances.
func TestBrowserFederation(t *testing.T) {
	ph := mustPhone(t)
	dir := t.TempDir()
	res, err := hub.Init(dir, "Food alliance", time.Now())
	if err != nil {
		t.Fatalf("hub.Init: %v", err)
	}
	h, err := hub.Open(context.Background(), hub.Config{DataDir: dir, Listen: "127.0.0.1:0", LeafListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("hub.Open: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	fast := servertest.WithConfig(func(c *server.Config) { c.FederationWatch = 100 * time.Millisecond })
	orchard, bakery := servertest.Start(t, "Orchard", fast), servertest.Start(t, "Bakery", fast)
	oFounder := mustEnroll(t, orchard.URL(), orchard.FounderInvite, "Olive")
	bFounder := mustEnroll(t, bakery.URL(), bakery.FounderInvite, "Basil")

	decide := func(m *member, kind string, payload map[string]any) {
		t.Helper()
		var p wire.Proposal
		m.call(t, http.MethodPost, "/v1/proposals", wire.ProposalRequest{ID: uuid.NewString(), Kind: kind, Title: kind, Payload: payload}, http.StatusCreated, &p)
		m.call(t, http.MethodPost, "/v1/proposals/"+p.ID+"/votes", wire.VoteRequest{Choice: "yes"}, http.StatusOK, &p)
		if p.Status != "passed" {
			t.Fatalf("%s is %s (%s), want passed", kind, p.Status, p.Reason)
		}
	}
	hubURL := "http://" + h.HTTPAddr()
	fed := h.FederationID()
	decide(oFounder, "federation.join", map[string]any{"hub": hubURL, "invite": res.Invite})
	inv, err := hub.MakeInvite(context.Background(), dir, time.Hour, time.Now())
	if err != nil {
		t.Fatalf("hub.MakeInvite: %v", err)
	}
	decide(bFounder, "federation.join", map[string]any{"hub": hubURL, "invite": inv.Invite})
	decide(oFounder, "mandate.grant", map[string]any{"member": oFounder.memberID, "issue": "seed swap",
		"scope": "federation:" + fed, "deadline": time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339)})

	// The second circle's replica holds the first's delegate before the
	// phone looks (the screen does not wait for replication).
	deadline := time.Now().Add(20 * time.Second)
	for {
		var v wire.FederationView
		r := servertest.Call(t, bakery.URL(), http.MethodGet, "/v1/federations/"+fed, bFounder.token, nil)
		if r.Status == http.StatusOK && jsonInto(r.Body, &v) && hasDelegate(v, "Olive") && len(v.Circles) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Bakery's replica did not show Orchard's delegate within 20 s: %d %s", r.Status, r.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}

	got := runScript[scriptSummary](t, ph, "federation.mjs", "--link", bFounder.invite(t), "--federation", "Food alliance", "--shots", shotsDir(t))
	for _, want := range []string{"Orchard", "Bakery"} {
		if !slices.ContainsFunc(got.Lines["circles"], func(s string) bool { return strings.HasPrefix(s, want) }) {
			t.Errorf("member circles shown %q, want %s", got.Lines["circles"], want)
		}
	}
	if !slices.ContainsFunc(got.Lines["delegates"], func(s string) bool { return strings.HasPrefix(s, "Olive: seed swap") }) {
		t.Errorf("Orchard's delegates shown %q, want Olive for the seed swap", got.Lines["delegates"])
	}
	if len(got.Lines["balances"]) != 2 {
		t.Errorf("balances shown %q, want one line per circle", got.Lines["balances"])
	}
	if _, ok := got.Axe["federation"]; !ok {
		t.Errorf("axe-core did not check the Federation screen")
	}
}

func hasDelegate(v wire.FederationView, name string) bool {
	for _, c := range v.Circles {
		for _, d := range c.Delegates {
			if d.Name == name {
				return true
			}
		}
	}
	return false
}
