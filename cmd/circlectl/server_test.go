package main

import (
	"github.com/automerge/automerge-go"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/circles-coop/circles/mobile-api/client"
	"github.com/circles-coop/circles/server/servertest"
)

// TestRunWithServer drives circlectl against a real circle server: the
// founder joins, invites a second member, both log while the server is
// down, then sync and see each other's entries and the balances.
func TestRunWithServer(t *testing.T) {
	c := servertest.Start(t, "Bike Kitchen")
	alice, bob := t.TempDir(), t.TempDir()

	type step struct {
		home       string
		args       []string
		wantCode   int
		wantStdout []string
	}
	runSteps := func(steps []step) string {
		t.Helper()
		var last string
		for _, st := range steps {
			args := append([]string{"--home", st.home}, st.args...)
			code, stdout, stderr := runCLI(t, args...)
			t.Logf("circlectl %s\n%s%s", strings.Join(st.args, " "), stdout, stderr)
			if code != st.wantCode {
				t.Fatalf("run(%q) = %d, want %d (stderr %q)", st.args, code, st.wantCode, stderr)
			}
			for _, want := range st.wantStdout {
				if !strings.Contains(stdout, want) {
					t.Errorf("run(%q) stdout = %q, want it to contain %q", st.args, stdout, want)
				}
			}
			if code == exitError && strings.Count(stderr, "\n") != 1 {
				t.Errorf("run(%q) stderr = %q, want one line", st.args, stderr)
			}
			last = stdout
		}
		return last
	}

	runSteps([]step{
		{alice, []string{"join", c.URL(), c.FounderInvite, "--name", "Alice", "--device", "laptop"}, exitOK, []string{"joined Bike Kitchen", "as Alice"}},
		{alice, []string{"join", c.URL(), c.FounderInvite}, exitError, nil},
	})
	out := runSteps([]step{{alice, []string{"invite", "--expires", "1h"}, exitOK, []string{"invite code: ", "url:", "expires:", "▀"}}})
	m := regexp.MustCompile(`url: +(\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("invite output %q has no URL", out)
	}
	runSteps([]step{
		{bob, []string{"join", m[1], "--name", "Bob"}, exitOK, []string{"as Bob"}}, // the invite URL alone
		{alice, []string{"sync"}, exitOK, []string{"synced"}},                      // learns that Bob joined
	})

	c.Stop()
	runSteps([]step{
		{alice, []string{"log", "2h", "fixed the bike", "--to", "Bob"}, exitOK, []string{"logged 2h hours"}},
		{bob, []string{"log", "45m", "trued a wheel"}, exitOK, []string{"logged 0.75h hours"}},
		{bob, []string{"status"}, exitOK, []string{"Bob (", "Bike Kitchen", "1 local change not yet synced"}},
		{alice, []string{"sync"}, exitError, nil},
		{alice, []string{"balances"}, exitError, nil},
	})

	c.Start()
	runSteps([]step{
		{alice, []string{"sync"}, exitOK, []string{"round 1: sent", "synced", "1 change sent"}},
		{bob, []string{"sync"}, exitOK, []string{"1 change sent"}},
		{alice, []string{"sync"}, exitOK, []string{"synced"}},
		{alice, []string{"ledger"}, exitOK, []string{"fixed the bike", "trued a wheel", "Bob", "2 entries held"}},
		{bob, []string{"ledger", "--mine"}, exitOK, []string{"trued a wheel", "1 entry held"}},
		{bob, []string{"status"}, exitOK, []string{"0 local changes not yet synced"}},
		{alice, []string{"balances"}, exitOK, []string{"Alice", "Bob", "signals: top contributor's share"}},
	})

	// Bob adds a tablet, then loses it and revokes it from his phone.
	tablet := t.TempDir()
	out = runSteps([]step{{bob, []string{"invite", "--device", "--no-qr"}, exitOK, []string{"invite code: "}}})
	code := regexp.MustCompile(`invite code: +(\S+)`).FindStringSubmatch(out)
	if code == nil {
		t.Fatalf("invite output %q has no code", out)
	}
	runSteps([]step{{tablet, []string{"join", c.URL(), code[1], "--device", "tablet"}, exitOK, []string{"as Bob"}}})
	td, err := client.OpenDevice(tablet)
	if err != nil {
		t.Fatal(err)
	}
	tabletID := td.Info().DeviceID
	runSteps([]step{
		{alice, []string{"device", "revoke", tabletID}, exitError, nil}, // not Alice's device
		{bob, []string{"device", "revoke", tabletID}, exitOK, []string{"revoked device " + tabletID}},
		{tablet, []string{"sync"}, exitError, nil},
		{bob, []string{"device", "list"}, exitUsage, nil},
		{alice, []string{"sync"}, exitOK, nil},
		{alice, []string{"audit", "verify"}, exitOK, []string{"audit log verified: 5 entries"}},
		{alice, []string{"reset", "sign"}, exitUsage, nil},
		{alice, []string{"reset", "sign", "--reason", "nobody rotates the treasurer"}, exitOK, []string{"signed a hard reset"}},
		{alice, []string{"sync"}, exitOK, []string{"1 change sent"}},
		// Alice joined minutes ago: her signature is kept but does not count yet.
		{alice, []string{"reset", "status"}, exitOK, []string{"epoch 0: 0 of 3 signatures count", "nobody rotates the treasurer", "does not count: reset: the signer joined less than"}},
	})

	// A copy of the log that someone edited no longer verifies, and the
	// error names the entry.
	ad, err := client.OpenDevice(alice)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(alice, "docs", ad.Info().Circle.Docs["audit"]+".automerge")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := automerge.Load(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Path("entries", 1, "data").Set(`{"member":"m_someone_else"}`); err != nil {
		t.Fatal(err)
	}
	if _, err := doc.Commit("tamper"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, doc.Save(), 0o600); err != nil {
		t.Fatal(err)
	}
	status, _, stderr := runCLI(t, "--home", alice, "audit", "verify")
	if status != exitError || !strings.Contains(stderr, "entry 2 (member.enrolled)") {
		t.Errorf("audit verify of a tampered copy = %d %q, want 1 naming entry 2", status, stderr)
	}
}
