package server_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/mobile-api/client"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// wantAPIError fails unless err is an API error of code whose message
// says says.
func wantAPIError(t *testing.T, what string, err error, code, says string) {
	t.Helper()
	if !client.IsAPIError(err, code) || !strings.Contains(err.Error(), says) {
		t.Errorf("%s: %v, want %s saying %q", what, err, code, says)
	}
}

func deviceOf(devs []*client.Device, id string) *client.Device {
	for _, d := range devs {
		if d.Info().MemberID == id {
			return d
		}
	}
	return nil
}

// TestPairLinkAuditQuarter: a quarter passes on the test clock. The
// scheduler opens the quarter's pair-link audit and draws two auditors;
// no device takes part, so the draw falls back to the server's committed
// value and says so. The circle sees whom each auditor still has to
// interview; only auditors record interviews, of other active members,
// once each; findings wait for the listening session, whose date is set,
// and are published there; the audit log records each step, and every
// device still verifies it. The next quarter opens the next audit.
func TestPairLinkAuditQuarter(t *testing.T) {
	ctx := context.Background()
	c, clk, devs := drawCircle(t, "Alice", "Bob", "Carol", "Dave")

	// The quarter the circle was founded in has no audit.
	if err := c.Server.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if list, err := devs[0].PairAudits(ctx); err != nil || len(list.PairAudits) != 0 {
		t.Fatalf("pair audits in the founding quarter = %+v, %v; want none", list, err)
	}

	q := nextQuarterOffset()
	for _, at := range []time.Duration{q, q + time.Hour} { // a second tick opens nothing more
		clk.Set(at)
		if err := c.Server.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	list, err := devs[0].PairAudits(ctx)
	if err != nil || len(list.PairAudits) != 1 || list.PairAudits[0].Status != "drawing" {
		t.Fatalf("pair audits after the quarter began = %+v, %v; want one, drawing", list, err)
	}
	audit := list.PairAudits[0]
	quarter, _ := crdt.QuarterOf(clk.Now())
	if audit.Quarter != quarter || audit.ID != "pair-audit:"+quarter {
		t.Errorf("pair audit %s of quarter %s, want %s", audit.ID, audit.Quarter, quarter)
	}

	// Nobody takes part in the draw: at the deadline the server's value
	// alone picks, and the result says so.
	clk.Set(q + 49*time.Hour)
	if err := c.Server.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	d, err := devs[0].Draw(ctx, audit.Draw)
	if err != nil || d.Result == nil || !d.Result.ServerOnly || len(d.Result.Picked) != 2 {
		t.Fatalf("the auditors' draw = %+v, %v; want closed on the server's value alone, two picked", d, err)
	}
	list, _ = devs[0].PairAudits(ctx)
	audit = list.PairAudits[0]
	if audit.Status != "interviewing" || !slices.Equal(audit.Auditors, d.Result.Picked) {
		t.Fatalf("pair audit = %+v, want the auditors %v interviewing", audit, d.Result.Picked)
	}
	auditor := deviceOf(devs, audit.Auditors[0])
	var others, outsiders []string
	for _, dv := range devs {
		m := dv.Info().MemberID
		if m != auditor.Info().MemberID {
			others = append(others, m)
		}
		if !slices.Contains(audit.Auditors, m) {
			outsiders = append(outsiders, m)
		}
	}
	slices.Sort(others)
	if got := audit.Remaining[auditor.Info().MemberID]; !slices.Equal(got, others) {
		t.Fatalf("%s still has to interview %v, want every other member %v", auditor.Info().MemberName, got, others)
	}

	// Bad input changes nothing.
	outsider := deviceOf(devs, outsiders[0])
	before := servertest.MustStoredDocs(t, c)
	_, err = outsider.RecordInterview(ctx, audit.ID, auditor.Info().MemberID, "")
	wantAPIError(t, "an interview recorded by a member who is not an auditor", err, "forbidden", "only the two auditors")
	_, err = auditor.RecordInterview(ctx, audit.ID, auditor.Info().MemberID, "")
	wantAPIError(t, "an auditor interviewing themself", err, "invalid_request", "another active member")
	_, err = auditor.RecordInterview(ctx, audit.ID, "m_nobody", "")
	wantAPIError(t, "an interview of nobody", err, "invalid_request", "another active member")
	_, err = auditor.RecordInterview(ctx, audit.ID, others[0], strings.Repeat("x", crdt.MaxInterviewNoteLen+1))
	wantAPIError(t, "a note too long", err, "invalid_request", "note")
	_, err = auditor.RecordInterview(ctx, "pair-audit:1999-Q1", others[0], "")
	wantAPIError(t, "an unknown audit", err, "not_found", "no pair audit")
	_, err = auditor.PublishFindings(ctx, audit.ID, "the Tuesday crew never talks to the Saturday crew")
	wantAPIError(t, "findings before a session is set", err, "conflict", "set the listening session")
	_, err = auditor.SetListeningSession(ctx, audit.ID, wire.PairSessionRequest{At: clk.Now().Add(-48 * time.Hour)})
	wantAPIError(t, "a session in the past", err, "invalid_request", "at")
	_, err = outsider.SetListeningSession(ctx, audit.ID, wire.PairSessionRequest{At: clk.Now().Add(7 * 24 * time.Hour)})
	wantAPIError(t, "a session set by a non-auditor", err, "forbidden", "auditors")
	servertest.MustStoreUnchanged(t, c, before)

	// The auditor interviews one member; the circle sees who is left.
	got, err := auditor.RecordInterview(ctx, audit.ID, others[0], "says the drill rota favours the founders")
	if err != nil {
		t.Fatal(err)
	}
	if left := got.Remaining[auditor.Info().MemberID]; !slices.Equal(left, others[1:]) {
		t.Errorf("after one interview %s still has %v, want %v", auditor.Info().MemberName, left, others[1:])
	}
	_, err = auditor.RecordInterview(ctx, audit.ID, others[0], "")
	wantAPIError(t, "the same interview twice", err, "conflict", "already recorded")

	// The listening session is set ten days ahead; findings wait for it.
	session := clk.Now().Add(10 * 24 * time.Hour).UTC().Truncate(time.Second)
	if _, err := auditor.SetListeningSession(ctx, audit.ID, wire.PairSessionRequest{At: session}); err != nil {
		t.Fatal(err)
	}
	clk.Set(q + 5*24*time.Hour)
	_, err = auditor.PublishFindings(ctx, audit.ID, "too early")
	wantAPIError(t, "findings days before the session", err, "conflict", "publish the findings there")
	clk.Set(q + 49*time.Hour + 10*24*time.Hour)
	_, err = auditor.PublishFindings(ctx, audit.ID, "   ")
	wantAPIError(t, "empty findings", err, "invalid_request", "text")
	findings := "Cliques: the Tuesday crew (Alice, Bob) decides the rota.\nBlockages: Carol's requests wait for Alice."
	held, err := auditor.PublishFindings(ctx, audit.ID, findings)
	if err != nil {
		t.Fatal(err)
	}
	if held.Status != "held" || held.Findings != findings || held.SessionAt == nil || !held.SessionAt.Equal(session) {
		t.Fatalf("after the session: %+v", held)
	}
	_, err = auditor.RecordInterview(ctx, audit.ID, others[1], "")
	wantAPIError(t, "an interview after the session", err, "conflict", "done")

	// The audit log records it, and every device verifies it.
	if _, err := devs[0].Sync(ctx, nil); err != nil {
		t.Fatal(err)
	}
	entries, err := devs[0].AuditLog()
	if err != nil {
		t.Fatalf("AuditLog() = %v", err)
	}
	kinds := map[string]int{}
	for _, e := range entries {
		kinds[e.Kind]++
		if e.Kind == crdt.AuditDrawClosed {
			var r crdt.DrawRoundResult
			_ = json.Unmarshal(e.Data, &r)
			if !r.ServerOnly {
				t.Errorf("draw.closed of a draw nobody took part in does not say server_only: %s", e.Data)
			}
		}
		if e.Kind == crdt.AuditPairSessionHeld && !strings.Contains(string(e.Data), "Tuesday crew") {
			t.Errorf("pair_audit.session_held does not hold the findings: %s", e.Data)
		}
	}
	for _, k := range []string{crdt.AuditPairAuditOpened, crdt.AuditDrawOpened, crdt.AuditDrawClosed, crdt.AuditPairAuditDrawn, crdt.AuditPairInterview, crdt.AuditPairSessionSet, crdt.AuditPairSessionHeld} {
		if kinds[k] != 1 {
			t.Errorf("audit log has %d %s entries, want 1", kinds[k], k)
		}
	}

	// The next quarter opens the next audit.
	_, start := crdt.QuarterOf(clk.Now())
	clk.Set(time.Until(start.AddDate(0, 3, 0)) + time.Hour)
	if err := c.Server.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	list, _ = devs[0].PairAudits(ctx)
	if len(list.PairAudits) != 2 || list.PairAudits[0].Status != "drawing" || list.PairAudits[1].Status != "held" {
		t.Fatalf("pair audits in the next quarter = %+v, want a new one drawing and the last one held", list.PairAudits)
	}
}

// TestMentorshipInversion: members join ten days apart; before the
// circle's first anniversary there are no pairs; on it the most senior
// member becomes the apprentice of the newest, the second of the second
// newest, and the one in the middle is left unpaired; the pairs are
// published and in the audit log, once.
func TestMentorshipInversion(t *testing.T) {
	ctx := context.Background()
	clk := &servertest.Clock{}
	c := servertest.Start(t, "Tool Library", servertest.WithClock(clk.Now))
	url := c.URL()
	alice, err := client.Join(ctx, t.TempDir(), url, c.FounderInvite, "Alice", "laptop", client.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	devs := []*client.Device{alice}
	for i, n := range []string{"Bob", "Carol", "Dave", "Erin"} {
		clk.Set(time.Duration(i+1) * 10 * 24 * time.Hour)
		d, err := client.Join(ctx, t.TempDir(), url, mustDeviceInvite(t, alice), n, "laptop", client.WithClock(clk.Now))
		if err != nil {
			t.Fatal(err)
		}
		devs = append(devs, d)
	}
	id := func(i int) string { return devs[i].Info().MemberID }

	clk.Set(300 * 24 * time.Hour)
	if err := c.Server.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if m, err := alice.Mentorships(ctx); err != nil || len(m.Rounds) != 0 {
		t.Fatalf("mentorships before the anniversary = %+v, %v; want none", m, err)
	}

	for _, at := range []time.Duration{366 * 24 * time.Hour, 367 * 24 * time.Hour} {
		clk.Set(at)
		if err := c.Server.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	m, err := alice.Mentorships(ctx)
	if err != nil || len(m.Rounds) != 1 {
		t.Fatalf("mentorships after the anniversary = %+v, %v; want one round", m, err)
	}
	r := m.Rounds[0]
	want := []wire.MentorshipPair{{Mentor: id(4), Apprentice: id(0)}, {Mentor: id(3), Apprentice: id(1)}}
	if len(r.Pairs) != 2 || !slices.Equal(r.Unpaired, []string{id(2)}) {
		t.Fatalf("round = %+v, want Erin mentoring Alice, Dave mentoring Bob, Carol unpaired", r)
	}
	for i, p := range r.Pairs {
		if p.Mentor != want[i].Mentor || p.Apprentice != want[i].Apprentice || !p.MentorJoined.After(p.ApprenticeJoined) {
			t.Errorf("pair %d = %+v, want mentor %s, apprentice %s, the mentor joined later", i, p, want[i].Mentor, want[i].Apprentice)
		}
	}
	if _, err := alice.Sync(ctx, nil); err != nil {
		t.Fatal(err)
	}
	entries, err := alice.AuditLog()
	if err != nil {
		t.Fatal(err)
	}
	if n := countKind(entries, crdt.AuditMentorshipsPaired); n != 1 {
		t.Errorf("%d mentorship.paired entries, want 1", n)
	}
}

// TestRitualsFinishedAfterStop: the tick that opens a quarter's pair
// audit and its draw is interrupted, by a store that fails the governance
// document's writes, after the draw's opening reached the audit log; and
// the tick that closes the draw likewise after draw.closed. The server
// stops and starts again; the next ticks finish both with what the log
// says: one draw.opened with one server commitment, one pair_audit.opened,
// one draw.closed, and every device still verifies the log.
func TestRitualsFinishedAfterStop(t *testing.T) {
	ctx := context.Background()
	clk := &servertest.Clock{}
	var armed atomic.Bool
	var target atomic.Value
	c := failingCircle(t, clk, &armed, &target)
	url := c.URL()
	alice, err := client.Join(ctx, t.TempDir(), url, c.FounderInvite, "Alice", "laptop", client.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	bob, err := client.Join(ctx, t.TempDir(), url, mustDeviceInvite(t, alice), "Bob", "laptop", client.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	target.Store(alice.Info().Circle.Docs["governance"])
	restart := func(at time.Duration) {
		t.Helper()
		clk.Set(at)
		armed.Store(true)
		if err := c.Server.Tick(ctx); err == nil {
			t.Fatalf("Tick with the governance document failing: no error")
		}
		c.Stop()
		armed.Store(false)
		// Later than AppendOnce's usual look-back of a minute.
		clk.Set(at + 10*time.Minute)
		c.Start()
		if err := c.Server.Tick(ctx); err != nil {
			t.Fatalf("Tick after the restart: %v", err)
		}
	}
	q := nextQuarterOffset()
	restart(q)
	list, err := alice.PairAudits(ctx)
	if err != nil || len(list.PairAudits) != 1 {
		t.Fatalf("pair audits after an interrupted opening = %+v, %v; want one", list, err)
	}
	for _, d := range []*client.Device{alice, bob} {
		if _, err := d.TakePartInDraws(ctx); err != nil {
			t.Fatal(err)
		}
	}
	clk.Set(q + 25*time.Hour)
	for _, d := range []*client.Device{alice, bob} {
		if _, err := d.TakePartInDraws(ctx); err != nil {
			t.Fatal(err)
		}
	}
	restart(q + 49*time.Hour)
	list, _ = alice.PairAudits(ctx)
	if len(list.PairAudits) != 1 || len(list.PairAudits[0].Auditors) != 2 {
		t.Fatalf("pair audit after an interrupted close = %+v, want its two auditors", list.PairAudits)
	}
	if _, err := alice.Sync(ctx, nil); err != nil {
		t.Fatal(err)
	}
	entries, err := alice.AuditLog()
	if err != nil {
		t.Fatalf("AuditLog() = %v", err)
	}
	for _, k := range []string{crdt.AuditDrawOpened, crdt.AuditPairAuditOpened, crdt.AuditDrawClosed, crdt.AuditPairAuditDrawn} {
		if n := countKind(entries, k); n != 1 {
			t.Errorf("%d %s entries, want 1", n, k)
		}
	}
	w, err := alice.Draw(ctx, list.PairAudits[0].Draw)
	if err != nil || w.Result == nil || len(w.Result.Revealed) != 2 {
		t.Fatalf("draw = %+v, %v; want closed on two reveals", w, err)
	}
}
