package crdt_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/circles-coop/circles/crdt"
	"github.com/google/go-cmp/cmp"
)

var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// ent builds an entry; ids only need to be distinct here.
func ent(id string, q float64, cp string, ago time.Duration, voids string) crdt.Entry {
	return crdt.Entry{ID: id, Kind: "hours", Quantity: q, Counterparty: cp, At: now.Add(-ago), Voids: voids}
}

func TestBalances(t *testing.T) {
	type row struct {
		given, received, balance float64
		lastAgo                  time.Duration // -1 for nil
	}
	tests := []struct {
		name    string
		members []string
		entries map[string][]crdt.Entry
		want    map[string]row
		top     float64
		gini    float64
		silent  []string
	}{
		{
			name:    "mixed circle with a correction",
			members: []string{"a", "b", "c", "d"},
			entries: map[string][]crdt.Entry{
				"a": {ent("e1", 4, "b", time.Hour, ""), ent("e2", 2, "c", 2*time.Hour, "")},
				"b": {ent("e3", 3, "a", 40*day, "")},
				"c": {ent("e4", 5, "a", 10*day, ""), ent("e5", 1, "a", 9*day, "e4")},
			},
			want: map[string]row{
				"a": {6, 4, 2, time.Hour},
				"b": {3, 4, -1, 40 * day},
				"c": {1, 2, -1, 9 * day},
				"d": {0, 0, 0, -1},
			},
			top:    0.6, // 6 / 10
			gini:   0.5, // givens 0,1,3,6: Σ|xi-xj| = 40 over ordered pairs; 40 / (2·4²·2.5)
			silent: []string{"b", "d"},
		},
		{
			name:    "one member does everything",
			members: []string{"a", "b", "c", "d"},
			entries: map[string][]crdt.Entry{"d": {ent("e1", 10, "", day, "")}},
			want:    map[string]row{"a": {0, 0, 0, -1}, "b": {0, 0, 0, -1}, "c": {0, 0, 0, -1}, "d": {10, 0, 10, day}},
			top:     1,
			gini:    0.75, // (n-1)/n
			silent:  []string{"a", "b", "c"},
		},
		{
			name:    "all equal",
			members: []string{"x", "y", "z"},
			entries: map[string][]crdt.Entry{
				"x": {ent("1", 5, "y", 0, "")}, "y": {ent("2", 5, "z", 0, "")}, "z": {ent("3", 2, "x", 0, ""), ent("4", 3, "x", 0, "")},
			},
			want:   map[string]row{"x": {5, 5, 0, 0}, "y": {5, 5, 0, 0}, "z": {5, 5, 0, 0}},
			top:    1.0 / 3,
			gini:   0,
			silent: []string{},
		},
		{
			name:    "single member",
			members: []string{"solo"},
			entries: map[string][]crdt.Entry{"solo": {ent("1", 7, "solo", day, "")}},
			want:    map[string]row{"solo": {7, 0, 7, day}}, // naming oneself adds no received
			top:     1,
			gini:    0,
			silent:  []string{},
		},
		{
			name:    "nothing logged",
			members: []string{"b", "a"},
			entries: nil,
			want:    map[string]row{"a": {0, 0, 0, -1}, "b": {0, 0, 0, -1}},
			silent:  []string{"a", "b"},
		},
		{
			name:    "no members",
			members: nil,
			entries: map[string][]crdt.Entry{"ghost": {ent("1", 1, "", 0, "")}},
			want:    map[string]row{},
			silent:  []string{},
		},
		{
			name:    "void chain, foreign void, duplicate id, unlisted author and counterparty",
			members: []string{"a", "b", "a"},
			entries: map[string][]crdt.Entry{
				// a: A (3) voided by B (4) voided by C (2): only C counts.
				"a": {ent("A", 3, "b", 3*day, ""), ent("B", 4, "b", 2*day, "A"), ent("C", 2, "b", day, "B"), ent("C", 2, "b", day, "B")},
				// b tries to void a's C: no effect; b's own entry names an unlisted member.
				"b": {ent("D", 1, "zed", 5*day, "C")},
				// an unlisted author's entry naming a counts for no one.
				"zed": {ent("E", 100, "a", 0, "")},
			},
			want:   map[string]row{"a": {2, 0, 2, day}, "b": {1, 2, -1, 5 * day}},
			top:    2.0 / 3,
			gini:   1.0 / 6, // givens 1,2: |1-2|·2 / (2·2²·1.5)
			silent: []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, sig := crdt.Balances(tt.members, tt.entries, now, 30*day)
			gotRows := map[string]row{}
			var order []string
			for _, b := range got {
				r := row{b.Given, b.Received, b.Balance, -1}
				if b.LastActive != nil {
					r.lastAgo = now.Sub(*b.LastActive)
				}
				gotRows[b.Member] = r
				order = append(order, b.Member)
			}
			if diff := cmp.Diff(tt.want, gotRows, cmp.AllowUnexported(row{})); diff != "" {
				t.Errorf("Balances() rows (-want +got):\n%s", diff)
			}
			var wantOrder []string
			seen := map[string]bool{}
			for _, m := range tt.members {
				if !seen[m] {
					seen[m] = true
					wantOrder = append(wantOrder, m)
				}
			}
			if diff := cmp.Diff(wantOrder, order); diff != "" {
				t.Errorf("Balances() order (-want +got):\n%s", diff)
			}
			if !near(sig.TopShare, tt.top) {
				t.Errorf("TopShare = %v, want %v", sig.TopShare, tt.top)
			}
			if !near(sig.Gini, tt.gini) {
				t.Errorf("Gini = %v, want %v", sig.Gini, tt.gini)
			}
			if diff := cmp.Diff(tt.silent, sig.SilentMembers); diff != "" {
				t.Errorf("SilentMembers (-want +got):\n%s", diff)
			}
		})
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-12 }

