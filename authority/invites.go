package authority

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/circles-coop/circles/authority/fault"
	"github.com/circles-coop/circles/sync/store"
)

// Bounds on invites (DESIGN.md §5 lets any active member invite).
const (
	// maxOpenInvites is how many open (unused, unexpired) invites of one
	// kind, member or device, a member may hold at once. An invite made
	// by a passed member.admit and the founder invite do not count.
	maxOpenInvites = 3
	// inviteKeep is how long a used or expired invite stays stored before
	// Tick purges it: long enough for the author of a member.admit to see
	// that its invite was used, and for an enrolment to settle.
	inviteKeep = 24 * time.Hour
)

// storedInvite is an invite with its key in the invites bucket.
type storedInvite struct {
	key string
	inv invite
}

// invites reads every stored invite. An invite that cannot be read or
// decoded is logged and left out.
func (s *State) invites(ctx context.Context) ([]storedInvite, error) {
	keys, err := s.store.Invites().Keys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list invites: %w", err)
	}
	out := make([]storedInvite, 0, len(keys))
	for _, k := range keys {
		raw, _, err := s.store.Invites().Get(ctx, k)
		if errors.Is(err, store.ErrNotFound) {
			continue // purged or never there
		}
		if err != nil {
			return nil, fmt.Errorf("read invite: %w", err)
		}
		var inv invite
		if err := json.Unmarshal(raw, &inv); err != nil {
			s.log.Warn("invite that cannot be decoded", "key", k, "err", err)
			continue
		}
		out = append(out, storedInvite{key: k, inv: inv})
	}
	return out, nil
}

// checkInviteCap refuses a new invite of kind for member when they
// already hold maxOpenInvites open ones. The caller holds inviteMu, so
// two requests cannot both take the last place.
func (s *Identity) checkInviteCap(ctx context.Context, member, kind string) error {
	all, err := s.invites(ctx)
	if err != nil {
		return err
	}
	now := s.now()
	open := 0
	var next time.Time
	for _, si := range all {
		inv := si.inv
		if inv.CreatedBy != member || inv.For != kind || inv.Proposal != "" || inv.Founder {
			continue
		}
		if inv.UsedAt != nil || !now.Before(inv.ExpiresAt) {
			continue
		}
		open++
		if next.IsZero() || inv.ExpiresAt.Before(next) {
			next = inv.ExpiresAt
		}
	}
	if open >= maxOpenInvites {
		return fault.Errorf(fault.RateLimited, "you hold %d open %s invites, the most a member may; one frees when it is used or expires (the next expires at %s)",
			open, kind, next.UTC().Format(time.RFC3339))
	}
	return nil
}

// purgeInvites deletes the invites used or expired more than inviteKeep
// ago. Tick calls it.
func (s *Identity) purgeInvites(ctx context.Context) error {
	all, err := s.invites(ctx)
	if err != nil {
		return err
	}
	cutoff := s.now().Add(-inviteKeep)
	var errs []error
	n := 0
	for _, si := range all {
		used := si.inv.UsedAt != nil && si.inv.UsedAt.Before(cutoff)
		if !used && !si.inv.ExpiresAt.Before(cutoff) {
			continue
		}
		if err := s.store.Invites().Delete(ctx, si.key); err != nil {
			errs = append(errs, fmt.Errorf("purge invite: %w", err))
			continue
		}
		n++
	}
	if n > 0 {
		s.log.Info("invites purged", "count", n)
	}
	return errors.Join(errs...)
}
