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

// openInvite is an open invite a member made, as the cap counts it.
type openInvite struct {
	member, kind string
	expires      time.Time
}

// capped reports whether inv counts toward its author's cap.
func capped(inv invite) bool {
	return inv.CreatedBy != "" && inv.Proposal == "" && !inv.Founder
}

// checkInviteCap refuses a new invite of kind for member when they
// already hold maxOpenInvites open ones. The caller holds inviteMu, so
// two requests cannot both take the last place. The open invites are
// kept in memory (Identity.open), read from the store on first use and
// kept up to date by CreateInvite, redeem and release, so counting costs
// no store round trip.
func (s *Identity) checkInviteCap(ctx context.Context, member, kind string) error {
	if s.open == nil {
		all, err := s.invites(ctx)
		if err != nil {
			return err
		}
		s.open = make(map[string]openInvite)
		for _, si := range all {
			if capped(si.inv) && si.inv.UsedAt == nil {
				s.open[si.key] = openInvite{member: si.inv.CreatedBy, kind: si.inv.For, expires: si.inv.ExpiresAt}
			}
		}
	}
	now := s.now()
	n := 0
	var next time.Time
	for key, o := range s.open {
		if !now.Before(o.expires) {
			delete(s.open, key) // expired: it counts no more
			continue
		}
		if o.member != member || o.kind != kind {
			continue
		}
		n++
		if next.IsZero() || o.expires.Before(next) {
			next = o.expires
		}
	}
	if n >= maxOpenInvites {
		return fault.Errorf(fault.RateLimited, "you hold %d open %s invites, the most a member may; one frees when it is used or expires (the next expires at %s)",
			n, kind, next.UTC().Format(time.RFC3339))
	}
	return nil
}

// trackInvite records (open) or forgets (!open) the invite stored under
// key for the cap; a no-op until the cap's first count loads them all.
func (s *Identity) trackInvite(key string, inv invite, open bool) {
	if !capped(inv) {
		return
	}
	s.inviteMu.Lock()
	defer s.inviteMu.Unlock()
	if s.open == nil {
		return
	}
	if open {
		s.open[key] = openInvite{member: inv.CreatedBy, kind: inv.For, expires: inv.ExpiresAt}
	} else {
		delete(s.open, key)
	}
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
