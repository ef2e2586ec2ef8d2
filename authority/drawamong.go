package authority

import (
	"context"
	"encoding/hex"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
)

// drawAmong runs draw id for purpose (a role id, or "facilitation" for a
// meeting's facilitator) among eligible, the members left out being
// excluded: it commits the draw (draw.committed, as for roles), picks
// with crdt.DrawPick and records the run draw in the governance
// document. A draw already run under id (a retry after a crash) is
// returned as it ran, never drawn again. The caller writes the reveal's
// audit entry (for meetings, meeting.created; crdt.VerifyAuditDraws
// recomputes it).
//
// Only a new circle's first meetings, before any facilitation round
// closed, are drawn so (facilitationDraw, drawseeds.go); the draw says
// so (seed_source "server").
func (s *Draws) drawAmong(ctx context.Context, id, purpose string, eligible, excluded []string, now time.Time) (crdt.Draw, error) {
	doc := s.govID()
	var prev crdt.Draw
	var found bool
	err := s.engine.View(ctx, doc, func(d *automerge.Doc) error {
		var err error
		prev, found, err = crdt.LookupDraw(d, id)
		return err
	})
	if err != nil {
		return crdt.Draw{}, err
	}
	if found && prev.DrawnAt != nil {
		return prev, nil
	}
	if err := s.commitDraw(ctx, id, purpose, ""); err != nil {
		return crdt.Draw{}, err
	}
	seed := s.drawSeed(id)
	at := now.UTC()
	d := crdt.Draw{
		ID: id, Role: purpose, Commitment: crdt.DrawCommitment(seed), CommittedAt: at,
		Seed: hex.EncodeToString(seed), Eligible: nonNil(eligible), Excluded: nonNil(excluded), DrawnAt: &at,
		Holder: crdt.DrawPick(seed, eligible), SeedSource: crdt.SeedSourceServer,
	}
	err = s.engine.Update(ctx, doc, func(doc *automerge.Doc) ([]byte, error) {
		return nil, recordDraw(doc, d)
	})
	if err != nil {
		return crdt.Draw{}, err
	}
	return d, nil
}
