package server_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/google/uuid"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/mobile-api/client"
	"github.com/circles-coop/circles/server"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// commitTo commits a fresh random value of d's member to round id, with a
// statement d's device key signs, and returns the value.
func commitTo(t *testing.T, c *servertest.Circle, clk *servertest.Clock, d *servertest.Device, id string) []byte {
	t.Helper()
	value := make([]byte, crdt.DrawValueBytes)
	_, _ = rand.Read(value)
	st, err := crdt.SignDrawCommit(d.Key, d.ID, c.CircleID, id, crdt.DrawValueCommitment(c.CircleID, id, d.Member, value), clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if r := servertest.Call(t, c.URL(), "POST", "/v1/draws/"+id+"/commitments", d.Token, servertest.MustJSON(t, wire.DrawCommitRequest{Statement: st})); r.Status != http.StatusOK {
		t.Fatalf("commit to %s: %d %s", id, r.Status, r.Body)
	}
	return value
}

// revealIn reveals value in round id and returns the answer's status.
func revealIn(t *testing.T, url string, d *servertest.Device, id string, value []byte) servertest.Response {
	t.Helper()
	return servertest.Call(t, url, "POST", "/v1/draws/"+id+"/reveals", d.Token, servertest.MustJSON(t, wire.DrawRevealRequest{Value: hex.EncodeToString(value)}))
}

// closedRound reads the draw.closed entry of round id.
func closedRound(t *testing.T, entries []wire.AuditEntry, id string) crdt.DrawRoundResult {
	t.Helper()
	for _, e := range entries {
		var res crdt.DrawRoundResult
		if e.Kind == crdt.AuditDrawClosed && json.Unmarshal(e.Data, &res) == nil && res.Draw == id {
			return res
		}
	}
	t.Fatalf("round %s has not closed", id)
	return crdt.DrawRoundResult{}
}

// drawnEntry reads the entry of kind whose "draw" is id.
func drawnEntry(t *testing.T, entries []wire.AuditEntry, kind, id string) (data struct {
	Draw, Round, SeedSource, Seed, Holder, Facilitator string
	Eligible, Excluded                                 []string
	Seq                                                int64
}) {
	t.Helper()
	for _, e := range entries {
		var d struct {
			Draw        string   `json:"draw"`
			Round       string   `json:"round"`
			SeedSource  string   `json:"seed_source"`
			Seed        string   `json:"seed"`
			Holder      string   `json:"holder"`
			Facilitator string   `json:"facilitator"`
			Eligible    []string `json:"eligible"`
			Excluded    []string `json:"excluded"`
			Seq         int64    `json:"seq"`
		}
		if e.Kind == kind && json.Unmarshal(e.Data, &d) == nil && d.Draw == id {
			data.Draw, data.Round, data.SeedSource, data.Seed, data.Holder, data.Facilitator = d.Draw, d.Round, d.SeedSource, d.Seed, d.Holder, d.Facilitator
			data.Eligible, data.Excluded, data.Seq = d.Eligible, d.Excluded, d.Seq
			return data
		}
	}
	t.Fatalf("no %s entry of draw %s", kind, id)
	return data
}

// verifyDraws checks the audit chain, every role's and facilitator's
// draw against the roster, and every round, as a member's device does.
func verifyDraws(t *testing.T, c *servertest.Circle, d *servertest.Device) {
	t.Helper()
	url := c.URL()
	entries := auditKinds(t, url, d)
	list := make([]crdt.AuditEntry, len(entries))
	for i, e := range entries {
		list[i] = crdt.AuditEntry{Seq: e.Seq, At: e.At, Kind: e.Kind, Data: e.Data, PrevHash: e.PrevHash, Hash: e.Hash}
	}
	if err := crdt.VerifyAudit(list); err != nil {
		t.Fatalf("audit chain: %v", err)
	}
	doc, _ := servertest.MustPull(t, url, d, servertest.MustCircle(t, url, d).Docs["roster"], automerge.NewActorID())
	r, err := crdt.ReadRoster(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := crdt.VerifyAuditDraws(list, r); err != nil {
		t.Fatalf("role and facilitator draws: %v", err)
	}
	if err := crdt.VerifyAuditRounds(list, r, c.CircleID); err != nil {
		t.Fatalf("rounds: %v", err)
	}
}

// TestRoleDrawsFromRounds: the tool library draws its steward. The
// role.draw passes and opens a round; the steward's chair stays empty,
// the role saying its draw is pending, until the round closes: three
// neighbours commit, two reveal, Carol withholds hers (and her late
// reveal is refused). The steward is the member the round's seed picks.
// The draw at the end of the steward's term opens at once, reveals
// during the term's last day, and at the term's end picks among the
// others (the steward served the limit of one term) with that round's
// seed; Alice alone reveals. A member's phone verifies every draw and
// round from its own copy of the log, and a restart opens nothing twice.
func TestRoleDrawsFromRounds(t *testing.T) {
	ctx := context.Background()
	c, clk, _, devs := resetCircle(t, "Alice", "Bob", "Carol")
	url := c.URL()
	alice, bob, carol := devs[0], devs[1], devs[2]
	pass := passer(t, url, devs)
	all := []string{alice.Member, bob.Member, carol.Member}
	slices.Sort(all)
	now := 8 * day // resetCircle's clock

	if p := pass("role.create", "A steward", map[string]any{"name": "steward", "purpose": "opens the shed", "term": "720h", "term_limit": 1, "rotation": "draw"}); p.Status != "passed" {
		t.Fatalf("role.create: %s (%s)", p.Status, p.Reason)
	}
	draw := pass("role.draw", "Draw the steward", map[string]any{"role": "steward"})
	if draw.Status != "passed" || !draw.Applied {
		t.Fatalf("role.draw: %s (%s), applied %v", draw.Status, draw.Reason, draw.Applied)
	}
	steward := roles(t, url, alice)["steward"]
	if steward.Holder != "" || steward.PendingDraw == nil || steward.PendingDraw.Draw != draw.ID || steward.PendingDraw.Proposal != draw.ID {
		t.Fatalf("steward after role.draw passed = %+v, want vacant with its draw %s pending", steward, draw.ID)
	}
	wantAudit(t, auditKinds(t, url, alice), crdt.AuditRoleDrawPending, draw.ID)
	round := getDraw(t, url, alice, draw.ID)
	if round.Phase != "commit" || round.Picks != 0 || !strings.Contains(round.Purpose, "steward") {
		t.Fatalf("the role's round = %+v, want in its commit phase, picking none itself", round)
	}

	values := map[string][]byte{}
	for _, d := range devs {
		values[d.Member] = commitTo(t, c, clk, d, draw.ID)
	}
	moveTo(t, c, clk, now+day+time.Minute, devs)
	if role := roles(t, url, alice)["steward"]; role.Holder != "" || role.PendingDraw == nil {
		t.Fatalf("steward during the reveals = %+v, want still pending", role)
	}
	for _, d := range []*servertest.Device{alice, bob} {
		if r := revealIn(t, url, d, draw.ID, values[d.Member]); r.Status != http.StatusOK {
			t.Fatalf("reveal: %d %s", r.Status, r.Body)
		}
	}
	moveTo(t, c, clk, now+2*day+time.Minute, devs)
	if r := revealIn(t, url, carol, draw.ID, values[carol.Member]); r.Status != http.StatusConflict {
		t.Errorf("Carol's late reveal: %d %s, want 409", r.Status, r.Body)
	}
	first := roles(t, url, alice)["steward"]
	audit := auditKinds(t, url, alice)
	res := closedRound(t, audit, draw.ID)
	drawn := drawnEntry(t, audit, crdt.AuditRoleDrawn, draw.ID)
	seed, _ := hex.DecodeString(res.Seed)
	if !slices.Equal(res.Withheld, []string{carol.Member}) || len(res.Revealed) != 2 || res.ServerOnly {
		t.Errorf("the round closed with revealed %v, withheld %v; want Alice's and Bob's, Carol's withheld", res.Revealed, res.Withheld)
	}
	if drawn.Round != draw.ID || drawn.SeedSource != "round" || drawn.Seed != res.Seed || !slices.Equal(drawn.Eligible, all) {
		t.Fatalf("role.drawn = %+v, want round %s's seed among everyone", drawn, draw.ID)
	}
	if pick := crdt.DrawPick(seed, all); first.Holder != pick || drawn.Holder != pick || first.PendingDraw != nil || first.TermsServed != 1 {
		t.Fatalf("steward = %+v, drawn %s; the round's seed picks %s", first, drawn.Holder, pick)
	}
	verifyDraws(t, c, alice)

	// The draw at the end of this term: open now, its reveals during
	// the term's last day.
	next := crdt.RotationDrawID(first.ID, *first.TermEnd)
	nr := getDraw(t, url, alice, next)
	termEnd := first.TermEnd.Truncate(time.Millisecond) // the log keeps milliseconds
	if nr.Phase != "commit" || !nr.RevealBy.Equal(termEnd) || !nr.CommitBy.Equal(termEnd.Add(-24*time.Hour)) {
		t.Fatalf("the rotation round %s = commit_by %s reveal_by %s (%s), want the term's last day for reveals, ending %s", next, nr.CommitBy, nr.RevealBy, nr.Phase, first.TermEnd)
	}
	for _, d := range devs {
		values[d.Member] = commitTo(t, c, clk, d, next)
	}
	end := first.TermEnd.Sub(clk.Now().Add(-now - 2*day - time.Minute)) // the offset of the term's end
	moveTo(t, c, clk, end-12*time.Hour, devs)
	if r := revealIn(t, url, alice, next, values[alice.Member]); r.Status != http.StatusOK {
		t.Fatalf("Alice's reveal: %d %s", r.Status, r.Body)
	}
	if role := roles(t, url, alice)["steward"]; role.Holder != first.Holder {
		t.Fatalf("steward half a day before the term ends = %+v, want %s still", role, first.Holder)
	}
	moveTo(t, c, clk, end+time.Minute, devs)
	second := roles(t, url, alice)["steward"]
	audit = auditKinds(t, url, alice)
	res = closedRound(t, audit, next)
	drawn = drawnEntry(t, audit, crdt.AuditRoleDrawn, next)
	others := slices.DeleteFunc(slices.Clone(all), func(m string) bool { return m == first.Holder })
	seed, _ = hex.DecodeString(res.Seed)
	if !slices.Equal(res.Revealed, []string{alice.Member}) || len(res.Withheld) != 2 {
		t.Errorf("the rotation round closed with revealed %v, withheld %v; want Alice's only", res.Revealed, res.Withheld)
	}
	if drawn.Round != next || drawn.Seed != res.Seed || !slices.Equal(drawn.Eligible, others) || !slices.Equal(drawn.Excluded, []string{first.Holder}) {
		t.Errorf("rotation role.drawn = %+v, want round %s's seed among %v", drawn, next, others)
	}
	if pick := crdt.DrawPick(seed, others); second.Holder != pick || second.Holder == first.Holder {
		t.Fatalf("steward after the term = %+v; the round's seed picks %s among %v", second, pick, others)
	}
	wantAudit(t, audit, crdt.AuditRoleRotated, first.ID, first.Holder, next)
	verifyDraws(t, c, alice)

	// Any member's phone verifies every draw and round offline.
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
		t.Errorf("the phone's audit log has %d draws, want 2", n)
	}

	// A restart opens no round twice.
	third := crdt.RotationDrawID(second.ID, *second.TermEnd)
	c.Stop()
	c.Start()
	moveTo(t, c, clk, end+time.Hour, devs)
	n := 0
	for _, e := range auditKinds(t, c.URL(), alice) {
		if e.Kind == crdt.AuditDrawOpened && strings.Contains(string(e.Data), `"draw":"`+third+`"`) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the round %s is opened %d times after a restart, want once", third, n)
	}
}

// TestShortTermRoundFitsTheTerm: a role with a two-hour term gets a
// rotation round whose windows fit inside the term (an hour to commit,
// an hour to reveal), and a term that ends with nobody having taken part
// is drawn with the server's value alone, which the round's result says.
func TestShortTermRoundFitsTheTerm(t *testing.T) {
	c, clk, _, devs := resetCircle(t, "Alice", "Bob")
	url := c.URL()
	pass := passer(t, url, devs)
	now := 8 * day
	if p := pass("role.create", "A greeter", map[string]any{"name": "greeter", "purpose": "", "term": "2h", "term_limit": 2, "rotation": "draw"}); p.Status != "passed" {
		t.Fatalf("role.create: %s (%s)", p.Status, p.Reason)
	}
	if p := pass("role.assign", "Bob greets", map[string]any{"role": "greeter", "member": devs[1].Member}); p.Status != "passed" {
		t.Fatalf("role.assign: %s (%s)", p.Status, p.Reason)
	}
	g := roles(t, url, devs[0])["greeter"]
	id := crdt.RotationDrawID(g.ID, *g.TermEnd)
	r := getDraw(t, url, devs[0], id)
	if !r.RevealBy.Equal(g.TermEnd.Truncate(time.Millisecond)) || r.RevealBy.Sub(r.CommitBy) > time.Hour || r.CommitBy.Before(r.OpenedAt) {
		t.Fatalf("the round of a two-hour term: opened %s, commit_by %s, reveal_by %s; want both windows inside the term ending %s", r.OpenedAt, r.CommitBy, r.RevealBy, g.TermEnd)
	}
	moveTo(t, c, clk, now+2*time.Hour+time.Minute, devs)
	audit := auditKinds(t, url, devs[0])
	res := closedRound(t, audit, id)
	drawn := drawnEntry(t, audit, crdt.AuditRoleDrawn, id)
	if !res.ServerOnly || drawn.Round != id || drawn.Seed != res.Seed {
		t.Errorf("a term nobody drew for: result %+v, role.drawn %+v; want the server's value alone, said so, and the round named", res, drawn)
	}
	if after := roles(t, url, devs[0])["greeter"]; after.Holder != drawn.Holder || after.Holder == "" {
		t.Errorf("greeter after the term = %+v, drawn %s", after, drawn.Holder)
	}
	verifyDraws(t, c, devs[0])
}

// TestMeetingsDrawFromFacilitationRounds: a new circle's first meeting
// has its facilitator drawn from the server's committed seed, said so in
// the meeting; it opens the first facilitation round, in which the
// neighbours' phones take part. Once that round closed, the next
// meeting's seed is the round's seed mixed with the meeting's number,
// and the round after opens; a meeting called before that one closes
// uses the same round with its own number. Calling a meeting again —
// the same id, by another member — gives the same meeting back, not a
// new draw. The audit log verifies after each step.
func TestMeetingsDrawFromFacilitationRounds(t *testing.T) {
	c, clk, _, devs := resetCircle(t, "Ana", "Ben", "Cleo")
	url := c.URL()
	now := 8 * day
	at := clk.Now().Add(3 * day).Truncate(time.Hour)
	meet := func(d *servertest.Device, id string) (servertest.Response, wire.Meeting) {
		t.Helper()
		r := callMeeting(t, url, d, id, "Tuesday "+id[:4], at)
		var m wire.Meeting
		_ = json.Unmarshal(r.Body, &m)
		return r, m
	}

	r, m1 := meet(devs[0], uuid.NewString())
	if r.Status != http.StatusCreated || m1.Facilitator == "" || m1.Draw.SeedSource != "server" || m1.Draw.Round != "" {
		t.Fatalf("the first meeting: %d %+v, want a facilitator drawn from the server's seed, said so", r.Status, m1.Draw)
	}
	f1 := crdt.FacilitationRoundID(1)
	if d := getDraw(t, url, devs[0], f1); d.Phase != "commit" {
		t.Fatalf("facilitation round 1 = %+v, want open", d)
	}
	verifyDraws(t, c, devs[0])
	values := map[string][]byte{}
	for _, d := range devs {
		values[d.Member] = commitTo(t, c, clk, d, f1)
	}
	moveTo(t, c, clk, now+day+time.Minute, devs)
	for _, d := range devs[:2] {
		if r := revealIn(t, url, d, f1, values[d.Member]); r.Status != http.StatusOK {
			t.Fatalf("reveal: %d %s", r.Status, r.Body)
		}
	}
	moveTo(t, c, clk, now+2*day+time.Minute, devs)
	res := closedRound(t, auditKinds(t, url, devs[0]), f1)
	rseed, _ := hex.DecodeString(res.Seed)

	id2 := uuid.NewString()
	r, m2 := meet(devs[1], id2)
	want := crdt.FacilitationSeed(rseed, m2.Seq)
	if r.Status != http.StatusCreated || m2.Seq != 2 || m2.Draw.Round != f1 || m2.Draw.SeedSource != "round" || m2.Draw.Seed != hex.EncodeToString(want) {
		t.Fatalf("the second meeting: %d %+v, want seed %x from round %s and number 2", r.Status, m2.Draw, want, f1)
	}
	if m2.Facilitator != crdt.DrawPick(want, m2.Draw.Eligible) {
		t.Fatalf("facilitator %s, the seed picks %s among %v", m2.Facilitator, crdt.DrawPick(want, m2.Draw.Eligible), m2.Draw.Eligible)
	}
	if d := getDraw(t, url, devs[0], crdt.FacilitationRoundID(2)); d.Phase != "commit" {
		t.Fatalf("facilitation round 2 = %+v, want open after round 1 was used", d)
	}
	verifyDraws(t, c, devs[0])

	// Ben's meeting again, by Cleo: the same meeting back, nothing drawn.
	before := countAudit(auditKinds(t, url, devs[0]), crdt.AuditMeetingCreated)
	r, again := meet(devs[2], id2)
	if r.Status != http.StatusOK || again.Facilitator != m2.Facilitator || again.Draw.Seed != m2.Draw.Seed || again.Author != devs[1].Member {
		t.Errorf("calling Ben's meeting again: %d %+v, want 200 and the same meeting", r.Status, again)
	}
	if r := callMeeting(t, url, devs[2], id2, "Cleo's own title", at); r.Status != http.StatusConflict {
		t.Errorf("the same id with another title: %d %s, want 409", r.Status, r.Body)
	}

	// A third meeting before round 2 closed: round 1 with number 3.
	r, m3 := meet(devs[0], uuid.NewString())
	if r.Status != http.StatusCreated || m3.Draw.Round != f1 || m3.Seq != 3 || m3.Draw.Seed != hex.EncodeToString(crdt.FacilitationSeed(rseed, 3)) {
		t.Fatalf("the third meeting: %d %+v, want round %s with number 3", r.Status, m3.Draw, f1)
	}
	if n := countAudit(auditKinds(t, url, devs[0]), crdt.AuditMeetingCreated); n != before+1 {
		t.Errorf("%d meeting.created entries, want %d: calling a meeting again records nothing", n, before+1)
	}
	if r := servertest.Call(t, url, "GET", "/v1/draws/"+crdt.FacilitationRoundID(3), devs[0].Token, nil); r.Status != http.StatusNotFound {
		t.Errorf("facilitation round 3: %d, want none while round 2 is open", r.Status)
	}
	verifyDraws(t, c, devs[0])
}

// TestResetVoidsPendingRoleDraw: a role.draw passed, its round still
// open, when three members reset the circle: once the round closes
// nobody is given the role (role.draw.void names the reset), as a
// role.assign passed before a reset does not refill a role.
func TestResetVoidsPendingRoleDraw(t *testing.T) {
	c, clk, circle, devs := resetCircle(t, "Alice", "Bob", "Carol", "Dave")
	url := c.URL()
	pass := passer(t, url, devs)
	now := 8 * day
	if p := pass("role.create", "A treasurer", map[string]any{"name": "treasurer", "purpose": "", "term": "720h", "term_limit": 2, "rotation": "draw"}); p.Status != "passed" {
		t.Fatalf("role.create: %s (%s)", p.Status, p.Reason)
	}
	draw := pass("role.draw", "Draw the treasurer", map[string]any{"role": "treasurer"})
	if draw.Status != "passed" {
		t.Fatalf("role.draw: %s (%s)", draw.Status, draw.Reason)
	}
	for _, d := range devs[:3] {
		if r := servertest.Call(t, url, "POST", "/v1/resets/signatures", d.Token, resetStatement(t, circle, d, 0, clk.Now())); r.Status != http.StatusAccepted {
			t.Fatalf("sign: %d %s", r.Status, r.Body)
		}
	}
	moveTo(t, c, clk, now+2*day+time.Minute, devs)
	if role := roles(t, url, devs[3])["treasurer"]; role.Holder != "" || role.PendingDraw != nil {
		t.Errorf("the treasurer after the draw's round closed = %+v, want vacant, nothing pending", role)
	}
	audit := auditKinds(t, url, devs[3])
	closedRound(t, audit, draw.ID)
	wantAudit(t, audit, crdt.AuditRoleDrawVoid, draw.ID, "hard reset")
	if n := countAudit(audit, crdt.AuditRoleDrawn); n != 0 {
		t.Errorf("%d role.drawn entries, want none", n)
	}
	verifyDraws(t, c, devs[3])
}

// TestRotationAfterServerDown: the greeter's term ends while the server
// is down. Alice revealed in time; Bob tries to reveal once the server is
// back, after the term ended but before the scheduler ran: refused, so
// his late value cannot change the result. The first tick closes the
// round with Alice's reveal alone and draws the next greeter with it.
func TestRotationAfterServerDown(t *testing.T) {
	c, clk, circle, devs := resetCircle(t, "Alice", "Bob", "Carol")
	alice, bob := devs[0], devs[1]
	url := c.URL()
	pass := passer(t, url, devs)
	if p := pass("role.create", "A greeter", map[string]any{"name": "greeter", "purpose": "", "term": "720h", "term_limit": 2, "rotation": "draw"}); p.Status != "passed" {
		t.Fatalf("role.create: %s (%s)", p.Status, p.Reason)
	}
	if p := pass("role.assign", "Carol greets", map[string]any{"role": "greeter", "member": devs[2].Member}); p.Status != "passed" {
		t.Fatalf("role.assign: %s (%s)", p.Status, p.Reason)
	}
	g := roles(t, url, alice)["greeter"]
	id := crdt.RotationDrawID(g.ID, *g.TermEnd)
	values := map[string][]byte{}
	for _, d := range devs {
		values[d.Member] = commitTo(t, c, clk, d, id)
	}
	base := clk.Now().Add(-8 * day)
	end := g.TermEnd.Sub(base)
	moveTo(t, c, clk, end-12*time.Hour, devs)
	if r := revealIn(t, url, alice, id, values[alice.Member]); r.Status != http.StatusOK {
		t.Fatalf("Alice's reveal: %d %s", r.Status, r.Body)
	}

	c.Stop()
	clk.Set(end + 3*day)
	c.Start()
	url = c.URL()
	for _, d := range devs {
		servertest.MustRefresh(t, url, circle, d, clk.Now())
	}
	if r := revealIn(t, url, bob, id, values[bob.Member]); r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "late reveal") {
		t.Errorf("Bob's reveal after the term ended: %d %s, want 409", r.Status, r.Body)
	}
	if err := c.Server.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	audit := auditKinds(t, url, alice)
	res := closedRound(t, audit, id)
	drawn := drawnEntry(t, audit, crdt.AuditRoleDrawn, id)
	if !slices.Equal(res.Revealed, []string{alice.Member}) || len(res.Withheld) != 2 || !res.ClosedAt.After(*g.TermEnd) {
		t.Errorf("the round closed at %s with revealed %v, withheld %v; want Alice's reveal alone, after the term's end %s", res.ClosedAt, res.Revealed, res.Withheld, g.TermEnd)
	}
	seed, _ := hex.DecodeString(res.Seed)
	if after := roles(t, url, alice)["greeter"]; drawn.Round != id || after.Holder != crdt.DrawPick(seed, drawn.Eligible) || after.Holder == "" {
		t.Errorf("greeter after the term = %+v, role.drawn %+v; want the round's pick", after, drawn)
	}
	verifyDraws(t, c, alice)
}

