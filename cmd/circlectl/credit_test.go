package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/circles-coop/circles/server/servertest"
)

// TestRunCreditAndScorecard: Alice gives Bob credit offline (once beyond
// the default limit of 20 h), syncs, and both see the credit balances;
// then the scorecard counts what was logged.
func TestRunCreditAndScorecard(t *testing.T) {
	c := servertest.Start(t, "Time Bank")
	alice, bob := t.TempDir(), t.TempDir()
	run := func(home string, args []string, wantCode int, want ...string) string {
		t.Helper()
		code, stdout, stderr := runCLI(t, append([]string{"--home", home}, args...)...)
		if code != wantCode {
			t.Fatalf("circlectl %s = %d, want %d (stdout %q, stderr %q)", strings.Join(args, " "), code, wantCode, stdout, stderr)
		}
		for _, w := range want {
			if !strings.Contains(stdout, w) {
				t.Errorf("circlectl %s stdout = %q, want it to contain %q", strings.Join(args, " "), stdout, w)
			}
		}
		return stdout
	}
	run(alice, []string{"join", c.URL(), c.FounderInvite, "--name", "Alice"}, exitOK, "as Alice")
	out := run(alice, []string{"invite", "--no-qr"}, exitOK)
	code := regexp.MustCompile(`invite code: +(\S+)`).FindStringSubmatch(out)
	if code == nil {
		t.Fatalf("no invite code in %q", out)
	}
	run(bob, []string{"join", c.URL(), code[1], "--name", "Bob"}, exitOK)
	run(alice, []string{"sync"}, exitOK)

	c.Stop() // giving credit needs no network
	run(alice, []string{"credit", "3h", "--to", "Bob", "--note", "moved the shelves", "--at", "2026-02-01 10:00"}, exitOK, "gave 3h of credit to Bob")
	run(alice, []string{"credit", "18", "--to", "bob", "--at", "2026-02-02 10:00"}, exitOK, "gave 18h of credit to Bob")
	run(alice, []string{"credit", "1", "--to", "Alice"}, exitError)
	run(alice, []string{"credit", "1", "--to", "Nobody"}, exitError)
	run(alice, []string{"credit", "1"}, exitUsage)
	run(alice, []string{"credit", "-1", "--to", "Bob"}, exitUsage)
	run(alice, []string{"log", "2", "lent the drill", "--kind", "lend", "--at", "2026-01-15"}, exitOK)
	run(alice, []string{"log", "90m", "taught soldering", "--kind", "skill", "--at", "2026-04-15"}, exitOK)
	c.Start()

	run(alice, []string{"sync"}, exitOK, "4 changes sent")
	// Alice at -21 h is over the limit of 20 h; Bob holds +21 h.
	run(alice, []string{"balances"}, exitOK, "(over limit) -21h", "21h", "-20h")
	run(bob, []string{"balances"}, exitOK, "(over limit) -21h")
	run(bob, []string{"credits"}, exitOK, "moved the shelves", "over limit", "2 transfers; credit limit 20h")
	run(bob, []string{"credits", "--member", "Alice"}, exitOK, "2 transfers")

	run(bob, []string{"scorecard", "--period", "quarter"}, exitOK, "2026-Q1", "2026-Q2", "TOOLS BORROWED", "2 dependencies reversed")
	run(bob, []string{"scorecard", "--period", "week"}, exitUsage)
}
