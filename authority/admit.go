package authority

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mr-tron/base58"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/sync/store"
	"github.com/circles-coop/circles/wire"
)

// admitInviteTTL is how long the invite of a passed member.admit stays
// valid: long enough for its author to meet the newcomer.
const admitInviteTTL = 7 * 24 * time.Hour

// A passed member.admit proposal creates a one-time member invite. Its
// code is a secret, and every document is readable by every member, so
// the code is written nowhere: it is the HMAC-SHA256 of the proposal's id
// under the circle's private key (as a draw's seed is), the invites
// bucket keeps only its SHA-256 as for every invite, and the server
// recomputes it to show it to the proposal's author, and nobody else, in
// GET /v1/proposals and GET /v1/proposals/{id}. Carrying the effect out
// twice (finishing after a crash) makes the same invite.

// admitCode returns the invite code of member.admit proposal id.
func (s *Governance) admitCode(id string) string {
	mac := hmac.New(sha256.New, s.key.Seed())
	mac.Write([]byte("circles-admit-invite\n" + s.meta.ID + "\n" + id))
	return base58.Encode(mac.Sum(nil)[:16])
}

// planAdmit plans the effect of a passed member.admit proposal st decided
// at at: a one-time member invite, for the name the proposal gives,
// expiring admitInviteTTL later, and a member.admitted audit entry
// (without the code).
func (s *Governance) planAdmit(ctx context.Context, st crdt.ProposalState, at time.Time, recovering bool) (effect, error) {
	name, _ := st.Payload["name"].(string)
	name = strings.TrimSpace(name)
	code := s.admitCode(st.ID)
	if recovering {
		if _, _, err := s.store.Invites().Get(ctx, inviteKey(code)); err == nil {
			return effect{done: true}, nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return effect{}, fmt.Errorf("read invite: %w", err)
		}
	}
	inv := invite{For: inviteMember, CreatedBy: st.Author, Proposal: st.ID, Name: name, ExpiresAt: at.Add(admitInviteTTL).UTC()}
	return effect{
		pre: func(ctx context.Context) error {
			_, err := s.store.Invites().Create(ctx, inviteKey(code), mustJSON(inv))
			if err != nil && !errors.Is(err, store.ErrExists) {
				return fmt.Errorf("store invite: %w", err)
			}
			return nil
		},
		audit: crdt.AuditMemberAdmitted,
		data:  map[string]any{"proposal": st.ID, "name": name, "invited_by": st.Author, "expires_at": inv.ExpiresAt},
	}, nil
}

// admitInvite returns the invite a passed member.admit proposal made, for
// its author only; nil for anyone else, any other proposal, or before the
// invite exists.
func (s *Governance) admitInvite(ctx context.Context, c Caller, st crdt.ProposalState) *wire.ProposalInvite {
	if st.Kind != crdt.ProposalMemberAdmit || st.Status != crdt.ProposalPassed || c.Member == "" || c.Member != st.Author {
		return nil
	}
	code := s.admitCode(st.ID)
	raw, _, err := s.store.Invites().Get(ctx, inviteKey(code))
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.Error("member.admit: read invite", "proposal", st.ID, "err", err)
		}
		return nil
	}
	var inv invite
	if err := json.Unmarshal(raw, &inv); err != nil {
		s.log.Error("member.admit: decode invite", "proposal", st.ID, "err", err)
		return nil
	}
	return &wire.ProposalInvite{Code: code, Name: inv.Name, ExpiresAt: inv.ExpiresAt, UsedAt: inv.UsedAt}
}
