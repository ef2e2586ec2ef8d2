package crdt

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/automerge/automerge-go"
)

// Pair-link audits and mentorship inversion (issue 10, items 3 and 4):
// two rituals the scheduler starts on the calendar.
//
// A pair-link audit runs once a calendar quarter, from the first quarter
// that begins after the circle was founded: two auditors are drawn
// (commit–reveal, drawround.go) among the active members; each auditor
// interviews every other active member, and the circle sees whom they
// still have to interview; an auditor sets the date of a listening
// session, and at that session the auditors publish their findings — a
// map of cliques and blockages, as text. The audit log records the
// opening, the auditors drawn, each interview done, the session's date
// and the session held with its findings.
//
// Mentorship inversion runs once a year, on each anniversary of the
// circle's founding: the active members are ordered by tenure (joined_at
// in the roster, then id), and the most senior are paired, as apprentices,
// with the newest, as mentors: the most senior with the newest, the
// second with the second newest, and so on; with an odd number of
// members the one in the middle is not paired.
//
// In the governance document, written by the server only, JSON strings
// written once (the session may be set again until findings are
// published):
//
//	"pair_audits": { "<id>": { "opened": "<JSON of PairAuditOpen>",
//	    "drawn"?: "<JSON of PairAuditDrawn>",
//	    "interviews": { "<auditor> <member>": "<JSON of PairInterview>" },
//	    "session"?: "<JSON of PairSession>", "findings"?: "<JSON of PairFindings>" } }
//	"mentorships": { "<year>": "<JSON of MentorshipRound>" }

// Audit entry kinds of the two rituals.
const (
	AuditPairAuditOpened    = "pair_audit.opened"
	AuditPairAuditDrawn     = "pair_audit.auditors_drawn"
	AuditPairInterview      = "pair_audit.interview"
	AuditPairSessionSet     = "pair_audit.session_set"
	AuditPairSessionHeld    = "pair_audit.session_held"
	AuditMentorshipsPaired  = "mentorship.paired"
	PairAuditAuditors       = 2
	MaxFindingsLen          = 20000
	MaxInterviewNoteLen     = 500
	PairSessionEarliestSlop = 12 * time.Hour
)

// PairAuditOpen is a pair-link audit as opened.
type PairAuditOpen struct {
	ID       string    `json:"id"`
	Quarter  string    `json:"quarter"`
	Draw     string    `json:"draw"`
	OpenedAt time.Time `json:"opened_at"`
}

// PairAuditDrawn names the auditors once their draw closed.
type PairAuditDrawn struct {
	Auditors []string  `json:"auditors"`
	At       time.Time `json:"at"`
}

// PairInterview is one interview an auditor recorded as done.
type PairInterview struct {
	Auditor string    `json:"auditor"`
	Member  string    `json:"member"`
	Note    string    `json:"note,omitempty"`
	At      time.Time `json:"at"`
}

// PairSession is the listening session's date.
type PairSession struct {
	At    time.Time `json:"at"`
	SetBy string    `json:"set_by"`
	SetAt time.Time `json:"set_at"`
}

// PairFindings are the findings published at the session.
type PairFindings struct {
	Text      string    `json:"text"`
	By        string    `json:"by"`
	SessionAt time.Time `json:"session_at"`
	At        time.Time `json:"at"`
}

// PairAudit is a pair-link audit as the governance document holds it.
type PairAudit struct {
	Open       PairAuditOpen
	Drawn      *PairAuditDrawn
	Interviews map[string]PairInterview // by "<auditor> <member>"
	Session    *PairSession
	Findings   *PairFindings
}

// Remaining returns, for each auditor, the members active (active, by
// id) they have not interviewed yet, sorted.
func (p PairAudit) Remaining(active []string) map[string][]string {
	out := map[string][]string{}
	if p.Drawn == nil {
		return out
	}
	for _, a := range p.Drawn.Auditors {
		todo := []string{}
		for _, m := range slices.Sorted(slices.Values(active)) {
			if m == a {
				continue
			}
			if _, done := p.Interviews[a+" "+m]; !done {
				todo = append(todo, m)
			}
		}
		out[a] = todo
	}
	return out
}

// IsAuditor reports whether member is one of the audit's auditors.
func (p PairAudit) IsAuditor(member string) bool {
	return p.Drawn != nil && slices.Contains(p.Drawn.Auditors, member)
}

