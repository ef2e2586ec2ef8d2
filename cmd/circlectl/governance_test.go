package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/circles-coop/circles/server/servertest"
)

// TestRunGovernance drives proposals and votes through circlectl against a
// real circle server: written offline into the ballots documents, counted
// once synced.
func TestRunGovernance(t *testing.T) {
	c := servertest.Start(t, "Tool Library")
	alice, bob := t.TempDir(), t.TempDir()
	must := func(home string, wantCode int, want string, args ...string) string {
		t.Helper()
		code, stdout, stderr := runCLI(t, append([]string{"--home", home}, args...)...)
		t.Logf("circlectl %s\n%s%s", strings.Join(args, " "), stdout, stderr)
		if code != wantCode || !strings.Contains(stdout+stderr, want) {
			t.Fatalf("circlectl %s = %d %q %q, want %d with %q", strings.Join(args, " "), code, stdout, stderr, wantCode, want)
		}
		return stdout
	}
	// eventually repeats a server query until its output holds want: the
	// server counts synced ballots in the background.
	eventually := func(home, want string, args ...string) string {
		t.Helper()
		var out string
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			_, out, _ = runCLI(t, append([]string{"--home", home}, args...)...)
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

	must(alice, exitOK, "as Alice", "join", c.URL(), c.FounderInvite, "--name", "Alice", "--device", "laptop")
	out := must(alice, exitOK, "invite code: ", "invite", "--no-qr")
	code := regexp.MustCompile(`invite code: +(\S+)`).FindStringSubmatch(out)[1]
	must(bob, exitOK, "as Bob", "join", c.URL(), code, "--name", "Bob")
	must(alice, exitOK, "synced", "sync")

	must(alice, exitUsage, "--title", "propose", "role.create")
	must(alice, exitUsage, "want one of", "propose", "king.crown", "--title", "x")
	must(alice, exitError, "payload.term_limit", "propose", "role.create", "--title", "x", "--payload", "name=x", "--payload", "purpose=", "--payload", "term=720h")
	create := idOf(must(alice, exitOK, "proposed role.create", "propose", "role.create", "--title", "A treasurer",
		"--payload", "name=treasurer", "--payload", "purpose=keeps the cash box", "--payload", "term=2160h", "--payload", "term_limit=2"))
	must(alice, exitOK, "voted yes", "vote", create, "yes", "--reason", "we need one")
	must(alice, exitError, "exists", "vote", create, "no")
	must(alice, exitUsage, "want one of", "vote", create, "maybe")
	must(alice, exitOK, "synced", "sync")
	eventually(alice, "you voted yes", "proposals", "--status", "open")

	must(bob, exitOK, "synced", "sync")
	must(bob, exitOK, "voted yes", "vote", create, "yes")
	must(bob, exitOK, "synced", "sync")
	eventually(bob, "treasurer  vacant", "roles")
	eventually(bob, "passed", "proposals")

	// Bob, by name, for the role, by name.
	must(alice, exitOK, "synced", "sync")
	assign := idOf(must(alice, exitOK, "proposed role.assign", "propose", "role.assign", "--title", "Bob keeps the cash", "--payload", "role=treasurer", "--payload", "member=bob"))
	must(alice, exitOK, "voted", "vote", assign, "yes")
	must(alice, exitOK, "synced", "sync")
	must(bob, exitOK, "voted", "vote", assign, "yes")
	must(bob, exitOK, "synced", "sync")
	eventually(alice, "treasurer  Bob", "roles")

	// An objection blocks.
	policy := idOf(must(bob, exitOK, "proposed policy.set", "propose", "policy.set", "--title", "Quicker votes", "--payload", "name=proposal.period", "--payload", "value=24h"))
	must(bob, exitOK, "synced", "sync")
	must(alice, exitOK, "synced", "sync")
	must(alice, exitOK, "standing objection", "vote", policy, "object", "--reason", "a week is fine")
	must(alice, exitOK, "synced", "sync")
	eventually(bob, "blocked by 1 objection", "proposals", "--status", "rejected")
	must(bob, exitOK, "3 proposals", "proposals")

	// Admitting Carol: the invite code goes to Alice, the author, only.
	admit := idOf(must(alice, exitOK, "proposed member.admit", "propose", "member.admit", "--title", "Carol joins", "--payload", "name=Carol"))
	must(alice, exitOK, "voted", "vote", admit, "yes")
	must(alice, exitOK, "synced", "sync")
	must(bob, exitOK, "synced", "sync")
	must(bob, exitOK, "voted", "vote", admit, "yes")
	must(bob, exitOK, "synced", "sync")
	out = eventually(alice, "invite code for Carol: ", "proposals", "--status", "passed")
	invite := regexp.MustCompile(`invite code for Carol: (\S+)`).FindStringSubmatch(out)[1]
	if _, out, _ := runCLI(t, "--home", bob, "proposals"); strings.Contains(out, invite) || strings.Contains(out, "invite code") {
		t.Errorf("Bob sees the invite of Alice's member.admit: %q", out)
	}
	must(t.TempDir(), exitOK, "as Carol", "join", c.URL(), invite, "--name", "Caroline")
	eventually(alice, "your invite for Carol was used", "proposals", "--status", "passed")
}

// TestRunCharter: two members edit the charter draft on their devices,
// offline, at the same time; sync merges both edits; the circle ratifies
// the draft and circlectl charter shows it.
func TestRunCharter(t *testing.T) {
	c := servertest.Start(t, "Tool Library")
	alice, bob := t.TempDir(), t.TempDir()
	must := func(home string, wantCode int, want string, args ...string) string {
		t.Helper()
		code, stdout, stderr := runCLI(t, append([]string{"--home", home}, args...)...)
		t.Logf("circlectl %s\n%s%s", strings.Join(args, " "), stdout, stderr)
		if code != wantCode || !strings.Contains(stdout+stderr, want) {
			t.Fatalf("circlectl %s = %d %q %q, want %d with %q", strings.Join(args, " "), code, stdout, stderr, wantCode, want)
		}
		return stdout
	}
	must(alice, exitOK, "as Alice", "join", c.URL(), c.FounderInvite, "--name", "Alice")
	out := must(alice, exitOK, "invite code: ", "invite", "--no-qr")
	code := regexp.MustCompile(`invite code: +(\S+)`).FindStringSubmatch(out)[1]
	must(bob, exitOK, "as Bob", "join", c.URL(), code, "--name", "Bob")
	must(alice, exitOK, "synced", "sync")

	out = must(alice, exitOK, "Tool Library: charter draft, version 0", "charter")
	if !strings.Contains(out, "credit.limit") || !strings.Contains(out, "has no text yet") {
		t.Errorf("circlectl charter before any ratification = %q, want the policies and no text", out)
	}
	must(alice, exitUsage, "--text", "charter", "edit")
	must(alice, exitUsage, "go with charter edit", "charter", "--text", "x")
	must(alice, exitUsage, "want no argument", "charter", "publish")
	must(alice, exitOK, "has no text yet", "charter", "draft")

	must(alice, exitOK, "edited the charter draft", "charter", "edit", "--text", "We share tools.")
	must(alice, exitOK, "already says that", "charter", "edit", "--text", "We share tools.")
	must(alice, exitOK, "We share tools.", "charter", "draft") // offline: not synced yet
	must(alice, exitOK, "synced", "sync")
	must(bob, exitOK, "synced", "sync")
	must(bob, exitOK, "We share tools.", "charter", "draft")

	// Both edit the same text at the same time, different parts of it.
	must(alice, exitOK, "edited", "charter", "edit", "--text", "We lend tools.")
	file := filepath.Join(t.TempDir(), "draft.txt")
	if err := os.WriteFile(file, []byte("We share tools. We mend them."), 0o600); err != nil {
		t.Fatal(err)
	}
	must(bob, exitOK, "edited", "charter", "edit", "--file", file)
	must(alice, exitOK, "synced", "sync")
	must(bob, exitOK, "synced", "sync")
	must(alice, exitOK, "synced", "sync")
	for _, home := range []string{alice, bob} {
		if out := must(home, exitOK, "text:", "charter", "draft"); !strings.Contains(out, "We lend tools. We mend them.") {
			t.Errorf("the merged draft = %q, want both edits", out)
		}
	}

	ratify := regexp.MustCompile(`\(proposal (\S+)\)`).FindStringSubmatch(must(alice, exitOK, "proposed charter.ratify", "propose", "charter.ratify", "--title", "Our charter"))[1]
	must(alice, exitOK, "voted", "vote", ratify, "yes")
	must(alice, exitOK, "synced", "sync")
	must(bob, exitOK, "synced", "sync")
	must(bob, exitOK, "voted", "vote", ratify, "yes")
	must(bob, exitOK, "synced", "sync")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, out, _ = runCLI(t, "--home", bob, "charter")
		if strings.Contains(out, "charter ratified, version 1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("circlectl charter = %q, want it ratified", out)
		}
	}
	if !strings.Contains(out, "expires ") || !strings.Contains(out, "text:\nWe lend tools. We mend them.\n") {
		t.Errorf("circlectl charter after ratification = %q, want its expiry and the merged text", out)
	}
}
