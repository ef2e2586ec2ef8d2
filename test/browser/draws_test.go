package browser_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/circles-coop/circles/authority"
	"github.com/circles-coop/circles/mobile-api/client"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// TestBrowserDraw: the phone app takes part in a draw by itself when it
// syncs. A draw opens with one-minute windows; the phone joins, and at
// its next sync commits; Bea, a Go device, commits too. The scheduler's
// clock moves past the commit deadline: both reveal, the phone at its
// next sync. Past the reveal deadline the draw closes on both reveals
// and the server's value, and Bea's copy of the audit log verifies it.
// The Pair audits and Mentorships screens are checked with axe-core.
func TestBrowserDraw(t *testing.T) {
	ph := mustPhone(t)
	clk := &servertest.Clock{}
	c := servertest.Start(t, "Draw Circle", servertest.WithClock(clk.Now))
	base := c.URL()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bea, err := client.Join(ctx, t.TempDir(), base, c.FounderInvite, "Bea", "laptop", client.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	const id = "steward:2027"
	if _, err := c.Server.Authority().Draws.OpenRound(ctx, authority.RoundSpec{
		ID: id, Purpose: "who opens the shed", Candidates: []string{bea.Info().MemberID}, Picks: 1,
		CommitWindow: time.Minute, RevealWindow: time.Minute,
	}); err != nil {
		t.Fatal(err)
	}
	if acts, err := bea.TakePartInDraws(ctx); err != nil || len(acts) != 1 || acts[0].Action != "committed" {
		t.Fatalf("Bea takes part: %+v, %v", acts, err)
	}
	cl, err := bea.Client()
	if err != nil {
		t.Fatal(err)
	}
	inv, err := cl.CreateInvite(ctx, wire.InviteRequest{For: "member"})
	if err != nil {
		t.Fatal(err)
	}
	token, _ := cl.AccessToken()

	// The conductor moves the clock as the phone takes each step, while
	// phone.mjs waits for the draw to close (bounded by ctx).
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			phase := "commit"
			for ctx.Err() == nil {
				w, err := bea.Draw(ctx, id)
				if err != nil {
					return err
				}
				switch {
				case phase == "commit" && len(w.Commitments) == 2:
					clk.Set(61 * time.Second)
					if _, err := bea.TakePartInDraws(ctx); err != nil {
						return err
					}
					phase = "reveal"
				case phase == "reveal" && len(w.Reveals) == 2:
					clk.Set(122 * time.Second)
					return c.Server.Tick(ctx)
				}
				time.Sleep(200 * time.Millisecond)
			}
			return ctx.Err()
		}()
	}()
	got := ph.run(t, "--link", inv.URL, "--scenario", "draw", "--draw", id, "--token", token, "--shots", shotsDir(t))
	if err := <-done; err != nil {
		t.Fatalf("conductor: %v", err)
	}
	for _, s := range []string{"pair audits", "mentorships"} {
		if _, ok := got.Axe[s]; !ok {
			t.Errorf("axe-core did not check the %s screen", s)
		}
	}
	w, err := bea.Draw(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{bea.Info().MemberID, got.MemberID}
	slices.Sort(want)
	if w.Result == nil || !slices.Equal(w.Result.Revealed, want) || w.Result.ServerOnly || len(w.Result.Withheld) != 0 {
		t.Fatalf("draw = %+v, want it closed on the reveals of Bea and the phone (%v)", w.Result, want)
	}
	if _, err := bea.Sync(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := bea.AuditLog(); err != nil {
		t.Fatalf("Bea's AuditLog() = %v, want the draw to verify", err)
	}
}
