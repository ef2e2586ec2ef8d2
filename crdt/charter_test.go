package crdt_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/circles-coop/circles/crdt"
	"github.com/google/go-cmp/cmp"
)

func TestCharterRoundTrip(t *testing.T) {
	doc := automerge.New()
	if err := crdt.InitCharter(doc, "Hillside Tool Library", crdt.Policies{"reset.window": "48h"}); err != nil {
		t.Fatalf("InitCharter() = %v", err)
	}
	doc = mustReload(t, doc)
	got, err := crdt.ReadCharter(doc)
	if err != nil {
		t.Fatalf("ReadCharter() = %v", err)
	}
	wantPol := crdt.DefaultPolicies()
	wantPol["reset.window"] = "48h"
	want := crdt.Charter{Name: "Hillside Tool Library", Policies: wantPol, Status: crdt.CharterDraft, Principles: []string{}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReadCharter() after InitCharter (-want +got):\n%s", diff)
	}
	if got.StatusAt(t0) != crdt.CharterDraft || !got.RenewalDue(t0) {
		t.Errorf("draft StatusAt() = %q, RenewalDue() = %v, want draft, true", got.StatusAt(t0), got.RenewalDue(t0))
	}

	// Ratify, store, read back.
	got.Purpose = "Lend tools, mend tools."
	got.Principles = []string{"Share first", "Rotate every role"}
	r := got.Ratified(t0)
	if err := crdt.PutCharter(doc, r); err != nil {
		t.Fatalf("PutCharter() = %v", err)
	}
	doc = mustReload(t, doc)
	back, err := crdt.ReadCharter(doc)
	if err != nil {
		t.Fatalf("ReadCharter() = %v", err)
	}
	if diff := cmp.Diff(r, back); diff != "" {
		t.Errorf("ReadCharter() after PutCharter (-want +got):\n%s", diff)
	}
	if back.Version != 1 || back.Status != crdt.CharterRatified || !back.ExpiresAt.Equal(t0.Add(8760*time.Hour)) {
		t.Errorf("Ratified() = version %d status %q expires %v, want 1, ratified, %v", back.Version, back.Status, back.ExpiresAt, t0.Add(8760*time.Hour))
	}
	// Storing it again without times removes them.
	r.RatifiedAt, r.ExpiresAt, r.Status = nil, nil, crdt.CharterNeedsRatification
	if err := crdt.PutCharter(doc, r); err != nil {
		t.Fatal(err)
	}
	back, err = crdt.ReadCharter(mustReload(t, doc))
	if err != nil || back.RatifiedAt != nil || back.ExpiresAt != nil || back.Status != crdt.CharterNeedsRatification {
		t.Errorf("ReadCharter() = %+v, %v, want no times and needs_ratification", back, err)
	}
}

func TestCharterStatusAt(t *testing.T) {
	c := crdt.Charter{Name: "c", Policies: crdt.DefaultPolicies(), Status: crdt.CharterDraft}.Ratified(t0)
	exp := t0.Add(8760 * time.Hour)
	tests := []struct {
		name       string
		now        time.Time
		status     string
		renewalDue bool
	}{
		{"just ratified", t0, crdt.CharterRatified, false},
		{"31 days before expiry", exp.Add(-31 * 24 * time.Hour), crdt.CharterRatified, false},
		{"30 days before expiry", exp.Add(-30 * 24 * time.Hour), crdt.CharterRatified, true},
		{"one second before expiry", exp.Add(-time.Second), crdt.CharterRatified, true},
		{"at expiry", exp, crdt.CharterLapsed, true},
		{"long after", exp.Add(1000 * time.Hour), crdt.CharterLapsed, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.StatusAt(tt.now); got != tt.status {
				t.Errorf("StatusAt() = %q, want %q", got, tt.status)
			}
			if got := c.RenewalDue(tt.now); got != tt.renewalDue {
				t.Errorf("RenewalDue() = %v, want %v", got, tt.renewalDue)
			}
		})
	}
	again := c.Ratified(exp)
	if again.Version != 2 || c.Version != 1 || !again.RatifiedAt.Equal(exp) {
		t.Errorf("second Ratified() = version %d (original %d), ratified %v, want 2 (1), %v", again.Version, c.Version, again.RatifiedAt, exp)
	}
}

