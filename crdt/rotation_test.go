package crdt_test

import (
	"testing"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/google/go-cmp/cmp"

	"github.com/circles-coop/circles/crdt"
)

// TestRotateRole: a holder is rotated out only once the term has ended;
// the vacant role remembers them, so the term limit holds across a
// vacancy shorter than a term and not across a longer one.
func TestRotateRole(t *testing.T) {
	const term = 30 * 24 * time.Hour
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	role := crdt.Role{ID: "r-cook", Name: "cook", Term: term, TermLimit: 2}
	held, err := crdt.AssignRole(role, "bob", start, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := crdt.RotateRole(held, start.Add(term-time.Second)); ok {
		t.Errorf("RotateRole() before the term ended rotated")
	}
	vacant, ok := crdt.RotateRole(held, start.Add(term))
	if !ok || vacant.Holder != "" || vacant.TermEnd != nil || vacant.TermsServed != 0 ||
		vacant.PreviousHolder != "bob" || vacant.PreviousTerms != 1 || !vacant.PreviousTermEnd.Equal(start.Add(term)) {
		t.Fatalf("RotateRole() at the end of the term = %+v, %v", vacant, ok)
	}
	if _, ok := crdt.RotateRole(vacant, start.Add(2*term)); ok {
		t.Errorf("RotateRole() of a vacant role rotated")
	}

	tests := []struct {
		name    string
		member  string
		at      time.Duration // after the end of the term
		served  int           // ConsecutiveTerms
		limited bool          // with a limit of 1
	}{
		{"the previous holder a day later", "bob", 24 * time.Hour, 1, true},
		{"the previous holder just under a term later", "bob", term - time.Second, 1, true},
		{"the previous holder a term later", "bob", term, 0, false},
		{"someone else", "alice", time.Hour, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := start.Add(term + tt.at)
			if got := crdt.ConsecutiveTerms(vacant, tt.member, at); got != tt.served {
				t.Errorf("ConsecutiveTerms() = %d, want %d", got, tt.served)
			}
			err := crdt.CheckTermLimit(vacant, tt.member, at, 1)
			if (err != nil) != tt.limited {
				t.Errorf("CheckTermLimit(limit 1) = %v, want limited %v", err, tt.limited)
			}
			next, err := crdt.AssignRole(vacant, tt.member, at, 2)
			if err != nil || next.TermsServed != tt.served+1 || next.PreviousHolder != "" || !next.TermStart.Equal(at) {
				t.Errorf("AssignRole() = %+v, %v, want term %d starting now", next, err, tt.served+1)
			}
		})
	}

	// A reset forgets everything.
	if v := crdt.VacateRole(vacant); v.PreviousHolder != "" || v.PreviousTermEnd != nil || crdt.ConsecutiveTerms(v, "bob", start.Add(term)) != 0 {
		t.Errorf("VacateRole() = %+v, want no memory of Bob", v)
	}
}

// TestRoleRotationFieldsRoundTrip: the rotation fields survive the roster
// document.
func TestRoleRotationFieldsRoundTrip(t *testing.T) {
	doc := automerge.New()
	if err := crdt.InitRoster(doc); err != nil {
		t.Fatal(err)
	}
	end := time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC)
	want := crdt.Role{ID: "r-cook", Name: "cook", Term: time.Hour, TermLimit: 2, Rotation: crdt.RotationDraw,
		PreviousHolder: "bob", PreviousTerms: 2, PreviousTermEnd: &end}
	if err := crdt.PutRole(doc, &want); err != nil {
		t.Fatal(err)
	}
	r, err := crdt.ReadRoster(doc)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&want, r.Roles["r-cook"]); diff != "" {
		t.Errorf("role after a round trip (-want +got):\n%s", diff)
	}
	bad := want
	bad.Rotation = "lottery"
	wantRuleError(t, bad.Validate(), "schema", `"rotation"`)
}

// TestChangeAndRetireRole: role.change replaces only the fields it names
// and keeps the running term; role.retire vacates the role and keeps it,
// retired, in the roster, where no name lookup finds it any more.
func TestChangeAndRetireRole(t *testing.T) {
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	role := crdt.Role{ID: "r-cook", Name: "cook", Purpose: "meals", Term: 720 * time.Hour, TermLimit: 2}
	held, err := crdt.AssignRole(role, "bob", start, 3)
	if err != nil {
		t.Fatal(err)
	}
	change := func(payload map[string]any) crdt.Proposal {
		payload["role"] = "r-cook"
		return crdt.Proposal{ID: id1, Kind: "role.change", Title: "x", Payload: payload, At: start}
	}
	got, err := crdt.ChangeRole(held, change(map[string]any{"name": " chef ", "term": "2160h", "term_limit": 1.0}), 3)
	if err != nil {
		t.Fatalf("ChangeRole() = %v", err)
	}
	want := held
	want.Name, want.Term, want.TermLimit = "chef", 2160*time.Hour, 1
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ChangeRole() (-want +got):\n%s", diff)
	}
	if _, err := crdt.ChangeRole(held, change(map[string]any{"term_limit": 4}), 3); err == nil {
		t.Errorf("ChangeRole() above the charter's term limit = nil, want an error")
	} else {
		wantRuleError(t, err, crdt.RuleGovernance, "role.term_limit")
	}

	at := start.Add(time.Hour)
	retired := crdt.RetireRole(held, at)
	if !retired.Retired() || retired.Holder != "" || retired.TermsServed != 0 || retired.RetiredAt == nil || !retired.RetiredAt.Equal(at) {
		t.Fatalf("RetireRole() = %+v, want vacant and retired at %v", retired, at)
	}
	if _, err := crdt.ChangeRole(retired, change(map[string]any{"name": "baker"}), 3); err == nil {
		t.Errorf("ChangeRole() of a retired role = nil, want an error")
	}
	if _, err := crdt.AssignRole(retired, "alice", at, 3); err == nil {
		t.Errorf("AssignRole() of a retired role = nil, want an error")
	}

	doc := automerge.New()
	if err := crdt.InitRoster(doc); err != nil {
		t.Fatal(err)
	}
	newCook := crdt.Role{ID: "r-cook2", Name: "Cook", Term: time.Hour, TermLimit: 1}
	for _, r := range []*crdt.Role{&retired, &newCook} {
		if err := crdt.PutRole(doc, r); err != nil {
			t.Fatal(err)
		}
	}
	r, err := crdt.ReadRoster(doc)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&retired, r.Roles["r-cook"]); diff != "" {
		t.Errorf("retired role after a round trip (-want +got):\n%s", diff)
	}
	if found, ok := crdt.FindRole(r.Roles, "cook"); !ok || found.ID != "r-cook2" {
		t.Errorf("FindRole(cook) = %+v, %v, want the new cook, not the retired one", found, ok)
	}
	if found, ok := crdt.FindRole(r.Roles, "r-cook"); !ok || !found.Retired() {
		t.Errorf("FindRole(r-cook) = %+v, %v, want the retired role by its id", found, ok)
	}
	bad := retired
	bad.RetiredAt = nil
	wantRuleError(t, bad.Validate(), "schema", `"retired_at"`)
}
