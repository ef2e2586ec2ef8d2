package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/circles-coop/circles/authority"
	"github.com/circles-coop/circles/mobile-api/client"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// TestDrawsCommand: two members' circlectl devices take part in a draw by
// themselves — `circlectl draws` commits in the commit phase and reveals
// in the reveal phase — and once it closed, shows the pick, which
// `audit verify` recomputes from each device's copy of the log.
func TestDrawsCommand(t *testing.T) {
	ctx := context.Background()
	clk := &servertest.Clock{}
	c := servertest.Start(t, "Tool Library", servertest.WithClock(clk.Now))
	alice, bob := t.TempDir(), t.TempDir()
	mustRun := func(home string, want int, args ...string) string {
		t.Helper()
		code, stdout, stderr := runCLI(t, append([]string{"--home", home}, args...)...)
		t.Logf("circlectl %s\n%s%s", strings.Join(args, " "), stdout, stderr)
		if code != want {
			t.Fatalf("circlectl %s = %d, want %d (stderr %q)", strings.Join(args, " "), code, want, stderr)
		}
		return stdout
	}
	mustRun(alice, exitOK, "join", c.URL(), c.FounderInvite, "--name", "Alice")
	ad, err := client.OpenDevice(alice)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := ad.Client()
	if err != nil {
		t.Fatal(err)
	}
	inv, err := cl.CreateInvite(ctx, wire.InviteRequest{For: "member"})
	if err != nil {
		t.Fatal(err)
	}
	mustRun(bob, exitOK, "join", c.URL(), inv.Code, "--name", "Bob")
	bd, _ := client.OpenDevice(bob)
	for _, home := range []string{alice, bob} {
		mustRun(home, exitOK, "sync")
	}
	if out := mustRun(alice, exitOK, "draws"); !strings.Contains(out, "no open draws") {
		t.Errorf("draws with none open = %q", out)
	}
	mustRun(alice, exitUsage, "draws", "show")

	// Any draw of the circle: here one opened directly on the authority,
	// with one-minute windows so the devices' real clocks keep their
	// tokens valid while the server's clock moves.
	_, err = c.Server.Authority().Draws.OpenRound(ctx, authority.RoundSpec{
		ID: "steward:2027", Purpose: "who opens the shed", Candidates: []string{ad.Info().MemberID, bd.Info().MemberID}, Picks: 1,
		CommitWindow: time.Minute, RevealWindow: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, home := range []string{alice, bob} {
		if out := mustRun(home, exitOK, "draws"); !strings.Contains(out, "steward:2027 (commit): committed") || !strings.Contains(out, "1 committed") && !strings.Contains(out, "2 committed") {
			t.Errorf("draws in the commit phase = %q, want committed", out)
		}
	}
	clk.Set(61 * time.Second)
	for _, home := range []string{alice, bob} {
		if out := mustRun(home, exitOK, "draws"); !strings.Contains(out, "steward:2027 (reveal): revealed") {
			t.Errorf("draws in the reveal phase = %q, want revealed", out)
		}
	}
	clk.Set(122 * time.Second)
	if err := c.Server.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	out := mustRun(alice, exitOK, "draws", "show", "steward:2027")
	if !strings.Contains(out, "phase closed") || !strings.Contains(out, "from 2 reveals and the server's value") || !strings.Contains(out, "picked ") {
		t.Errorf("draws show = %q, want closed with the pick from 2 reveals", out)
	}
	if out := mustRun(alice, exitOK, "draws", "--all"); !strings.Contains(out, "steward:2027") {
		t.Errorf("draws --all = %q, want the closed draw", out)
	}
	for _, home := range []string{alice, bob} {
		mustRun(home, exitOK, "sync")
		if out := mustRun(home, exitOK, "audit", "verify"); !strings.Contains(out, "audit log verified") {
			t.Errorf("audit verify = %q", out)
		}
	}
	if out := mustRun(alice, exitOK, "pair-audits"); !strings.Contains(out, "no pair audits yet") {
		t.Errorf("pair-audits = %q", out)
	}
	if out := mustRun(alice, exitOK, "mentorships"); !strings.Contains(out, "no mentorships yet") {
		t.Errorf("mentorships = %q", out)
	}
	mustRun(alice, exitUsage, "pair-audits", "findings", "pair-audit:2027-Q1")
	mustRun(alice, exitError, "pair-audits", "interview", "pair-audit:2027-Q1", "Bob")
}
