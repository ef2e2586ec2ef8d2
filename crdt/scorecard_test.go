package crdt_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/circles-coop/circles/crdt"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func kindEntry(id, kind string, q float64, when, voids string) crdt.Entry {
	return crdt.Entry{ID: id, Kind: kind, Quantity: q, At: at(when), Voids: voids}
}

// scorecardEntries spread over known months of 2026.
var scorecardEntries = map[string][]crdt.Entry{
	"a": {
		kindEntry("e1", "lend", 1, "2026-01-15T10:00:00Z", ""),
		kindEntry("e2", "lend", 2, "2026-01-31T23:59:59Z", ""),
		kindEntry("e3", "skill", 1, "2026-02-01T00:00:00Z", ""),
		kindEntry("e4", "meal", 3, "2026-03-10T12:00:00Z", ""),
		kindEntry("e5", "other", 5, "2026-03-11T12:00:00Z", ""),   // no dependency: not counted
		kindEntry("e6", "hours", 2.5, "2026-04-02T09:00:00Z", ""), // voided by e7
		kindEntry("e7", "hours", 1.5, "2026-05-03T09:00:00Z", "e6"),
	},
	"b": {
		// 23:00 at UTC-2 on New Year's Eve is January in UTC.
		kindEntry("e8", "hours", 4, "2025-12-31T23:00:00-02:00", ""),
		kindEntry("e9", "meal", 1, "2026-07-20T19:00:00Z", ""),
		kindEntry("e9", "meal", 1, "2026-07-20T19:00:00Z", ""), // the same id again counts once
	},
}

func counts(lend, skill, meal, hours int, ql, qs, qm, qh float64) crdt.ScorecardCounts {
	return crdt.ScorecardCounts{
		Total:      lend + skill + meal + hours,
		Counts:     map[string]int{"tools_borrowed": lend, "skills_taught": skill, "meals_shared": meal, "hours_volunteered": hours},
		Quantities: map[string]float64{"tools_borrowed": ql, "skills_taught": qs, "meals_shared": qm, "hours_volunteered": qh},
	}
}

func row(label, start, end string, c crdt.ScorecardCounts) crdt.ScorecardRow {
	return crdt.ScorecardRow{Label: label, Start: at(start), End: at(end), ScorecardCounts: c}
}

func TestBuildScorecard(t *testing.T) {
	totals := counts(2, 1, 2, 2, 3, 1, 4, 5.5)
	tests := []struct {
		period string
		rows   []crdt.ScorecardRow
	}{
		{"month", []crdt.ScorecardRow{
			row("2026-01", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z", counts(2, 0, 0, 1, 3, 0, 0, 4)),
			row("2026-02", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z", counts(0, 1, 0, 0, 0, 1, 0, 0)),
			row("2026-03", "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z", counts(0, 0, 1, 0, 0, 0, 3, 0)),
			row("2026-05", "2026-05-01T00:00:00Z", "2026-06-01T00:00:00Z", counts(0, 0, 0, 1, 0, 0, 0, 1.5)),
			row("2026-07", "2026-07-01T00:00:00Z", "2026-08-01T00:00:00Z", counts(0, 0, 1, 0, 0, 0, 1, 0)),
		}},
		{"quarter", []crdt.ScorecardRow{
			row("2026-Q1", "2026-01-01T00:00:00Z", "2026-04-01T00:00:00Z", counts(2, 1, 1, 1, 3, 1, 3, 4)),
			row("2026-Q2", "2026-04-01T00:00:00Z", "2026-07-01T00:00:00Z", counts(0, 0, 0, 1, 0, 0, 0, 1.5)),
			row("2026-Q3", "2026-07-01T00:00:00Z", "2026-10-01T00:00:00Z", counts(0, 0, 1, 0, 0, 0, 1, 0)),
		}},
		{"year", []crdt.ScorecardRow{
			row("2026", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", totals),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.period, func(t *testing.T) {
			got, err := crdt.BuildScorecard(scorecardEntries, tt.period)
			if err != nil {
				t.Fatalf("BuildScorecard() error %v", err)
			}
			want := crdt.Scorecard{Period: tt.period, Rows: tt.rows, Totals: totals}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("BuildScorecard(%s) (-want +got):\n%s", tt.period, diff)
			}
		})
	}
}

func TestBuildScorecardEmptyAndBadPeriod(t *testing.T) {
	got, err := crdt.BuildScorecard(nil, "month")
	if err != nil || len(got.Rows) != 0 || got.Rows == nil || got.Totals.Total != 0 || len(got.Totals.Counts) != len(crdt.Dependencies) {
		t.Errorf("BuildScorecard(nil) = %+v, %v; want no rows and zero counts for every dependency", got, err)
	}
	for _, p := range []string{"", "week", "Month"} {
		_, err := crdt.BuildScorecard(scorecardEntries, p)
		var re *crdt.RuleError
		if !errors.As(err, &re) {
			t.Errorf("BuildScorecard(period %q) error = %v, want a *RuleError", p, err)
		}
	}
}

// TestDependencies: every dependency names a real entry kind, once.
func TestDependencies(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range crdt.Dependencies {
		ok := false
		for _, k := range crdt.EntryKinds {
			ok = ok || k == d.Kind
		}
		if !ok || seen[d.Kind] || d.Name == "" || d.Description == "" {
			t.Errorf("dependency %+v: want a distinct entry kind, a name and a description", d)
		}
		seen[d.Kind] = true
	}
}
