package authority

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"sync"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
)

// Draws picks role holders and meeting facilitators by verifiable random
// draw: commit–reveal rounds over the members' devices (rounds.go,
// drawseeds.go), and for a new circle's first meetings the server's seed
// committed in the audit log before the draw (crdt/draw.go).
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

// The server's committed seed (crdt/draw.go says what it guarantees),
// used now only before a circle's first facilitation round closed
// (drawamong.go). The seed of such a draw is the HMAC-SHA256 of the draw's id under the circle's private key:
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
	if d.Round != "" { // the seed is the round's (drawseeds.go)
		delete(data, "commitment")
		data["round"], data["seed_source"] = d.Round, d.SeedSource
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
