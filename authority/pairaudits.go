package authority

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/authority/fault"
	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/wire"
)

// PairAudits runs the quarterly pair-link audits (crdt/pairaudit.go): the
// scheduler opens one each quarter and draws its two auditors by a
// commit–reveal draw; the auditors record their interviews, set the
// listening session and publish their findings there.
type PairAudits struct {
	*State
	audit *Audit
	draws *Draws
	// paMu serializes the writers of pair-link audits, from the read that
	// judges a change to its audit entry and document write.
	paMu sync.Mutex
}

// Mentorships pairs the most senior members as apprentices of the newest
// ones once a year (crdt/pairaudit.go).
type Mentorships struct {
	*State
	audit *Audit
	mu    sync.Mutex
}

// Event types of the two rituals.
const (
	EventPairAuditOpened = "pair_audit.opened"
	EventPairAuditDrawn  = "pair_audit.auditors_drawn"
	EventPairSessionHeld = "pair_audit.session_held"
	EventMentorships     = "mentorship.paired"
)

func (s *PairAudits) read(ctx context.Context) ([]crdt.PairAudit, error) {
	var out []crdt.PairAudit
	err := s.viewGov(ctx, func(doc *automerge.Doc) error {
		var err error
		out, err = crdt.ReadPairAudits(doc)
		return err
	})
	return out, err
}

func (s *PairAudits) write(ctx context.Context, fn func(doc *automerge.Doc) error) error {
	return s.updateGov(ctx, func(doc *automerge.Doc) ([]byte, error) {
		return nil, fn(doc)
	})
}

// activeIDs lists the members active at now, sorted.
func (s *State) activeIDs(now time.Time) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for _, m := range s.roster.Active(now) {
		out = append(out, m.ID)
	}
	slices.Sort(out)
	return out
}

// tick opens this quarter's pair-link audit when it is due (and the
// circle has at least two active members), with the draw of its
// auditors; and names the auditors of every audit whose draw closed.
func (s *PairAudits) tick(ctx context.Context) error {
	s.paMu.Lock()
	defer s.paMu.Unlock()
	now := s.now()
	audits, err := s.read(ctx)
	if err != nil {
		return err
	}
	var errs []error
	if id, due := crdt.PairAuditDue(s.meta.CreatedAt, now); due && !slices.ContainsFunc(audits, func(p crdt.PairAudit) bool { return p.Open.ID == id }) {
		if active := s.activeIDs(now); len(active) >= 2 {
			quarter, qStart := crdt.QuarterOf(now)
			o := crdt.PairAuditOpen{ID: id, Quarter: quarter, Draw: id, OpenedAt: now}
			_, err := s.draws.OpenRound(ctx, RoundSpec{ID: id, Purpose: "auditors of the pair-link audit " + quarter, Candidates: active, Picks: crdt.PairAuditAuditors})
			if err == nil {
				err = s.audit.AppendOnce(ctx, qStart, crdt.AuditPairAuditOpened, o, auditFor(crdt.AuditPairAuditOpened, "id", id))
			}
			if err == nil {
				err = s.write(ctx, func(doc *automerge.Doc) error { return crdt.PutPairAuditOpen(doc, o) })
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("open pair audit %s: %w", id, err))
			} else {
				s.events.Publish(EventPairAuditOpened, map[string]any{"id": id, "quarter": quarter, "draw": id})
				audits = append(audits, crdt.PairAudit{Open: o})
			}
		}
	}
	for _, p := range audits {
		if p.Drawn != nil {
			continue
		}
		res, err := s.draws.RoundResult(ctx, p.Open.Draw)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if res == nil {
			continue
		}
		drawn := crdt.PairAuditDrawn{Auditors: res.Picked, At: now}
		err = s.audit.AppendOnce(ctx, p.Open.OpenedAt, crdt.AuditPairAuditDrawn, map[string]any{"id": p.Open.ID, "draw": p.Open.Draw, "auditors": res.Picked, "at": now}, auditFor(crdt.AuditPairAuditDrawn, "id", p.Open.ID))
		if err == nil {
			err = s.write(ctx, func(doc *automerge.Doc) error { return crdt.PutPairAuditPart(doc, p.Open.ID, "drawn", "", drawn) })
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("pair audit %s: auditors: %w", p.Open.ID, err))
			continue
		}
		s.events.Publish(EventPairAuditDrawn, map[string]any{"id": p.Open.ID, "auditors": res.Picked})
	}
	return errors.Join(errs...)
}