// QuarterOf names t's calendar quarter, "2027-Q1", and returns its start.
func QuarterOf(t time.Time) (string, time.Time) {
	t = t.UTC()
	q := (int(t.Month()) - 1) / 3
	start := time.Date(t.Year(), time.Month(3*q+1), 1, 0, 0, 0, 0, time.UTC)
	return fmt.Sprintf("%d-Q%d", t.Year(), q+1), start
}

// PairAuditDue says whether a pair-link audit is due at now for a circle
// founded at founded, and names it: the quarter of now, if it began after
// the founding.
func PairAuditDue(founded, now time.Time) (id string, due bool) {
	q, start := QuarterOf(now)
	if !start.After(founded) {
		return "", false
	}
	return "pair-audit:" + q, true
}

// MentorshipDue says whether a mentorship round is due at now for a
// circle founded at founded: from each anniversary of the founding, named
// by the anniversary's year.
func MentorshipDue(founded, now time.Time) (year string, due bool) {
	founded = founded.UTC()
	n := now.UTC().Year() - founded.Year()
	if founded.AddDate(n, 0, 0).After(now) {
		n--
	}
	if n < 1 {
		return "", false
	}
	return strconv.Itoa(founded.Year() + n), true
}

// MentorshipPair is one pair of a round: the mentor, among the newest
// members, and the apprentice, among the most senior.
type MentorshipPair struct {
	Mentor           string    `json:"mentor"`
	Apprentice       string    `json:"apprentice"`
	MentorJoined     time.Time `json:"mentor_joined"`
	ApprenticeJoined time.Time `json:"apprentice_joined"`
}

// MentorshipRound is one year's pairs.
type MentorshipRound struct {
	Year     string           `json:"year"`
	At       time.Time        `json:"at"`
	Pairs    []MentorshipPair `json:"pairs"`
	Unpaired []string         `json:"unpaired"`
}

// PairMentorships pairs members by tenure (joined_at, then id): the most
// senior as apprentice of the newest, the second most senior of the
// second newest, and so on; the middle member of an odd number is
// unpaired.
func PairMentorships(members []*Member) (pairs []MentorshipPair, unpaired []string) {
	ms := slices.Clone(members)
	slices.SortFunc(ms, func(a, b *Member) int {
		return cmp.Or(a.JoinedAt.Compare(b.JoinedAt), strings.Compare(a.ID, b.ID))
	})
	pairs, unpaired = []MentorshipPair{}, []string{}
	n := len(ms)
	for i := 0; i < n/2; i++ {
		senior, newest := ms[i], ms[n-1-i]
		pairs = append(pairs, MentorshipPair{Mentor: newest.ID, Apprentice: senior.ID, MentorJoined: newest.JoinedAt, ApprenticeJoined: senior.JoinedAt})
	}
	if n%2 == 1 {
		unpaired = append(unpaired, ms[n/2].ID)
	}
	return pairs, unpaired
}

// PutPairAuditOpen writes a new pair-link audit.
func PutPairAuditOpen(doc *automerge.Doc, o PairAuditOpen) error {
	audits, err := ensureMap(doc, "pair_audits")
	if err != nil {
		return err
	}
	old, err := audits.Get(o.ID)
	if err != nil {
		return err
	}
	if !old.IsVoid() {
		return fmt.Errorf("pair audit %q: %w", o.ID, ErrEntryExists)
	}
	m := automerge.NewMap()
	if err := audits.Set(o.ID, m); err != nil {
		return err
	}
	if err := m.Set("opened", string(mustMarshal(o))); err != nil {
		return err
	}
	return m.Set("interviews", automerge.NewMap())
}

// PutPairAuditPart writes one part of audit id: "drawn" and "findings"
// once, "session" again until findings are published, "interviews" one
// key (key) once.
func PutPairAuditPart(doc *automerge.Doc, id, part, key string, v any) error {
	a, err := doc.Path("pair_audits", id).Get()
	if err != nil {
		return err
	}
	if a.Kind() != automerge.KindMap {
		return fmt.Errorf("no pair audit %q", truncate(id, maxIDLen))
	}
	m := a.Map()
	if part == "interviews" {
		iv, err := m.Get("interviews")
		if err != nil {
			return err
		}
		if iv.Kind() != automerge.KindMap {
			return schemaErr("pair audit %s: interviews must be a map", truncate(id, maxIDLen))
		}
		m, part = iv.Map(), key
	}
	if part != "session" {
		old, err := m.Get(part)
		if err != nil {
			return err
		}
		if !old.IsVoid() {
			return fmt.Errorf("pair audit %s %s: %w", truncate(id, maxIDLen), part, ErrEntryExists)
		}
	}
	return m.Set(part, string(mustMarshal(v)))
}

