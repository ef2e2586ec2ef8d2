package authority

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/circles-coop/circles/authority/fault"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/wire"
)

// Mandates ends delegates' mandates: at their deadline, or when the
// delegate marks the task done.
type Mandates struct {
	*State
	audit *Audit
}

// Event types of mandates (GET /v1/events).
const (
	EventMandateExpired = "mandate.expired"
	EventMandateDone    = "mandate.done"
)

// A delegate's mandate ends with its task or its deadline (DESIGN.md §1):
// the delegate marks it done (POST /v1/mandates/{id}/done), or the
// scheduler writes it expired once its deadline has passed. A proposal
// may recall it before either, and a hard reset revokes it.

// tickMandates writes "expired" into every active mandate whose deadline
// has passed, with a mandate.expired audit entry and event for each. It
// holds s.gov, so it never races a recall being carried out.
func (s *Mandates) tickMandates(ctx context.Context) error {
	s.gov.Lock()
	defer s.gov.Unlock()
	now := s.now()
	var expired []crdt.Mandate
	err := s.writeRoster(ctx, func(d *automerge.Doc) error {
		expired = nil
		r, err := crdt.ReadRoster(d)
		if err != nil {
			return err
		}
		for _, id := range slices.Sorted(maps.Keys(r.Mandates)) {
			m := *r.Mandates[id]
			if m.Status != crdt.MandateActive || m.StatusAt(now) != crdt.MandateExpired {
				continue
			}
			m.Status = crdt.MandateExpired
			if err := crdt.PutMandate(d, &m); err != nil {
				return err
			}
			expired = append(expired, m)
		}
		if len(expired) == 0 {
			return errNoChange
		}
		return nil
	})
	if errors.Is(err, errNoChange) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("expire mandates: %w", err)
	}
	ctx = context.WithoutCancel(ctx)
	for _, m := range expired {
		data := map[string]any{"mandate": m.ID, "member": m.Member, "issue": m.Issue, "deadline": m.Deadline}
		if err := s.audit.Append(ctx, crdt.AuditMandateExpired, data); err != nil {
			s.log.Error("mandates: audit entry", "mandate", m.ID, "err", err)
		}
		s.log.Info("mandate expired", "mandate", m.ID, "member", m.Member)
		s.events.Publish(EventMandateExpired, data)
	}
	return nil
}

// MandateDone ends a mandate whose task is done; only its delegate may.
// Asking again for a mandate the delegate already marked done answers it
// as it is (a safe retry).
func (s *Mandates) MandateDone(ctx context.Context, c Caller, id string) (wire.Mandate, error) {
	s.gov.Lock()
	defer s.gov.Unlock()
	now := s.now()
	var m crdt.Mandate
	err := s.writeRoster(ctx, func(d *automerge.Doc) error {
		r, err := crdt.ReadRoster(d)
		if err != nil {
			return err
		}
		found, ok := r.Mandates[id]
		if !ok {
			return fault.Errorf(fault.NotFound, "no mandate %s in this circle", id)
		}
		m = *found
		switch status := m.StatusAt(now); {
		case m.Member != c.Member:
			return fault.Errorf(fault.Forbidden, "only the delegate holding mandate %s may mark it done", id)
		case status == crdt.MandateDone:
			return errNoChange
		case status != crdt.MandateActive:
			return fault.Errorf(fault.Conflict, "mandate %s is already %s", id, status)
		}
		m.Status = crdt.MandateDone
		return crdt.PutMandate(d, &m)
	})
	if errors.Is(err, errNoChange) {
		return wireMandate(m, now), nil
	}
	if err != nil {
		return wire.Mandate{}, err
	}
	ctx = context.WithoutCancel(ctx)
	data := map[string]any{"mandate": m.ID, "member": m.Member, "issue": m.Issue, "deadline": m.Deadline}
	if err := s.audit.Append(ctx, crdt.AuditMandateDone, data); err != nil {
		s.log.Error("mandates: audit entry", "mandate", m.ID, "err", err)
	}
	s.log.Info("mandate done", "mandate", m.ID, "member", m.Member)
	s.events.Publish(EventMandateDone, data)
	return wireMandate(m, now), nil
}

func wireMandate(m crdt.Mandate, now time.Time) wire.Mandate {
	return wire.Mandate{ID: m.ID, Member: m.Member, Issue: m.Issue, Scope: m.Scope, Deadline: m.Deadline, GrantedAt: m.GrantedAt, Status: m.StatusAt(now)}
}
