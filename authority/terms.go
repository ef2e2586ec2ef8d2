package authority

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
)

// Terms ends role terms on the clock: the holder is rotated out, or the
// next holder drawn (roles with rotation "draw").
type Terms struct {
	*State
	audit *Audit
	draws *Draws
}

// Event types of the scheduler's governance work (GET /v1/events).
const (
	EventRoleRotated = "role.rotated"
)

// rotated is one role whose holder's term ended, and the draw that
// picked the next holder if the role rotates by draw.
type rotated struct {
	before, after crdt.Role
	draw          *crdt.Draw
}

// tickRoles rotates out the holders whose term has ended: the role
// becomes vacant, remembering who held it (crdt.RotateRole), or, if it
// rotates by draw, goes to the member a random draw picks among those
// eligible then (nobody eligible: vacant). Each rotation has a
// role.rotated audit entry and event, each draw a role.drawn one naming
// its round. Rounds open ahead of time (commitRotationDraws) and close
// here, at the end of the term, with what was revealed by then; a term
// that ended with no round (a server down since before it began) gets
// one closed at once with the server's value alone, which its
// draw.closed entry says (server_only). It also assigns the roles of
// passed role.draw proposals whose round closed (tickPendingDraws). It
// holds s.gov, so a rotation never interleaves with a proposal
// assigning the same role.
func (s *Terms) tickRoles(ctx context.Context) error {
	s.gov.Lock()
	defer s.gov.Unlock()
	r, err := s.readRoster(ctx)
	if err != nil {
		return err
	}
	var errs []error
	if err := s.draws.commitRotationDraws(ctx, r); err != nil {
		errs = append(errs, err)
	}
	if err := s.tickPendingDraws(ctx); err != nil {
		errs = append(errs, err)
	}
	now := s.now()
	// The rounds of the draws due now, closed with what was revealed by
	// the end of the term; a round not closable yet holds its rotation
	// back to a later tick (never a draw from another seed).
	rounds := map[string]crdt.DrawRound{}
	for _, id := range slices.Sorted(maps.Keys(r.Roles)) {
		role := r.Roles[id]
		if _, due := crdt.RotateRole(*role, now); !due || role.Rotation != crdt.RotationDraw {
			continue
		}
		rd, err := s.draws.settleRound(ctx, rotationRoundSpec(*role, *role.TermEnd, now))
		if err != nil {
			errs = append(errs, fmt.Errorf("close the draw of role %s: %w", id, err))
			continue
		}
		if rd.Result != nil {
			rounds[id] = rd
		}
	}
	var done []rotated
	err = s.writeRoster(ctx, func(d *automerge.Doc) error {
		done = nil
		r, err := crdt.ReadRoster(d)
		if err != nil {
			return err
		}
		for _, id := range slices.Sorted(maps.Keys(r.Roles)) {
			before := *r.Roles[id]
			next, ok := crdt.RotateRole(before, now)
			if !ok {
				continue
			}
			rt := rotated{before: before}
			if before.Rotation == crdt.RotationDraw {
				rd, ready := rounds[id]
				if !ready || rd.Open.Draw != crdt.RotationDrawID(before.ID, *before.TermEnd) {
					continue
				}
				dr, assigned, err := s.draws.drawWithRound(next, r, rd, "", now)
				if err != nil {
					return err
				}
				next, rt.draw = assigned, &dr
			}
			if err := crdt.PutRole(d, &next); err != nil {
				return err
			}
			rt.after = next
			done = append(done, rt)
		}
		if len(done) == 0 {
			return errNoChange
		}
		return nil
	})
	if errors.Is(err, errNoChange) {
		return errors.Join(errs...)
	}
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	ctx = context.WithoutCancel(ctx)
	for _, rt := range done {
		if rt.draw != nil {
			err := s.updateGov(ctx, func(d *automerge.Doc) ([]byte, error) {
				return nil, recordDraw(d, *rt.draw)
			})
			if err != nil {
				errs = append(errs, fmt.Errorf("record the draw of role %s: %w", rt.before.ID, err))
			}
		}
		s.afterRotation(ctx, rt)
	}
	s.mu.RLock()
	r = s.roster
	s.mu.RUnlock()
	return errors.Join(append(errs, s.draws.commitRotationDraws(ctx, r))...)
}

// afterRotation writes the audit entry of a rotation and tells everyone.
func (s *Terms) afterRotation(ctx context.Context, rt rotated) {
	data := map[string]any{
		"role": rt.before.ID, "name": rt.before.Name, "previous_holder": rt.before.Holder,
		"term_start": rt.before.TermStart, "term_end": rt.before.TermEnd, "terms_served": rt.before.TermsServed,
		"holder": rt.after.Holder,
		// The limit then, so honours (GET /v1/honours) tell a term limit
		// reached from a plain rotation.
		"term_limit": crdt.TermLimit(rt.before, s.policies().Int("role.term_limit")),
	}
	if rt.draw != nil {
		data["draw"] = rt.draw.ID
	}
	if err := s.audit.Append(ctx, crdt.AuditRoleRotated, data); err != nil {
		s.log.Error("rotation: audit entry", "role", rt.before.ID, "err", err)
	}
	if rt.draw != nil {
		drawn := drawnData(*rt.draw, rt.before, rt.after)
		if err := s.audit.Append(ctx, crdt.AuditRoleDrawn, drawn); err != nil {
			s.log.Error("rotation: audit entry of the draw", "role", rt.before.ID, "err", err)
		}
		s.events.Publish(EventRoleDrawn, drawn)
	}
	s.log.Info("role rotated", "role", rt.before.ID, "name", rt.before.Name, "previous_holder", rt.before.Holder, "holder", rt.after.Holder)
	s.events.Publish(EventRoleRotated, map[string]any{"role": rt.before.ID, "name": rt.before.Name, "previous_holder": rt.before.Holder, "holder": rt.after.Holder})
}
