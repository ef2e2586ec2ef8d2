package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// passer returns a function that makes a proposal by the first device and
// has every device vote yes, which in these small circles settles it.
func passer(t *testing.T, url string, devs []*servertest.Device) func(kind, title string, payload map[string]any) wire.Proposal {
	return func(kind, title string, payload map[string]any) wire.Proposal {
		t.Helper()
		p := mustPropose(t, url, devs[0], kind, title, payload)
		for _, d := range devs {
			p = mustVote(t, url, d, p.ID, "yes")
		}
		return p
	}
}

// waitEvent reads events until one of type want arrives.
func waitEvent(t *testing.T, events <-chan string, want string) {
	t.Helper()
	for timeout := time.After(5 * time.Second); ; {
		select {
		case ev := <-events:
			if ev == want {
				return
			}
		case <-timeout:
			t.Fatalf("no %s event within 5s", want)
		}
	}
}

// moveTo sets the clock and refreshes every device's token, then runs the
// scheduler once.
func moveTo(t *testing.T, c *servertest.Circle, clk *servertest.Clock, offset time.Duration, devs []*servertest.Device) {
	t.Helper()
	clk.Set(offset)
	for _, d := range devs {
		servertest.MustRefresh(t, c.URL(), c.CircleID, d, clk.Now())
	}
	if err := c.Server.Tick(context.Background()); err != nil {
		t.Fatalf("Tick: %v", err)
	}
}

// TestRoleRotation: when a term ends the scheduler rotates the holder out
// and the role stays vacant; the term limit counts consecutive terms
// across a short vacancy, not across a long one, and not across a renewal
// decided during the term (which ends later).
func TestRoleRotation(t *testing.T) {
	c, clk, _, devs := resetCircle(t, "Alice", "Bob")
	url := c.URL()
	alice, bob := devs[0], devs[1]
	pass := passer(t, url, devs)
	events := followEvents(t, url, alice)
	const term = 30 * day
	now := 8 * day // resetCircle's clock

	if p := pass("role.create", "A cook", map[string]any{"name": "cook", "purpose": "", "term": "720h", "term_limit": 2}); p.Status != "passed" {
		t.Fatalf("role.create: %s (%s)", p.Status, p.Reason)
	}
	if p := pass("role.assign", "Bob cooks", map[string]any{"role": "cook", "member": bob.Member}); p.Status != "passed" {
		t.Fatalf("role.assign: %s (%s)", p.Status, p.Reason)
	}
	first := roles(t, url, alice)["cook"]
	if first.Holder != bob.Member || first.Rotation != "vacate" {
		t.Fatalf("cook = %+v, want Bob, rotating to vacant", first)
	}

	// Before the term ends nothing moves.
	moveTo(t, c, clk, now+term-time.Hour, devs)
	if role := roles(t, url, alice)["cook"]; role.Holder != bob.Member || role.TermsServed != 1 {
		t.Fatalf("cook an hour before its term ends = %+v, want Bob still", role)
	}
	// At the end of the term Bob is rotated out.
	moveTo(t, c, clk, now+term+time.Minute, devs)
	role := roles(t, url, alice)["cook"]
	if role.Holder != "" || role.PreviousHolder != bob.Member || role.TermStart != nil || role.TermEnd != nil || role.TermsServed != 0 {
		t.Fatalf("cook after its term ended = %+v, want vacant, Bob rotated out", role)
	}
	waitEvent(t, events, "role.rotated")
	wantAudit(t, auditKinds(t, url, alice), crdt.AuditRoleRotated, first.ID, bob.Member, `"terms_served":1`)
	// A second Tick has nothing more to do.
	if err := c.Server.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := countAudit(auditKinds(t, url, alice), crdt.AuditRoleRotated); n != 1 {
		t.Errorf("%d role.rotated entries after a second Tick, want 1", n)
	}

	// Bob takes the role again a day later: that is his second
	// consecutive term; it ends a term later.
	now += term + day
	moveTo(t, c, clk, now, devs)
	if p := pass("role.assign", "Bob again", map[string]any{"role": "cook", "member": bob.Member}); p.Status != "passed" {
		t.Fatalf("role.assign after a short vacancy: %s (%s)", p.Status, p.Reason)
	}
	if role := roles(t, url, alice)["cook"]; role.Holder != bob.Member || role.TermsServed != 2 || role.PreviousHolder != "" {
		t.Fatalf("cook after a short vacancy = %+v, want Bob in his second consecutive term", role)
	}
	moveTo(t, c, clk, now+term, devs)
	if role := roles(t, url, alice)["cook"]; role.Holder != "" || role.PreviousHolder != bob.Member {
		t.Fatalf("cook after the second term = %+v, want vacant", role)
	}
	now += term + day
	moveTo(t, c, clk, now, devs)
	if p := pass("role.assign", "Bob a third time", map[string]any{"role": "cook", "member": bob.Member}); p.Status != "rejected" || !strings.Contains(p.Reason, "term limit is 2") {
		t.Fatalf("a third consecutive term after a one-day vacancy: %s (%s), want rejected for the term limit", p.Status, p.Reason)
	}
	// After a vacancy of a whole term the streak is over.
	now += term
	moveTo(t, c, clk, now, devs)
	if p := pass("role.assign", "Bob after a break", map[string]any{"role": "cook", "member": bob.Member}); p.Status != "passed" {
		t.Fatalf("role.assign after a vacancy of a term: %s (%s)", p.Status, p.Reason)
	}
	if role := roles(t, url, alice)["cook"]; role.Holder != bob.Member || role.TermsServed != 1 {
		t.Fatalf("cook after a long vacancy = %+v, want Bob in a first term", role)
	}

	// A renewal decided during the term: the holder stays until the end
	// of the second term.
	now += 10 * day
	moveTo(t, c, clk, now, devs)
	if p := pass("role.assign", "Bob renewed", map[string]any{"role": "cook", "member": bob.Member}); p.Status != "passed" {
		t.Fatalf("renewal: %s (%s)", p.Status, p.Reason)
	}
	moveTo(t, c, clk, now+term, devs) // past the first term's end
	if role := roles(t, url, alice)["cook"]; role.Holder != bob.Member || role.TermsServed != 2 {
		t.Fatalf("cook after the first of two consecutive terms = %+v, want Bob still", role)
	}
	moveTo(t, c, clk, now+2*term, devs)
	if role := roles(t, url, alice)["cook"]; role.Holder != "" || role.PreviousHolder != bob.Member {
		t.Fatalf("cook after both terms = %+v, want vacant", role)
	}

	// Alice may take it at once; that breaks Bob's streak.
	if p := pass("role.assign", "Alice cooks", map[string]any{"role": "cook", "member": alice.Member}); p.Status != "passed" {
		t.Fatalf("role.assign Alice: %s (%s)", p.Status, p.Reason)
	}
	if role := roles(t, url, alice)["cook"]; role.Holder != alice.Member || role.TermsServed != 1 || role.PreviousHolder != "" {
		t.Errorf("cook with Alice = %+v, want her first term", role)
	}
}

func countAudit(entries []wire.AuditEntry, kind string) int {
	n := 0
	for _, e := range entries {
		if e.Kind == kind {
			n++
		}
	}
	return n
}
