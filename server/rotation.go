package server

import (
	"context"
	"errors"
	"maps"
	"slices"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
)

// Event types of the scheduler's governance work (GET /v1/events).
const (
	EventRoleRotated = "role.rotated"
)

// rotated is one role whose holder's term ended.
type rotated struct {
	before, after crdt.Role
}

// tickRoles rotates out the holders whose term has ended: the role
// becomes vacant, remembering who held it (crdt.RotateRole), with a
// role.rotated audit entry and event. It holds s.gov, so a rotation never
// interleaves with a proposal assigning the same role.
func (s *Server) tickRoles(ctx context.Context) error {
	s.gov.Lock()
	defer s.gov.Unlock()
	now := s.now()
	var done []rotated
	err := s.engine.Update(ctx, string(s.meta.Docs[crdt.KindRoster]), func(d *automerge.Doc) ([]byte, error) {
		done = nil
		r, err := crdt.ReadRoster(d)
		if err != nil {
			return nil, err
		}
		for _, id := range slices.Sorted(maps.Keys(r.Roles)) {
			next, ok := crdt.RotateRole(*r.Roles[id], now)
			if !ok {
				continue
			}
			if err := crdt.PutRole(d, &next); err != nil {
				return nil, err
			}
			done = append(done, rotated{before: *r.Roles[id], after: next})
		}
		if len(done) == 0 {
			return nil, errNoChange
		}
		return nil, nil
	})
	if errors.Is(err, errNoChange) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := s.loadRoster(ctx); err != nil {
		s.log.Error("rotation: reload roster", "err", err)
	}
	ctx = context.WithoutCancel(ctx)
	for _, rt := range done {
		s.afterRotation(ctx, rt)
	}
	return nil
}

// afterRotation writes the audit entry of a rotation and tells everyone.
func (s *Server) afterRotation(ctx context.Context, rt rotated) {
	data := map[string]any{
		"role": rt.before.ID, "name": rt.before.Name, "previous_holder": rt.before.Holder,
		"term_start": rt.before.TermStart, "term_end": rt.before.TermEnd, "terms_served": rt.before.TermsServed,
		"holder": rt.after.Holder,
	}
	if err := s.appendAudit(ctx, crdt.AuditRoleRotated, data); err != nil {
		s.log.Error("rotation: audit entry", "role", rt.before.ID, "err", err)
	}
	s.log.Info("role rotated", "role", rt.before.ID, "name", rt.before.Name, "previous_holder", rt.before.Holder, "holder", rt.after.Holder)
	s.events.Publish(EventRoleRotated, map[string]any{"role": rt.before.ID, "name": rt.before.Name, "previous_holder": rt.before.Holder, "holder": rt.after.Holder})
}
