package server_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/mobile-api/client"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// drawOf finds the audit entries of draw id: its commitment and its
// reveal (zero if not drawn yet).
func drawOf(t *testing.T, entries []wire.AuditEntry, id string) (committed, drawn wire.AuditEntry, data struct {
	Seed, Holder, Commitment string
	Eligible, Excluded       []string
}) {
	t.Helper()
	for _, e := range entries {
		var d struct {
			Draw, Seed, Holder, Commitment string
			Eligible, Excluded             []string
		}
		_ = json.Unmarshal(e.Data, &d)
		if d.Draw != id {
			continue
		}
		switch e.Kind {
		case crdt.AuditDrawCommitted:
			committed = e
		case crdt.AuditRoleDrawn:
			drawn = e
			data.Seed, data.Holder, data.Commitment, data.Eligible, data.Excluded = d.Seed, d.Holder, d.Commitment, d.Eligible, d.Excluded
		}
	}
	return committed, drawn, data
}

// recompute checks a draw as any member can: the seed is the one
// committed and the seed and eligible members pick the holder.
func recompute(t *testing.T, committed wire.AuditEntry, seedHex string, eligible []string) string {
	t.Helper()
	seed, err := hex.DecodeString(seedHex)
	if err != nil || len(seed) != crdt.DrawSeedBytes {
		t.Fatalf("seed %q is not %d bytes of hex", seedHex, crdt.DrawSeedBytes)
	}
	var c struct{ Commitment string }
	_ = json.Unmarshal(committed.Data, &c)
	if c.Commitment != crdt.DrawCommitment(seed) {
		t.Fatalf("the seed revealed does not match the commitment %s", c.Commitment)
	}
	return crdt.DrawPick(seed, eligible)
}

// TestRandomDraws: a role.draw proposal commits its seed when it opens
// and, once passed, gives the role to the member the seed picks among
// the eligible; a role that rotates by draw has its next draw committed
// when the term starts and run by the scheduler when the term ends,
// leaving out the holder at the term limit. A member's device verifies
// every draw from its own copy of the audit log.
func TestRandomDraws(t *testing.T) {
	ctx := context.Background()
	c, clk, _, devs := resetCircle(t, "Alice", "Bob", "Carol")
	url := c.URL()
	alice := devs[0]
	pass := passer(t, url, devs)
	events := followEvents(t, url, alice)
	all := []string{devs[0].Member, devs[1].Member, devs[2].Member}
	slices.Sort(all)

	steward := pass("role.create", "A steward", map[string]any{"name": "steward", "purpose": "opens the shed", "term": "720h", "term_limit": 1, "rotation": "draw"})
	if steward.Status != "passed" {
		t.Fatalf("role.create: %s (%s)", steward.Status, steward.Reason)
	}
	if r := propose(t, url, alice, "0c0c0c0c-0000-4000-8000-000000000000", "role.create", "x", map[string]any{"name": "x", "purpose": "", "term": "720h", "term_limit": 1, "rotation": "lottery"}); r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "payload.rotation") {
		t.Errorf("a role rotating by lottery: %d %s, want 400 naming payload.rotation", r.Status, r.Body)
	}

	// The draw's seed is committed when the proposal opens, before any
	// vote.
	draw := mustPropose(t, url, alice, "role.draw", "Draw the steward", map[string]any{"role": "steward"})
	committed, drawn, _ := drawOf(t, auditKinds(t, url, alice), draw.ID)
	if committed.Seq == 0 || drawn.Seq != 0 {
		t.Fatalf("after role.draw opened: commitment %+v, reveal %+v; want a commitment only", committed, drawn)
	}
	var p wire.Proposal
	for _, d := range devs {
		p = mustVote(t, url, d, draw.ID, "yes")
	}
	if p.Status != "passed" || !p.Applied {
		t.Fatalf("role.draw: %s (%s), applied %v", p.Status, p.Reason, p.Applied)
	}
	waitEvent(t, events, "role.drawn")
	audit := auditKinds(t, url, alice)
	committed, drawn, data := drawOf(t, audit, draw.ID)
	if drawn.Seq <= committed.Seq || !slices.Equal(data.Eligible, all) || len(data.Excluded) != 0 {
		t.Fatalf("role.drawn = %+v (seq %d, commitment at %d), want every member eligible", data, drawn.Seq, committed.Seq)
	}
	first := roles(t, url, alice)["steward"]
	if got := recompute(t, committed, data.Seed, data.Eligible); got != first.Holder || data.Holder != first.Holder || first.TermsServed != 1 {
		t.Fatalf("steward = %+v; the draw records %s and recomputes to %s", first, data.Holder, got)
	}

	// The draw at the end of this term is committed now.
	next := crdt.RotationDrawID(first.ID, *first.TermEnd)
	if nc, nd, _ := drawOf(t, audit, next); nc.Seq == 0 || nd.Seq != 0 {
		t.Fatalf("the rotation draw %s: commitment %+v, reveal %+v; want committed, not drawn", next, nc, nd)
	}

	// The term ends: the holder, at the limit of one term, is left out;
	// one of the two others is drawn.
	moveTo(t, c, clk, 8*day+30*day, devs)
	second := roles(t, url, alice)["steward"]
	if second.Holder == "" || second.Holder == first.Holder || second.TermsServed != 1 {
		t.Fatalf("steward after the term = %+v, want someone other than %s", second, first.Holder)
	}
	waitEvent(t, events, "role.rotated")
	audit = auditKinds(t, url, alice)
	committed, drawn, data = drawOf(t, audit, next)
	others := slices.DeleteFunc(slices.Clone(all), func(m string) bool { return m == first.Holder })
	if !slices.Equal(data.Eligible, others) || !slices.Equal(data.Excluded, []string{first.Holder}) {
		t.Errorf("rotation draw lists eligible %v, excluded %v; want %v and [%s]", data.Eligible, data.Excluded, others, first.Holder)
	}
	if got := recompute(t, committed, data.Seed, data.Eligible); got != second.Holder || committed.Seq >= drawn.Seq {
		t.Errorf("rotation draw recomputes to %s, holder %s (commitment at %d, draw at %d)", got, second.Holder, committed.Seq, drawn.Seq)
	}
	wantAudit(t, audit, crdt.AuditRoleRotated, first.ID, first.Holder, next)

	// Any member's device verifies every draw offline.
	phone, err := client.Join(ctx, t.TempDir(), url, servertest.MustInvite(t, url, alice, "device", ""), "Alice", "phone", client.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := phone.Sync(ctx, nil); err != nil {
		t.Fatal(err)
	}
	entries, err := phone.AuditLog()
	if err != nil {
		t.Fatalf("AuditLog() = %v, want the draws to verify", err)
	}
	if n := countKind(entries, crdt.AuditRoleDrawn); n != 2 {
		t.Errorf("the device's audit log has %d draws, want 2", n)
	}

	// A restart changes no commitment: the next draw is committed once.
	c.Stop()
	c.Start()
	moveTo(t, c, clk, 8*day+30*day+time.Hour, devs)
	third := crdt.RotationDrawID(second.ID, *second.TermEnd)
	n := 0
	for _, e := range auditKinds(t, c.URL(), alice) {
		if e.Kind == crdt.AuditDrawCommitted && strings.Contains(string(e.Data), third) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the draw %s is committed %d times after a restart, want once", third, n)
	}
}

func countKind(entries []crdt.AuditEntry, kind string) int {
	n := 0
	for _, e := range entries {
		if e.Kind == kind {
			n++
		}
	}
	return n
}
