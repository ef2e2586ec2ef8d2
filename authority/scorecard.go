package authority

import (
	"context"
	"errors"

	"github.com/circles-coop/circles/authority/fault"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/wire"
)

// Scorecard counts the dependencies the circle reversed, by period.
type Scorecard struct{ *State }

// Scorecard counts the dependencies the circle reversed by kind and period
// (crdt.BuildScorecard holds the rules), over every member's entries. An
// unknown period → 400.
func (s *Scorecard) Scorecard(ctx context.Context, c Caller, period string) (wire.Scorecard, error) {
	byMember, err := s.index.ByMember()
	if err != nil {
		return wire.Scorecard{}, err
	}
	card, err := crdt.BuildScorecard(byMember, period)
	if err != nil {
		var re *crdt.RuleError
		if errors.As(err, &re) {
			return wire.Scorecard{}, fault.Errorf(fault.InvalidRequest, "%s", re.Message)
		}
		return wire.Scorecard{}, err
	}
	out := wire.Scorecard{
		Period:       card.Period,
		Dependencies: make([]wire.Dependency, len(crdt.Dependencies)),
		Periods:      make([]wire.ScorecardPeriod, len(card.Rows)),
		Totals:       scorecardCountsToWire(card.Totals),
	}
	for i, d := range crdt.Dependencies {
		out.Dependencies[i] = wire.Dependency{Name: d.Name, Kind: d.Kind, Description: d.Description}
	}
	for i, r := range card.Rows {
		out.Periods[i] = wire.ScorecardPeriod{Period: r.Label, Start: r.Start, End: r.End, ScorecardCounts: scorecardCountsToWire(r.ScorecardCounts)}
	}
	if out.Autonomy, err = s.autonomy(ctx); err != nil { // sufficiency.go
		return wire.Scorecard{}, err
	}
	if out.Sufficiency, err = s.sufficiency(); err != nil {
		return wire.Scorecard{}, err
	}
	return out, nil
}

func scorecardCountsToWire(c crdt.ScorecardCounts) wire.ScorecardCounts {
	return wire.ScorecardCounts{Total: c.Total, Counts: c.Counts, Quantities: c.Quantities}
}
