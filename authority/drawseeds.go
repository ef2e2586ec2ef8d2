package authority

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
)

// Every draw of a role's holder or a meeting's facilitator takes its seed
// from a commit–reveal round (rounds.go; crdt/drawseed.go says which
// round and how it is checked):
//
//   - a role rotating by draw: its round opens when the term starts
//     (commitRotationDraws) and reveals until the term's end; at the end
//     tickRoles closes it and draws among the members eligible then;
//   - a passed role.draw proposal opens its round (planDraw); the role
//     is assigned when it closes (tickPendingDraws);
//   - a meeting: the newest closed facilitation round, mixed with the
//     meeting's sequence number (facilitationDraw); a new circle's first
//     meetings, before any facilitation round closed, use the server's
//     committed seed and say so.

// EventRoleDrawPending is sent when a passed role.draw opened its round.
const EventRoleDrawPending = "role.draw.pending"

// rotationRoundSpec is the round of the draw at the end of role's term
// ending at termEnd, opened at now: commitments until the last reveal
// window before the term ends, reveals until its end (the window is
// DefaultRevealWindow, or half of what is left of a shorter term), so
// the seed is known only when the term ends. A term already ended gets
// a round that closes at once (the server's value alone, recorded so).
func rotationRoundSpec(role crdt.Role, termEnd, now time.Time) RoundSpec {
	spec := RoundSpec{
		ID:      crdt.RotationDrawID(role.ID, termEnd),
		Purpose: fmt.Sprintf("next holder of the role %s when its term ends", role.Name),
	}
	left := termEnd.Sub(now)
	if left <= 0 {
		spec.CommitBy, spec.RevealBy = now, now
		return spec
	}
	spec.CommitBy, spec.RevealBy = termEnd.Add(-min(DefaultRevealWindow, left/2)), termEnd
	return spec
}

// commitRotationDraws opens, ahead of time, the round that will pick the
// next holder of every held role that rotates by draw, when the current
// term ends. Opening an open round again changes nothing.
func (s *Draws) commitRotationDraws(ctx context.Context, r *crdt.Roster) error {
	now := s.now()
	var errs []error
	for _, id := range slices.Sorted(maps.Keys(r.Roles)) {
		role := r.Roles[id]
		if role.Rotation != crdt.RotationDraw || role.Holder == "" || role.TermEnd == nil || !role.TermEnd.After(now) {
			continue
		}
		if _, err := s.OpenRound(ctx, rotationRoundSpec(*role, *role.TermEnd, now)); err != nil {
			errs = append(errs, fmt.Errorf("open the draw of role %s: %w", role.ID, err))
		}
	}
	return errors.Join(errs...)
}

// settleRound returns round spec.ID closed: closed now if its reveals
// closed; opened and closed at once, with what the server alone holds,
// if it was never opened (spec then has deadlines at now). A round still
// taking commitments or reveals is returned with no result.
func (s *Draws) settleRound(ctx context.Context, spec RoundSpec) (crdt.DrawRound, error) {
	d, found, err := s.lookupRound(ctx, spec.ID)
	if err != nil {
		return d, err
	}
	closeNow := false
	if !found {
		if d, err = s.OpenRound(ctx, spec); err != nil {
			return d, err
		}
		closeNow = true
	}
	if d.Result != nil || (!closeNow && d.Phase(s.msNow()) != "closing") {
		return d, nil
	}
	if err := s.closeRound(ctx, spec.ID); err != nil {
		return d, err
	}
	d, _, err = s.lookupRound(ctx, spec.ID)
	return d, err
}

// drawWithRound draws role's holder among the members of roster eligible
// at now with the seed of closed round rd, the draw named id (the
// round's id), and assigns the pick (role unchanged if nobody is
// eligible).
func (s *Draws) drawWithRound(role crdt.Role, roster *crdt.Roster, rd crdt.DrawRound, proposal string, now time.Time) (crdt.Draw, crdt.Role, error) {
	if rd.Result == nil {
		return crdt.Draw{}, role, fmt.Errorf("draw %s is not closed", rd.Open.Draw)
	}
	seed, err := hex.DecodeString(rd.Result.Seed)
	if err != nil {
		return crdt.Draw{}, role, fmt.Errorf("draw %s: seed: %w", rd.Open.Draw, err)
	}
	maxTerms := s.policies().Int("role.term_limit")
	eligible, excluded := crdt.DrawEligible(role, roster, now, maxTerms)
	at := now.UTC()
	d := crdt.Draw{
		ID: rd.Open.Draw, Role: role.ID, Proposal: proposal, Commitment: rd.Open.ServerCommitment, CommittedAt: rd.Open.OpenedAt,
		Seed: rd.Result.Seed, Eligible: eligible, Excluded: excluded, DrawnAt: &at,
		Round: rd.Open.Draw, SeedSource: crdt.SeedSourceRound,
		Holder: crdt.DrawPick(seed, eligible),
	}
	if d.Holder == "" {
		return d, role, nil
	}
	assigned, err := crdt.AssignRole(role, d.Holder, now, maxTerms)
	return d, assigned, err
}

