package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/circles-coop/circles/federation/hub"
	"github.com/circles-coop/circles/server/servertest"
)

// TestRunFederation joins a circle to a hub and leaves it again through
// circlectl: the proposals are made offline, delivered by sync, and take
// effect once passed; status and show ask the server.
func TestRunFederation(t *testing.T) {
	dir := t.TempDir()
	res, err := hub.Init(dir, "Garden network", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	h, err := hub.Open(context.Background(), hub.Config{DataDir: dir, Listen: "127.0.0.1:0", LeafListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	c := servertest.Start(t, "Allotment")
	home := t.TempDir()
	must := func(wantCode int, want string, args ...string) string {
		t.Helper()
		code, stdout, stderr := runCLI(t, append([]string{"--home", home}, args...)...)
		if code != wantCode || !strings.Contains(stdout+stderr, want) {
			t.Fatalf("circlectl %s = %d %q %q, want %d with %q", strings.Join(args, " "), code, stdout, stderr, wantCode, want)
		}
		return stdout
	}
	eventually := func(want string, args ...string) string {
		t.Helper()
		var out string
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(400 * time.Millisecond) {
			var errOut string
			_, out, errOut = runCLI(t, append([]string{"--home", home}, args...)...)
			out += errOut
			if strings.Contains(out, want) {
				return out
			}
		}
		t.Fatalf("circlectl %s = %q, want it to contain %q", strings.Join(args, " "), out, want)
		return ""
	}
	idOf := func(out string) string {
		t.Helper()
		m := regexp.MustCompile(`\(proposal (\S+)\)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no proposal id in %q", out)
		}
		return m[1]
	}
	hubURL := "http://" + h.HTTPAddr()
	fed := h.FederationID()

	must(exitOK, "as Ada", "join", c.URL(), c.FounderInvite, "--name", "Ada")
	must(exitOK, "in no federation", "federation", "status")
	must(exitUsage, "want join HUB_URL INVITE", "federation", "join", hubURL)
	must(exitUsage, "unknown federation command", "federation", "annex")
	must(exitError, "payload.hub", "federation", "join", "ftp://hub", res.Invite)
	must(exitError, "payload.federation", "federation", "leave", "fed.>")

	p := idOf(must(exitOK, "proposed federation.join", "federation", "join", hubURL, res.Invite))
	must(exitOK, "voted yes", "vote", p, "yes")
	must(exitOK, "synced", "sync")
	eventually(fed+"  Garden network  joined  up", "federation", "status")
	must(exitOK, "Federation Garden network ("+fed+"): joined, link up", "federation", "show", fed)
	must(exitOK, "Allotment", "federation", "show", fed)
	must(exitError, "no federation nope", "federation", "show", "nope")

	p = idOf(must(exitOK, "proposed federation.leave", "federation", "leave", fed))
	must(exitOK, "voted yes", "vote", p, "yes")
	must(exitOK, "synced", "sync")
	eventually("left", "federation", "status")
	if n := len(h.Members()); n != 0 {
		t.Fatalf("the hub still has %d members after the circle left", n)
	}
}
