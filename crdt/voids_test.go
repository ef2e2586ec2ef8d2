package crdt_test

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/circles-coop/circles/crdt"
)

// TestVoided covers the voiding rule, in particular the cases where the
// three copies it replaced (crdt.Balances, crdt.BuildScorecard and the
// client's ledger view) were documented or fed differently: "a later
// entry" versus "another entry", repeated ids, and entries arriving in
// any order.
func TestVoided(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	e := func(id string, hoursLater int, voids string) crdt.Entry {
		return crdt.Entry{ID: id, Kind: "lend", Quantity: 1, At: t0.Add(time.Duration(hoursLater) * time.Hour), Voids: voids}
	}
	tests := []struct {
		name    string
		entries []crdt.Entry
		want    []string // voided ids, sorted
	}{
		{"none", nil, nil},
		{"no corrections", []crdt.Entry{e("A", 0, ""), e("B", 1, "")}, nil},
		{"a correction voids its target", []crdt.Entry{e("A", 0, ""), e("B", 1, "A")}, []string{"A"}},
		// The docs of two copies said "a later entry"; no copy compared
		// times, and a correction may move an entry to an earlier day.
		{"a correction dated earlier still voids", []crdt.Entry{e("A", 5, ""), e("B", 1, "A")}, []string{"A"}},
		{"arrival order does not matter", []crdt.Entry{e("B", 1, "A"), e("A", 0, "")}, []string{"A"}},
		{"chain: only the last counts", []crdt.Entry{e("A", 0, ""), e("B", 1, "A"), e("C", 2, "B")}, []string{"A", "B"}},
		{"two corrections of one entry", []crdt.Entry{e("A", 0, ""), e("B", 1, "A"), e("C", 2, "A")}, []string{"A"}},
		{"corrections naming each other", []crdt.Entry{e("A", 0, "B"), e("B", 1, "A")}, []string{"A", "B"}},
		{"naming an id not held voids nothing", []crdt.Entry{e("A", 0, ""), e("B", 1, "elsewhere")}, nil},
		{"naming itself voids nothing", []crdt.Entry{e("A", 0, "A")}, nil},
		// The client listed every copy of a repeated id; the views count
		// the first. Every copy's "voids" applies, and a voided id is
		// voided in every copy, so both agree.
		{"a repeated id's second copy still voids", []crdt.Entry{e("A", 0, ""), e("X", 1, ""), e("X", 1, "A")}, []string{"A"}},
		{"a repeated id is voided in every copy", []crdt.Entry{e("X", 0, ""), e("X", 0, ""), e("B", 1, "X")}, []string{"X"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := crdt.Voided(tt.entries)
			if got == nil {
				t.Fatal("Voided() = nil, want a map")
			}
			var ids []string
			for id, v := range got {
				if !v {
					t.Errorf("Voided() holds %s = false, want only true values", id)
				}
				ids = append(ids, id)
			}
			slices.Sort(ids)
			if diff := cmp.Diff(tt.want, ids); diff != "" {
				t.Errorf("Voided() ids (-want +got):\n%s", diff)
			}

			// The views use the same rule: what counts is every id once,
			// unless voided.
			counted := 0.0
			seen := map[string]bool{}
			for _, x := range tt.entries {
				if !seen[x.ID] && !got[x.ID] {
					counted += x.Quantity
				}
				seen[x.ID] = true
			}
			bals, _ := crdt.Balances([]string{"a"}, map[string][]crdt.Entry{"a": tt.entries}, t0, time.Hour)
			if bals[0].Given != counted {
				t.Errorf("Balances() Given = %v, want %v", bals[0].Given, counted)
			}
			sc, err := crdt.BuildScorecard(map[string][]crdt.Entry{"a": tt.entries}, "year")
			if err != nil {
				t.Fatal(err)
			}
			if n := sc.Totals.Total; float64(n) != counted {
				t.Errorf("BuildScorecard() Totals.Total = %d, want %v", n, counted)
			}
		})
	}
}
