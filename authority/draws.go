package authority

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
)

// Draws picks role holders by verifiable random draw: the seed is
// committed in the audit log before the draw and revealed with it
// (crdt/draw.go).
type Draws struct {
	*State
	audit *Audit
	// roundMu serializes the writers of commit–reveal draws (rounds.go),
	// from the read that judges a commitment, reveal or closing to its
	// audit entry and document write.
	roundMu sync.Mutex
}

// EventRoleDrawn is sent when a random draw picked a role's holder.
const EventRoleDrawn = "role.drawn"

// Random draws (crdt/draw.go says what they guarantee). The seed of a
// draw is the HMAC-SHA256 of the draw's id under the circle's private key:
// nobody without the key can predict it, and the server holds no secret
// state between committing to a draw and revealing it, so a restart in
// between changes nothing and committing twice gives the same commitment.

// drawSeed returns the secret seed of draw id.
func (s *Draws) drawSeed(id string) []byte {
	mac := hmac.New(sha256.New, s.key.Seed())
	mac.Write([]byte("circles-draw-seed\n" + s.meta.ID + "\n" + id))
	return mac.Sum(nil)
}

// commitDraw publishes the commitment to draw id's seed, once: a
// draw.committed audit entry, then the draw in the governance document.
// The audit entry comes first: the log is what members verify, and a
// crash in between only makes the next call write the same commitment
// again. The caller holds s.gov.
func (s *Draws) commitDraw(ctx context.Context, id, role, proposal string) error {
	var found bool
	err := s.viewGov(ctx, func(d *automerge.Doc) error {
		var err error
		_, found, err = crdt.LookupDraw(d, id)
		return err
	})
	if err != nil || found {
		return err
	}
	now := s.now()
	commitment := crdt.DrawCommitment(s.drawSeed(id))
	data := map[string]any{"draw": id, "role": role, "commitment": commitment, "committed_at": now}
	if proposal != "" {
		data["proposal"] = proposal
	}
	if err := s.audit.Append(ctx, crdt.AuditDrawCommitted, data); err != nil {
		return err
	}
	return s.updateGov(ctx, func(d *automerge.Doc) ([]byte, error) {
		return nil, crdt.PutDraw(d, crdt.Draw{ID: id, Role: role, Proposal: proposal, Commitment: commitment, CommittedAt: now})
	})
}

// commitRotationDraws commits, ahead of time, the draw that will pick the
// next holder of every held role that rotates by draw, when the current
// term ends. The caller holds s.gov.
func (s *Draws) commitRotationDraws(ctx context.Context, r *crdt.Roster) error {
	for _, id := range slices.Sorted(maps.Keys(r.Roles)) {
		role := r.Roles[id]
		if role.Rotation != crdt.RotationDraw || role.Holder == "" || role.TermEnd == nil {
			continue
		}
		if err := s.commitDraw(ctx, crdt.RotationDrawID(role.ID, *role.TermEnd), role.ID, ""); err != nil {
			return fmt.Errorf("commit the draw of role %s: %w", role.ID, err)
		}
	}
	return nil
}

// draw runs draw id for role among the members of roster at now: the
// eligible members, the pick, and the role assigned to the pick (role
// unchanged if nobody is eligible).
func (s *Draws) draw(role crdt.Role, roster *crdt.Roster, id, proposal string, now time.Time) (crdt.Draw, crdt.Role, error) {
	maxTerms := s.policies().Int("role.term_limit")
	seed := s.drawSeed(id)
	eligible, excluded := crdt.DrawEligible(role, roster, now, maxTerms)
	at := now.UTC()
	d := crdt.Draw{
		ID: id, Role: role.ID, Proposal: proposal, Commitment: crdt.DrawCommitment(seed), CommittedAt: at,
		Seed: hex.EncodeToString(seed), Eligible: eligible, Excluded: excluded, DrawnAt: &at,
	}
	d.Holder = crdt.DrawPick(seed, eligible)
	if d.Holder == "" {
		return d, role, nil
	}
	assigned, err := crdt.AssignRole(role, d.Holder, now, maxTerms)
	return d, assigned, err
}

// recordDraw writes a run draw into the governance document, keeping when
// it was committed.
func recordDraw(doc *automerge.Doc, d crdt.Draw) error {
	if old, ok, err := crdt.LookupDraw(doc, d.ID); err != nil {
		return err
	} else if ok {
		d.CommittedAt = old.CommittedAt
	}
	return crdt.PutDraw(doc, d)
}

// drawnData is the data of a role.drawn audit entry: everything needed to
// recompute the draw (crdt.VerifyAuditDraws).
func drawnData(d crdt.Draw, before, after crdt.Role) map[string]any {
	data := map[string]any{
		"draw": d.ID, "role": before.ID, "name": before.Name, "commitment": d.Commitment, "seed": d.Seed,
		"eligible": nonNil(d.Eligible), "excluded": nonNil(d.Excluded), "holder": d.Holder, "drawn_at": d.DrawnAt,
		"previous_holder": cmp.Or(before.Holder, before.PreviousHolder),
	}
	if d.Proposal != "" {
		data["proposal"] = d.Proposal
	}
	if d.Holder != "" {
		data["term_start"], data["term_end"], data["terms_served"] = after.TermStart, after.TermEnd, after.TermsServed
	}
	return data
}

func nonNil(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}

// planDraw plans the effect of a passed role.draw proposal p decided at
// at: the draw among the members eligible then, the pick assigned to the
// role and a role.drawn audit entry. Before the roster is written the
// draw is recorded in the governance document, so that finishing after a
// crash assigns the member drawn then instead of drawing again among
// members who may have changed. Nobody eligible is a *crdt.RuleError.
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
	var d crdt.Draw
	var assigned crdt.Role
	var prev crdt.Draw
	var found bool
	if recovering {
		err := s.viewGov(ctx, func(doc *automerge.Doc) error {
			var err error
			prev, found, err = crdt.LookupDraw(doc, p.ID)
			return err
		})
		if err != nil {
			return effect{}, err
		}
	}
	if found && prev.DrawnAt != nil {
		if role.Holder == prev.Holder && role.TermStart != nil && !role.TermStart.Before(prev.DrawnAt.Truncate(time.Second)) {
			return effect{done: true}, nil
		}
		d = prev
		if assigned, err = crdt.AssignRole(*role, d.Holder, at, s.policies().Int("role.term_limit")); err != nil {
			return effect{}, err
		}
	} else if d, assigned, err = s.draw(*role, r, p.ID, p.ID, at); err != nil {
		return effect{}, err
	}
	if d.Holder == "" {
		return effect{}, &crdt.RuleError{Rule: crdt.RuleGovernance, Message: fmt.Sprintf("nobody is eligible for the draw of role %q: every active member has served its term limit", role.Name)}
	}
	roleID := role.ID
	return effect{
		doc:   crdt.KindRoster,
		write: func(doc *automerge.Doc) error { return crdt.PutRole(doc, &assigned) },
		audit: crdt.AuditRoleDrawn, data: drawnData(d, *role, assigned), event: EventRoleDrawn,
		pre: func(ctx context.Context) error {
			if err := s.commitDraw(ctx, p.ID, roleID, p.ID); err != nil {
				return err
			}
			return s.updateGov(ctx, func(doc *automerge.Doc) ([]byte, error) {
				return nil, recordDraw(doc, d)
			})
		},
	}, nil
}
