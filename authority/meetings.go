package authority

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/authority/fault"
	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/sync/store"
	"github.com/circles-coop/circles/wire"
)

// Meetings are the circle's meetings with drawn, rotating facilitation,
// their minutes, and the power temperature check after each (issue 10;
// crdt/meetings.go keeps the documents' shapes and the pure rules).
//
// Who named whom is never written anywhere a member can read. While a
// meeting's check is open the server keeps, in its private metadata
// bucket (not a document; backed up with the store), one running tally
// per meeting: the counts of who was named, the sorted "least heard"
// moments and the sorted set of keyed hashes — HMAC-SHA256 under the
// circle's key of the meeting and the member — of those who checked in,
// which is what refuses a second check. No record of a single check is
// kept, even there. The check closes when every active member checked
// in, when the next meeting is called, or CheckWindow after the meeting;
// then one change writes the whole summary into the governance document
// (and the tally is deleted), so the document's history shows no single
// member's check either. What stays visible while it is open is how many
// checked in (GET /v1/meetings/{id}), which tells when members checked
// in, never what they said.
type Meetings struct {
	*State
	audit *Audit
	draws *Draws
	// mu serializes meetings: calling one (its sequence number and draw),
	// writing minutes, counting a check and closing it. It is taken
	// before any document lock and never inside s.gov.
	mu sync.Mutex
}

// CheckWindow is how long after a meeting's time its temperature check
// stays open at most.
const CheckWindow = 72 * time.Hour

// MaxMeetingsPerDay bounds the meetings called in any 24 hours, so one
// member cannot grow the governance document without end.
const MaxMeetingsPerDay = 24

// Events of meetings (GET /v1/events). A single check has none: its time
// would be all a listener needs to link it to the next summary.
const (
	EventMeetingCreated = "meeting.created"
	EventMeetingMinutes = "meeting.minutes"
	EventMeetingChecked = "meeting.checked"
)

// facilitationPurpose is the "role" a facilitator draw is recorded under.
const facilitationPurpose = "facilitation"

// meetingsState is what the governance document holds of meetings.
type meetingsState struct {
	meetings []crdt.Meeting
	minutes  map[string]crdt.Minutes
	checks   map[string]crdt.CheckSummary
	draws    map[string]crdt.Draw
}

func (m meetingsState) find(id string) (crdt.Meeting, bool) {
	for _, x := range m.meetings {
		if x.ID == id {
			return x, true
		}
	}
	return crdt.Meeting{}, false
}

func (s *Meetings) read(ctx context.Context) (meetingsState, error) {
	var st meetingsState
	err := s.viewGov(ctx, func(d *automerge.Doc) error {
		var err error
		if st.meetings, err = crdt.ReadMeetings(d); err != nil {
			return err
		}
		if st.minutes, err = crdt.ReadAllMinutes(d); err != nil {
			return err
		}
		if st.checks, err = crdt.ReadCheckSummaries(d); err != nil {
			return err
		}
		st.draws = map[string]crdt.Draw{}
		for _, m := range st.meetings {
			if dr, ok, err := crdt.LookupDraw(d, m.Draw); err != nil {
				return err
			} else if ok {
				st.draws[m.ID] = dr
			}
		}
		return nil
	})
	if err != nil {
		return meetingsState{}, fmt.Errorf("read meetings: %w", err)
	}
	return st, nil
}

func (s *Meetings) activeIDs(now time.Time) []string {
	s.State.mu.RLock()
	defer s.State.mu.RUnlock()
	var ids []string
	for _, m := range s.roster.Active(now) {
		ids = append(ids, m.ID)
	}
	slices.Sort(ids)
	return ids
}

