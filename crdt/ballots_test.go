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

const jwtSample = "eyJhbGciOiJFZERTQSJ9.eyJ0eXAiOiJyZXNldCJ9.c2lnbmF0dXJl"

func newBallots(tb testing.TB) *automerge.Doc {
	tb.Helper()
	doc := automerge.New()
	if err := crdt.InitBallots(doc, "m-alice"); err != nil {
		tb.Fatalf("InitBallots() = %v", err)
	}
	mustCommit(tb, doc)
	return doc
}

func sampleProposal() crdt.Proposal {
	return crdt.Proposal{
		ID: id1, Title: "Create a keeper of keys", Body: "Someone should hold the shed keys.", Kind: "role.create",
		Payload: map[string]any{"name": "keeper", "purpose": "keys", "term": "2160h", "term_limit": 2.0},
		At:      t0,
	}
}

func TestBallotsRoundTrip(t *testing.T) {
	doc := newBallots(t)
	props := []crdt.Proposal{
		sampleProposal(),
		{ID: id2, Title: "Longer reset window", Kind: "policy.set", Payload: map[string]any{"name": "reset.window", "value": "96h"}, At: t0},
		{ID: id3, Title: "Ratify", Kind: "charter.ratify", Payload: map[string]any{"urgent": true}, At: t0},
	}
	for _, p := range props {
		if err := crdt.PutProposal(doc, p); err != nil {
			t.Fatalf("PutProposal(%s) = %v", p.Kind, err)
		}
	}
	votes := []crdt.Vote{
		{Proposal: id1, Choice: "yes", Reason: "keys keep going missing", At: t0.Add(time.Hour)},
		{Proposal: id2, Choice: "object", Reason: "too long", At: t0},
	}
	for _, v := range votes {
		if err := crdt.PutVote(doc, v); err != nil {
			t.Fatalf("PutVote() = %v", err)
		}
	}
	if err := crdt.PutResetStatement(doc, "jti-1", jwtSample); err != nil {
		t.Fatalf("PutResetStatement() = %v", err)
	}
	doc = mustReload(t, doc)
	got, err := crdt.ReadBallots(doc)
	if err != nil {
		t.Fatalf("ReadBallots() = %v", err)
	}
	want := crdt.Ballots{
		Member:    "m-alice",
		Proposals: map[string]crdt.Proposal{id1: props[0], id2: props[1], id3: props[2]},
		Votes:     map[string]crdt.Vote{id1: votes[0], id2: votes[1]},
		Resets:    map[string]string{"jti-1": jwtSample},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReadBallots() (-want +got):\n%s", diff)
	}
	if k := kindsUnder(t, doc, "proposals", id1); k["title"] != automerge.KindStr || k["payload"] != automerge.KindMap {
		t.Errorf("stored proposal kinds = %v, want scalar strings and a payload map", k)
	}

	// Ints in a payload read back as float64 and compare Same.
	p := sampleProposal()
	p.Payload["term_limit"] = 2
	if !p.Same(got.Proposals[id1]) {
		t.Errorf("Same() = false for term_limit 2 vs 2.0")
	}
	if err := crdt.PutProposal(doc, p); !errors.Is(err, crdt.ErrEntryExists) {
		t.Errorf("PutProposal(existing) = %v, want ErrEntryExists", err)
	}
	if err := crdt.PutVote(doc, crdt.Vote{Proposal: id1, Choice: "no", At: t0}); !errors.Is(err, crdt.ErrEntryExists) {
		t.Errorf("PutVote(second vote) = %v, want ErrEntryExists", err)
	}
	if p, ok, err := crdt.LookupProposal(doc, id2); !ok || err != nil || !p.Same(props[1]) {
		t.Errorf("LookupProposal(%s) = %+v, %v, %v, want %+v, true, nil", id2, p, ok, err, props[1])
	}
	if v, ok, err := crdt.LookupVote(doc, id1); !ok || err != nil || v != votes[0] {
		t.Errorf("LookupVote(%s) = %+v, %v, %v, want %+v, true, nil", id1, v, ok, err, votes[0])
	}
	if s, ok, err := crdt.LookupResetStatement(doc, "jti-1"); !ok || err != nil || s != jwtSample {
		t.Errorf("LookupResetStatement(jti-1) = %q, %v, %v, want the statement, true, nil", s, ok, err)
	}
	if _, ok, err := crdt.LookupProposal(doc, "absent"); ok || err != nil {
		t.Errorf("LookupProposal(absent) = _, %v, %v, want false, nil", ok, err)
	}
	if _, ok, err := crdt.LookupVote(doc, id3); ok || err != nil {
		t.Errorf("LookupVote(absent) = _, %v, %v, want false, nil", ok, err)
	}
	if _, ok, err := crdt.LookupResetStatement(doc, "jti-2"); ok || err != nil {
		t.Errorf("LookupResetStatement(absent) = _, %v, %v, want false, nil", ok, err)
	}
	if err := crdt.PutResetStatement(doc, "jti-1", jwtSample); !errors.Is(err, crdt.ErrEntryExists) {
		t.Errorf("PutResetStatement(existing) = %v, want ErrEntryExists", err)
	}
}