// List returns every pair-link audit, newest first, with whom each
// auditor still has to interview among the members active now.
func (s *PairAudits) List(ctx context.Context, c Caller) (wire.PairAuditList, error) {
	audits, err := s.read(ctx)
	if err != nil {
		return wire.PairAuditList{}, err
	}
	active := s.activeIDs(s.now())
	out := wire.PairAuditList{PairAudits: []wire.PairAudit{}}
	for i := len(audits) - 1; i >= 0; i-- {
		out.PairAudits = append(out.PairAudits, pairAuditWire(audits[i], active))
	}
	slices.SortStableFunc(out.PairAudits, func(a, b wire.PairAudit) int { return b.OpenedAt.Compare(a.OpenedAt) })
	return out, nil
}

// Get returns pair-link audit id.
func (s *PairAudits) Get(ctx context.Context, c Caller, id string) (wire.PairAudit, error) {
	p, err := s.find(ctx, id)
	if err != nil {
		return wire.PairAudit{}, err
	}
	return pairAuditWire(p, s.activeIDs(s.now())), nil
}

func (s *PairAudits) find(ctx context.Context, id string) (crdt.PairAudit, error) {
	audits, err := s.read(ctx)
	if err != nil {
		return crdt.PairAudit{}, err
	}
	for _, p := range audits {
		if p.Open.ID == id {
			return p, nil
		}
	}
	return crdt.PairAudit{}, fault.Errorf(fault.NotFound, "there is no pair audit %q", truncateID(id))
}

func pairAuditWire(p crdt.PairAudit, active []string) wire.PairAudit {
	w := wire.PairAudit{
		ID: p.Open.ID, Quarter: p.Open.Quarter, Draw: p.Open.Draw, OpenedAt: p.Open.OpenedAt,
		Status: "drawing", Auditors: []string{}, Remaining: map[string][]string{}, Interviews: []wire.PairInterview{},
	}
	if p.Drawn != nil {
		w.Status, w.Auditors, w.Remaining = "interviewing", p.Drawn.Auditors, p.Remaining(active)
	}
	for _, k := range slices.Sorted(maps.Keys(p.Interviews)) {
		iv := p.Interviews[k]
		w.Interviews = append(w.Interviews, wire.PairInterview{Auditor: iv.Auditor, Member: iv.Member, Note: iv.Note, At: iv.At})
	}
	if p.Session != nil {
		at := p.Session.At
		w.SessionAt = &at
	}
	if p.Findings != nil {
		at := p.Findings.At
		w.Status, w.Findings, w.HeldAt = "held", p.Findings.Text, &at
	}
	return w
}

// auditorOf finds audit id and checks that the caller is one of its
// auditors and that its findings are not published yet.
func (s *PairAudits) auditorOf(ctx context.Context, c Caller, id string) (crdt.PairAudit, error) {
	p, err := s.find(ctx, id)
	if err != nil {
		return p, err
	}
	switch {
	case p.Drawn == nil:
		return p, fault.Errorf(fault.Conflict, "the auditors of this pair audit are not drawn yet")
	case !p.IsAuditor(c.Member):
		return p, fault.Errorf(fault.Forbidden, "only the two auditors drawn for this pair audit may do this")
	case p.Findings != nil:
		return p, fault.Errorf(fault.Conflict, "this pair audit's findings were published at its listening session; it is done")
	}
	return p, nil
}