// TestPendingRoleDrawFinishesAfterFailedWrite: the round of a role.draw
// closes while the roster cannot be written. The draw is recorded first,
// so the next tick gives the role to the member drawn then — the pick of
// the round's seed — and records it once.
func TestPendingRoleDrawFinishesAfterFailedWrite(t *testing.T) {
	var failRoster atomic.Bool
	var rosterDoc atomic.Value
	rosterDoc.Store("")
	clk := &servertest.Clock{}
	c := servertest.Start(t, "Tool Library", servertest.WithClock(clk.Now), servertest.WithConfig(func(cfg *server.Config) {
		server.FailWrites(cfg, func(doc string) bool { return failRoster.Load() && doc == rosterDoc.Load().(string) })
	}))
	url := c.URL()
	devs := []*servertest.Device{servertest.MustEnroll(t, url, c.FounderInvite, "Ana")}
	devs = append(devs, servertest.MustEnroll(t, url, servertest.MustInvite(t, url, devs[0], "member", ""), "Ben"))
	rosterDoc.Store(servertest.MustCircle(t, url, devs[0]).Docs["roster"])
	pass := passer(t, url, devs)
	if p := pass("role.create", "A keyholder", map[string]any{"name": "keyholder", "purpose": "", "term": "720h", "term_limit": 2, "rotation": "draw"}); p.Status != "passed" {
		t.Fatalf("role.create: %s (%s)", p.Status, p.Reason)
	}
	draw := pass("role.draw", "Draw the keyholder", map[string]any{"role": "keyholder"})
	if draw.Status != "passed" {
		t.Fatalf("role.draw: %s (%s)", draw.Status, draw.Reason)
	}

	clk.Set(2*day + time.Minute)
	for _, d := range devs {
		servertest.MustRefresh(t, url, c.CircleID, d, clk.Now())
	}
	failRoster.Store(true)
	if err := c.Server.Tick(context.Background()); err == nil {
		t.Fatal("Tick with the roster failing = nil, want the failed write")
	}
	failRoster.Store(false)
	if role := roles(t, url, devs[0])["keyholder"]; role.Holder != "" || role.PendingDraw != nil {
		t.Fatalf("keyholder after the failed write = %+v, want vacant, the draw recorded (not pending)", role)
	}
	for range 2 { // the second tick changes nothing
		if err := c.Server.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	audit := auditKinds(t, url, devs[0])
	res := closedRound(t, audit, draw.ID)
	seed, _ := hex.DecodeString(res.Seed)
	all := []string{devs[0].Member, devs[1].Member}
	slices.Sort(all)
	if role := roles(t, url, devs[0])["keyholder"]; role.Holder != crdt.DrawPick(seed, all) {
		t.Errorf("keyholder = %+v, want %s, the round's pick", role, crdt.DrawPick(seed, all))
	}
	if n := countAudit(audit, crdt.AuditRoleDrawn); n != 1 {
		t.Errorf("%d role.drawn entries, want 1", n)
	}
	verifyDraws(t, c, devs[0])
}
