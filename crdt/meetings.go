package crdt

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/automerge/automerge-go"
)

// Meetings, their minutes and their power temperature checks (issue 10,
// API.md "Rituals"). The governance document, written by the server only
// and readable by every member, keeps them under three maps:
//
//	"meetings":        { "<id>": { "id", "seq", "title", "at", "created_at",
//	                     "author", "facilitator", "draw", "rest": [member],
//	                     "cooldown": [member], "relaxed" } }
//	"meeting_minutes": { "<id>": { "text", "by", "at",
//	                     "decisions": [ { "text", "tag": "local"|"external" } ] } }
//	"meeting_checks":  { "<id>": { "checked_in", "named": { "<member>": n },
//	                     "moments": [text, sorted], "rests": [member, sorted],
//	                     "closed_at" } }
//
// A temperature check is written to the document only once it closes, as
// one change holding the counts: no change ever holds one member's check,
// so neither the document's contents nor its history (the order and time
// of its changes) link a member to whom they named.

// Audit entry kinds of meetings.
const (
	AuditMeetingCreated = "meeting.created"
	AuditMeetingMinutes = "meeting.minutes"
	AuditMeetingChecked = "meeting.checked"
)

// Decision tags: a decision made by the circle alone, or one that depends
// on an outside authority (a landlord, a council, a supplier).
const (
	DecisionLocal    = "local"
	DecisionExternal = "external"
)

// Bounds of meetings' fields.
const (
	MaxMeetingTitle    = 200
	MaxMinutesText     = 20000
	MaxDecisions       = 50
	MaxDecisionText    = 1000
	MaxLeastHeard      = 1000
	MaxDominant        = 30
	FacilitationPrefix = "facilitation"
)

// Meeting is one meeting with its drawn facilitator.
type Meeting struct {
	ID          string `automerge:"id"`
	Seq         int64  `automerge:"seq"` // 1 for the circle's first meeting, then one more each
	Title       string `automerge:"title"`
	At          string `automerge:"at"` // RFC 3339, when it takes place
	CreatedAt   string `automerge:"created_at"`
	Author      string `automerge:"author"`
	Facilitator string `automerge:"facilitator"`
	Draw        string `automerge:"draw"` // the draw's id (MeetingDrawID)
	// Who the draw left out, and why (FacilitatorPool).
	Rest     []string `automerge:"rest"`
	Cooldown []string `automerge:"cooldown"`
	Relaxed  string   `automerge:"relaxed"`
}

// MinutesDecision is one decision recorded in a meeting's minutes.
type MinutesDecision struct {
	Text string `automerge:"text" json:"text"`
	Tag  string `automerge:"tag" json:"tag"`
}

// Minutes are what the facilitator recorded of a meeting.
type Minutes struct {
	Text      string            `automerge:"text"`
	By        string            `automerge:"by"`
	At        string            `automerge:"at"`
	Decisions []MinutesDecision `automerge:"decisions"`
}

// CheckSummary is a closed temperature check: how many checked in, how
// many times each member was named as dominating, the moments members
// felt least heard (sorted, so their order says nothing of who wrote
// them), and who rests from facilitation because of it.
type CheckSummary struct {
	CheckedIn int64            `automerge:"checked_in"`
	Named     map[string]int64 `automerge:"named"`
	Moments   []string         `automerge:"moments"`
	Rests     []string         `automerge:"rests"`
	ClosedAt  string           `automerge:"closed_at"`
}

// MeetingDrawID names the draw of a meeting's facilitator.
func MeetingDrawID(meeting string) string { return "meeting:" + meeting }

// ValidateMeetingID checks a client-made meeting id.
func ValidateMeetingID(id string) error {
	if !isID(id) {
		return fieldErr("meeting", "id", "must be 1 to 64 letters, digits, '.', '_', ':' or '-'")
	}
	return nil
}

// CheckMeetingTitle checks a meeting's title.
func CheckMeetingTitle(title string) error {
	if strings.TrimSpace(title) == "" {
		return fieldErr("meeting", "title", "must not be empty")
	}
	return checkText("meeting", "title", title, MaxMeetingTitle)
}

// CheckMinutes checks minutes' text and decisions.
func CheckMinutes(text string, decisions []MinutesDecision) error {
	if strings.TrimSpace(text) == "" {
		return fieldErr("minutes", "text", "must not be empty")
	}
	if err := checkText("minutes", "text", text, MaxMinutesText); err != nil {
		return err
	}
	if len(decisions) > MaxDecisions {
		return fieldErr("minutes", "decisions", fmt.Sprintf("must hold at most %d decisions", MaxDecisions))
	}
	for i, d := range decisions {
		if strings.TrimSpace(d.Text) == "" {
			return fieldErr("minutes", fmt.Sprintf("decisions[%d].text", i), "must not be empty")
		}
		if err := checkText("minutes", fmt.Sprintf("decisions[%d].text", i), d.Text, MaxDecisionText); err != nil {
			return err
		}
		if d.Tag != DecisionLocal && d.Tag != DecisionExternal {
			return fieldErr("minutes", fmt.Sprintf("decisions[%d].tag", i), "must be \"local\" or \"external\"")
		}
	}
	return nil
}