func TestCharterValidate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*crdt.Charter)
		rule  string
		field string
	}{
		{"empty name", func(c *crdt.Charter) { c.Name = " " }, "schema", `"name"`},
		{"long name", func(c *crdt.Charter) { c.Name = strings.Repeat("n", 101) }, "schema", `"name"`},
		{"long purpose", func(c *crdt.Charter) { c.Purpose = strings.Repeat("p", 2001) }, "schema", `"purpose"`},
		{"long principle", func(c *crdt.Charter) { c.Principles = []string{strings.Repeat("p", 2001)} }, "schema", `"principles"`},
		{"too many principles", func(c *crdt.Charter) { c.Principles = make([]string, 101) }, "schema", `"principles"`},
		{"bad policy", func(c *crdt.Charter) { c.Policies["reset.quorum"] = "0" }, "policy", "reset.quorum"},
		{"unknown policy", func(c *crdt.Charter) { c.Policies["x.y"] = "1" }, "policy", "x.y"},
		{"bad status", func(c *crdt.Charter) { c.Status = "active" }, "schema", `"status"`},
		{"negative version", func(c *crdt.Charter) { c.Version = -1 }, "schema", `"version"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := crdt.Charter{Name: "c", Policies: crdt.DefaultPolicies(), Status: crdt.CharterDraft}
			tt.edit(&c)
			wantRuleError(t, c.Validate(), tt.rule, tt.field)
			wantRuleError(t, crdt.PutCharter(automerge.New(), c), tt.rule, tt.field)
		})
	}
	wantRuleError(t, crdt.InitCharter(automerge.New(), "c", crdt.Policies{"reset.window": "forever"}), "policy", "reset.window")
}

// TestCharterDraftCollaborative edits the draft text on two replicas at
// once and checks both edits survive the merge.
func TestCharterDraftCollaborative(t *testing.T) {
	server := automerge.New()
	if err := crdt.InitCharterDraft(server); err != nil {
		t.Fatalf("InitCharterDraft() = %v", err)
	}
	if err := mustGet(t, server, "text").Text().Set("We share tools."); err != nil {
		t.Fatal(err)
	}
	mustCommit(t, server)
	if got := kindsUnder(t, server); got["text"] != automerge.KindText || got["principles"] != automerge.KindList {
		t.Fatalf("draft root kinds = %v, want text Text and principles List", got)
	}
	a, _ := server.Fork()
	b, _ := server.Fork()
	if err := mustGet(t, a, "text").Text().Insert(0, "Preamble. "); err != nil {
		t.Fatal(err)
	}
	if err := mustGet(t, b, "text").Text().Append(" We mend them."); err != nil {
		t.Fatal(err)
	}
	if err := mustGet(t, a, "principles").List().Append(automerge.NewText("Rotate roles")); err != nil {
		t.Fatal(err)
	}
	if err := mustGet(t, b, "principles").List().Append("Keep a ledger"); err != nil {
		t.Fatal(err)
	}
	mustCommit(t, a)
	mustCommit(t, b)
	for _, d := range []*automerge.Doc{a, b} {
		if _, err := server.Merge(d); err != nil {
			t.Fatal(err)
		}
	}
	got, err := crdt.ReadCharterDraft(mustReload(t, server))
	if err != nil {
		t.Fatalf("ReadCharterDraft() = %v", err)
	}
	if want := "Preamble. We share tools. We mend them."; got.Text != want {
		t.Errorf("merged draft text = %q, want %q", got.Text, want)
	}
	if len(got.Principles) != 2 {
		t.Errorf("merged principles = %q, want two", got.Principles)
	}

	bad := automerge.New()
	if err := bad.RootMap().Set("text", 3.0); err != nil {
		t.Fatal(err)
	}
	_, err = crdt.ReadCharterDraft(mustReload(t, bad))
	wantRuleError(t, err, "schema", `"text"`)
}

func TestGovernanceAndAuditRoots(t *testing.T) {
	gov := automerge.New()
	if err := crdt.InitGovernance(gov); err != nil {
		t.Fatalf("InitGovernance() = %v", err)
	}
	gov = mustReload(t, gov)
	want := map[string]automerge.Kind{"proposals": automerge.KindMap, "epoch": automerge.KindInt64, "resets": automerge.KindList}
	if diff := cmp.Diff(want, kindsUnder(t, gov)); diff != "" {
		t.Errorf("governance root (-want +got):\n%s", diff)
	}
	if epoch, err := crdt.ReadEpoch(gov); epoch != 0 || err != nil {
		t.Errorf("ReadEpoch() = %d, %v, want 0, nil", epoch, err)
	}
	if err := gov.RootMap().Set("epoch", 4.0); err != nil { // a float whole number reads as an int
		t.Fatal(err)
	}
	if epoch, err := crdt.ReadEpoch(gov); epoch != 4 || err != nil {
		t.Errorf("ReadEpoch() = %d, %v, want 4, nil", epoch, err)
	}
	if err := gov.RootMap().Set("epoch", 4.5); err != nil {
		t.Fatal(err)
	}
	_, err := crdt.ReadEpoch(gov)
	wantRuleError(t, err, "schema", `"epoch"`)

	audit := automerge.New()
	if err := crdt.InitAudit(audit); err != nil {
		t.Fatalf("InitAudit() = %v", err)
	}
	if diff := cmp.Diff(map[string]automerge.Kind{"entries": automerge.KindList}, kindsUnder(t, mustReload(t, audit))); diff != "" {
		t.Errorf("audit root (-want +got):\n%s", diff)
	}
}

// TestSetDraftText: replacing the whole draft text splices only what
// differs, so two members replacing different parts at the same time both
// keep their edit once merged.
func TestSetDraftText(t *testing.T) {
	server := automerge.New()
	if err := crdt.InitCharterDraft(server); err != nil {
		t.Fatal(err)
	}
	if changed, err := crdt.SetDraftText(server, "We share tools. We mend them. 🙂 Everyone votes."); err != nil || !changed {
		t.Fatalf("SetDraftText() on an empty draft = %v, %v, want changed", changed, err)
	}
	mustCommit(t, server)
	if changed, err := crdt.SetDraftText(server, "We share tools. We mend them. 🙂 Everyone votes."); err != nil || changed {
		t.Errorf("SetDraftText() with the same text = %v, %v, want unchanged", changed, err)
	}
	a, _ := server.Fork()
	b, _ := server.Fork()
	if _, err := crdt.SetDraftText(a, "We lend tools. We mend them. 🙂 Everyone votes."); err != nil {
		t.Fatal(err)
	}
	if _, err := crdt.SetDraftText(b, "We share tools. We mend them. 🙂 Every member votes once."); err != nil {
		t.Fatal(err)
	}
	mustCommit(t, a)
	mustCommit(t, b)
	for _, d := range []*automerge.Doc{a, b} {
		if _, err := server.Merge(d); err != nil {
			t.Fatal(err)
		}
	}
	got, err := crdt.ReadCharterDraft(mustReload(t, server))
	if err != nil {
		t.Fatal(err)
	}
	if want := "We lend tools. We mend them. 🙂 Every member votes once."; got.Text != want {
		t.Errorf("merged draft text = %q, want %q", got.Text, want)
	}

	_, err = crdt.SetDraftText(server, strings.Repeat("x", crdt.MaxDraftTextLen+1))
	wantRuleError(t, err, "schema", `"text"`)
	flat := automerge.New()
	if err := flat.RootMap().Set("text", "a scalar"); err != nil {
		t.Fatal(err)
	}
	if _, err := crdt.SetDraftText(flat, "x"); !errors.Is(err, crdt.ErrNotInitialized) {
		t.Errorf("SetDraftText() on a scalar text = %v, want ErrNotInitialized", err)
	}
}
