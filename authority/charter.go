package authority

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/google/uuid"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/wire"
)

// Charter keeps the charter reversible: it opens the re-ratification
// before expiry and lapses an expired charter; it shows the charter.
type Charter struct {
	*State
	audit      *Audit
	governance *Governance
}

// Event types of the charter (GET /v1/events).
const (
	EventCharterLapsed = "charter.lapsed"
)

// authorCircle is the author of the proposals the circle opens by itself
// (the re-ratification of its charter): no member.
const authorCircle = "circle"

// Reversible charters (DESIGN.md §1): a ratified charter expires
// charter.term after its ratification. charter.renewal_notice before
// that, the scheduler opens a charter.ratify proposal by itself, once per
// ratification; if the charter is not ratified again by its expiry, it
// lapses: status "lapsed" in the charter document. A lapsed charter keeps
// its text and policies, and the circle keeps working (sync, ledger,
// proposals); only its status says the members have not renewed it.

// renewalID is the id of the re-ratification proposal of ratification
// version of circle, ratified at ratifiedAt: the same for every Tick, so
// it is opened once.
func renewalID(circle string, version int, ratifiedAt time.Time) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("circles:"+circle+"/charter/"+strconv.Itoa(version)+"/"+ratifiedAt.UTC().Format(time.RFC3339Nano))).String()
}

// tickCharter opens the re-ratification proposal once the charter's
// renewal is due, and writes the charter lapsed once it has expired.
func (s *Charter) tickCharter(ctx context.Context) error {
	ch, err := s.readCharter(ctx)
	if err != nil {
		return err
	}
	if ch.Status != crdt.CharterRatified || ch.ExpiresAt == nil || ch.RatifiedAt == nil {
		return nil
	}
	now := s.now()
	var errs []error
	if ch.RenewalDue(now) {
		errs = append(errs, s.openRenewal(ctx, ch))
	}
	if !now.Before(*ch.ExpiresAt) {
		errs = append(errs, s.lapseCharter(ctx))
	}
	return errors.Join(errs...)
}

// openRenewal opens the charter.ratify proposal of ch's ratification if
// it is not open yet, with a charter.renewal_opened audit entry.
func (s *Charter) openRenewal(ctx context.Context, ch crdt.Charter) error {
	id := renewalID(s.meta.ID, ch.Version, *ch.RatifiedAt)
	_, found, err := s.lookupProposal(ctx, id)
	if err != nil || found {
		return err
	}
	p := crdt.Proposal{
		ID:      id,
		Kind:    crdt.ProposalCharterRatify,
		Title:   fmt.Sprintf("Re-ratify the charter before it lapses on %s", ch.ExpiresAt.UTC().Format(time.DateOnly)),
		Body:    fmt.Sprintf("Version %d of the charter was ratified on %s and expires on %s. If it is not ratified again by then, it lapses. Passing this proposal ratifies the charter draft as it stands.", ch.Version, ch.RatifiedAt.UTC().Format(time.DateOnly), ch.ExpiresAt.UTC().Format(time.DateOnly)),
		Payload: map[string]any{},
		At:      s.now(),
	}
	_, opened, err := s.governance.openProposal(ctx, p, authorCircle)
	if err != nil || !opened {
		return err
	}
	if err := s.audit.Append(context.WithoutCancel(ctx), crdt.AuditCharterRenewalOpened, map[string]any{
		"proposal": id, "version": ch.Version, "ratified_at": ch.RatifiedAt, "expires_at": ch.ExpiresAt,
	}); err != nil {
		s.log.Error("charter: audit entry of the renewal", "err", err)
	}
	s.log.Info("charter renewal opened", "proposal", id, "version", ch.Version, "expires_at", ch.ExpiresAt)
	return nil
}

// lapseCharter writes the charter lapsed if it is still ratified and has
// expired, with a charter.lapsed audit entry and event. It holds s.gov, so
// it never races a ratification being carried out.
func (s *Charter) lapseCharter(ctx context.Context) error {
	s.gov.Lock()
	defer s.gov.Unlock()
	now := s.now()
	var ch crdt.Charter
	err := s.engine.Update(ctx, string(s.meta.Docs[crdt.KindCharter]), func(d *automerge.Doc) ([]byte, error) {
		var err error
		if ch, err = crdt.ReadCharter(d); err != nil {
			return nil, err
		}
		if ch.StatusAt(now) != crdt.CharterLapsed || ch.Status == crdt.CharterLapsed {
			return nil, errNoChange
		}
		ch.Status = crdt.CharterLapsed
		return nil, crdt.PutCharter(d, ch)
	})
	if errors.Is(err, errNoChange) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("lapse the charter: %w", err)
	}
	data := map[string]any{"version": ch.Version, "ratified_at": ch.RatifiedAt, "expires_at": ch.ExpiresAt}
	if err := s.audit.Append(context.WithoutCancel(ctx), crdt.AuditCharterLapsed, data); err != nil {
		s.log.Error("charter: audit entry of the lapse", "err", err)
	}
	s.log.Warn("charter lapsed", "version", ch.Version, "expires_at", ch.ExpiresAt)
	s.events.Publish(EventCharterLapsed, data)
	return nil
}

// Charter returns the circle's charter with its status now (a ratified
// charter past its expiry shows as lapsed even before the scheduler
// writes it so).
func (s *Charter) Charter(ctx context.Context, _ Caller) (wire.Charter, error) {
	ch, err := s.readCharter(ctx)
	if err != nil {
		return wire.Charter{}, err
	}
	now := s.now()
	out := wire.Charter{
		Name: ch.Name, Purpose: ch.Purpose, Text: ch.Text, Principles: ch.Principles, Policies: map[string]string(ch.Policies),
		Version: ch.Version, RatifiedAt: ch.RatifiedAt, ExpiresAt: ch.ExpiresAt, Status: ch.StatusAt(now), RenewalDue: ch.RenewalDue(now),
	}
	if out.Principles == nil {
		out.Principles = []string{}
	}
	if out.Policies == nil {
		out.Policies = map[string]string{}
	}
	return out, nil
}