func TestBalancesSilentBoundary(t *testing.T) {
	tests := []struct {
		ago    time.Duration
		silent bool
	}{
		{0, false},
		{-day, false}, // an entry dated in the future is activity
		{30 * day, false},
		{30*day + time.Nanosecond, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.ago), func(t *testing.T) {
			// The newest entry voids an old one; it is the member's activity.
			entries := map[string][]crdt.Entry{"a": {ent("old", 1, "", 90*day, ""), ent("new", 1, "", tt.ago, "old")}}
			_, sig := crdt.Balances([]string{"a"}, entries, now, 30*day)
			if got := len(sig.SilentMembers) == 1; got != tt.silent {
				t.Errorf("silent = %v, want %v (SilentMembers %v)", got, tt.silent, sig.SilentMembers)
			}
		})
	}
}

// TestBalancesGiniFormula checks the closed form against the pairwise
// definition on uneven data.
func TestBalancesGiniFormula(t *testing.T) {
	givens := []float64{0, 1.5, 2, 2, 7.25, 13}
	members := make([]string, len(givens))
	entries := map[string][]crdt.Entry{}
	var total, pairs float64
	for i, g := range givens {
		members[i] = fmt.Sprint("m", i)
		if g > 0 {
			entries[members[i]] = []crdt.Entry{ent(fmt.Sprint(i), g, "", 0, "")}
		}
		total += g
		for _, h := range givens {
			pairs += math.Abs(g - h)
		}
	}
	n := float64(len(givens))
	want := pairs / (2 * n * n * (total / n))
	_, sig := crdt.Balances(members, entries, now, day)
	if !near(sig.Gini, want) {
		t.Errorf("Gini = %v, want %v", sig.Gini, want)
	}
	if !near(sig.TopShare, 13/total) {
		t.Errorf("TopShare = %v, want %v", sig.TopShare, 13/total)
	}
}