// Interview records that the caller, an auditor of audit id, interviewed
// req.Member (an active member other than the caller), once.
func (s *PairAudits) Interview(ctx context.Context, c Caller, id string, req wire.PairInterviewRequest) (wire.PairAudit, error) {
	now := s.now()
	switch {
	case req.Member == "" || req.Member == c.Member || !slices.Contains(s.activeIDs(now), req.Member):
		return wire.PairAudit{}, fault.Errorf(fault.InvalidRequest, "field \"member\" must name another active member of the circle")
	case utf8.RuneCountInString(req.Note) > crdt.MaxInterviewNoteLen || !utf8.ValidString(req.Note):
		return wire.PairAudit{}, fault.Errorf(fault.InvalidRequest, "field \"note\" must be valid text of at most %d characters", crdt.MaxInterviewNoteLen)
	}
	s.paMu.Lock()
	defer s.paMu.Unlock()
	p, err := s.auditorOf(ctx, c, id)
	if err != nil {
		return wire.PairAudit{}, err
	}
	key := c.Member + " " + req.Member
	if _, done := p.Interviews[key]; done {
		return wire.PairAudit{}, fault.Errorf(fault.Conflict, "you already recorded an interview with this member in this pair audit")
	}
	iv := crdt.PairInterview{Auditor: c.Member, Member: req.Member, Note: req.Note, At: now}
	// Once, also when a write after the entry failed and the auditor
	// records the interview again.
	if err := s.audit.AppendOnce(ctx, p.Open.OpenedAt, crdt.AuditPairInterview, map[string]any{"id": id, "auditor": c.Member, "member": req.Member, "at": now}, func(e crdt.AuditEntry) bool {
		var d struct{ ID, Auditor, Member string }
		return e.Kind == crdt.AuditPairInterview && json.Unmarshal(e.Data, &d) == nil && d.ID == id && d.Auditor == c.Member && d.Member == req.Member
	}); err != nil {
		return wire.PairAudit{}, err
	}
	if err := s.write(ctx, func(doc *automerge.Doc) error { return crdt.PutPairAuditPart(doc, id, "interviews", key, iv) }); err != nil {
		return wire.PairAudit{}, err
	}
	p.Interviews[key] = iv
	return pairAuditWire(p, s.activeIDs(now)), nil
}

// maxSessionAhead bounds how far ahead a listening session may be set.
const maxSessionAhead = 366 * 24 * time.Hour

// SetSession sets (or moves) the date of audit id's listening session;
// by one of its auditors, to a time from now to a year ahead.
func (s *PairAudits) SetSession(ctx context.Context, c Caller, id string, req wire.PairSessionRequest) (wire.PairAudit, error) {
	now := s.now()
	if req.At.IsZero() || req.At.Before(now.Add(-time.Minute)) || req.At.After(now.Add(maxSessionAhead)) {
		return wire.PairAudit{}, fault.Errorf(fault.InvalidRequest, "field \"at\" must be the session's time, from now to a year ahead")
	}
	s.paMu.Lock()
	defer s.paMu.Unlock()
	p, err := s.auditorOf(ctx, c, id)
	if err != nil {
		return wire.PairAudit{}, err
	}
	ses := crdt.PairSession{At: req.At.UTC(), SetBy: c.Member, SetAt: now}
	if err := s.audit.Append(ctx, crdt.AuditPairSessionSet, map[string]any{"id": id, "session_at": ses.At, "set_by": c.Member}); err != nil {
		return wire.PairAudit{}, err
	}
	if err := s.write(ctx, func(doc *automerge.Doc) error { return crdt.PutPairAuditPart(doc, id, "session", "", ses) }); err != nil {
		return wire.PairAudit{}, err
	}
	p.Session = &ses
	return pairAuditWire(p, s.activeIDs(now)), nil
}

