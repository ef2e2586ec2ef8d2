package crdt_test

import (
	"slices"
	"testing"
	"time"

	"github.com/circles-coop/circles/crdt"
)

// TestCheckTallyHalfRests: named by exactly half of those who checked in
// rests; by fewer does not; a member checks in once; moments are kept
// sorted whatever the order they came in.
func TestCheckTallyHalfRests(t *testing.T) {
	var tl crdt.CheckTally
	for i, c := range []struct {
		who, said string
		named     []string
	}{
		{"h4", "zebra", []string{"ben", "cleo"}},
		{"h1", "apple", []string{"ben"}},
		{"h3", "", nil},
		{"h2", "mango", []string{"dev"}},
	} {
		if !tl.AddCheck(c.who, c.said, c.named) {
			t.Fatalf("check %d refused", i)
		}
	}
	if tl.AddCheck("h1", "again", []string{"cleo"}) {
		t.Fatalf("a second check by h1 was counted")
	}
	s := tl.Close(time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC))
	if s.CheckedIn != 4 || s.Named["ben"] != 2 || s.Named["cleo"] != 1 || s.Named["dev"] != 1 {
		t.Errorf("Close() = %+v", s)
	}
	if !slices.Equal(s.Rests, []string{"ben"}) {
		t.Errorf("Rests = %v, want [ben] (2 of 4 is half)", s.Rests)
	}
	if !slices.Equal(s.Moments, []string{"apple", "mango", "zebra"}) || !slices.IsSorted(tl.Checkers) {
		t.Errorf("Moments = %v, checkers %v: want both sorted", s.Moments, tl.Checkers)
	}
}

// TestFacilitators: rest and cooldown leave members out; when nobody is
// left, the rest rule is dropped first, then the cooldown.
func TestFacilitators(t *testing.T) {
	active := []string{"ana", "ben", "cleo", "dev"}
	meetings := []crdt.Meeting{
		{ID: "m1", Seq: 1, Facilitator: "ana"},
		{ID: "m2", Seq: 2, Facilitator: "ben"},
		{ID: "m3", Seq: 3, Facilitator: "cleo"},
	}
	checks := map[string]crdt.CheckSummary{"m1": {Rests: []string{"dev"}}, "m3": {Rests: []string{"ana"}}}
	for _, tc := range []struct {
		name           string
		rest, cooldown int
		eligible       []string
		relaxed        string
	}{
		// ben, cleo rest; ana (m3) and dev (m1, three meetings back) cool:
		// nobody is left, so the rest rule is dropped.
		{"defaults", 2, 3, []string{"ben", "cleo"}, "rest"},
		{"cooldown two", 2, 2, []string{"dev"}, ""}, // dev's cooldown from m1 ended with m3
		{"no rules", 0, 0, []string{"ana", "ben", "cleo", "dev"}, ""},
		{"rest only", 3, 0, []string{"dev"}, ""},
	} {
		p := crdt.Facilitators(active, meetings, checks, tc.rest, tc.cooldown)
		want := tc.eligible
		if !slices.Equal(p.Eligible, want) || p.Relaxed != tc.relaxed {
			t.Errorf("%s: eligible %v relaxed %q, want %v %q (pool %+v)", tc.name, p.Eligible, p.Relaxed, want, tc.relaxed, p)
		}
		if got := len(p.Eligible) + len(p.Excluded()); got != 4 {
			t.Errorf("%s: eligible and excluded hold %d, want 4", tc.name, got)
		}
	}
}

// TestParseNeed: needs read as "<target> <kind>/<period>[: words]".
func TestParseNeed(t *testing.T) {
	n, ok, err := crdt.ParseNeed("need.food", " 12 meal/month: shared dinners ")
	if err != nil || !ok || n.Name != "food" || n.Target != 12 || n.Kind != "meal" || n.Period != "month" || n.Words != "shared dinners" {
		t.Errorf("ParseNeed = %+v %v %v", n, ok, err)
	}
	if _, ok, err := crdt.ParseNeed("need.food", "none"); ok || err != nil {
		t.Errorf("none: %v %v, want withdrawn", ok, err)
	}
	for _, bad := range [][2]string{{"need.", "1 meal/month"}, {"need.Food", "1 meal/month"}, {"need.food", "lots"}, {"need.food", "0 meal/month"}, {"need.food", "1 cake/month"}, {"need.food", "1 meal/week"}} {
		if _, _, err := crdt.ParseNeed(bad[0], bad[1]); err == nil {
			t.Errorf("ParseNeed(%q, %q) accepted", bad[0], bad[1])
		}
		if err := crdt.CheckPolicy(bad[0], bad[1]); err == nil {
			t.Errorf("CheckPolicy(%q, %q) accepted", bad[0], bad[1])
		}
	}
}