// planDraw plans the effect of a passed role.draw proposal p: it opens
// the round named by the proposal's id and records the draw as pending
// in the governance document (role.draw.pending); the role is assigned
// when the round closes (tickPendingDraws), among the members eligible
// then. A role that does not exist or is retired is a *crdt.RuleError.
func (s *Draws) planDraw(ctx context.Context, p crdt.Proposal, ref string, at time.Time, recovering bool) (effect, error) {
	r, err := s.readRoster(ctx)
	if err != nil {
		return effect{}, err
	}
	role, ok := crdt.FindRole(r.Roles, ref)
	if !ok {
		return effect{}, &crdt.RuleError{Rule: crdt.RuleGovernance, Message: fmt.Sprintf("there is no role %q", ref)}
	}
	if role.Retired() {
		return effect{}, &crdt.RuleError{Rule: crdt.RuleGovernance, Message: fmt.Sprintf("role %q is retired", role.Name)}
	}
	if recovering {
		var found bool
		err := s.viewGov(ctx, func(doc *automerge.Doc) error {
			var err error
			_, found, err = crdt.LookupDraw(doc, p.ID)
			return err
		})
		if err != nil {
			return effect{}, err
		}
		if found {
			return effect{done: true}, nil
		}
	}
	roleID, name := role.ID, role.Name
	data := map[string]any{"proposal": p.ID, "role": roleID, "name": name, "draw": p.ID, "round": p.ID}
	return effect{
		audit: crdt.AuditRoleDrawPending, data: data, event: EventRoleDrawPending,
		pre: func(ctx context.Context) error {
			rd, err := s.OpenRound(ctx, RoundSpec{ID: p.ID, Purpose: fmt.Sprintf("holder of the role %s (proposal %s)", name, p.ID)})
			if err != nil {
				return err
			}
			return s.updateGov(ctx, func(doc *automerge.Doc) ([]byte, error) {
				if _, found, err := crdt.LookupDraw(doc, p.ID); err != nil || found {
					return nil, err
				}
				return nil, crdt.PutDraw(doc, crdt.Draw{
					ID: p.ID, Role: roleID, Proposal: p.ID, Commitment: rd.Open.ServerCommitment, CommittedAt: rd.Open.OpenedAt,
					Round: p.ID, SeedSource: crdt.SeedSourceRound,
				})
			})
		},
	}, nil
}

