package server

import (
	"context"
	"errors"

	"github.com/circles-coop/circles/authority/fault"

	"github.com/circles-coop/circles/crdt"
	mobileapi "github.com/circles-coop/circles/mobile-api"
	"github.com/circles-coop/circles/wire"
)

// scorecard implements mobileapi.Scorecards from the index's entries.
type scorecard Server

var _ mobileapi.Scorecards = (*scorecard)(nil)

// Scorecard counts the dependencies the circle reversed by kind and period
// (crdt.BuildScorecard holds the rules), over every member's entries. An
// unknown period → 400.
func (sc *scorecard) Scorecard(ctx context.Context, c mobileapi.Caller, period string) (wire.Scorecard, error) {
	s := (*Server)(sc)
	card, err := crdt.BuildScorecard(s.index.ByMember(), period)
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
	return out, nil
}

func scorecardCountsToWire(c crdt.ScorecardCounts) wire.ScorecardCounts {
	return wire.ScorecardCounts{Total: c.Total, Counts: c.Counts, Quantities: c.Quantities}
}
