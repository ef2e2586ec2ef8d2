package authority

import (
	"context"
	"sort"

	"github.com/circles-coop/circles/sync/engine"
	"github.com/circles-coop/circles/wire"
)

// Circle describes the circle to its members and runs their devices'
// sync batches on the engine.
type Circle struct{ *State }

// Circle describes the circle as the caller sees it: the document ids
// (with the caller's own current ledger segment and ballots) and every
// active member's documents.
func (s *Circle) Circle(ctx context.Context, caller Caller) (wire.Circle, error) {
	epoch, err := s.readEpoch(ctx)
	if err != nil {
		return wire.Circle{}, err
	}
	now := s.now()
	out := wire.Circle{CircleID: s.meta.ID, Name: s.meta.Name, Epoch: int64(epoch), Docs: map[string]string{}}
	for kind, id := range s.meta.Docs {
		out.Docs[string(kind)] = string(id)
	}
	// The live governance document and audit segment, and the archives
	// before them (archives.go).
	out.Docs["governance"], out.Docs["audit"] = s.govID(), s.auditID()
	if gov, audit := s.archiveLists(); len(gov)+len(audit) > 0 {
		out.Archives = &wire.Archives{Governance: []string{}, Audit: []wire.AuditSegment{}}
		for _, id := range gov {
			out.Archives.Governance = append(out.Archives.Governance, string(id))
		}
		for _, seg := range audit {
			out.Archives.Audit = append(out.Archives.Audit, wire.AuditSegment{Doc: string(seg.Doc), FirstSeq: seg.FirstSeq})
		}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, m := range s.roster.Members {
		if !m.ActiveAt(now) {
			continue
		}
		wm := wire.CircleMember{MemberID: m.ID, Name: m.Name, Ballots: string(m.Ballots)}
		for _, l := range m.Ledgers {
			wm.Ledgers = append(wm.Ledgers, string(l))
		}
		for _, b := range m.BallotsClosed {
			wm.BallotsClosed = append(wm.BallotsClosed, string(b))
		}
		out.Members = append(out.Members, wm)
		if m.ID == caller.Member {
			out.Docs["ledger"] = string(m.CurrentLedger())
			out.Docs["ballots"] = string(m.Ballots)
		}
	}
	sort.Slice(out.Members, func(i, j int) bool { return out.Members[i].MemberID < out.Members[j].MemberID })
	s.snapshotHashes(&out)
	return out, nil
}

// Sync runs one batch of sync messages for the caller's device.
func (s *Circle) Sync(ctx context.Context, c Caller, in []engine.Message) ([]engine.Message, error) {
	return s.engine.Sync(ctx, engine.Peer{Device: c.Device, Member: c.Member, Actor: c.Actor}, in)
}