// pendingDraws reads the draws of passed role.draw proposals not drawn
// yet, and those drawn within the last day (whose roster write or audit
// entry a stop may have interrupted).
func (s *Draws) pendingDraws(ctx context.Context, now time.Time) ([]crdt.Draw, error) {
	var all map[string]crdt.Draw
	err := s.viewGov(ctx, func(doc *automerge.Doc) error {
		var err error
		// A proposal's draw is named by the proposal's id; meetings'
		// and rotations' draws, which grow with the circle's age, are
		// not read.
		all, err = crdt.ReadDraws(doc, func(id string) bool {
			return !strings.HasPrefix(id, "meeting:") && !strings.HasPrefix(id, "rotation:") && !strings.Contains(id, "@")
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	var out []crdt.Draw
	for _, id := range slices.Sorted(maps.Keys(all)) {
		d := all[id]
		if d.Proposal == "" || d.Round == "" {
			continue
		}
		if d.DrawnAt == nil || now.Sub(*d.DrawnAt) < 24*time.Hour {
			out = append(out, d)
		}
	}
	return out, nil
}

// PendingRoleDraws returns, by role id, the draws of passed role.draw
// proposals whose round has not closed yet.
func (s *Draws) PendingRoleDraws(ctx context.Context) (map[string]crdt.Draw, error) {
	ds, err := s.pendingDraws(ctx, s.now())
	if err != nil {
		return nil, err
	}
	out := map[string]crdt.Draw{}
	for _, d := range ds {
		if d.DrawnAt == nil {
			out[d.Role] = d
		}
	}
	return out, nil
}

// tickPendingDraws assigns the roles of passed role.draw proposals whose
// round closed (closing it first if its reveals closed): the draw among
// the members eligible now is recorded in the governance document, then
// the role written, then role.drawn. A draw found recorded but not
// carried out (a stop in between) is finished as it was drawn. Nobody
// eligible leaves the role as it is (role.drawn with holder ""); a role
// retired since, or a hard reset since the proposal passed, assigns
// nobody (role.draw.void says why). The caller holds s.gov.
func (s *Terms) tickPendingDraws(ctx context.Context) error {
	now := s.now()
	pending, err := s.draws.pendingDraws(ctx, now)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range pending {
		errs = append(errs, s.finishRoleDraw(ctx, p, now))
	}
	return errors.Join(errs...)
}

func (s *Terms) finishRoleDraw(ctx context.Context, p crdt.Draw, now time.Time) error {
	d := p
	if p.DrawnAt == nil {
		rd, err := s.draws.settleRound(ctx, RoundSpec{ID: p.Round})
		if err != nil || rd.Result == nil {
			return err
		}
		r, err := s.readRoster(ctx)
		if err != nil {
			return err
		}
		reset, err := s.resetBetween(ctx, p.CommittedAt, now)
		if err != nil {
			return err
		}
		if role, ok := r.Roles[p.Role]; ok && !role.Retired() && reset == nil {
			if d, _, err = s.draws.drawWithRound(*role, r, rd, p.Proposal, now); err != nil {
				return err
			}
		} else {
			at := now.UTC()
			d.Seed, d.Eligible, d.Excluded, d.Holder, d.DrawnAt = rd.Result.Seed, []string{}, []string{}, "", &at
		}
		// Recorded first: finishing after a stop assigns this pick,
		// never a new draw among members who may have changed.
		if err := s.updateGov(ctx, func(doc *automerge.Doc) ([]byte, error) { return nil, recordDraw(doc, d) }); err != nil {
			return err
		}
	}
	// Drawn: carried out unless its audit entry says it was.
	if done, err := s.findAudit(ctx, *d.DrawnAt, auditFor(crdt.AuditRoleDrawn, "draw", d.ID)); err != nil || done {
		return err
	}
	r, err := s.readRoster(ctx)
	if err != nil {
		return err
	}
	role, ok := r.Roles[d.Role]
	reset, err := s.resetBetween(ctx, d.CommittedAt, *d.DrawnAt)
	if err != nil {
		return err
	}
	if !ok || role.Retired() || reset != nil {
		why := "the role was retired before the draw's round closed; nobody is assigned"
		if reset != nil {
			// As for open proposals (resets.go): a draw passed before a
			// hard reset does not quietly refill a role after it.
			why = fmt.Sprintf("cancelled by the hard reset that ended epoch %d before the draw's round closed; nobody is assigned", reset.Epoch)
		}
		data := map[string]any{"draw": d.ID, "proposal": d.Proposal, "role": d.Role, "round": d.Round, "reason": why}
		if err := s.audit.AppendOnce(ctx, *d.DrawnAt, crdt.AuditRoleDrawVoid, data, auditFor(crdt.AuditRoleDrawVoid, "draw", d.ID)); err != nil {
			return err
		}
		s.log.Info("role draw void", "role", d.Role, "draw", d.ID, "reason", why)
		return nil
	}
	before, assigned := *role, *role
	if d.Holder != "" && !(role.Holder == d.Holder && role.TermStart != nil && !role.TermStart.Before(d.DrawnAt.Truncate(time.Second))) {
		if assigned, err = crdt.AssignRole(*role, d.Holder, *d.DrawnAt, s.policies().Int("role.term_limit")); err != nil {
			var re *crdt.RuleError
			if !errors.As(err, &re) {
				return err
			}
			s.log.Warn("role draw: the member drawn cannot take the role", "role", d.Role, "draw", d.ID, "err", err)
			assigned = *role
		} else if err := s.writeRoster(ctx, func(doc *automerge.Doc) error { return crdt.PutRole(doc, &assigned) }); err != nil {
			return err
		} else {
			// The draw at the end of the new term opens now.
			s.mu.RLock()
			r := s.roster
			s.mu.RUnlock()
			if err := s.draws.commitRotationDraws(ctx, r); err != nil {
				s.log.Error("role draw: open the rotation draw", "role", d.Role, "err", err)
			}
		}
	}
	data := drawnData(d, before, assigned)
	if err := s.audit.AppendOnce(ctx, *d.DrawnAt, crdt.AuditRoleDrawn, data, auditFor(crdt.AuditRoleDrawn, "draw", d.ID)); err != nil {
		return err
	}
	s.log.Info("role drawn", "role", d.Role, "draw", d.ID, "holder", d.Holder)
	s.events.Publish(EventRoleDrawn, data)
	return nil
}

// facilitationDraw draws the facilitator of the meeting with sequence
// number seq among eligible (excluded: those left out), the draw named
// id. Under s.roundMu, so that no facilitation round closes meanwhile:
// the facilitation rounds whose reveals closed are closed, then the seed
// is crdt.FacilitationSeed of the newest closed one and seq; with none
// closed yet (a new circle) it is the server's committed seed
// (drawAmong, seed_source "server"). When none is open the next one
// opens first, so the series always has one open or one closed and
// unused, and the log shows the next round open before any meeting
// reuses the newest closed one. A draw already run under id (a retry) is
// returned as it ran.
func (s *Draws) facilitationDraw(ctx context.Context, id string, seq int64, eligible, excluded []string) (crdt.Draw, error) {
	var prev crdt.Draw
	var found bool
	err := s.viewGov(ctx, func(doc *automerge.Doc) error {
		var err error
		prev, found, err = crdt.LookupDraw(doc, id)
		return err
	})
	if err != nil {
		return crdt.Draw{}, err
	}
	if found && prev.DrawnAt != nil {
		return prev, nil
	}
	s.roundMu.Lock()
	defer s.roundMu.Unlock()
	return s.facilitationDrawLocked(ctx, id, seq, eligible, excluded)
}

func (s *Draws) facilitationDrawLocked(ctx context.Context, id string, seq int64, eligible, excluded []string) (d crdt.Draw, err error) {
	var all map[string]crdt.DrawRound
	read := func() error {
		return s.engine.View(ctx, s.govDoc(), func(doc *automerge.Doc) error {
			var err error
			all, err = crdt.ReadDrawRounds(doc)
			return err
		})
	}
	if err := read(); err != nil {
		return d, err
	}
	closing := false
	for rid, rd := range all {
		if _, ok := crdt.FacilitationRoundNumber(rid); ok && rd.Result == nil && rd.Phase(s.msNow()) == "closing" {
			if err := s.closeRoundLocked(ctx, rid); err != nil {
				return d, err
			}
			closing = true
		}
	}
	if closing {
		if err := read(); err != nil {
			return d, err
		}
	}
	var round crdt.DrawRound
	newest, closedN, open := 0, 0, false
	for rid, rd := range all {
		n, ok := crdt.FacilitationRoundNumber(rid)
		if !ok {
			continue
		}
		newest = max(newest, n) // the next to open follows every one opened
		if rd.Result == nil {
			open = true
		} else if n > closedN {
			closedN, round = n, rd
		}
	}
	// The next round opens before this meeting is drawn, so that the log
	// shows it open before any meeting reuses the newest closed one.
	if !open {
		if _, err := s.openRoundLocked(ctx, RoundSpec{ID: crdt.FacilitationRoundID(newest + 1), Purpose: "facilitators of the next meetings"}); err != nil {
			return d, fmt.Errorf("open the next facilitation round: %w", err)
		}
	}
	now := s.now()
	if round.Result == nil {
		return s.drawAmong(ctx, id, facilitationPurpose, eligible, excluded, now)
	}
	rseed, err := hex.DecodeString(round.Result.Seed)
	if err != nil {
		return d, fmt.Errorf("facilitation round %s: seed: %w", round.Open.Draw, err)
	}
	seed := crdt.FacilitationSeed(rseed, seq)
	at := now.UTC()
	d = crdt.Draw{
		ID: id, Role: facilitationPurpose, Commitment: crdt.DrawCommitment(seed), CommittedAt: at,
		Seed: hex.EncodeToString(seed), Eligible: nonNil(eligible), Excluded: nonNil(excluded), DrawnAt: &at,
		Holder: crdt.DrawPick(seed, eligible), Round: round.Open.Draw, SeedSource: crdt.SeedSourceRound,
	}
	err = s.engine.Update(ctx, s.govDoc(), func(doc *automerge.Doc) ([]byte, error) {
		return nil, recordDraw(doc, d)
	})
	return d, err
}

// resetBetween returns the first hard reset executed after from and at
// or before to, nil if none.
func (s *Terms) resetBetween(ctx context.Context, from, to time.Time) (*crdt.ResetRecord, error) {
	var resets []crdt.ResetRecord
	err := s.viewGov(ctx, func(doc *automerge.Doc) error {
		var err error
		resets, err = crdt.ReadResets(doc)
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, rec := range resets {
		if rec.At.After(from) && !rec.At.After(to) {
			return &rec, nil
		}
	}
	return nil, nil
}
