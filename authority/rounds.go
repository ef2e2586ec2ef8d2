package authority

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/authority/fault"
	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/wire"
)

// Commit–reveal draws (crdt/drawround.go says what they guarantee): any
// draw of the circle — a role's holder, a meeting's facilitator, the
// auditors of a pair-link audit — opens with OpenRound, devices commit
// and reveal through Commit and Reveal (REST), the scheduler closes it
// (tickRounds) once its reveal deadline passed, and the caller reads the
// pick with RoundResult.
//
// Every accepted commitment and reveal is written to the audit log
// before the governance document, and the result is computed from the
// audit log (the public record), so what `circlectl audit verify`
// recomputes is what the server computed, also after a crash between
// the two writes (AppendOnce records each step once).

// Default windows of a draw: a day to commit, a day to reveal, so that
// phones that sync once a day take part.
const (
	DefaultCommitWindow = 24 * time.Hour
	DefaultRevealWindow = 24 * time.Hour
)

// EventDrawOpened and EventDrawClosed tell connected devices to take part
// in a draw and that its result is known.
const (
	EventDrawOpened = "draw.opened"
	EventDrawClosed = "draw.closed"
)

// RoundSpec is a draw to open.
type RoundSpec struct {
	// ID names the draw (crdt.IsDrawID); opening the same id again
	// returns the draw already open.
	ID string
	// Purpose says what is drawn, for people ("pair-link audit 2027-Q1").
	Purpose string
	// Candidates are the member ids the draw picks from.
	Candidates []string
	// Picks is how many it picks; 0 for a draw whose seed alone is used
	// (a role's or a facilitator's draw picks among those eligible when
	// it is used, drawseeds.go).
	Picks int
	// CommitWindow and RevealWindow default to DefaultCommitWindow and
	// DefaultRevealWindow.
	CommitWindow, RevealWindow time.Duration
	// CommitBy and RevealBy, when set, are the deadlines themselves
	// (not before the opening, CommitBy not after RevealBy), instead of
	// the windows.
	CommitBy, RevealBy time.Time
}

// serverValue is the server's secret value of draw id: the HMAC-SHA256 of
// the id under the circle's key, so that it survives a restart without
// secret state and cannot be guessed without the key. It is committed
// at the opening, before any device commits.
func (s *Draws) serverValue(id string) []byte {
	mac := hmac.New(sha256.New, s.key.Seed())
	mac.Write([]byte("circles-draw-server-value\n" + s.meta.ID + "\n" + id))
	return mac.Sum(nil)
}

func (s *Draws) govDoc() string { return s.govID() }

// lookupRound reads draw id from the governance document.
func (s *Draws) lookupRound(ctx context.Context, id string) (crdt.DrawRound, bool, error) {
	var d crdt.DrawRound
	var found bool
	err := s.engine.View(ctx, s.govDoc(), func(doc *automerge.Doc) error {
		var err error
		d, found, err = crdt.LookupDrawRound(doc, id)
		return err
	})
	return d, found, err
}

// OpenRound opens the draw spec describes: the audit entry draw.opened
// with the server's commitment, then the draw in the governance
// document. An id already opened returns that draw unchanged.
func (s *Draws) OpenRound(ctx context.Context, spec RoundSpec) (crdt.DrawRound, error) {
	if !crdt.IsDrawID(spec.ID) || spec.Picks < 0 || len(spec.Candidates) > crdt.MaxDrawRoundCandidates || len(spec.Purpose) > crdt.MaxNoteLen {
		return crdt.DrawRound{}, fmt.Errorf("open draw %q: bad spec", spec.ID)
	}
	s.roundMu.Lock()
	defer s.roundMu.Unlock()
	return s.openRoundLocked(ctx, spec)
}