func TestReadJSStyleBallots(t *testing.T) {
	doc := automerge.New()
	tx := func(s string) *automerge.Text { return automerge.NewText(s) }
	payload := automerge.NewMap()
	prop := automerge.NewMap()
	for k, v := range map[string]any{
		"member":    tx("m-bob"),
		"proposals": map[string]any{id1: prop},
		"votes":     map[string]any{id1: map[string]any{"choice": tx("abstain"), "at": t0}},
		"resets":    map[string]any{"j1": tx(jwtSample)},
	} {
		if err := doc.RootMap().Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range map[string]any{"id": tx(id1), "title": tx("Remove"), "kind": tx("member.remove"), "at": tx("2025-03-14T09:26:53.589793Z"), "payload": payload} {
		if err := prop.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := payload.Set("member", tx("m-carol")); err != nil {
		t.Fatal(err)
	}
	got, err := crdt.ReadBallots(mustReload(t, doc))
	if err != nil {
		t.Fatalf("ReadBallots() = %v", err)
	}
	want := crdt.Ballots{
		Member:    "m-bob",
		Proposals: map[string]crdt.Proposal{id1: {ID: id1, Title: "Remove", Kind: "member.remove", Payload: map[string]any{"member": "m-carol"}, At: t0}},
		Votes:     map[string]crdt.Vote{id1: {Proposal: id1, Choice: "abstain", At: t0.Truncate(time.Millisecond)}},
		Resets:    map[string]string{"j1": jwtSample},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReadBallots() (-want +got):\n%s", diff)
	}
}

func TestProposalValidate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*crdt.Proposal)
		rule  string
		field string
	}{
		{"valid", func(p *crdt.Proposal) {}, "", ""},
		{"valid mandate", func(p *crdt.Proposal) {
			p.Kind, p.Payload = "mandate.grant", map[string]any{"member": "m-bob", "issue": "water rights", "scope": "regional council", "deadline": "2025-06-01T00:00:00Z"}
		}, "", ""},
		{"valid draw", func(p *crdt.Proposal) { p.Kind, p.Payload = "role.draw", map[string]any{"role": "r-keeper"} }, "", ""},
		{"valid role.change", func(p *crdt.Proposal) {
			p.Kind, p.Payload = "role.change", map[string]any{"role": "r-keeper", "purpose": "", "term": "720h", "term_limit": 3, "rotation": "draw"}
		}, "", ""},
		{"valid role.retire", func(p *crdt.Proposal) { p.Kind, p.Payload = "role.retire", map[string]any{"role": "keeper"} }, "", ""},
		{"valid member.admit", func(p *crdt.Proposal) { p.Kind, p.Payload = "member.admit", map[string]any{"name": "Dora"} }, "", ""},
		{"role.change changing nothing", func(p *crdt.Proposal) {
			p.Kind, p.Payload = "role.change", map[string]any{"role": "r-keeper", "colour": "red"}
		}, "schema", `"payload"`},
		{"role.change without a role", func(p *crdt.Proposal) { p.Kind, p.Payload = "role.change", map[string]any{"name": "x"} }, "schema", `"payload.role"`},
		{"role.change empty name", func(p *crdt.Proposal) {
			p.Kind, p.Payload = "role.change", map[string]any{"role": "r-keeper", "name": " "}
		}, "schema", `"payload.name"`},
		{"role.change short term", func(p *crdt.Proposal) {
			p.Kind, p.Payload = "role.change", map[string]any{"role": "r-keeper", "term": "30m"}
		}, "schema", `"payload.term"`},
		{"role.change zero term limit", func(p *crdt.Proposal) {
			p.Kind, p.Payload = "role.change", map[string]any{"role": "r-keeper", "term_limit": 0}
		}, "schema", `"payload.term_limit"`},
		{"role.change purpose not text", func(p *crdt.Proposal) {
			p.Kind, p.Payload = "role.change", map[string]any{"role": "r-keeper", "purpose": 4}
		}, "schema", `"payload.purpose"`},
		{"role.change bad rotation", func(p *crdt.Proposal) {
			p.Kind, p.Payload = "role.change", map[string]any{"role": "r-keeper", "rotation": "lottery"}
		}, "schema", `"payload.rotation"`},
		{"role.retire role not an id", func(p *crdt.Proposal) { p.Kind, p.Payload = "role.retire", map[string]any{"role": "the keeper"} }, "schema", `"payload.role"`},
		{"member.admit no name", func(p *crdt.Proposal) { p.Kind, p.Payload = "member.admit", map[string]any{"name": ""} }, "schema", `"payload.name"`},
		{"member.admit long name", func(p *crdt.Proposal) {
			p.Kind, p.Payload = "member.admit", map[string]any{"name": strings.Repeat("n", 101)}
		}, "schema", `"payload.name"`},
		{"id not uuid", func(p *crdt.Proposal) { p.ID = "p1" }, "schema", `"id"`},
		{"unknown kind", func(p *crdt.Proposal) { p.Kind = "coup" }, "schema", `"kind"`},
		{"empty title", func(p *crdt.Proposal) { p.Title = "" }, "schema", `"title"`},
		{"long title", func(p *crdt.Proposal) { p.Title = strings.Repeat("t", 201) }, "schema", `"title"`},
		{"long body", func(p *crdt.Proposal) { p.Body = strings.Repeat("b", 10001) }, "schema", `"body"`},
		{"zero at", func(p *crdt.Proposal) { p.At = time.Time{} }, "schema", `"at"`},
		{"missing term", func(p *crdt.Proposal) { delete(p.Payload, "term") }, "schema", `"payload.term"`},
		{"bad term", func(p *crdt.Proposal) { p.Payload["term"] = "90 days" }, "schema", `"payload.term"`},
		{"fractional term limit", func(p *crdt.Proposal) { p.Payload["term_limit"] = 1.5 }, "schema", `"payload.term_limit"`},
		{"zero term limit", func(p *crdt.Proposal) { p.Payload["term_limit"] = 0 }, "schema", `"payload.term_limit"`},
		{"nested payload", func(p *crdt.Proposal) { p.Payload["x"] = map[string]any{} }, "schema", `"payload.x"`},
		{"long payload string", func(p *crdt.Proposal) { p.Payload["purpose"] = strings.Repeat("p", 2001) }, "schema", `"payload.purpose"`},
		{"policy.set unknown policy", func(p *crdt.Proposal) {
			p.Kind, p.Payload = "policy.set", map[string]any{"name": "nope", "value": "1"}
		}, "policy", "nope"},
		{"policy.set bad value", func(p *crdt.Proposal) {
			p.Kind, p.Payload = "policy.set", map[string]any{"name": "reset.quorum", "value": "1"}
		}, "policy", "reset.quorum"},
		{"assign member not an id", func(p *crdt.Proposal) {
			p.Kind, p.Payload = "role.assign", map[string]any{"role": "r1", "member": "bob smith"}
		}, "schema", `"payload.member"`},
		{"mandate bad deadline", func(p *crdt.Proposal) {
			p.Kind, p.Payload = "mandate.grant", map[string]any{"member": "m-bob", "issue": "i", "scope": "s", "deadline": "June"}
		}, "schema", `"payload.deadline"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := sampleProposal()
			tt.edit(&p)
			err := p.Validate()
			if tt.rule == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			wantRuleError(t, err, tt.rule, tt.field)
			if err := crdt.PutProposal(newBallots(t), p); err == nil {
				t.Errorf("PutProposal() = nil, want an error")
			}
		})
	}
}

func TestVoteAndResetValidate(t *testing.T) {
	tests := []struct {
		name  string
		put   func(*automerge.Doc) error
		field string
	}{
		{"unknown choice", func(d *automerge.Doc) error {
			return crdt.PutVote(d, crdt.Vote{Proposal: id1, Choice: "maybe", At: t0})
		}, `"choice"`},
		{"bad proposal id", func(d *automerge.Doc) error {
			return crdt.PutVote(d, crdt.Vote{Proposal: "a b", Choice: "yes", At: t0})
		}, `"proposal"`},
		{"long reason", func(d *automerge.Doc) error {
			return crdt.PutVote(d, crdt.Vote{Proposal: id1, Choice: "yes", Reason: strings.Repeat("r", 2001), At: t0})
		}, `"reason"`},
		{"vote without time", func(d *automerge.Doc) error { return crdt.PutVote(d, crdt.Vote{Proposal: id1, Choice: "yes"}) }, `"at"`},
		{"bad jti", func(d *automerge.Doc) error { return crdt.PutResetStatement(d, "", jwtSample) }, `"jti"`},
		{"statement not a JWS", func(d *automerge.Doc) error { return crdt.PutResetStatement(d, "j", "hello") }, `"statement"`},
		{"statement with padding", func(d *automerge.Doc) error { return crdt.PutResetStatement(d, "j", "a.b=.c") }, `"statement"`},
		{"statement too long", func(d *automerge.Doc) error {
			return crdt.PutResetStatement(d, "j", "a."+strings.Repeat("b", 4096)+".c")
		}, `"statement"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := newBallots(t)
			wantRuleError(t, tt.put(doc), "schema", tt.field)
			b, err := crdt.ReadBallots(doc)
			if err != nil || len(b.Votes)+len(b.Resets) != 0 {
				t.Errorf("after refused write ReadBallots() = %+v, %v, want empty", b, err)
			}
		})
	}
	if err := crdt.PutVote(automerge.New(), crdt.Vote{Proposal: id1, Choice: "yes", At: t0}); !errors.Is(err, crdt.ErrNotInitialized) {
		t.Errorf("PutVote(empty doc) = %v, want ErrNotInitialized", err)
	}
}

