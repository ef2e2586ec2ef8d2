package authority

import (
	"context"
	"sort"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/wire"
)

// autonomy counts the decisions tagged in meetings' minutes: the share
// made locally, by calendar quarter, with its trend.
func (s *Scorecard) autonomy(ctx context.Context) (wire.Autonomy, error) {
	st, err := (&Meetings{State: s.State}).read(ctx)
	if err != nil {
		return wire.Autonomy{}, err
	}
	qs, total := crdt.AutonomyByQuarter(st.meetings, st.minutes)
	out := wire.Autonomy{Local: total.Local, External: total.External, Share: share(total), Quarters: make([]wire.AutonomyQuarter, len(qs)), Trend: crdt.AutonomyTrend(qs)}
	for i, q := range qs {
		out.Quarters[i] = wire.AutonomyQuarter{Quarter: q.Label, Local: q.Local, External: q.External, Share: share(q.Autonomy)}
	}
	return out, nil
}

func share(a crdt.Autonomy) *float64 {
	if v := a.Share(); v >= 0 {
		return &v
	}
	return nil
}

// sufficiency sets the needs the charter declares (policies need.<name>,
// crdt/needs.go) against the ledger in their current period, and looks
// at who holds the most mutual credit (positive balance: hours the
// others owe them).
func (s *Scorecard) sufficiency() (wire.Sufficiency, error) {
	now := s.now()
	byMember, err := s.index.ByMember()
	if err != nil {
		return wire.Sufficiency{}, err
	}
	met := crdt.MeetNeeds(s.policies().Needs(), byMember, now)
	out := wire.Sufficiency{Needs: make([]wire.NeedMet, len(met)), AllMet: true}
	for i, n := range met {
		out.Needs[i] = wire.NeedMet{Name: n.Name, Words: n.Words, Kind: n.Kind, Period: n.PeriodLabel, Target: n.Target, Met: n.Met, Share: n.Share, IsMet: n.Met >= n.Target, Start: n.Start, End: n.End}
		out.AllMet = out.AllMet && n.Met >= n.Target
	}
	s.mu.RLock()
	var ids []string
	active := 0
	for id, m := range s.roster.Members {
		ids = append(ids, id)
		if m.ActiveAt(now) {
			active++
		}
	}
	s.mu.RUnlock()
	sort.Strings(ids)
	byAuthor, err := s.index.CreditsByAuthor()
	if err != nil {
		return wire.Sufficiency{}, err
	}
	view := crdt.MutualCredit(ids, byAuthor, s.policies().Float("credit.limit"))
	var held float64
	for _, a := range view.Accounts {
		if a.Balance > 0 {
			held += a.Balance
			if a.Balance > out.Hoarding.Holds {
				out.Hoarding.Member, out.Hoarding.Holds = a.Member, a.Balance
			}
		}
	}
	if held > 0 {
		out.Hoarding.Share = out.Hoarding.Holds / held
	}
	// Far more: over half of all credit held, by one member of at least
	// three, and at least half the credit limit (one small favour owed is
	// not hoarding).
	out.Hoarding.FarMore = active >= 3 && out.Hoarding.Share > 0.5 && out.Hoarding.Holds >= s.policies().Float("credit.limit")/2
	return out, nil
}