// openRoundLocked is OpenRound with s.roundMu held.
func (s *Draws) openRoundLocked(ctx context.Context, spec RoundSpec) (crdt.DrawRound, error) {
	if d, found, err := s.lookupRound(ctx, spec.ID); err != nil || found {
		return d, err
	}
	now := s.msNow()
	o := crdt.DrawRoundOpen{
		Draw: spec.ID, Purpose: spec.Purpose,
		Candidates: slices.Compact(slices.Sorted(slices.Values(spec.Candidates))), Picks: spec.Picks,
		ServerCommitment: crdt.DrawCommitment(s.serverValue(spec.ID)),
		OpenedAt:         now, CommitBy: now.Add(cmpOr(spec.CommitWindow, DefaultCommitWindow)),
	}
	if o.Candidates == nil {
		o.Candidates = []string{}
	}
	o.RevealBy = o.CommitBy.Add(cmpOr(spec.RevealWindow, DefaultRevealWindow))
	if !spec.RevealBy.IsZero() {
		// Never before the opening, nor reveals before commitments.
		o.CommitBy = laterOf(now, spec.CommitBy.UTC().Truncate(time.Millisecond))
		o.RevealBy = laterOf(o.CommitBy, spec.RevealBy.UTC().Truncate(time.Millisecond))
	}
	// An opening interrupted between its audit entry and the document
	// (a crash, a failed write) is finished with what the log says.
	if prev, found, err := s.recordedOpening(ctx, o.Draw, now.Add(-maxRoundRetry)); err != nil {
		return crdt.DrawRound{}, err
	} else if found {
		o = prev
	} else if err := s.audit.AppendOnce(ctx, now, crdt.AuditDrawOpened, o, auditFor(crdt.AuditDrawOpened, "draw", o.Draw)); err != nil {
		return crdt.DrawRound{}, err
	}
	err := s.engine.Update(ctx, s.govDoc(), func(doc *automerge.Doc) ([]byte, error) {
		return nil, crdt.PutDrawRoundOpen(doc, o)
	})
	if err != nil {
		return crdt.DrawRound{}, err
	}
	s.events.Publish(EventDrawOpened, map[string]any{"draw": o.Draw, "purpose": o.Purpose, "commit_by": o.CommitBy, "reveal_by": o.RevealBy})
	return crdt.DrawRound{Open: o, Commitments: map[string]crdt.DrawRoundCommitment{}, Reveals: map[string]crdt.DrawRoundReveal{}}, nil
}

// msNow is the clock to the millisecond, as the audit log keeps times:
// a deadline and the entries judged against it then agree exactly.
func (s *Draws) msNow() time.Time { return s.now().Truncate(time.Millisecond) }

// maxRoundRetry is how far back OpenRound looks for an opening it
// recorded in the log but did not finish.
const maxRoundRetry = 92 * 24 * time.Hour

// recordedOpening finds the draw.opened entry of draw id recorded since.
func (s *Draws) recordedOpening(ctx context.Context, id string, since time.Time) (crdt.DrawRoundOpen, bool, error) {
	var o crdt.DrawRoundOpen
	var found bool
	// Across audit segments (archives.go).
	_, err := s.findAudit(ctx, since, func(e crdt.AuditEntry) bool {
		if e.Kind != crdt.AuditDrawOpened {
			return false
		}
		var x crdt.DrawRoundOpen
		if json.Unmarshal(e.Data, &x) != nil || x.Draw != id {
			return false
		}
		o, found = x, true
		return true
	})
	return o, found, err
}

func laterOf(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// RoundResult returns the result of draw id, nil while it is not closed.
// An unknown draw is fault.NotFound.
func (s *Draws) RoundResult(ctx context.Context, id string) (*crdt.DrawRoundResult, error) {
	d, found, err := s.lookupRound(ctx, id)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fault.Errorf(fault.NotFound, "there is no draw %q", id)
	}
	return d.Result, nil
}