// ReadPairAudits reads every pair-link audit of the governance document.
func ReadPairAudits(doc *automerge.Doc) ([]PairAudit, error) {
	all, err := rootValues(doc, "pair_audits", "pair_audits")
	if err != nil {
		return nil, err
	}
	var out []PairAudit
	for _, id := range slices.Sorted(maps.Keys(all)) {
		o, err := readObject(all[id], "pair audit "+truncate(id, maxIDLen))
		if err != nil {
			return nil, err
		}
		var p PairAudit
		p.Interviews = map[string]PairInterview{}
		parts := []struct {
			key string
			dst any
		}{{"opened", &p.Open}}
		if o.has("drawn") {
			p.Drawn = &PairAuditDrawn{}
			parts = append(parts, struct {
				key string
				dst any
			}{"drawn", p.Drawn})
		}
		if o.has("session") {
			p.Session = &PairSession{}
			parts = append(parts, struct {
				key string
				dst any
			}{"session", p.Session})
		}
		if o.has("findings") {
			p.Findings = &PairFindings{}
			parts = append(parts, struct {
				key string
				dst any
			}{"findings", p.Findings})
		}
		for _, part := range parts {
			if err := json.Unmarshal([]byte(o.str(part.key, true, 0)), part.dst); o.err == nil && err != nil {
				return nil, schemaErr("pair audit %s: %s: %v", truncate(id, maxIDLen), part.key, err)
			}
		}
		if iv := o.child("interviews", true); iv != nil {
			for k := range iv.vals {
				var x PairInterview
				if err := json.Unmarshal([]byte(iv.str(k, true, 0)), &x); iv.err == nil && err != nil {
					return nil, schemaErr("pair audit %s: interview %s: %v", truncate(id, maxIDLen), truncate(k, maxIDLen), err)
				}
				p.Interviews[k] = x
			}
			if iv.err != nil {
				return nil, iv.err
			}
		}
		if o.err != nil {
			return nil, o.err
		}
		out = append(out, p)
	}
	return out, nil
}

// PutMentorshipRound writes a year's pairs, once.
func PutMentorshipRound(doc *automerge.Doc, r MentorshipRound) error {
	m, err := ensureMap(doc, "mentorships")
	if err != nil {
		return err
	}
	old, err := m.Get(r.Year)
	if err != nil {
		return err
	}
	if !old.IsVoid() {
		return fmt.Errorf("mentorships of %s: %w", r.Year, ErrEntryExists)
	}
	return m.Set(r.Year, string(mustMarshal(r)))
}

// ReadMentorshipRounds reads every year's pairs, newest first.
func ReadMentorshipRounds(doc *automerge.Doc) ([]MentorshipRound, error) {
	v, err := doc.Path("mentorships").Get()
	if err != nil || v.IsVoid() {
		return nil, err
	}
	o, err := readObject(v, "mentorships")
	if err != nil {
		return nil, err
	}
	var out []MentorshipRound
	for _, k := range slices.Sorted(maps.Keys(o.vals)) {
		var r MentorshipRound
		if err := json.Unmarshal([]byte(o.str(k, true, 0)), &r); o.err == nil && err != nil {
			return nil, schemaErr("mentorships %s: %v", truncate(k, maxIDLen), err)
		}
		out = append(out, r)
	}
	slices.Reverse(out)
	return out, o.err
}

// CheckFindings checks findings text: not empty, at most MaxFindingsLen
// characters, valid UTF-8.
func CheckFindings(text string) error {
	switch {
	case strings.TrimSpace(text) == "":
		return fieldErr("findings", "text", "must say what the auditors found (cliques, blockages)")
	case !utf8.ValidString(text):
		return fieldErr("findings", "text", "must be valid UTF-8")
	case utf8.RuneCountInString(text) > MaxFindingsLen:
		return fieldErr("findings", "text", fmt.Sprintf("must be at most %d characters", MaxFindingsLen))
	}
	return nil
}
