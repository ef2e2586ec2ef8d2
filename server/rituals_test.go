package server_test

import (
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
	"github.com/circles-coop/circles/server"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// The rituals of issue 10: meetings with drawn, rotating facilitation,
// minutes by the facilitator, power temperature checks that rest a
// dominating member without ever telling who named whom, stepping down
// and the honours, and the scorecard's autonomy and sufficiency.

// ritualCircle is a tool library of the named neighbours, a week old,
// with policies (nil: the defaults).
func ritualCircle(t *testing.T, policies crdt.Policies, names ...string) (*servertest.Circle, *servertest.Clock, []*servertest.Device) {
	t.Helper()
	clk := servertest.FixedClock(time.Date(2026, 3, 3, 19, 0, 0, 0, time.UTC)) // a Tuesday evening
	if policies == nil {
		policies = crdt.DefaultPolicies()
	}
	c := servertest.Init(t, "Tool Library", policies, servertest.WithClock(clk.Now))
	c.Start()
	url := c.URL()
	devs := []*servertest.Device{servertest.MustEnroll(t, url, c.FounderInvite, names[0])}
	for _, n := range names[1:] {
		devs = append(devs, servertest.MustEnroll(t, url, servertest.MustInvite(t, url, devs[0], "member", ""), n))
	}
	return c, clk, devs
}

func callMeeting(t *testing.T, url string, d *servertest.Device, id, title string, at time.Time) servertest.Response {
	t.Helper()
	return servertest.Call(t, url, "POST", "/v1/meetings", d.Token, servertest.MustJSON(t, map[string]any{"id": id, "title": title, "at": at.UTC().Format(time.RFC3339)}))
}

func mustMeeting(t *testing.T, url string, d *servertest.Device, title string, at time.Time) wire.Meeting {
	t.Helper()
	r := callMeeting(t, url, d, uuid.NewString(), title, at)
	if r.Status != http.StatusCreated {
		t.Fatalf("POST /v1/meetings: %d %s", r.Status, r.Body)
	}
	var m wire.Meeting
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func getMeeting(t *testing.T, url string, d *servertest.Device, id string) wire.Meeting {
	t.Helper()
	var m wire.Meeting
	servertest.MustGetJSON(t, url, d, "/v1/meetings/"+id, &m)
	return m
}

func checkIn(t *testing.T, url string, d *servertest.Device, meeting, leastHeard string, dominant ...string) servertest.Response {
	t.Helper()
	return servertest.Call(t, url, "POST", "/v1/meetings/"+meeting+"/checks", d.Token, servertest.MustJSON(t, wire.CheckRequest{LeastHeard: leastHeard, Dominant: dominant}))
}

func mustCheckIn(t *testing.T, url string, d *servertest.Device, meeting, leastHeard string, dominant ...string) wire.CheckReceipt {
	t.Helper()
	r := checkIn(t, url, d, meeting, leastHeard, dominant...)
	if r.Status != http.StatusCreated {
		t.Fatalf("check in: %d %s", r.Status, r.Body)
	}
	var rc wire.CheckReceipt
	_ = json.Unmarshal(r.Body, &rc)
	return rc
}

func byMember(devs []*servertest.Device) map[string]*servertest.Device {
	out := map[string]*servertest.Device{}
	for _, d := range devs {
		out[d.Member] = d
	}
	return out
}

// verifyRitualAudit checks the whole chain and recomputes every draw,
// the facilitators' included, against the roster.
func verifyRitualAudit(t *testing.T, url string, d *servertest.Device) {
	t.Helper()
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
}

// TestMeetingFacilitationRotates: six neighbours meet every Tuesday; each
// facilitator is drawn among the active members, never one who
// facilitated one of the last two meetings; the draw is recomputable from
// the audit log; calling the same meeting twice makes one meeting.
func TestMeetingFacilitationRotates(t *testing.T) {
	c, clk, devs := ritualCircle(t, nil, "Ana", "Ben", "Cleo", "Dev", "Eli", "Fay")
	url := c.URL()
	members := byMember(devs)
	var facilitators []string
	for week := range 6 {
		at := clk.Now().Add(time.Duration(week) * 7 * day)
		m := mustMeeting(t, url, devs[week%len(devs)], "Tuesday meeting", at)
		if members[m.Facilitator] == nil {
			t.Fatalf("week %d: facilitator %q is not a member", week, m.Facilitator)
		}
		if m.Draw.Facilitator != m.Facilitator || m.Draw.Seed == "" || len(m.Draw.Commitment) != 64 {
			t.Errorf("week %d: draw %+v does not reveal its pick", week, m.Draw)
		}
		recent := facilitators[max(0, len(facilitators)-2):]
		if slices.Contains(recent, m.Facilitator) {
			t.Errorf("week %d: %s facilitates again though they facilitated one of the last two meetings (%v)", week, m.Facilitator, recent)
		}
		for _, f := range recent {
			if !slices.Contains(m.Draw.Rest, f) || slices.Contains(m.Draw.Eligible, f) {
				t.Errorf("week %d: recent facilitator %s not left out to rest: %+v", week, f, m.Draw)
			}
		}
		if got := len(m.Draw.Eligible) + len(m.Draw.Excluded); got != 6 {
			t.Errorf("week %d: eligible and excluded hold %d members, want all 6", week, got)
		}
		facilitators = append(facilitators, m.Facilitator)
	}

	// The same id again: the same meeting, never a second one.
	id := uuid.NewString()
	first := callMeeting(t, url, devs[0], id, "Repair café planning", clk.Now().Add(50*day))
	again := callMeeting(t, url, devs[0], id, "Repair café planning", clk.Now().Add(50*day))
	other := callMeeting(t, url, devs[1], id, "Something else", clk.Now().Add(50*day))
	if first.Status != http.StatusCreated || again.Status != http.StatusOK || other.Status != http.StatusConflict || other.Code != "conflict" {
		t.Fatalf("same id: %d, %d, %d %s; want 201, 200, 409", first.Status, again.Status, other.Status, other.Body)
	}
	var m1, m2 wire.Meeting
	_ = json.Unmarshal(first.Body, &m1)
	_ = json.Unmarshal(again.Body, &m2)
	if m1.Facilitator != m2.Facilitator || m1.Seq != m2.Seq {
		t.Errorf("retry drew again: %s/%d then %s/%d", m1.Facilitator, m1.Seq, m2.Facilitator, m2.Seq)
	}
	var list wire.MeetingList
	servertest.MustGetJSON(t, url, devs[2], "/v1/meetings", &list)
	if len(list.Meetings) != 7 {
		t.Errorf("GET /v1/meetings lists %d meetings, want 7", len(list.Meetings))
	}
	if n := countAudit(auditKinds(t, url, devs[0]), crdt.AuditMeetingCreated); n != 7 {
		t.Errorf("%d meeting.created entries, want 7", n)
	}
	verifyRitualAudit(t, url, devs[3])
}

// TestTemperatureCheckRestsDominantMember: after a meeting, three of four
// who check in name Ben as dominating; Ben is named by at least half, so
// he rests from facilitation for the next three meetings (cooldown) and
// is drawn again only after; Cleo, named once, does not rest. The circle
// sees the counts and the pattern over time, never who named whom; the
// check is counted once per member, also across a restart.
func TestTemperatureCheckRestsDominantMember(t *testing.T) {
	pol := crdt.DefaultPolicies()
	if err := pol.Set("facilitation.rest", "0"); err != nil { // only the cooldown leaves anyone out here
		t.Fatal(err)
	}
	c, clk, devs := ritualCircle(t, pol, "Ana", "Ben", "Cleo", "Dev", "Eli", "Fay")
	url := c.URL()
	ana, ben, cleo, dev, eli := devs[0], devs[1], devs[2], devs[3], devs[4]
	m := mustMeeting(t, url, ana, "Which drills to buy", clk.Now())

	mustCheckIn(t, url, ana, m.ID, "when the budget was settled before I spoke", ben.Member)
	mustCheckIn(t, url, cleo, m.ID, "", ben.Member)
	if r := checkIn(t, url, cleo, m.ID, "again", dev.Member); r.Status != http.StatusConflict {
		t.Fatalf("a second check by one member: %d %s, want 409", r.Status, r.Body)
	}

	// A restart keeps the open check: Cleo still cannot check twice.
	c.Stop()
	c.Start()
	url = c.URL()
	if r := checkIn(t, url, cleo, m.ID, "after the restart", dev.Member); r.Status != http.StatusConflict {
		t.Fatalf("a second check after a restart: %d %s, want 409", r.Status, r.Body)
	}
	rc := mustCheckIn(t, url, dev, m.ID, "the tool rota", ben.Member, cleo.Member)
	mustCheckIn(t, url, eli, m.ID, "")
	if rc.CheckedIn != 3 || rc.Status != "open" {
		t.Errorf("receipt %+v, want 3 checked in, open", rc)
	}
	open := getMeeting(t, url, eli, m.ID)
	if open.Summary.Status != "open" || open.Summary.CheckedIn != 4 || len(open.Summary.Named) != 0 || !open.Summary.YouCheckedIn {
		t.Errorf("open check shows Eli %+v; want only how many checked in, and that Eli did", open.Summary)
	}
	if s := getMeeting(t, url, devs[5], m.ID).Summary; s.YouCheckedIn {
		t.Errorf("Fay, who did not check in, is told she did")
	}

	// The next meeting closes the check: Ben was named by 3 of 4, Cleo by 1.
	next := mustMeeting(t, url, cleo, "Spring repair café", clk.Now().Add(7*day))
	closed := getMeeting(t, url, ana, m.ID)
	s := closed.Summary
	if s.Status != "closed" || s.CheckedIn != 4 || s.Named[ben.Member] != 3 || s.Named[cleo.Member] != 1 || !slices.Equal(s.Rests, []string{ben.Member}) {
		t.Fatalf("closed summary %+v; want 4 checked in, Ben 3, Cleo 1, Ben resting", s)
	}
	if !slices.Equal(s.Moments, []string{"the tool rota", "when the budget was settled before I spoke"}) {
		t.Errorf("moments %q, want the two said, sorted", s.Moments)
	}
	if r := checkIn(t, url, devs[5], m.ID, "late", ben.Member); r.Status != http.StatusConflict {
		t.Errorf("a check after it closed: %d, want 409", r.Status)
	}

	// Ben sits out three meetings, then may be drawn again.
	for i, mt := range []wire.Meeting{next, mustMeeting(t, url, ana, "Week 3", clk.Now().Add(14*day)), mustMeeting(t, url, ana, "Week 4", clk.Now().Add(21*day))} {
		if mt.Facilitator == ben.Member || !slices.Contains(mt.Draw.Cooldown, ben.Member) || slices.Contains(mt.Draw.Eligible, ben.Member) {
			t.Errorf("meeting %d after the check: Ben not resting: facilitator %s, draw %+v", i+1, mt.Facilitator, mt.Draw)
		}
		if slices.Contains(mt.Draw.Cooldown, cleo.Member) {
			t.Errorf("meeting %d: Cleo, named by 1 of 4, rests", i+1)
		}
	}
	fifth := mustMeeting(t, url, ana, "Week 5", clk.Now().Add(28*day))
	if !slices.Contains(fifth.Draw.Eligible, ben.Member) || len(fifth.Draw.Cooldown) != 0 {
		t.Errorf("fourth meeting after the check: Ben still left out: %+v", fifth.Draw)
	}

	// The pattern over time.
	var list wire.MeetingList
	servertest.MustGetJSON(t, url, dev, "/v1/meetings", &list)
	var benPat wire.MemberPattern
	for _, p := range list.Pattern {
		if p.Member == ben.Member {
			benPat = p
		}
	}
	if benPat.Named != 3 || benPat.MeetingsNamed != 1 || benPat.Rested != 1 || benPat.ChecksObserved < 1 {
		t.Errorf("Ben's pattern %+v; want named 3 in 1 meeting, rested once", benPat)
	}
	wantAudit(t, auditKinds(t, url, ana), crdt.AuditMeetingChecked, m.ID, `"checked_in":4`, ben.Member)
	verifyRitualAudit(t, url, eli)
}

// TestTemperatureCheckKeepsNoLink reads every document a member can read
// and finds no link from a checker to whom they named: while the check is
// open no document changes at all (byte for byte in the store, and no
// event is sent), so neither a document's contents nor its history
// orders or times one member's check; the close is one change of the
// governance document holding only counts, and its audit entry too.
func TestTemperatureCheckKeepsNoLink(t *testing.T) {
	c, clk, devs := ritualCircle(t, nil, "Ana", "Ben", "Cleo", "Dev")
	url := c.URL()
	ana, ben, cleo, dev := devs[0], devs[1], devs[2], devs[3]
	m := mustMeeting(t, url, ana, "Tuesday", clk.Now())
	govID := servertest.MustCircle(t, url, ana).Docs["governance"]
	gov, _ := servertest.MustPull(t, url, dev, govID, automerge.NewActorID())
	headsBefore := gov.Heads()
	events := followEvents(t, url, dev)

	before := servertest.MustStoredDocs(t, c)
	mustCheckIn(t, url, ben, m.ID, "zebra crossing talk", cleo.Member)
	mustCheckIn(t, url, ana, m.ID, "apple harvest talk", ben.Member, cleo.Member)
	mustCheckIn(t, url, cleo, m.ID, "", dev.Member)
	servertest.MustStoreUnchanged(t, c, before)
	select {
	case ev := <-events:
		t.Errorf("event %s sent while the check is open", ev)
	case <-time.After(200 * time.Millisecond):
	}

	rc := mustCheckIn(t, url, dev, m.ID, "")
	if rc.Status != "closed" {
		t.Fatalf("the last member's check did not close it: %+v", rc)
	}
	waitEvent(t, events, "meeting.checked")

	// Every document the member can read, as of now.
	circ := servertest.MustCircle(t, url, dev)
	docs := map[string]*automerge.Doc{}
	for _, id := range circ.Docs {
		docs[id], _ = servertest.MustPull(t, url, dev, id, automerge.NewActorID())
	}
	for _, mem := range circ.Members {
		for _, id := range append(slices.Clone(mem.Ledgers), mem.Ballots) {
			docs[id], _ = servertest.MustPull(t, url, dev, id, automerge.NewActorID())
		}
	}
	gov = docs[govID]
	changes, err := gov.Changes(headsBefore...)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 {
		t.Fatalf("closing the check made %d governance changes, want 1", len(changes))
	}
	v, err := gov.Path("meeting_checks", m.ID).Get()
	if err != nil {
		t.Fatal(err)
	}
	sum, err := automerge.As[map[string]any](v)
	if err != nil {
		t.Fatal(err)
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range sum {
			if !yield(k) {
				return
			}
		}
	})
	if !slices.Equal(keys, []string{"checked_in", "closed_at", "moments", "named", "rests"}) {
		t.Errorf("stored summary has fields %v; want counts only", keys)
	}
	// No document other than governance and audit mentions the check's
	// words; they name the moments only in sorted order.
	for id, d := range docs {
		saved := string(d.Save())
		if id != govID && strings.Contains(saved, "zebra crossing") {
			t.Errorf("document %s holds a least-heard moment", id)
		}
	}
	got := getMeeting(t, url, ana, m.ID).Summary
	if !slices.Equal(got.Moments, []string{"apple harvest talk", "zebra crossing talk"}) {
		t.Errorf("moments %q not sorted", got.Moments)
	}
	for _, e := range auditKinds(t, url, ana) {
		if e.Kind != crdt.AuditMeetingChecked {
			continue
		}
		var data map[string]any
		_ = json.Unmarshal(e.Data, &data)
		for _, d := range devs {
			if strings.Contains(string(e.Data), d.ID) {
				t.Errorf("meeting.checked names device %s", d.ID)
			}
		}
		if _, ok := data["checkers"]; ok || len(data) != 5 {
			t.Errorf("meeting.checked data %s; want meeting, checked_in, named, rests, moments only", e.Data)
		}
	}
}

// TestMinutesByFacilitatorOnly: only the drawn facilitator records the
// minutes; they are public, tagged decision by decision, in the audit
// log; bad input and other members change nothing.
func TestMinutesByFacilitatorOnly(t *testing.T) {
	c, clk, devs := ritualCircle(t, nil, "Ana", "Ben", "Cleo")
	url := c.URL()
	m := mustMeeting(t, url, devs[0], "Tuesday", clk.Now())
	fac := byMember(devs)[m.Facilitator]
	var other *servertest.Device
	for _, d := range devs {
		if d != fac {
			other = d
		}
	}
	path := "/v1/meetings/" + m.ID + "/minutes"
	good := map[string]any{"text": "We agreed on a spring repair café.", "decisions": []map[string]string{
		{"text": "Hold a repair café in April", "tag": "local"},
		{"text": "Ask the council for the hall", "tag": "external"},
	}}
	var before map[string][]byte
	unchanged := func(tb testing.TB, r servertest.Response) { servertest.MustStoreUnchanged(tb, c, before) }
	snapshot := func(tb testing.TB) { before = servertest.MustStoredDocs(tb, c) }
	servertest.RunScenarios(t, url, []servertest.Scenario{
		{Name: "not the facilitator", Method: "POST", Path: path, Token: other.Token, Body: good, WantStatus: http.StatusForbidden, WantCode: "forbidden", Before: snapshot, After: unchanged},
		{Name: "no token", Method: "POST", Path: path, Body: good, WantStatus: http.StatusUnauthorized, Before: snapshot, After: unchanged},
		{Name: "unknown meeting", Method: "POST", Path: "/v1/meetings/nope/minutes", Token: fac.Token, Body: good, WantStatus: http.StatusNotFound, Before: snapshot, After: unchanged},
		{Name: "a decision without a tag", Method: "POST", Path: path, Token: fac.Token, Body: map[string]any{"text": "x", "decisions": []map[string]string{{"text": "y"}}}, WantStatus: http.StatusBadRequest, WantCode: "invalid_request", WantContains: []string{"tag"}, Before: snapshot, After: unchanged},
		{Name: "a bad tag", Method: "POST", Path: path, Token: fac.Token, Body: map[string]any{"text": "x", "decisions": []map[string]string{{"text": "y", "tag": "global"}}}, WantStatus: http.StatusBadRequest, WantCode: "invalid_request", Before: snapshot, After: unchanged},
		{Name: "empty text", Method: "POST", Path: path, Token: fac.Token, Body: map[string]any{"text": " "}, WantStatus: http.StatusBadRequest, WantCode: "invalid_request", Before: snapshot, After: unchanged},
		{Name: "decisions not a list", Method: "POST", Path: path, Token: fac.Token, Body: `{"text":"x","decisions":"local"}`, WantStatus: http.StatusBadRequest, Before: snapshot, After: unchanged},
		{Name: "the facilitator", Method: "POST", Path: path, Token: fac.Token, Body: good, WantStatus: http.StatusCreated, WantContains: []string{"spring repair café", `"tag":"external"`}},
		{Name: "the same again: a safe retry", Method: "POST", Path: path, Token: fac.Token, Body: good, WantStatus: http.StatusOK, Before: snapshot, After: unchanged},
		{Name: "other minutes later", Method: "POST", Path: path, Token: fac.Token, Body: map[string]any{"text": "rewritten"}, WantStatus: http.StatusConflict, Before: snapshot, After: unchanged},
	})
	got := getMeeting(t, url, other, m.ID)
	if got.Minutes == nil || got.Minutes.By != fac.Member || len(got.Minutes.Decisions) != 2 || got.Minutes.Decisions[0].Tag != "local" {
		t.Errorf("minutes as another member sees them: %+v", got.Minutes)
	}
	wantAudit(t, auditKinds(t, url, other), crdt.AuditMeetingMinutes, m.ID, "spring repair café", "Ask the council")
	if n := countAudit(auditKinds(t, url, other), crdt.AuditMeetingMinutes); n != 1 {
		t.Errorf("%d meeting.minutes entries, want 1", n)
	}
}

// TestRitualsBadInput: malformed meetings and checks are refused with a
// clear error and change nothing stored.
func TestRitualsBadInput(t *testing.T) {
	c, clk, devs := ritualCircle(t, nil, "Ana", "Ben")
	url := c.URL()
	ana := devs[0]
	m := mustMeeting(t, url, ana, "Tuesday", clk.Now())
	at := clk.Now().Format(time.RFC3339)
	var before map[string][]byte
	snapshot := func(tb testing.TB) { before = servertest.MustStoredDocs(tb, c) }
	unchanged := func(tb testing.TB, r servertest.Response) { servertest.MustStoreUnchanged(tb, c, before) }
	bad := func(name, path string, body any, want int, contains ...string) servertest.Scenario {
		return servertest.Scenario{Name: name, Method: "POST", Path: path, Token: ana.Token, Body: body, WantStatus: want, WantContains: contains, Before: snapshot, After: unchanged}
	}
	checks := "/v1/meetings/" + m.ID + "/checks"
	servertest.RunScenarios(t, url, []servertest.Scenario{
		bad("meeting without id", "/v1/meetings", map[string]any{"title": "x", "at": at}, 400, "id"),
		bad("meeting id with a slash", "/v1/meetings", map[string]any{"id": "a/b", "title": "x", "at": at}, 400, "id"),
		bad("meeting without title", "/v1/meetings", map[string]any{"id": "m1", "at": at}, 400, "title"),
		bad("meeting title too long", "/v1/meetings", map[string]any{"id": "m1", "title": strings.Repeat("x", 201), "at": at}, 400, "title"),
		bad("meeting without time", "/v1/meetings", map[string]any{"id": "m1", "title": "x"}, 400, "at"),
		bad("meeting time not RFC 3339", "/v1/meetings", `{"id":"m1","title":"x","at":"tuesday"}`, 400),
		bad("meeting in ten years", "/v1/meetings", map[string]any{"id": "m1", "title": "x", "at": clk.Now().AddDate(10, 0, 0).Format(time.RFC3339)}, 400, "at"),
		bad("check naming a stranger", checks, map[string]any{"least_heard": "x", "dominant": []string{"nobody"}}, 400, "dominant"),
		bad("check naming one twice", checks, map[string]any{"dominant": []string{devs[1].Member, devs[1].Member}}, 400, "twice"),
		bad("check with a long moment", checks, map[string]any{"least_heard": strings.Repeat("x", 1001)}, 400, "least_heard"),
		bad("check on an unknown meeting", "/v1/meetings/nope/checks", map[string]any{"least_heard": "x"}, 404),
		bad("check dominant not a list", checks, `{"dominant":"Ben"}`, 400),
		{Name: "step down from an unknown role", Method: "POST", Path: "/v1/roles/nope/step-down", Token: ana.Token, WantStatus: 404, Before: snapshot, After: unchanged},
		{Name: "unknown meeting", Method: "GET", Path: "/v1/meetings/nope", Token: ana.Token, WantStatus: 404},
		{Name: "meetings without a token", Method: "GET", Path: "/v1/meetings", WantStatus: 401},
	})
	// Nothing of the refused checks was counted.
	if s := getMeeting(t, url, ana, m.ID).Summary; s.CheckedIn != 0 {
		t.Errorf("refused checks counted: %+v", s)
	}
}

// TestStepDownAndHonours: only the holder steps down; stepping down,
// reaching the term limit and being rotated out are honoured publicly.
func TestStepDownAndHonours(t *testing.T) {
	c, clk, devs := ritualCircle(t, nil, "Ana", "Ben", "Cleo")
	url := c.URL()
	ana, ben, cleo := devs[0], devs[1], devs[2]
	pass := passer(t, url, devs)
	role := func(name string, term string, limit int, holder *servertest.Device) string {
		t.Helper()
		p := pass("role.create", "Create "+name, map[string]any{"name": name, "purpose": "keeps the " + name, "term": term, "term_limit": limit})
		if p.Status != "passed" {
			t.Fatalf("role.create %s: %s %s", name, p.Status, p.Reason)
		}
		if a := pass("role.assign", "Assign "+name, map[string]any{"role": p.ID, "member": holder.Member}); a.Status != "passed" {
			t.Fatalf("role.assign %s: %s %s", name, a.Status, a.Reason)
		}
		return p.ID
	}
	keys := role("keyholder", "2160h", 2, ana)
	treasurer := role("treasurer", "720h", 1, ben)
	rota := role("rota keeper", "720h", 2, cleo)

	var before map[string][]byte
	servertest.RunScenarios(t, url, []servertest.Scenario{
		{Name: "not the holder", Method: "POST", Path: "/v1/roles/" + keys + "/step-down", Token: ben.Token, WantStatus: http.StatusForbidden, WantCode: "forbidden",
			Before: func(tb testing.TB) { before = servertest.MustStoredDocs(tb, c) },
			After:  func(tb testing.TB, r servertest.Response) { servertest.MustStoreUnchanged(tb, c, before) }},
		{Name: "the holder", Method: "POST", Path: "/v1/roles/" + keys + "/step-down", Token: ana.Token, WantStatus: http.StatusOK, WantBody: servertest.WantJSON(func(tb testing.TB, r wire.Role) {
			if r.Holder != "" || r.PreviousHolder != ana.Member {
				tb.Errorf("role after stepping down: %+v", r)
			}
		})},
		{Name: "no longer the holder", Method: "POST", Path: "/v1/roles/" + keys + "/step-down", Token: ana.Token, WantStatus: http.StatusForbidden},
	})
	var roles wire.RoleList
	servertest.MustGetJSON(t, url, cleo, "/v1/roles", &roles)
	for _, r := range roles.Roles {
		if r.ID == keys && r.Holder != "" {
			t.Errorf("keyholder still held by %s", r.Holder)
		}
	}

	// A month later the treasurer (limit 1) and the rota keeper (limit 2)
	// reach the end of their terms.
	moveTo(t, c, clk, 31*day, devs)
	var h wire.Honours
	servertest.MustGetJSON(t, url, cleo, "/v1/honours", &h)
	want := map[string]wire.Honour{
		keys:      {Member: ana.Member, Kind: "stepped_down", Terms: 1},
		treasurer: {Member: ben.Member, Kind: "term_ended", Terms: 1},
		rota:      {Member: cleo.Member, Kind: "rotated", Terms: 1},
	}
	if len(h.Honours) != 3 {
		t.Fatalf("honours %+v, want 3", h.Honours)
	}
	for _, got := range h.Honours {
		w := want[got.Role]
		if got.Member != w.Member || got.Kind != w.Kind || got.Terms != w.Terms || got.At.IsZero() {
			t.Errorf("honour for role %s = %+v, want %+v", got.Role, got, w)
		}
	}
	if h.Honours[2].Role != keys {
		t.Errorf("honours not newest first: %+v", h.Honours)
	}
	wantAudit(t, auditKinds(t, url, ben), crdt.AuditRoleSteppedDown, keys, ana.Member)
	verifyRitualAudit(t, url, ben)

	// Restart keeps the honours and the meetings.
	m := mustMeeting(t, url, ana, "After the rotation", clk.Now())
	c.Stop()
	c.Start()
	url = c.URL()
	servertest.MustGetJSON(t, url, cleo, "/v1/honours", &h)
	if len(h.Honours) != 3 {
		t.Errorf("after a restart: %d honours, want 3", len(h.Honours))
	}
	if got := getMeeting(t, url, ben, m.ID); got.Facilitator != m.Facilitator {
		t.Errorf("after a restart the meeting's facilitator is %q, want %q", got.Facilitator, m.Facilitator)
	}
}

// TestScorecardAutonomyAndSufficiency: decisions tagged in minutes give
// the share made locally, by quarter; needs declared as charter policies
// are set against the ledger.
func TestScorecardAutonomyAndSufficiency(t *testing.T) {
	pol := crdt.DefaultPolicies()
	for name, value := range map[string]string{"need.food": "3 meal/month: a shared dinner most weeks", "need.tools": "10 lend/quarter"} {
		if err := pol.Set(name, value); err != nil {
			t.Fatal(err)
		}
	}
	c, clk, devs := ritualCircle(t, pol, "Ana", "Ben", "Cleo")
	url := c.URL()
	record := func(at time.Time, tags ...string) {
		t.Helper()
		m := mustMeeting(t, url, devs[0], "Meeting", at)
		fac := byMember(devs)[m.Facilitator]
		var ds []wire.Decision
		for i, tag := range tags {
			ds = append(ds, wire.Decision{Text: "decision " + string(rune('a'+i)), Tag: tag})
		}
		r := servertest.Call(t, url, "POST", "/v1/meetings/"+m.ID+"/minutes", fac.Token, servertest.MustJSON(t, wire.MinutesRequest{Text: "minutes", Decisions: ds}))
		if r.Status != http.StatusCreated {
			t.Fatalf("minutes: %d %s", r.Status, r.Body)
		}
	}
	record(clk.Now().Add(-40*day), "local", "external", "external", "local") // 2026-Q1: 2 of 4
	record(clk.Now().Add(40*day), "local", "local", "local")                 // 2026-Q2: 3 of 3
	for i, kind := range []string{"meal", "meal", "lend"} {
		e := servertest.ValidEntry(uuid.NewString())
		e["kind"], e["quantity"], e["at"] = kind, 1, clk.Now().Add(-time.Duration(i)*time.Hour).Format(time.RFC3339)
		if r := servertest.Call(t, url, "POST", "/v1/ledger/entries", devs[i].Token, servertest.MustJSON(t, e)); r.Status != http.StatusCreated {
			t.Fatalf("entry: %d %s", r.Status, r.Body)
		}
	}
	var sc wire.Scorecard
	servertest.MustGetJSON(t, url, devs[1], "/v1/scorecard", &sc)
	a := sc.Autonomy
	if a.Local != 5 || a.External != 2 || a.Share == nil || *a.Share < 0.71 || *a.Share > 0.72 || len(a.Quarters) != 2 || a.Trend != "rising" {
		t.Errorf("autonomy %+v; want 5 local, 2 external, share 5/7, two quarters, rising", a)
	}
	if len(a.Quarters) == 2 && (a.Quarters[0].Quarter != "2026-Q1" || *a.Quarters[0].Share != 0.5) {
		t.Errorf("first quarter %+v, want 2026-Q1 at 0.5", a.Quarters[0])
	}
	s := sc.Sufficiency
	if len(s.Needs) != 2 || s.AllMet {
		t.Fatalf("sufficiency %+v; want two needs, not all met", s)
	}
	food, tools := s.Needs[0], s.Needs[1]
	if food.Name != "food" || food.Met != 2 || food.Target != 3 || food.IsMet || food.Period != "2026-03" || food.Words != "a shared dinner most weeks" {
		t.Errorf("food %+v", food)
	}
	if tools.Name != "tools" || tools.Met != 1 || tools.Period != "2026-Q1" {
		t.Errorf("tools %+v", tools)
	}
	// A bad need is refused like any bad policy.
	if r := propose(t, url, devs[0], uuid.NewString(), "policy.set", "Need", map[string]any{"name": "need.care", "value": "lots of care"}); r.Status != http.StatusBadRequest && r.Status != http.StatusUnprocessableEntity {
		t.Errorf("policy.set need.care=\"lots of care\": %d %s, want refused", r.Status, r.Body)
	}
}

// TestMeetingSameIDAtOnce: the same meeting called from several phones at
// once (a retried request racing its original) is one meeting, drawn once.
func TestMeetingSameIDAtOnce(t *testing.T) {
	c, clk, devs := ritualCircle(t, nil, "Ana", "Ben", "Cleo")
	url := c.URL()
	id := uuid.NewString()
	body := servertest.MustJSON(t, map[string]any{"id": id, "title": "Tuesday", "at": clk.Now().Format(time.RFC3339)})
	statuses := make(chan int, 6)
	for i := range 6 {
		go func() {
			req, _ := http.NewRequest("POST", url+"/v1/meetings", strings.NewReader(string(body)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+devs[i%3].Token)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				statuses <- 0
				return
			}
			res.Body.Close()
			statuses <- res.StatusCode
		}()
	}
	created := 0
	for range 6 {
		switch s := <-statuses; s {
		case http.StatusCreated:
			created++
		case http.StatusOK:
		default:
			t.Errorf("status %d, want 201 or 200", s)
		}
	}
	if created != 1 {
		t.Errorf("%d answers 201, want exactly 1", created)
	}
	var list wire.MeetingList
	servertest.MustGetJSON(t, url, devs[0], "/v1/meetings", &list)
	if len(list.Meetings) != 1 {
		t.Errorf("%d meetings, want 1", len(list.Meetings))
	}
	if n := countAudit(auditKinds(t, url, devs[0]), crdt.AuditDrawCommitted); n != 1 {
		t.Errorf("%d draw commitments, want 1", n)
	}
}

// TestTemperatureCheckClosesAfterWindow: a check nobody else answers
// closes by itself three days after the meeting (the scheduler's Tick),
// and one member naming another out of one check-in rests them.
func TestTemperatureCheckClosesAfterWindow(t *testing.T) {
	c, clk, devs := ritualCircle(t, nil, "Ana", "Ben", "Cleo")
	url := c.URL()
	m := mustMeeting(t, url, devs[0], "Tuesday", clk.Now())
	mustCheckIn(t, url, devs[0], m.ID, "", devs[1].Member)
	moveTo(t, c, clk, 71*time.Hour, devs)
	if s := getMeeting(t, url, devs[2], m.ID).Summary; s.Status != "open" {
		t.Fatalf("after 71 hours the check is %s, want open", s.Status)
	}
	moveTo(t, c, clk, 73*time.Hour, devs)
	s := getMeeting(t, url, devs[2], m.ID).Summary
	if s.Status != "closed" || s.CheckedIn != 1 || s.Named[devs[1].Member] != 1 || !slices.Equal(s.Rests, []string{devs[1].Member}) {
		t.Errorf("after 73 hours: %+v; want closed, Ben named once and resting", s)
	}
	moveTo(t, c, clk, 74*time.Hour, devs) // a second tick closes nothing again
	if n := countAudit(auditKinds(t, url, devs[0]), crdt.AuditMeetingChecked); n != 1 {
		t.Errorf("%d meeting.checked entries, want 1", n)
	}
	verifyRitualAudit(t, url, devs[1])
}

// TestRitualsFinishAfterFailedAuditWrites: calling a meeting while the
// audit log's store fails is refused whole (its draw's commitment comes
// first); once called, the audit store fails while its minutes are
// recorded and its check closes: the documents' writes stand, and the
// scheduler's next tick writes each missing audit entry once, the chain
// and every draw verifying after.
func TestRitualsFinishAfterFailedAuditWrites(t *testing.T) {
	var failAudit atomic.Bool
	var auditDoc atomic.Value
	auditDoc.Store("")
	clk := servertest.FixedClock(time.Date(2026, 3, 3, 19, 0, 0, 0, time.UTC))
	c := servertest.Start(t, "Tool Library", servertest.WithClock(clk.Now), servertest.WithConfig(func(cfg *server.Config) {
		server.FailWrites(cfg, func(doc string) bool { return failAudit.Load() && doc == auditDoc.Load().(string) })
	}))
	url := c.URL()
	devs := []*servertest.Device{servertest.MustEnroll(t, url, c.FounderInvite, "Ana")}
	devs = append(devs, servertest.MustEnroll(t, url, servertest.MustInvite(t, url, devs[0], "member", ""), "Ben"))
	auditDoc.Store(servertest.MustCircle(t, url, devs[0]).Docs["audit"])

	failAudit.Store(true)
	if r := callMeeting(t, url, devs[0], "m-refused", "Tuesday", clk.Now()); r.Status != http.StatusServiceUnavailable {
		t.Fatalf("calling a meeting while the audit store fails: %d %s, want 503", r.Status, r.Body)
	}
	failAudit.Store(false)
	m := mustMeeting(t, url, devs[0], "Tuesday", clk.Now())
	failAudit.Store(true)
	fac := byMember(devs)[m.Facilitator]
	if r := servertest.Call(t, url, "POST", "/v1/meetings/"+m.ID+"/minutes", fac.Token, servertest.MustJSON(t, wire.MinutesRequest{Text: "we met", Decisions: []wire.Decision{{Text: "buy oil", Tag: "local"}}})); r.Status != http.StatusCreated {
		t.Fatalf("minutes: %d %s", r.Status, r.Body)
	}
	mustCheckIn(t, url, devs[0], m.ID, "", devs[1].Member)
	mustCheckIn(t, url, devs[1], m.ID, "", devs[1].Member)
	if s := getMeeting(t, url, devs[0], m.ID).Summary; s.Status != "closed" || s.Named[devs[1].Member] != 2 {
		t.Fatalf("summary %+v: the governance write stands", s)
	}
	kinds := auditKinds(t, url, devs[0])
	if countAudit(kinds, crdt.AuditMeetingMinutes)+countAudit(kinds, crdt.AuditMeetingChecked) != 0 {
		t.Fatalf("audit entries written while the audit store fails")
	}

	failAudit.Store(false)
	for range 2 { // the second tick writes nothing more
		moveTo(t, c, clk, time.Minute, devs)
	}
	kinds = auditKinds(t, url, devs[0])
	for _, k := range []string{crdt.AuditMeetingCreated, crdt.AuditMeetingMinutes, crdt.AuditMeetingChecked} {
		if n := countAudit(kinds, k); n != 1 {
			t.Errorf("%d %s entries after the tick, want 1", n, k)
		}
	}
	wantAudit(t, kinds, crdt.AuditMeetingChecked, m.ID, `"checked_in":2`)
	verifyRitualAudit(t, url, devs[1])
	// The tally is gone: a late check is refused as closed, not counted.
	if r := checkIn(t, url, devs[0], m.ID, "late"); r.Status != http.StatusConflict {
		t.Errorf("a check after the close: %d", r.Status)
	}
}

// TestMeetingsBounded: one member cannot call meetings without end: the
// 25th within 24 hours is refused and changes nothing; a day later the
// circle meets again.
func TestMeetingsBounded(t *testing.T) {
	c, clk, devs := ritualCircle(t, nil, "Ana", "Ben")
	url := c.URL()
	for i := range 24 {
		mustMeeting(t, url, devs[0], "Meeting", clk.Now().Add(time.Duration(i)*time.Hour))
	}
	before := servertest.MustStoredDocs(t, c)
	if r := callMeeting(t, url, devs[0], uuid.NewString(), "One more", clk.Now()); r.Status != http.StatusTooManyRequests || r.Code != "rate_limited" {
		t.Fatalf("the 25th meeting in a day: %d %s, want 429", r.Status, r.Body)
	}
	servertest.MustStoreUnchanged(t, c, before)
	moveTo(t, c, clk, 25*time.Hour, devs)
	mustMeeting(t, url, devs[1], "Next day", clk.Now())
}
