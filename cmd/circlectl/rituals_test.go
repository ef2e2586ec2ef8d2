package main

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/circles-coop/circles/server/servertest"
)

// TestRunRituals drives a Tuesday meeting through circlectl against a
// real circle: the meeting is called and its facilitator drawn, only the
// facilitator records the minutes, each member checks in once, the
// summary shows counts; stepping down from a role one does not hold is
// refused and the honours list is shown.
func TestRunRituals(t *testing.T) {
	c := servertest.Start(t, "Tool Library")
	homes := map[string]string{"Ana": t.TempDir(), "Ben": t.TempDir(), "Cleo": t.TempDir()}
	must := func(who string, wantCode int, want string, args ...string) string {
		t.Helper()
		code, stdout, stderr := runCLI(t, append([]string{"--home", homes[who]}, args...)...)
		t.Logf("%s: circlectl %s\n%s%s", who, strings.Join(args, " "), stdout, stderr)
		if code != wantCode || !strings.Contains(stdout+stderr, want) {
			t.Fatalf("%s: circlectl %s = %d %q %q, want %d with %q", who, strings.Join(args, " "), code, stdout, stderr, wantCode, want)
		}
		return stdout
	}
	must("Ana", exitOK, "as Ana", "join", c.URL(), c.FounderInvite, "--name", "Ana")
	for _, n := range []string{"Ben", "Cleo"} {
		out := must("Ana", exitOK, "invite code: ", "invite", "--no-qr")
		code := regexp.MustCompile(`invite code: +(\S+)`).FindStringSubmatch(out)[1]
		must(n, exitOK, "as "+n, "join", c.URL(), code, "--name", n)
	}
	for n := range homes {
		must(n, exitOK, "synced", "sync")
	}

	must("Ana", exitUsage, "want new TITLE", "meeting")
	out := must("Ana", exitOK, "facilitator: ", "meeting", "new", "Tuesday", "evening", "--at", time.Now().UTC().Format(time.RFC3339))
	id := regexp.MustCompile(`\(id (\S+)\)`).FindStringSubmatch(out)[1]
	fac := regexp.MustCompile(`facilitator: (\S+),`).FindStringSubmatch(out)[1]
	if homes[fac] == "" {
		t.Fatalf("facilitator %q is not one of the members", fac)
	}
	var other string
	for n := range homes {
		if n != fac {
			other = n
		}
	}
	must(other, exitError, "only the meeting's facilitator", "meeting", "minutes", id, "--text", "we met")
	must(fac, exitUsage, "--text", "meeting", "minutes", id)
	must(fac, exitOK, "decision (external): ask the council for the hall", "meeting", "minutes", id, "--text", "we met", "--local", "a repair café in April", "--external", "ask the council for the hall")

	must(other, exitOK, "autonomy: 50% of 2 decisions made here (1 local, 1 external)", "scorecard")
	must(other, exitOK, "sufficiency: no needs declared", "scorecard")
	must("Ana", exitOK, "check open", "meeting", "check", id, "--least-heard", "the budget", "--dominant", "Ben")
	must("Ana", exitError, "already checked in", "meeting", "check", id)
	must("Ben", exitError, "no single member", "meeting", "check", id, "--dominant", "Zed")
	must("Ben", exitOK, "2 members so far", "meeting", "check", id, "--dominant", "Ben")
	must("Cleo", exitOK, "check closed", "meeting", "check", id)
	out = must("Cleo", exitOK, "Ben named 2 times", "meeting", "show", id)
	if !strings.Contains(out, "resting from facilitation: Ben") || !strings.Contains(out, "least heard: the budget") {
		t.Errorf("summary %q: want Ben resting and the moment", out)
	}
	must("Ben", exitOK, "1 meeting", "meetings")
	must("Ben", exitError, "no role", "step-down", "nope")
	must("Ben", exitOK, "0 honours", "honours")
	must("Ben", exitOK, "synced", "sync")
	must("Ben", exitOK, "verified", "audit", "verify")
}
