package crdt

import (
	"fmt"
	"slices"
	"time"
)

// Dependency is one kind of dependency a circle reverses when its members
// do for each other what they would otherwise buy (DESIGN.md §1,
// "Sovereignty scorecard").
type Dependency struct {
	Name        string // stable key in the scorecard, e.g. "tools_borrowed"
	Kind        string // the ledger entry kind that records it
	Description string // what one counted entry stands for
}

// Dependencies maps ledger entry kinds to the dependencies the scorecard
// counts. One counted entry of the kind is one dependency reversed. Kind
// "other" maps to none: a contribution of no known kind says nothing
// about what it replaced, so it is not counted.
var Dependencies = []Dependency{
	{Name: "tools_borrowed", Kind: "lend", Description: "a tool or thing lent within the circle instead of bought"},
	{Name: "skills_taught", Kind: "skill", Description: "a skill taught within the circle instead of a course or a hired professional"},
	{Name: "meals_shared", Kind: "meal", Description: "a meal shared within the circle instead of bought"},
	{Name: "hours_volunteered", Kind: "hours", Description: "time volunteered within the circle instead of a paid service"},
}

// dependencyOf returns the dependency an entry kind records.
func dependencyOf(kind string) (Dependency, bool) {
	for _, d := range Dependencies {
		if d.Kind == kind {
			return d, true
		}
	}
	return Dependency{}, false
}

// ScorecardPeriods are the period lengths a scorecard can be cut into.
var ScorecardPeriods = []string{"month", "quarter", "year"}

// ScorecardCounts are the dependencies reversed in one period (or in all).
type ScorecardCounts struct {
	Total int // all counted entries
	// Counts holds, for every dependency name (all present, zero or not),
	// the number of counted entries.
	Counts map[string]int
	// Quantities holds, for every dependency name, the sum of the counted
	// entries' quantities, as logged (for hours_volunteered: hours).
	Quantities map[string]float64
}

func newScorecardCounts() ScorecardCounts {
	c := ScorecardCounts{Counts: make(map[string]int, len(Dependencies)), Quantities: make(map[string]float64, len(Dependencies))}
	for _, d := range Dependencies {
		c.Counts[d.Name] = 0
		c.Quantities[d.Name] = 0
	}
	return c
}

func (c *ScorecardCounts) add(dep string, q float64) {
	c.Total++
	c.Counts[dep]++
	c.Quantities[dep] += q
}

// ScorecardRow is one calendar period of a scorecard.
type ScorecardRow struct {
	Label string    // "2026-03", "2026-Q1" or "2026"
	Start time.Time // first instant of the period, UTC
	End   time.Time // first instant after it
	ScorecardCounts
}

// Scorecard is the circle's sovereignty scorecard.
type Scorecard struct {
	Period string         // "month", "quarter" or "year"
	Rows   []ScorecardRow // periods with at least one counted entry, oldest first
	Totals ScorecardCounts
}

// BuildScorecard counts the dependencies the circle reversed, by kind and
// by calendar period (UTC), from its members' ledger entries (entries maps
// an author's member id to all the entries of all their ledger segments;
// removed members' entries count too: what they did stays done).
//
// The rules:
//
//   - An entry counts as one dependency reversed of the kind it records
//     (see Dependencies; kind "other" never counts).
//   - Voiding follows Voided, as in Balances: an entry voided by another
//     entry of the same author does not count; the voiding entry counts
//     with its own kind, quantity and time. An entry id seen twice for one
//     author counts once.
//   - An entry falls into the calendar month, quarter (Q1 = January to
//     March) or year, in UTC, that holds its "at".
//   - Rows list only periods with at least one counted entry, oldest
//     first; Totals add up every row.
//
// It returns a *RuleError of rule "schema" if period is not one of
// ScorecardPeriods.
func BuildScorecard(entries map[string][]Entry, period string) (Scorecard, error) {
	if !slices.Contains(ScorecardPeriods, period) {
		return Scorecard{}, schemaErr("scorecard: period %q must be month, quarter or year", truncate(period, maxIDLen))
	}
	sc := Scorecard{Period: period, Rows: []ScorecardRow{}, Totals: newScorecardCounts()}
	rows := map[time.Time]*ScorecardRow{}
	for _, list := range entries {
		voided := Voided(list)
		seen := make(map[string]bool, len(list))
		for _, e := range list {
			if seen[e.ID] {
				continue
			}
			seen[e.ID] = true
			dep, ok := dependencyOf(e.Kind)
			if !ok || voided[e.ID] {
				continue
			}
			start, end, label := periodOf(e.At, period)
			r := rows[start]
			if r == nil {
				r = &ScorecardRow{Label: label, Start: start, End: end, ScorecardCounts: newScorecardCounts()}
				rows[start] = r
			}
			r.add(dep.Name, e.Quantity)
			sc.Totals.add(dep.Name, e.Quantity)
		}
	}
	for _, r := range rows {
		sc.Rows = append(sc.Rows, *r)
	}
	slices.SortFunc(sc.Rows, func(a, b ScorecardRow) int { return a.Start.Compare(b.Start) })
	return sc, nil
}

// periodOf returns the calendar period (UTC) holding t.
func periodOf(t time.Time, period string) (start, end time.Time, label string) {
	t = t.UTC()
	y, m := t.Year(), t.Month()
	switch period {
	case "year":
		start = time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(1, 0, 0), fmt.Sprintf("%04d", y)
	case "quarter":
		q := (int(m) - 1) / 3
		start = time.Date(y, time.Month(q*3+1), 1, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 3, 0), fmt.Sprintf("%04d-Q%d", y, q+1)
	default:
		start = time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 1, 0), fmt.Sprintf("%04d-%02d", y, int(m))
	}
}
