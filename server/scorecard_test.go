package server_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/circles-coop/circles/authority/fault"

	"github.com/automerge/automerge-go"
	"github.com/google/uuid"

	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// TestScorecard logs entries over known months (over REST and through a
// device's sync) and checks the counts of dependencies reversed by kind,
// for months, quarters and years.
func TestScorecard(t *testing.T) {
	c := servertest.Start(t, "Repair Cafe")
	url := c.URL()
	alice := servertest.MustEnroll(t, url, c.FounderInvite, "Alice")
	bob := servertest.MustEnroll(t, url, servertest.MustInvite(t, url, alice, "member", ""), "Bob")

	entry := func(kind string, q float64, at, voids string) map[string]any {
		e := map[string]any{"id": uuid.NewString(), "kind": kind, "quantity": q, "note": kind, "at": at}
		if voids != "" {
			e["voids"] = voids
		}
		return e
	}
	wrong := entry("hours", 9, "2026-04-02T09:00:00Z", "")
	for _, e := range []map[string]any{
		entry("lend", 1, "2026-01-15T10:00:00Z", ""),      // a drill lent
		entry("lend", 1, "2026-01-31T23:30:00-01:00", ""), // 1 Feb in UTC
		entry("skill", 2, "2026-02-10T18:00:00Z", ""),     // a repair taught
		entry("meal", 4, "2026-03-31T20:00:00Z", ""),      // a shared dinner
		entry("other", 3, "2026-03-05T10:00:00Z", ""),     // not a dependency
		wrong, // voided below
		entry("hours", 2.5, "2026-05-03T09:00:00Z", wrong["id"].(string)), // the correction
	} {
		if r := servertest.Call(t, url, "POST", "/v1/ledger/entries", alice.Token, servertest.MustJSON(t, e)); r.Status != http.StatusCreated {
			t.Fatalf("log %v: %d %s", e, r.Status, r.Body)
		}
	}
	// Bob's device logs through sync: 3 hours volunteered in December 2025.
	bobLedger := servertest.MustCircle(t, url, bob).Docs["ledger"]
	synced := entry("hours", 3, "2025-12-20T10:00:00Z", "")
	msg := servertest.MustChangeMessage(t, url, bob, bobLedger, bob.Actor, func(d *automerge.Doc) error {
		return d.Path("entries", synced["id"].(string)).Set(synced)
	})
	if r := servertest.Call(t, url, "POST", "/v1/sync", bob.Token, servertest.SyncBody(t, wire.SyncMessage{Doc: bobLedger, Data: msg})); r.Status != http.StatusOK {
		t.Fatalf("sync entry: %d %s", r.Status, r.Body)
	}

	type row struct {
		period, start     string
		lend, skill, meal int
		hours             int
		hoursQ            float64
	}
	tests := []struct {
		period string
		rows   []row
	}{
		{"month", []row{
			{"2025-12", "2025-12-01T00:00:00Z", 0, 0, 0, 1, 3},
			{"2026-01", "2026-01-01T00:00:00Z", 1, 0, 0, 0, 0},
			{"2026-02", "2026-02-01T00:00:00Z", 1, 1, 0, 0, 0},
			{"2026-03", "2026-03-01T00:00:00Z", 0, 0, 1, 0, 0},
			{"2026-05", "2026-05-01T00:00:00Z", 0, 0, 0, 1, 2.5},
		}},
		{"quarter", []row{
			{"2025-Q4", "2025-10-01T00:00:00Z", 0, 0, 0, 1, 3},
			{"2026-Q1", "2026-01-01T00:00:00Z", 2, 1, 1, 0, 0},
			{"2026-Q2", "2026-04-01T00:00:00Z", 0, 0, 0, 1, 2.5},
		}},
		{"year", []row{
			{"2025", "2025-01-01T00:00:00Z", 0, 0, 0, 1, 3},
			{"2026", "2026-01-01T00:00:00Z", 2, 1, 1, 1, 2.5},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.period, func(t *testing.T) {
			var sc wire.Scorecard
			servertest.MustGetJSON(t, url, alice, "/v1/scorecard?period="+tt.period, &sc)
			if sc.Period != tt.period || len(sc.Dependencies) != 4 {
				t.Errorf("period %q with %d dependencies, want %q with 4", sc.Period, len(sc.Dependencies), tt.period)
			}
			if len(sc.Periods) != len(tt.rows) {
				t.Fatalf("%d periods, want %d: %+v", len(sc.Periods), len(tt.rows), sc.Periods)
			}
			for i, w := range tt.rows {
				got := sc.Periods[i]
				want := map[string]int{"tools_borrowed": w.lend, "skills_taught": w.skill, "meals_shared": w.meal, "hours_volunteered": w.hours}
				if got.Period != w.period || got.Start.Format(time.RFC3339) != w.start || got.Total != w.lend+w.skill+w.meal+w.hours || got.Quantities["hours_volunteered"] != w.hoursQ {
					t.Errorf("period %d = %s from %s total %d hours %v, want %s from %s total %d hours %v", i, got.Period, got.Start.Format(time.RFC3339), got.Total, got.Quantities["hours_volunteered"], w.period, w.start, w.lend+w.skill+w.meal+w.hours, w.hoursQ)
				}
				for name, n := range want {
					if got.Counts[name] != n {
						t.Errorf("%s %s = %d, want %d", w.period, name, got.Counts[name], n)
					}
				}
			}
			if sc.Totals.Total != 6 || sc.Totals.Counts["tools_borrowed"] != 2 || sc.Totals.Counts["hours_volunteered"] != 2 || sc.Totals.Quantities["hours_volunteered"] != 5.5 {
				t.Errorf("totals = %+v, want 6 in all: 2 tools, 1 skill, 1 meal, 2 volunteerings of 5.5 h", sc.Totals)
			}
		})
	}

	var def wire.Scorecard
	servertest.MustGetJSON(t, url, alice, "/v1/scorecard", &def)
	if def.Period != "month" || len(def.Periods) != 5 {
		t.Errorf("default scorecard: period %q with %d periods, want month with 5", def.Period, len(def.Periods))
	}
	if r := servertest.Call(t, url, "GET", "/v1/scorecard?period=week", alice.Token, nil); r.Status != http.StatusBadRequest || r.Code != fault.InvalidRequest {
		t.Errorf("period=week = %d %s, want 400 invalid_request", r.Status, r.Body)
	}
	if r := servertest.Call(t, url, "GET", "/v1/scorecard", "", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("scorecard without a token = %d, want 401", r.Status)
	}
}