// PublishFindings publishes the findings of audit id at its listening
// session: by one of its auditors, once the session's date is set and
// has come (from PairSessionEarliestSlop before it). The audit log
// records that the session was held, with the findings.
func (s *PairAudits) PublishFindings(ctx context.Context, c Caller, id string, req wire.PairFindingsRequest) (wire.PairAudit, error) {
	if err := crdt.CheckFindings(req.Text); err != nil {
		return wire.PairAudit{}, fault.Errorf(fault.InvalidRequest, "field \"text\": %s", strings.TrimPrefix(err.Error(), "findings: "))
	}
	now := s.now()
	s.paMu.Lock()
	defer s.paMu.Unlock()
	p, err := s.auditorOf(ctx, c, id)
	if err != nil {
		return wire.PairAudit{}, err
	}
	switch {
	case p.Session == nil:
		return wire.PairAudit{}, fault.Errorf(fault.Conflict, "set the listening session's date first: findings are published at the session")
	case now.Before(p.Session.At.Add(-crdt.PairSessionEarliestSlop)):
		return wire.PairAudit{}, fault.Errorf(fault.Conflict, "the listening session is at %s; publish the findings there", p.Session.At.Format(time.RFC3339))
	}
	f := crdt.PairFindings{Text: req.Text, By: c.Member, SessionAt: p.Session.At, At: now}
	done := len(p.Interviews)
	if err := s.audit.AppendOnce(ctx, p.Open.OpenedAt, crdt.AuditPairSessionHeld, map[string]any{
		"id": id, "session_at": p.Session.At, "auditors": p.Drawn.Auditors, "findings": req.Text, "published_by": c.Member, "interviews_done": done,
		"remaining": p.Remaining(s.activeIDs(now)),
	}, auditFor(crdt.AuditPairSessionHeld, "id", id)); err != nil {
		return wire.PairAudit{}, err
	}
	if err := s.write(ctx, func(doc *automerge.Doc) error { return crdt.PutPairAuditPart(doc, id, "findings", "", f) }); err != nil {
		return wire.PairAudit{}, err
	}
	p.Findings = &f
	s.events.Publish(EventPairSessionHeld, map[string]any{"id": id})
	return pairAuditWire(p, s.activeIDs(now)), nil
}

func (s *Mentorships) read(ctx context.Context) ([]crdt.MentorshipRound, error) {
	var out []crdt.MentorshipRound
	err := s.viewGov(ctx, func(doc *automerge.Doc) error {
		var err error
		out, err = crdt.ReadMentorshipRounds(doc)
		return err
	})
	return out, err
}

// tick pairs this year's mentorships on the circle's anniversary, once,
// when at least two members are active.
func (s *Mentorships) tick(ctx context.Context) error {
	now := s.now()
	year, due := crdt.MentorshipDue(s.meta.CreatedAt, now)
	if !due {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rounds, err := s.read(ctx)
	if err != nil || slices.ContainsFunc(rounds, func(r crdt.MentorshipRound) bool { return r.Year == year }) {
		return err
	}
	s.State.mu.RLock()
	active := s.roster.Active(now)
	s.State.mu.RUnlock()
	if len(active) < 2 {
		return nil
	}
	pairs, unpaired := crdt.PairMentorships(active)
	r := crdt.MentorshipRound{Year: year, At: now, Pairs: pairs, Unpaired: unpaired}
	if err := s.audit.AppendOnce(ctx, now.Add(-366*24*time.Hour), crdt.AuditMentorshipsPaired, r, auditFor(crdt.AuditMentorshipsPaired, "year", year)); err != nil {
		return err
	}
	if err := s.updateGov(ctx, func(doc *automerge.Doc) ([]byte, error) {
		return nil, crdt.PutMentorshipRound(doc, r)
	}); err != nil {
		return err
	}
	s.events.Publish(EventMentorships, map[string]any{"year": year, "pairs": len(pairs)})
	return nil
}

// List returns every year's mentorship pairs, newest first.
func (s *Mentorships) List(ctx context.Context, c Caller) (wire.Mentorships, error) {
	rounds, err := s.read(ctx)
	if err != nil {
		return wire.Mentorships{}, err
	}
	out := wire.Mentorships{Rounds: []wire.MentorshipRound{}}
	for _, r := range rounds {
		w := wire.MentorshipRound{Year: r.Year, At: r.At, Pairs: []wire.MentorshipPair{}, Unpaired: r.Unpaired}
		for _, p := range r.Pairs {
			w.Pairs = append(w.Pairs, wire.MentorshipPair(p))
		}
		out.Rounds = append(out.Rounds, w)
	}
	return out, nil
}