func TestReadBallotsWrongShapes(t *testing.T) {
	tests := []struct {
		name  string
		key   string
		value any
		field string
	}{
		{"proposals a list", "proposals", []any{}, `"proposals"`},
		{"proposal a string", "proposals", map[string]any{id1: "x"}, "must be a map"},
		{"proposal key differs", "proposals", map[string]any{id2: map[string]any{"id": id1, "title": "t", "kind": "charter.ratify", "at": "2025-01-01T00:00:00Z"}}, "differs"},
		{"proposal payload nested", "proposals", map[string]any{id1: map[string]any{"id": id1, "title": "t", "kind": "charter.ratify", "at": "2025-01-01T00:00:00Z", "payload": map[string]any{"x": []any{}}}}, `"payload.x"`},
		{"proposal unknown field", "proposals", map[string]any{id1: map[string]any{"id": id1, "title": "t", "kind": "charter.ratify", "at": "2025-01-01T00:00:00Z", "role": "r"}}, `"role"`},
		{"vote choice number", "votes", map[string]any{id1: map[string]any{"choice": 1.0, "at": "2025-01-01T00:00:00Z"}}, `"choice"`},
		{"vote a counter", "votes", map[string]any{id1: automerge.NewCounter(1)}, "must be a map"},
		{"reset a number", "resets", map[string]any{"j": 5.0}, `"j"`},
		{"reset not a JWS", "resets", map[string]any{"j": "abc"}, `"statement"`},
		{"member a list", "member", []any{"m"}, `"member"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := newBallots(t)
			if err := doc.RootMap().Set(tt.key, tt.value); err != nil {
				t.Fatal(err)
			}
			_, err := crdt.ReadBallots(mustReload(t, doc))
			wantRuleError(t, err, "schema", tt.field)
		})
	}
}