// CreateMeeting calls a meeting and draws its facilitator among the
// active members, leaving out the recent facilitators
// (facilitation.rest) and those resting after a check
// (facilitation.cooldown); checks of earlier meetings still open close
// first, so their rests count. The same id with the same title and time
// again returns the meeting (created false); with others, 409.
func (s *Meetings) CreateMeeting(ctx context.Context, c Caller, req wire.MeetingRequest) (wire.Meeting, bool, error) {
	if err := crdt.ValidateMeetingID(req.ID); err != nil {
		return wire.Meeting{}, false, fault.Errorf(fault.InvalidRequest, "field \"id\" must be 1 to 64 letters, digits, '.', '_', ':' or '-' (a uuid is fine)")
	}
	if err := crdt.CheckMeetingTitle(req.Title); err != nil {
		return wire.Meeting{}, false, fault.Errorf(fault.InvalidRequest, "field \"title\" must be non-empty text of at most %d characters", crdt.MaxMeetingTitle)
	}
	now := s.now()
	if req.At.IsZero() || req.At.Before(now.AddDate(-1, 0, 0)) || req.At.After(now.AddDate(5, 0, 0)) {
		return wire.Meeting{}, false, fault.Errorf(fault.InvalidRequest, "field \"at\" must be an RFC 3339 time within a year before and five years after now")
	}
	at := req.At.UTC().Truncate(time.Second)
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.read(ctx)
	if err != nil {
		return wire.Meeting{}, false, err
	}
	if m, ok := st.find(req.ID); ok {
		if m.Title != req.Title || m.At != formatRFC(at) {
			return wire.Meeting{}, false, fault.Errorf(fault.Conflict, "meeting %s already exists with another title or time; choose a new id", req.ID)
		}
		// A retry: the first attempt may have stopped before its records.
		if err := s.recordMeeting(context.WithoutCancel(ctx), st, m); err != nil {
			return wire.Meeting{}, false, err
		}
		return s.view(ctx, c, st, m), false, nil
	}
	recent := 0
	for _, m := range st.meetings {
		if created, err := time.Parse(time.RFC3339, m.CreatedAt); err == nil && now.Sub(created) < 24*time.Hour {
			recent++
		}
	}
	if recent >= MaxMeetingsPerDay {
		return wire.Meeting{}, false, fault.Errorf(fault.RateLimited, "%d meetings were called in the last 24 hours, the most a circle may; call the next one later", recent)
	}
	// Close what is still open, so its rests count for this draw.
	for _, m := range st.meetings {
		if _, closed := st.checks[m.ID]; !closed {
			if err := s.closeCheck(ctx, m); err != nil {
				return wire.Meeting{}, false, err
			}
		}
	}
	if st, err = s.read(ctx); err != nil {
		return wire.Meeting{}, false, err
	}
	pol := s.policies()
	rest, cooldown := pol.Int("facilitation.rest"), pol.Int("facilitation.cooldown")
	pool := crdt.Facilitators(s.activeIDs(now), st.meetings, st.checks, rest, cooldown)
	seq := int64(1)
	if n := len(st.meetings); n > 0 {
		seq = st.meetings[n-1].Seq + 1
	}
	// The seed: the newest closed facilitation round's, with seq
	// (drawseeds.go); never the id, which the caller chooses.
	drawID := crdt.MeetingDrawID(req.ID)
	d, err := s.draws.facilitationDraw(ctx, drawID, seq, pool.Eligible, pool.Excluded())
	if err != nil {
		return wire.Meeting{}, false, err
	}
	m := crdt.Meeting{
		ID: req.ID, Seq: seq, Title: req.Title, At: formatRFC(at), CreatedAt: formatRFC(now),
		Author: c.Member, Facilitator: d.Holder, Draw: drawID,
		Rest: nonNil(pool.Rest), Cooldown: nonNil(pool.Cooldown), Relaxed: pool.Relaxed,
	}
	err = s.updateGov(ctx, func(doc *automerge.Doc) ([]byte, error) {
		return nil, crdt.PutMeeting(doc, m)
	})
	if err != nil {
		return wire.Meeting{}, false, err
	}
	ctx = context.WithoutCancel(ctx)
	st.meetings = append(st.meetings, m)
	st.draws[m.ID] = d
	if err := s.recordMeeting(ctx, st, m); err != nil {
		s.log.Error("meetings: audit entry", "meeting", m.ID, "err", err) // Tick records it
	}
	s.log.Info("meeting called", "meeting", m.ID, "facilitator", d.Holder)
	s.events.Publish(EventMeetingCreated, map[string]any{"meeting": m.ID, "title": m.Title, "at": at, "facilitator": d.Holder})
	return s.view(ctx, c, st, m), true, nil
}