// CheckLeastHeard checks a temperature check's "least heard" moment
// (it may be empty: nothing to say is an answer too).
func CheckLeastHeard(s string) error {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > MaxLeastHeard {
		return fieldErr("check", "least_heard", fmt.Sprintf("must be valid text of at most %d characters", MaxLeastHeard))
	}
	return nil
}

// PutMeeting writes m under "meetings". It does not commit.
func PutMeeting(doc *automerge.Doc, m Meeting) error {
	if err := ValidateMeetingID(m.ID); err != nil {
		return err
	}
	return putIn(doc, "meetings", m.ID, m)
}

// PutMinutes writes a meeting's minutes. It does not commit.
func PutMinutes(doc *automerge.Doc, meeting string, m Minutes) error {
	if m.Decisions == nil {
		m.Decisions = []MinutesDecision{}
	}
	return putIn(doc, "meeting_minutes", meeting, m)
}

// PutCheckSummary writes a meeting's closed temperature check. It does
// not commit.
func PutCheckSummary(doc *automerge.Doc, meeting string, c CheckSummary) error {
	if c.Named == nil {
		c.Named = map[string]int64{}
	}
	if c.Moments == nil {
		c.Moments = []string{}
	}
	if c.Rests == nil {
		c.Rests = []string{}
	}
	return putIn(doc, "meeting_checks", meeting, c)
}

func putIn(doc *automerge.Doc, container, key string, v any) error {
	m, err := ensureMap(doc, container)
	if err != nil {
		return err
	}
	return m.Set(key, v)
}

// ReadMeetings reads every meeting, ordered by Seq.
func ReadMeetings(doc *automerge.Doc) ([]Meeting, error) {
	all, err := readAll[Meeting](doc, "meetings")
	if err != nil {
		return nil, err
	}
	out := slices.Collect(maps.Values(all))
	slices.SortFunc(out, func(a, b Meeting) int { return int(a.Seq - b.Seq) })
	return out, nil
}

// ReadAllMinutes reads every meeting's minutes, by meeting id.
func ReadAllMinutes(doc *automerge.Doc) (map[string]Minutes, error) {
	return readAll[Minutes](doc, "meeting_minutes")
}

// ReadCheckSummaries reads every closed temperature check, by meeting id.
func ReadCheckSummaries(doc *automerge.Doc) (map[string]CheckSummary, error) {
	return readAll[CheckSummary](doc, "meeting_checks")
}

func readAll[T any](doc *automerge.Doc, container string) (map[string]T, error) {
	v, err := doc.Path(container).Get()
	if err != nil {
		return nil, err
	}
	out := map[string]T{}
	if v.IsVoid() {
		return out, nil
	}
	m, err := automerge.As[map[string]T](v)
	if err != nil {
		return nil, schemaErr("governance: %s: %v", container, err)
	}
	maps.Copy(out, m)
	return out, nil
}

// FacilitatorPool is who may be drawn to facilitate the next meeting.
type FacilitatorPool struct {
	Eligible []string // sorted
	Rest     []string // sorted: facilitated one of the last facilitation.rest meetings
	Cooldown []string // sorted: named by at least half a recent check's members
	// Relaxed says which exclusions were dropped because nobody would be
	// left otherwise: "", "rest" or "rest+cooldown".
	Relaxed string
}

// Excluded returns every member left out, sorted.
func (p FacilitatorPool) Excluded() []string {
	out := append(slices.Clone(p.Rest), p.Cooldown...)
	slices.Sort(out)
	return slices.Compact(out)
}

// Facilitators returns who may facilitate the next meeting (whose Seq is
// one more than the last of meetings, which are ordered by Seq) among the
// active members: everyone but those who facilitated one of the last
// rest meetings, and those resting after a check — a member in a closed
// check's Rests sits out the cooldown meetings that follow that check's
// meeting. If that leaves nobody, the rest rule is dropped first, then
// the cooldown too: a small circle still meets.
func Facilitators(active []string, meetings []Meeting, checks map[string]CheckSummary, rest, cooldown int) FacilitatorPool {
	next := int64(1)
	if len(meetings) > 0 {
		next = meetings[len(meetings)-1].Seq + 1
	}
	resting, cooling := map[string]bool{}, map[string]bool{}
	for _, m := range meetings {
		if m.Seq >= next-int64(rest) && m.Facilitator != "" {
			resting[m.Facilitator] = true
		}
		if c, ok := checks[m.ID]; ok && next-m.Seq <= int64(cooldown) {
			for _, r := range c.Rests {
				cooling[r] = true
			}
		}
	}
	pick := func(skipRest, skipCool bool) FacilitatorPool {
		var p FacilitatorPool
		for _, id := range active {
			switch {
			case skipRest && resting[id]:
				p.Rest = append(p.Rest, id)
			case skipCool && cooling[id]:
				p.Cooldown = append(p.Cooldown, id)
			default:
				p.Eligible = append(p.Eligible, id)
			}
		}
		return p
	}
	active = slices.Sorted(slices.Values(active))
	p := pick(true, true)
	if len(p.Eligible) == 0 {
		p = pick(false, true)
		p.Relaxed = "rest"
	}
	if len(p.Eligible) == 0 {
		p = pick(false, false)
		p.Relaxed = "rest+cooldown"
	}
	return p
}