// Rounds lists the commit–reveal draws, newest first: all, or those
// still open (status "open": commit or reveal phase, or closing).
func (s *Draws) Rounds(ctx context.Context, c Caller, status string) (wire.DrawList, error) {
	var all map[string]crdt.DrawRound
	err := s.engine.View(ctx, s.govDoc(), func(doc *automerge.Doc) error {
		var err error
		all, err = crdt.ReadDrawRounds(doc)
		return err
	})
	if err != nil {
		return wire.DrawList{}, err
	}
	now := s.msNow()
	out := wire.DrawList{Draws: []wire.Draw{}}
	for _, d := range all {
		if status == "open" && d.Result != nil {
			continue
		}
		out.Draws = append(out.Draws, roundWire(d, now))
	}
	slices.SortFunc(out.Draws, func(a, b wire.Draw) int {
		if c := b.OpenedAt.Compare(a.OpenedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// Round returns draw id with its commitments, reveals and result.
func (s *Draws) Round(ctx context.Context, c Caller, id string) (wire.Draw, error) {
	d, found, err := s.lookupRound(ctx, id)
	if err != nil {
		return wire.Draw{}, err
	}
	if !found {
		return wire.Draw{}, fault.Errorf(fault.NotFound, "there is no draw %q", id)
	}
	return roundWire(d, s.msNow()), nil
}

func roundWire(d crdt.DrawRound, now time.Time) wire.Draw {
	w := wire.Draw{
		ID: d.Open.Draw, Purpose: d.Open.Purpose, Candidates: d.Open.Candidates, Picks: d.Open.Picks,
		ServerCommitment: d.Open.ServerCommitment, OpenedAt: d.Open.OpenedAt, CommitBy: d.Open.CommitBy, RevealBy: d.Open.RevealBy,
		Phase: d.Phase(now), Commitments: []wire.DrawCommitment{}, Reveals: []wire.DrawReveal{},
	}
	for _, m := range slices.Sorted(maps.Keys(d.Commitments)) {
		c := d.Commitments[m]
		w.Commitments = append(w.Commitments, wire.DrawCommitment{Member: c.Member, Device: c.Device, Commitment: c.Commitment, Statement: c.Statement, At: c.At})
	}
	for _, m := range slices.Sorted(maps.Keys(d.Reveals)) {
		r := d.Reveals[m]
		w.Reveals = append(w.Reveals, wire.DrawReveal{Member: r.Member, Value: r.Value, At: r.At})
	}
	if r := d.Result; r != nil {
		w.Result = &wire.DrawResult{ServerValue: r.ServerValue, Seed: r.Seed, Revealed: r.Revealed, Withheld: r.Withheld, ServerOnly: r.ServerOnly, Picked: r.Picked, ClosedAt: r.ClosedAt}
	}
	return w
}

// Commit takes the caller's member's commitment to draw id: a statement
// signed by one of the member's active devices for this circle and this
// draw (crdt.ParseDrawCommit), during the commit phase; one per member.
// The same commitment again (a retry, even signed anew) is answered as
// accepted; another one from a member who committed is fault.Conflict, as is one after
// commit_by. A statement that does not verify, or is for another draw
// or circle, is a *crdt.RuleError (422).
func (s *Draws) Commit(ctx context.Context, c Caller, id string, req wire.DrawCommitRequest) (wire.Draw, error) {
	if req.Statement == "" {
		return wire.Draw{}, fault.Errorf(fault.InvalidRequest, "field \"statement\" is required: a commitment signed by your device")
	}
	now := s.msNow()
	parsed, err := s.parseCommitment(req.Statement, now)
	if err != nil {
		return wire.Draw{}, err
	}
	switch {
	case parsed.Draw != id:
		return wire.Draw{}, &crdt.RuleError{Rule: crdt.RuleDraw, Message: fmt.Sprintf("the statement commits to draw %q, not to this one; a commitment counts in its own draw only", parsed.Draw)}
	case parsed.Member != c.Member:
		return wire.Draw{}, fault.Errorf(fault.Forbidden, "the statement is signed by another member's device; commit with your own")
	}
	s.roundMu.Lock()
	defer s.roundMu.Unlock()
	d, found, err := s.lookupRound(ctx, id)
	if err != nil {
		return wire.Draw{}, err
	}
	if !found {
		return wire.Draw{}, fault.Errorf(fault.NotFound, "there is no draw %q", id)
	}
	if old, ok := d.Commitments[c.Member]; ok {
		if old.Commitment == parsed.Commitment { // a retry, perhaps signed again
			return roundWire(d, now), nil
		}
		return wire.Draw{}, fault.Errorf(fault.Conflict, "your member already committed to this draw (from device %s); one commitment per member counts", old.Device)
	}
	if ph := d.Phase(now); ph != "commit" {
		return wire.Draw{}, fault.Errorf(fault.Conflict, "the commit phase of this draw ended at %s", d.Open.CommitBy.Format(time.RFC3339))
	}
	parsed.At = now
	if err := s.audit.AppendOnce(ctx, d.Open.OpenedAt, crdt.AuditDrawCommitment, parsed, roundItemFor(crdt.AuditDrawCommitment, id, c.Member)); err != nil {
		return wire.Draw{}, err
	}
	err = s.engine.Update(ctx, s.govDoc(), func(doc *automerge.Doc) ([]byte, error) {
		return nil, crdt.PutDrawRoundCommitment(doc, parsed)
	})
	if err != nil {
		return wire.Draw{}, err
	}
	d.Commitments[c.Member] = parsed
	return roundWire(d, now), nil
}

// parseCommitment checks a commitment statement against the roster
// (under s.mu: the roster's member map is updated in place) and that its
// device and member are active at now.
func (s *Draws) parseCommitment(statement string, now time.Time) (crdt.DrawRoundCommitment, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	parsed, err := crdt.ParseDrawCommit(statement, s.meta.ID, s.roster)
	if err != nil {
		return parsed, err
	}
	if m := s.roster.Members[parsed.Member]; m == nil || m.Devices[parsed.Device] == nil || !m.Devices[parsed.Device].ActiveAt(now) || !m.ActiveAt(now) {
		return parsed, &crdt.RuleError{Rule: crdt.RuleDraw, Message: "the signing device is revoked or its member is not active"}
	}
	return parsed, nil
}

// Reveal takes the caller's member's reveal in draw id: after commit_by
// and until reveal_by, the value its commitment hashes. The same value
// again is answered as accepted; a value that does not match is a
// *crdt.RuleError (422); before the reveal phase, after reveal_by, or
// with no commitment it is fault.Conflict: a late reveal never counts.
func (s *Draws) Reveal(ctx context.Context, c Caller, id string, req wire.DrawRevealRequest) (wire.Draw, error) {
	value, err := crdt.ParseDrawValue(req.Value)
	if err != nil {
		return wire.Draw{}, fault.Errorf(fault.InvalidRequest, "field \"value\" must be the %d-byte value you committed to, as %d lowercase hex digits", crdt.DrawValueBytes, 2*crdt.DrawValueBytes)
	}
	s.roundMu.Lock()
	defer s.roundMu.Unlock()
	now := s.msNow()
	d, found, err := s.lookupRound(ctx, id)
	if err != nil {
		return wire.Draw{}, err
	}
	if !found {
		return wire.Draw{}, fault.Errorf(fault.NotFound, "there is no draw %q", id)
	}
	com, ok := d.Commitments[c.Member]
	if !ok {
		return wire.Draw{}, fault.Errorf(fault.Conflict, "your member did not commit to this draw, so there is nothing to reveal")
	}
	if old, ok := d.Reveals[c.Member]; ok {
		if old.Value == req.Value {
			return roundWire(d, now), nil
		}
		return wire.Draw{}, fault.Errorf(fault.Conflict, "your member already revealed in this draw")
	}
	switch d.Phase(now) {
	case "commit":
		return wire.Draw{}, fault.Errorf(fault.Conflict, "reveals open after the commit phase ends at %s", d.Open.CommitBy.Format(time.RFC3339))
	case "closing", "closed":
		return wire.Draw{}, fault.Errorf(fault.Conflict, "reveals closed at %s; a late reveal does not count", d.Open.RevealBy.Format(time.RFC3339))
	}
	if crdt.DrawValueCommitment(s.meta.ID, id, c.Member, value) != com.Commitment {
		return wire.Draw{}, &crdt.RuleError{Rule: crdt.RuleDraw, Message: "the value does not match your commitment; it does not count"}
	}
	rv := crdt.DrawRoundReveal{Draw: id, Member: c.Member, Value: req.Value, At: now}
	if err := s.audit.AppendOnce(ctx, d.Open.OpenedAt, crdt.AuditDrawReveal, rv, roundItemFor(crdt.AuditDrawReveal, id, c.Member)); err != nil {
		return wire.Draw{}, err
	}
	err = s.engine.Update(ctx, s.govDoc(), func(doc *automerge.Doc) ([]byte, error) {
		return nil, crdt.PutDrawRoundReveal(doc, rv)
	})
	if err != nil {
		return wire.Draw{}, err
	}
	d.Reveals[c.Member] = rv
	return roundWire(d, now), nil
}

// roundItemFor matches the audit entry of kind for member in draw.
func roundItemFor(kind, draw, member string) func(crdt.AuditEntry) bool {
	return func(e crdt.AuditEntry) bool {
		if e.Kind != kind {
			return false
		}
		var data struct{ Draw, Member string }
		return json.Unmarshal(e.Data, &data) == nil && data.Draw == draw && data.Member == member
	}
}

// tickRounds closes every draw whose reveal deadline passed.
func (s *Draws) tickRounds(ctx context.Context) error {
	var all map[string]crdt.DrawRound
	err := s.engine.View(ctx, s.govDoc(), func(doc *automerge.Doc) error {
		var err error
		all, err = crdt.ReadDrawRounds(doc)
		return err
	})
	if err != nil {
		return err
	}
	now := s.msNow()
	var errs []error
	for _, id := range slices.Sorted(maps.Keys(all)) {
		if all[id].Phase(now) == "closing" {
			errs = append(errs, s.closeRound(ctx, id))
		}
	}
	return errors.Join(errs...)
}

// closeRound computes the result of draw id from the audit log — the
// commitments and reveals recorded there — and the server's value, writes
// draw.closed (once), then the result into the governance document.
func (s *Draws) closeRound(ctx context.Context, id string) error {
	s.roundMu.Lock()
	defer s.roundMu.Unlock()
	return s.closeRoundLocked(ctx, id)
}

// closeRoundLocked is closeRound with s.roundMu held.
func (s *Draws) closeRoundLocked(ctx context.Context, id string) error {
	d, found, err := s.lookupRound(ctx, id)
	if err != nil || !found || d.Result != nil {
		return err
	}
	// Every audit segment: the round's commitments and reveals may
	// span a segment's end (archives.go).
	entries, err := s.readAuditFrom(ctx, 0, -1)
	if err != nil {
		return err
	}
	var committed []string
	reveals := map[string][]byte{}
	var res *crdt.DrawRoundResult
	for _, e := range entries {
		if e.At.Before(d.Open.OpenedAt) {
			continue
		}
		var data struct{ Draw, Member, Value string }
		if json.Unmarshal(e.Data, &data) != nil || data.Draw != id {
			continue
		}
		switch e.Kind {
		case crdt.AuditDrawCommitment:
			committed = append(committed, data.Member)
		case crdt.AuditDrawReveal:
			if v, err := crdt.ParseDrawValue(data.Value); err == nil {
				reveals[data.Member] = v
			}
		case crdt.AuditDrawClosed: // a close interrupted after its audit entry
			var r crdt.DrawRoundResult
			if json.Unmarshal(e.Data, &r) == nil {
				res = &r
			}
		}
	}
	if res == nil {
		r := crdt.CloseDrawRound(s.meta.ID, d.Open, s.serverValue(id), committed, reveals, s.msNow())
		res = &r
		if err := s.audit.AppendOnce(ctx, d.Open.OpenedAt, crdt.AuditDrawClosed, r, auditFor(crdt.AuditDrawClosed, "draw", id)); err != nil {
			return err
		}
	}
	err = s.engine.Update(ctx, s.govDoc(), func(doc *automerge.Doc) ([]byte, error) {
		return nil, crdt.PutDrawRoundResult(doc, *res)
	})
	if err != nil {
		return err
	}
	s.log.Info("draw closed", "draw", id, "picked", res.Picked, "revealed", len(res.Revealed), "withheld", len(res.Withheld), "server_only", res.ServerOnly)
	s.events.Publish(EventDrawClosed, map[string]any{"draw": id, "picked": res.Picked})
	return nil
}