// RecordMinutes writes a meeting's minutes and decisions, by its
// facilitator only (403 for anyone else). Minutes are written once: the
// same again → created false; others → 409.
func (s *Meetings) RecordMinutes(ctx context.Context, c Caller, id string, req wire.MinutesRequest) (wire.Meeting, bool, error) {
	decisions := make([]crdt.MinutesDecision, len(req.Decisions))
	for i, d := range req.Decisions {
		decisions[i] = crdt.MinutesDecision{Text: d.Text, Tag: d.Tag}
	}
	if err := crdt.CheckMinutes(req.Text, decisions); err != nil {
		var re *crdt.RuleError
		if errors.As(err, &re) {
			return wire.Meeting{}, false, fault.Errorf(fault.InvalidRequest, "%s", re.Message)
		}
		return wire.Meeting{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.read(ctx)
	if err != nil {
		return wire.Meeting{}, false, err
	}
	m, ok := st.find(id)
	if !ok {
		return wire.Meeting{}, false, fault.Errorf(fault.NotFound, "no meeting %s in this circle", id)
	}
	if m.Facilitator != c.Member {
		return wire.Meeting{}, false, fault.Errorf(fault.Forbidden, "only the meeting's facilitator records its minutes")
	}
	if old, ok := st.minutes[id]; ok {
		if old.Text == req.Text && slices.Equal(old.Decisions, decisions) {
			if err := s.recordMeeting(context.WithoutCancel(ctx), st, m); err != nil {
				return wire.Meeting{}, false, err
			}
			return s.view(ctx, c, st, m), false, nil
		}
		return wire.Meeting{}, false, fault.Errorf(fault.Conflict, "the minutes of meeting %s are already recorded; they are not rewritten", id)
	}
	now := s.now()
	mins := crdt.Minutes{Text: req.Text, By: c.Member, At: formatRFC(now), Decisions: decisions}
	err = s.updateGov(ctx, func(doc *automerge.Doc) ([]byte, error) {
		return nil, crdt.PutMinutes(doc, id, mins)
	})
	if err != nil {
		return wire.Meeting{}, false, err
	}
	ctx = context.WithoutCancel(ctx)
	st.minutes[id] = mins
	if err := s.recordMeeting(ctx, st, m); err != nil {
		s.log.Error("meetings: audit entry of minutes", "meeting", id, "err", err) // Tick records it
	}
	s.events.Publish(EventMeetingMinutes, map[string]any{"meeting": id})
	return s.view(ctx, c, st, m), true, nil
}

// recordMeeting writes meeting m's audit entries that are missing:
// meeting.created (the draw's reveal) and, once there are minutes,
// meeting.minutes. Each is written once (AppendOnce, matched by meeting),
// so a retry, or Tick after a stop between a document write and its
// entry, records what the first attempt did not. s.mu held.
func (s *Meetings) recordMeeting(ctx context.Context, st meetingsState, m crdt.Meeting) error {
	created, err := time.Parse(time.RFC3339, m.CreatedAt)
	if err != nil {
		return fmt.Errorf("meeting %s: created_at: %w", m.ID, err)
	}
	at, _ := time.Parse(time.RFC3339, m.At)
	d := st.draws[m.ID]
	pol := s.policies()
	data := map[string]any{
		"meeting": m.ID, "seq": m.Seq, "title": m.Title, "at": at, "author": m.Author, "facilitator": m.Facilitator,
		"draw": d.ID, "commitment": d.Commitment, "seed": d.Seed, "seed_source": d.SeedSource, "eligible": nonNil(d.Eligible), "excluded": nonNil(d.Excluded),
		"rest": nonNil(m.Rest), "cooldown": nonNil(m.Cooldown), "relaxed": m.Relaxed, "drawn_at": d.DrawnAt,
		"policies": map[string]int{"facilitation.rest": pol.Int("facilitation.rest"), "facilitation.cooldown": pol.Int("facilitation.cooldown")},
	}
	if d.Round != "" {
		data["round"] = d.Round
		delete(data, "commitment") // the seed is derived from the round's (crdt.FacilitationSeed)
	}
	if err := s.audit.AppendOnce(ctx, created, crdt.AuditMeetingCreated, data, auditFor(crdt.AuditMeetingCreated, "meeting", m.ID)); err != nil {
		return err
	}
	mins, ok := st.minutes[m.ID]
	if !ok {
		return nil
	}
	mat, _ := time.Parse(time.RFC3339, mins.At)
	data = map[string]any{"meeting": m.ID, "facilitator": mins.By, "text": mins.Text, "decisions": wireDecisions(mins.Decisions), "at": mat}
	return s.audit.AppendOnce(ctx, mat, crdt.AuditMeetingMinutes, data, auditFor(crdt.AuditMeetingMinutes, "meeting", m.ID))
}

// checkKey is the metadata key of a meeting's running tally.
func checkKey(meeting string) string {
	h := sha256.Sum256([]byte(meeting))
	return "ritual-check." + hex.EncodeToString(h[:16])
}

// checker is the keyed hash that tells whether member already checked in
// for meeting, without naming them to anyone without the circle's key.
func (s *Meetings) checker(meeting, member string) string {
	mac := hmac.New(sha256.New, s.key.Seed())
	mac.Write([]byte("circles-check\n" + s.meta.ID + "\n" + meeting + "\n" + member))
	return hex.EncodeToString(mac.Sum(nil))
}

// Check counts the caller's temperature check for meeting id, once per
// member (a second → 409) while the check is open (closed → 409). Named
// members must be members of the circle, each once.
func (s *Meetings) Check(ctx context.Context, c Caller, id string, req wire.CheckRequest) (wire.CheckReceipt, error) {
	if err := crdt.CheckLeastHeard(req.LeastHeard); err != nil {
		return wire.CheckReceipt{}, fault.Errorf(fault.InvalidRequest, "field \"least_heard\" must be text of at most %d characters", crdt.MaxLeastHeard)
	}
	if len(req.Dominant) > crdt.MaxDominant {
		return wire.CheckReceipt{}, fault.Errorf(fault.InvalidRequest, "field \"dominant\" names at most %d members", crdt.MaxDominant)
	}
	seen := map[string]bool{}
	now := s.now()
	for _, d := range req.Dominant {
		if mem, ok := s.member(d); !ok || !mem.ActiveAt(now) {
			return wire.CheckReceipt{}, fault.Errorf(fault.InvalidRequest, "field \"dominant\" names %q, who is not an active member of this circle", truncateID(d))
		}
		if seen[d] {
			return wire.CheckReceipt{}, fault.Errorf(fault.InvalidRequest, "field \"dominant\" names %s twice", d)
		}
		seen[d] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.read(ctx)
	if err != nil {
		return wire.CheckReceipt{}, err
	}
	m, ok := st.find(id)
	if !ok {
		return wire.CheckReceipt{}, fault.Errorf(fault.NotFound, "no meeting %s in this circle", id)
	}
	if _, closed := st.checks[id]; closed {
		return wire.CheckReceipt{}, fault.Errorf(fault.Conflict, "the temperature check of meeting %s has closed", id)
	}
	tally, rev, err := s.readTally(ctx, id)
	if err != nil {
		return wire.CheckReceipt{}, err
	}
	if !tally.AddCheck(s.checker(id, c.Member), req.LeastHeard, req.Dominant) {
		return wire.CheckReceipt{}, fault.Errorf(fault.Conflict, "you already checked in for meeting %s; a check is counted once", id)
	}
	b, err := json.Marshal(tally)
	if err != nil {
		return wire.CheckReceipt{}, err
	}
	if rev == 0 {
		_, err = s.store.Meta().Create(ctx, checkKey(id), b)
	} else {
		_, err = s.store.Meta().Update(ctx, checkKey(id), b, rev)
	}
	if err != nil {
		return wire.CheckReceipt{}, fmt.Errorf("count check: %w", err)
	}
	out := wire.CheckReceipt{Meeting: id, CheckedIn: len(tally.Checkers), Status: "open"}
	if len(tally.Checkers) >= len(s.activeIDs(s.now())) {
		if err := s.closeCheck(context.WithoutCancel(ctx), m); err != nil {
			s.log.Error("meetings: close check", "meeting", id, "err", err) // counted; Tick closes it
		} else {
			out.Status = "closed"
		}
	}
	return out, nil
}

// readTally reads meeting's running tally and its revision (0: none).
func (s *Meetings) readTally(ctx context.Context, meeting string) (crdt.CheckTally, uint64, error) {
	var t crdt.CheckTally
	b, rev, err := s.store.Meta().Get(ctx, checkKey(meeting))
	if errors.Is(err, store.ErrNotFound) {
		return t, 0, nil
	}
	if err != nil {
		return t, 0, fmt.Errorf("read check tally: %w", err)
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return t, 0, fmt.Errorf("decode check tally: %w", err)
	}
	return t, rev, nil
}

// closeCheck closes meeting m's temperature check: its summary in one
// change of the governance document, a meeting.checked audit entry, then
// the running tally is deleted. Each step recognises that it was done, so
// closing again after a crash finishes the job. s.mu held.
func (s *Meetings) closeCheck(ctx context.Context, m crdt.Meeting) error {
	tally, _, err := s.readTally(ctx, m.ID)
	if err != nil {
		return err
	}
	now := s.now()
	summary := tally.Close(now)
	doc := s.govID()
	err = s.engine.Update(ctx, doc, func(d *automerge.Doc) ([]byte, error) {
		have, err := crdt.ReadCheckSummaries(d)
		if err != nil {
			return nil, err
		}
		if old, ok := have[m.ID]; ok {
			summary = old
			return nil, errNoChange
		}
		return nil, crdt.PutCheckSummary(d, m.ID, summary)
	})
	if err != nil && !errors.Is(err, errNoChange) {
		return fmt.Errorf("close check of meeting %s: %w", m.ID, err)
	}
	data := map[string]any{"meeting": m.ID, "checked_in": summary.CheckedIn, "named": nonNilCounts(summary.Named), "rests": nonNil(summary.Rests), "moments": len(summary.Moments)}
	if err := s.audit.AppendOnce(ctx, time.Time{}, crdt.AuditMeetingChecked, data, auditFor(crdt.AuditMeetingChecked, "meeting", m.ID)); err != nil {
		return err
	}
	if err := s.store.Meta().Delete(ctx, checkKey(m.ID)); err != nil {
		return fmt.Errorf("delete check tally: %w", err)
	}
	s.events.Publish(EventMeetingChecked, data)
	return nil
}

// tickChecks closes the checks still open CheckWindow after their
// meeting's time, and finishes what a stop interrupted within the last
// day: a check closed whose tally is still kept (its audit entry may be
// missing), and the audit entries of meetings called or minuted.
func (s *Meetings) tickChecks(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.read(ctx)
	if err != nil {
		return err
	}
	now := s.now()
	var errs []error
	for _, m := range st.meetings {
		if created, err := time.Parse(time.RFC3339, m.CreatedAt); err == nil && now.Sub(created) < 24*time.Hour {
			errs = append(errs, s.recordMeeting(ctx, st, m))
		} else if mins, ok := st.minutes[m.ID]; ok {
			if at, err := time.Parse(time.RFC3339, mins.At); err == nil && now.Sub(at) < 24*time.Hour {
				errs = append(errs, s.recordMeeting(ctx, st, m))
			}
		}
		sum, closed := st.checks[m.ID]
		if closed {
			// Closed within a day, its tally still kept: the close stopped
			// before its audit entry or the tally's deletion.
			at, err := time.Parse(time.RFC3339, sum.ClosedAt)
			if err != nil || now.Sub(at) > 24*time.Hour {
				continue
			}
			if _, rev, err := s.readTally(ctx, m.ID); err != nil || rev == 0 {
				errs = append(errs, err)
				continue
			}
		}
		at, err := time.Parse(time.RFC3339, m.At)
		if !closed && (err != nil || now.Before(at.Add(CheckWindow))) {
			continue
		}
		errs = append(errs, s.closeCheck(ctx, m))
	}
	return errors.Join(errs...)
}

// Meeting shows one meeting, its minutes and its check's summary.
func (s *Meetings) Meeting(ctx context.Context, c Caller, id string) (wire.Meeting, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.read(ctx)
	if err != nil {
		return wire.Meeting{}, err
	}
	m, ok := st.find(id)
	if !ok {
		return wire.Meeting{}, fault.Errorf(fault.NotFound, "no meeting %s in this circle", id)
	}
	return s.view(ctx, c, st, m), nil
}

// Meetings lists every meeting, oldest first, and each member's pattern
// across the closed checks.
func (s *Meetings) Meetings(ctx context.Context, c Caller) (wire.MeetingList, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.read(ctx)
	if err != nil {
		return wire.MeetingList{}, err
	}
	out := wire.MeetingList{Meetings: make([]wire.Meeting, 0, len(st.meetings)), Pattern: []wire.MemberPattern{}}
	for _, m := range st.meetings {
		out.Meetings = append(out.Meetings, s.view(ctx, c, st, m))
	}
	now := s.now()
	pol := s.policies()
	cooldown := pol.Int("facilitation.cooldown")
	pool := crdt.Facilitators(s.activeIDs(now), st.meetings, st.checks, pol.Int("facilitation.rest"), cooldown)
	pat := map[string]*wire.MemberPattern{}
	get := func(id string) *wire.MemberPattern {
		p := pat[id]
		if p == nil {
			p = &wire.MemberPattern{Member: id}
			if mem, ok := s.member(id); ok {
				p.Name = mem.Name
			}
			pat[id] = p
		}
		return p
	}
	for _, id := range s.activeIDs(now) {
		get(id)
	}
	checks := 0
	next := int64(len(st.meetings)) + 1
	if n := len(st.meetings); n > 0 {
		next = st.meetings[n-1].Seq + 1
	}
	for _, m := range st.meetings {
		if m.Facilitator != "" {
			get(m.Facilitator).Facilitated++
		}
		c, ok := st.checks[m.ID]
		if !ok {
			continue
		}
		checks++
		for id, n := range c.Named {
			p := get(id)
			p.Named += n
			if n > 0 {
				p.MeetingsNamed++
				p.LastNamedIn = m.ID
			}
		}
		for _, id := range c.Rests {
			p := get(id)
			p.Rested++
			if left := int(m.Seq + int64(cooldown) - next + 1); left > p.CooldownLeft {
				p.CooldownLeft = left
			}
		}
	}
	for _, id := range pool.Cooldown {
		get(id).RestingNow = true
	}
	for _, p := range pat {
		p.ChecksObserved = checks
		if !p.RestingNow {
			p.CooldownLeft = 0
		}
		out.Pattern = append(out.Pattern, *p)
	}
	slices.SortFunc(out.Pattern, func(a, b wire.MemberPattern) int {
		if a.Named != b.Named {
			return int(b.Named - a.Named)
		}
		return strings.Compare(a.Member, b.Member)
	})
	return out, nil
}

// view renders meeting m from st for caller c; an open check shows how
// many checked in so far and whether c did, nothing else.
func (s *Meetings) view(ctx context.Context, c Caller, st meetingsState, m crdt.Meeting) wire.Meeting {
	at, _ := time.Parse(time.RFC3339, m.At)
	created, _ := time.Parse(time.RFC3339, m.CreatedAt)
	out := wire.Meeting{ID: m.ID, Title: m.Title, At: at, Facilitator: m.Facilitator, Seq: m.Seq, Author: m.Author, CreatedAt: created}
	if d, ok := st.draws[m.ID]; ok {
		out.Draw = wire.MeetingDraw{ID: d.ID, Commitment: d.Commitment, Seed: d.Seed, Eligible: nonNil(d.Eligible), Excluded: nonNil(d.Excluded), Facilitator: d.Holder, Round: d.Round, SeedSource: d.SeedSource}
		if d.DrawnAt != nil {
			out.Draw.DrawnAt = *d.DrawnAt
		}
	}
	out.Draw.Rest, out.Draw.Cooldown, out.Draw.Relaxed = nonNil(m.Rest), nonNil(m.Cooldown), m.Relaxed
	if mins, ok := st.minutes[m.ID]; ok {
		mat, _ := time.Parse(time.RFC3339, mins.At)
		out.Minutes = &wire.Minutes{Text: mins.Text, By: mins.By, At: mat, Decisions: wireDecisions(mins.Decisions)}
	}
	if sum, ok := st.checks[m.ID]; ok {
		closed, _ := time.Parse(time.RFC3339, sum.ClosedAt)
		out.Summary = wire.CheckSummary{Status: "closed", CheckedIn: int(sum.CheckedIn), Named: nonNilCounts(sum.Named), Moments: nonNil(sum.Moments), Rests: nonNil(sum.Rests), ClosedAt: &closed}
	} else {
		t, _, err := s.readTally(ctx, m.ID)
		if err != nil {
			s.log.Warn("meetings: read tally", "meeting", m.ID, "err", err)
		}
		_, mine := slices.BinarySearch(t.Checkers, s.checker(m.ID, c.Member))
		out.Summary = wire.CheckSummary{Status: "open", CheckedIn: len(t.Checkers), YouCheckedIn: mine, Named: map[string]int64{}, Moments: []string{}, Rests: []string{}}
	}
	return out
}

func wireDecisions(ds []crdt.MinutesDecision) []wire.Decision {
	out := make([]wire.Decision, len(ds))
	for i, d := range ds {
		out[i] = wire.Decision{Text: d.Text, Tag: d.Tag}
	}
	return out
}

func nonNilCounts(m map[string]int64) map[string]int64 {
	if m == nil {
		return map[string]int64{}
	}
	return m
}

func formatRFC(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func truncateID(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
