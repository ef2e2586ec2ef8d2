package browser_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// ritualsSummary is what rituals.mjs prints as its last line.
type ritualsSummary struct {
	Axe          map[string][]string `json:"axe"`
	Screens      []string            `json:"screens"`
	MeetingID    string              `json:"meeting_id"`
	MeetingTitle string              `json:"meeting_title"`
	Facilitator  string              `json:"facilitator"`
	Decisions    []string            `json:"decisions"`
	Named        []string            `json:"named"`
	Rests        string              `json:"rests"`
	Pattern      []string            `json:"pattern"`
	Honours      []string            `json:"honours"`
	PendingDraw  string              `json:"pending_draw"`
	Error        string              `json:"error"`
	Screen       string              `json:"screen"`
}

// TestBrowserRituals: on the phone app's Meetings screen a member calls a
// meeting and is drawn to facilitate it (the founder rests after
// facilitating the first if the draw picked them), records the minutes
// with a decision made here and one depending on others, and sends the
// temperature check naming the founder; once the founder checked in too,
// the screen shows the counts and the founder resting. The Honours screen
// shows the founder's stepping down. The server holds all of it.
func TestBrowserRituals(t *testing.T) {
	ph := mustPhone(t)
	c := servertest.Start(t, "Ritual Circle")
	base := c.URL()
	founder := mustEnroll(t, base, c.FounderInvite, "Founder")

	// The founder holds the keys for a term, then steps down.
	var p wire.Proposal
	founder.call(t, http.MethodPost, "/v1/proposals", wire.ProposalRequest{ID: uuid.NewString(), Kind: "role.create", Title: "Keyholder",
		Payload: map[string]any{"name": "keyholder", "purpose": "opens the shed", "term": "2160h", "term_limit": 2}}, http.StatusCreated, &p)
	founder.call(t, http.MethodPost, "/v1/proposals/"+p.ID+"/votes", wire.VoteRequest{Choice: "yes"}, http.StatusOK, &p)
	role := p.ID
	founder.call(t, http.MethodPost, "/v1/proposals", wire.ProposalRequest{ID: uuid.NewString(), Kind: "role.assign", Title: "Founder holds the keys",
		Payload: map[string]any{"role": role, "member": founder.memberID}}, http.StatusCreated, &p)
	founder.call(t, http.MethodPost, "/v1/proposals/"+p.ID+"/votes", wire.VoteRequest{Choice: "yes"}, http.StatusOK, &p)
	founder.call(t, http.MethodPost, "/v1/roles/"+role+"/step-down", nil, http.StatusOK, nil)
	// A steward is being drawn: the role waits for its round.
	founder.call(t, http.MethodPost, "/v1/proposals", wire.ProposalRequest{ID: uuid.NewString(), Kind: "role.create", Title: "Steward",
		Payload: map[string]any{"name": "steward", "purpose": "keeps the tools", "term": "720h", "term_limit": 2, "rotation": "draw"}}, http.StatusCreated, &p)
	founder.call(t, http.MethodPost, "/v1/proposals/"+p.ID+"/votes", wire.VoteRequest{Choice: "yes"}, http.StatusOK, &p)
	founder.call(t, http.MethodPost, "/v1/proposals", wire.ProposalRequest{ID: uuid.NewString(), Kind: "role.draw", Title: "Draw the steward",
		Payload: map[string]any{"role": "steward"}}, http.StatusCreated, &p)
	founder.call(t, http.MethodPost, "/v1/proposals/"+p.ID+"/votes", wire.VoteRequest{Choice: "yes"}, http.StatusOK, &p)
	if p.Status != "passed" {
		t.Fatalf("role.draw: %s (%s)", p.Status, p.Reason)
	}

	got := runScript[ritualsSummary](t, ph, "rituals.mjs", "--link", founder.invite(t), "--token", founder.token, "--shots", shotsDir(t))
	if !slices.Equal(got.Decisions, []string{"Hold the repair café in April (made here)", "Ask the council for the hall (depends on an outside authority)"}) {
		t.Errorf("decisions shown: %q", got.Decisions)
	}
	if len(got.Named) != 1 || !strings.Contains(got.Named[0], "Founder: named 2 times") || !strings.Contains(got.Rests, "Founder") {
		t.Errorf("closed check shown: named %q, rests %q; want the founder named twice and resting", got.Named, got.Rests)
	}
	if len(got.Honours) != 1 || !strings.Contains(got.Honours[0], "Founder stepped down as keyholder after 1 term") {
		t.Errorf("honours shown: %q", got.Honours)
	}
	if !strings.Contains(got.PendingDraw, "Being drawn") {
		t.Errorf("the Roles screen shows the pending draw as %q", got.PendingDraw)
	}
	for _, s := range []string{"meetings-empty", "meetings-check-open", "meetings-check-closed", "honours", "roles-pending-draw"} {
		if _, ok := got.Axe[s]; !ok {
			t.Errorf("axe-core did not check %s", s)
		}
	}

	// What the server holds.
	var m wire.Meeting
	founder.call(t, http.MethodGet, "/v1/meetings/"+got.MeetingID, nil, http.StatusOK, &m)
	if m.Minutes == nil || m.Minutes.By != m.Facilitator || m.Facilitator == founder.memberID || len(m.Minutes.Decisions) != 2 ||
		m.Minutes.Decisions[0].Tag != "local" || m.Minutes.Decisions[1].Tag != "external" {
		t.Errorf("the server's meeting: facilitator %s, minutes %+v", m.Facilitator, m.Minutes)
	}
	if m.Summary.Status != "closed" || m.Summary.CheckedIn != 2 || m.Summary.Named[founder.memberID] != 2 || !slices.Equal(m.Summary.Rests, []string{founder.memberID}) ||
		!slices.Equal(m.Summary.Moments, []string{"when the budget came up"}) {
		t.Errorf("the server's check summary: %+v", m.Summary)
	}
	var sc wire.Scorecard
	founder.call(t, http.MethodGet, "/v1/scorecard", nil, http.StatusOK, &sc)
	if sc.Autonomy.Local != 1 || sc.Autonomy.External != 1 {
		t.Errorf("scorecard autonomy %+v, want 1 local and 1 external", sc.Autonomy)
	}
}