// CheckTally is the running count of a meeting's temperature check, as the
// server keeps it while the check is open: only counts and a sorted set
// of keyed hashes of who checked in, never who named whom.
type CheckTally struct {
	Checkers []string         `json:"checkers"` // sorted keyed hashes of the members who checked in
	Named    map[string]int64 `json:"named"`
	Moments  []string         `json:"moments"` // sorted
}

// AddCheck counts one member's check (checker is their keyed hash) into
// t. It reports false if that member already checked in.
func (t *CheckTally) AddCheck(checker, leastHeard string, dominant []string) bool {
	i, found := slices.BinarySearch(t.Checkers, checker)
	if found {
		return false
	}
	t.Checkers = slices.Insert(t.Checkers, i, checker)
	if t.Named == nil {
		t.Named = map[string]int64{}
	}
	for _, d := range dominant {
		t.Named[d]++
	}
	if s := strings.TrimSpace(leastHeard); s != "" {
		j, _ := slices.BinarySearch(t.Moments, s)
		t.Moments = slices.Insert(t.Moments, j, s)
	}
	return true
}

// Close turns the tally into the check's summary at now: every member
// named by at least half of those who checked in rests from facilitation.
func (t CheckTally) Close(now time.Time) CheckSummary {
	n := int64(len(t.Checkers))
	c := CheckSummary{CheckedIn: n, Named: map[string]int64{}, Moments: slices.Clone(t.Moments), ClosedAt: formatTime(now)}
	for m, k := range t.Named {
		c.Named[m] = k
		if n > 0 && 2*k >= n {
			c.Rests = append(c.Rests, m)
		}
	}
	slices.Sort(c.Rests)
	return c
}

// Autonomy counts a set of meetings' decisions by tag.
type Autonomy struct {
	Local, External int
}

// Share is the share of local decisions, or -1 if there were none.
func (a Autonomy) Share() float64 {
	if a.Local+a.External == 0 {
		return -1
	}
	return float64(a.Local) / float64(a.Local+a.External)
}

// AutonomyQuarter is one calendar quarter's decisions.
type AutonomyQuarter struct {
	Label string
	Start time.Time
	Autonomy
}

// AutonomyByQuarter counts the decisions of every meeting's minutes, in
// the calendar quarter (UTC) of the meeting's time, oldest first, only
// quarters with decisions; and the total.
func AutonomyByQuarter(meetings []Meeting, minutes map[string]Minutes) ([]AutonomyQuarter, Autonomy) {
	var total Autonomy
	byStart := map[time.Time]*AutonomyQuarter{}
	for _, m := range meetings {
		mins, ok := minutes[m.ID]
		if !ok || len(mins.Decisions) == 0 {
			continue
		}
		at, err := parseTime(m.At)
		if err != nil {
			continue
		}
		start, _, label := periodOf(at, "quarter")
		q := byStart[start]
		if q == nil {
			q = &AutonomyQuarter{Label: label, Start: start}
			byStart[start] = q
		}
		for _, d := range mins.Decisions {
			if d.Tag == DecisionLocal {
				q.Local++
				total.Local++
			} else {
				q.External++
				total.External++
			}
		}
	}
	out := make([]AutonomyQuarter, 0, len(byStart))
	for _, q := range byStart {
		out = append(out, *q)
	}
	slices.SortFunc(out, func(a, b AutonomyQuarter) int { return a.Start.Compare(b.Start) })
	return out, total
}

// AutonomyTrend compares the last two quarters: "rising", "falling" or
// "steady"; "" with fewer than two quarters.
func AutonomyTrend(qs []AutonomyQuarter) string {
	if len(qs) < 2 {
		return ""
	}
	a, b := qs[len(qs)-2].Share(), qs[len(qs)-1].Share()
	switch {
	case b > a+0.05:
		return "rising"
	case b < a-0.05:
		return "falling"
	default:
		return "steady"
	}
}

// meetingDrawData is what VerifyAuditDraws reads of a meeting.created
// entry: a drawn role's fields, the holder named facilitator (so it
// converts to drawnData).
type meetingDrawData struct {
	Draw       string    `json:"draw"`
	Seed       string    `json:"seed"`
	Eligible   []string  `json:"eligible"`
	Excluded   []string  `json:"excluded"`
	Holder     string    `json:"facilitator"`
	DrawnAt    time.Time `json:"drawn_at"`
	Round      string    `json:"round"`
	SeedSource string    `json:"seed_source"`
	Seq        int64     `json:"seq"`
	Role       string    `json:"role"`
	Proposal   string    `json:"proposal"`
}
