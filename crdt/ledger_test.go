package crdt_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/circles-coop/circles/crdt"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
)

var t0 = time.Date(2025, 3, 14, 9, 26, 53, 589793000, time.UTC)

const (
	id1 = "0b6c1c5e-2f0a-4c3e-9a57-7d1e6f3b2a10"
	id2 = "5f0e8a4c-1b2d-4e3f-8a9b-0c1d2e3f4a5b"
	id3 = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
)

func sampleEntry(id string) crdt.Entry {
	return crdt.Entry{ID: id, Kind: "hours", Quantity: 2.5, Unit: "h", Note: "weeded the beds", At: t0, Counterparty: "m-bob"}
}

func sampleCredit(id string) crdt.Credit {
	return crdt.Credit{ID: id, To: "m-bob", Amount: 3, Note: "thanks for the ladder", At: t0}
}

func newLedger(tb testing.TB) *automerge.Doc {
	tb.Helper()
	doc := automerge.New()
	if err := crdt.InitLedger(doc, "m-alice", 2); err != nil {
		tb.Fatalf("InitLedger() = %v", err)
	}
	mustCommit(tb, doc)
	return doc
}

func TestLedgerRoundTrip(t *testing.T) {
	entries := []crdt.Entry{
		sampleEntry(id1),
		{ID: id2, Kind: "meal", Quantity: 1, At: t0.Add(time.Hour), Voids: id1},
		{ID: id3, Kind: "other", Quantity: 1e6, Note: "ünïcödé ✓", At: time.Date(2200, 12, 31, 23, 59, 59, 0, time.UTC)},
	}
	credits := []crdt.Credit{sampleCredit(id3), {ID: id1, To: "m-carol", Amount: 0.25, At: t0.Add(-time.Hour)}}

	doc := newLedger(t)
	for _, e := range entries {
		if err := crdt.PutEntry(doc, e); err != nil {
			t.Fatalf("PutEntry(%s) = %v", e.ID, err)
		}
	}
	for _, c := range credits {
		if err := crdt.PutCredit(doc, c); err != nil {
			t.Fatalf("PutCredit(%s) = %v", c.ID, err)
		}
	}
	loaded := mustReload(t, doc)

	gotE, gotC, err := crdt.ReadLedger(loaded)
	if err != nil {
		t.Fatalf("ReadLedger() = %v", err)
	}
	if diff := cmp.Diff(entries, gotE); diff != "" { // already in time order
		t.Errorf("ReadLedger() entries (-want +got):\n%s", diff)
	}
	wantC := []crdt.Credit{credits[1], credits[0]}
	if diff := cmp.Diff(wantC, gotC); diff != "" {
		t.Errorf("ReadLedger() credits (-want +got):\n%s", diff)
	}
	member, segment, err := crdt.LedgerOwner(loaded)
	if member != "m-alice" || segment != 2 || err != nil {
		t.Errorf("LedgerOwner() = %q, %d, %v, want m-alice, 2, nil", member, segment, err)
	}

	for _, e := range entries {
		got, ok, err := crdt.LookupEntry(loaded, e.ID)
		if err != nil || !ok || !got.Same(e) {
			t.Errorf("LookupEntry(%s) = %+v, %v, %v, want %+v, true, nil", e.ID, got, ok, err, e)
		}
	}
	if _, ok, err := crdt.LookupEntry(loaded, "4a1b2c3d-0000-4000-8000-000000000000"); ok || err != nil {
		t.Errorf("LookupEntry(absent) = _, %v, %v, want false, nil", ok, err)
	}
	got, ok, err := crdt.LookupCredit(loaded, id3)
	if err != nil || !ok || !got.Same(credits[0]) {
		t.Errorf("LookupCredit(%s) = %+v, %v, %v, want %+v", id3, got, ok, err, credits[0])
	}
}

func TestPutEntryRefuses(t *testing.T) {
	doc := newLedger(t)
	if err := crdt.PutEntry(doc, sampleEntry(id1)); err != nil {
		t.Fatalf("PutEntry() = %v", err)
	}
	if err := crdt.PutCredit(doc, sampleCredit(id1)); err != nil {
		t.Fatalf("PutCredit() = %v", err)
	}
	mustCommit(t, doc)
	changed := sampleEntry(id1)
	changed.Quantity = 7

	tests := []struct {
		name string
		doc  *automerge.Doc
		put  func(*automerge.Doc) error
		want error
	}{
		{"same entry again", doc, func(d *automerge.Doc) error { return crdt.PutEntry(d, sampleEntry(id1)) }, crdt.ErrEntryExists},
		{"same id other content", doc, func(d *automerge.Doc) error { return crdt.PutEntry(d, changed) }, crdt.ErrEntryExists},
		{"same credit again", doc, func(d *automerge.Doc) error { return crdt.PutCredit(d, sampleCredit(id1)) }, crdt.ErrEntryExists},
		{"entry into empty doc", automerge.New(), func(d *automerge.Doc) error { return crdt.PutEntry(d, sampleEntry(id2)) }, crdt.ErrNotInitialized},
		{"credit into empty doc", automerge.New(), func(d *automerge.Doc) error { return crdt.PutCredit(d, sampleCredit(id2)) }, crdt.ErrNotInitialized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.put(tt.doc); !errors.Is(err, tt.want) {
				t.Errorf("put = %v, want %v", err, tt.want)
			}
		})
	}
	got, _, err := crdt.LookupEntry(doc, id1)
	if err != nil || got.Quantity != 2.5 {
		t.Errorf("after refused overwrite LookupEntry().Quantity = %v (%v), want 2.5", got.Quantity, err)
	}
	if !got.Same(sampleEntry(id1)) || got.Same(changed) {
		t.Errorf("Same() does not tell %+v from %+v", got, changed)
	}
}

// TestPutEntryWritesScalars checks the stored shape: scalar strings, never
// text; float64 numbers; "at" as RFC 3339; optional fields left out.
func TestPutEntryWritesScalars(t *testing.T) {
	doc := newLedger(t)
	e := crdt.Entry{ID: id1, Kind: "lend", Quantity: 1, At: time.Date(2025, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600))}
	if err := crdt.PutEntry(doc, e); err != nil {
		t.Fatal(err)
	}
	doc = mustReload(t, doc)
	got := kindsUnder(t, doc, "entries", id1)
	want := map[string]automerge.Kind{
		"id": automerge.KindStr, "kind": automerge.KindStr, "quantity": automerge.KindFloat64,
		"note": automerge.KindStr, "at": automerge.KindStr,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stored kinds (-want +got):\n%s", diff)
	}
	if got, want := mustGet(t, doc, "entries", id1, "at").Str(), "2025-01-02T02:04:05Z"; got != want {
		t.Errorf("stored at = %q, want %q", got, want)
	}
	root := kindsUnder(t, doc)
	wantRoot := map[string]automerge.Kind{"member": automerge.KindStr, "segment": automerge.KindInt64, "entries": automerge.KindMap, "credits": automerge.KindMap}
	if diff := cmp.Diff(wantRoot, root); diff != "" {
		t.Errorf("ledger root kinds (-want +got):\n%s", diff)
	}
}

// TestReadJSStyleLedger reads a ledger written the way the JS library
// writes by default: strings as text objects, whole numbers as ints, a
// Date as a timestamp.
func TestReadJSStyleLedger(t *testing.T) {
	doc := automerge.New()
	root := doc.RootMap()
	entries := automerge.NewMap()
	credits := automerge.NewMap()
	for k, v := range map[string]any{"member": automerge.NewText("m-alice"), "segment": int64(0), "entries": entries, "credits": credits} {
		if err := root.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	set := func(m *automerge.Map, fields map[string]any) {
		t.Helper()
		for k, v := range fields {
			if err := m.Set(k, v); err != nil {
				t.Fatalf("Set(%s) = %v", k, err)
			}
		}
	}
	e1, e2, c1 := automerge.NewMap(), automerge.NewMap(), automerge.NewMap()
	set(entries, map[string]any{id1: e1, id2: e2})
	set(credits, map[string]any{id3: c1})
	set(e1, map[string]any{
		"id": automerge.NewText(id1), "kind": automerge.NewText("skill"), "quantity": int64(3),
		"unit": automerge.NewText("h"), "note": automerge.NewText("taught pruning 🌳"),
		"at": automerge.NewText("2025-03-14T10:26:53.589793+01:00"), "counterparty": automerge.NewText("m-bob"),
	})
	set(e2, map[string]any{
		"id": id2, "kind": automerge.NewText("meal"), "quantity": uint64(2),
		"note": "", "at": t0.Add(time.Hour), "voids": automerge.NewText(id1),
	})
	set(c1, map[string]any{
		"id": automerge.NewText(id3), "to": automerge.NewText("m-bob"), "amount": 1.5,
		"note": automerge.NewText("seeds"), "at": automerge.NewText("2025-03-14T09:26:53.589793Z"),
	})
	doc = mustReload(t, doc)

	gotE, gotC, err := crdt.ReadLedger(doc)
	if err != nil {
		t.Fatalf("ReadLedger() = %v", err)
	}
	wantE := []crdt.Entry{
		{ID: id1, Kind: "skill", Quantity: 3, Unit: "h", Note: "taught pruning 🌳", At: t0, Counterparty: "m-bob"},
		{ID: id2, Kind: "meal", Quantity: 2, At: t0.Add(time.Hour).Truncate(time.Millisecond), Voids: id1},
	}
	if diff := cmp.Diff(wantE, gotE); diff != "" {
		t.Errorf("ReadLedger() entries (-want +got):\n%s", diff)
	}
	wantC := []crdt.Credit{{ID: id3, To: "m-bob", Amount: 1.5, Note: "seeds", At: t0}}
	if diff := cmp.Diff(wantC, gotC); diff != "" {
		t.Errorf("ReadLedger() credits (-want +got):\n%s", diff)
	}
	if m, _, err := crdt.LedgerOwner(doc); m != "m-alice" || err != nil {
		t.Errorf("LedgerOwner() = %q, %v, want m-alice, nil", m, err)
	}
}

func TestEntryValidate(t *testing.T) {
	long := func(n int) string { return strings.Repeat("é", n) }
	tests := []struct {
		name  string
		edit  func(*crdt.Entry)
		field string // "" means valid
	}{
		{"valid", func(e *crdt.Entry) {}, ""},
		{"valid without optional fields", func(e *crdt.Entry) { e.Unit, e.Note, e.Counterparty = "", "", "" }, ""},
		{"valid note of 2000 chars", func(e *crdt.Entry) { e.Note = long(2000) }, ""},
		{"valid uuid v7", func(e *crdt.Entry) { e.ID = "01890a5d-ac96-774b-bcce-b302099a8057" }, ""},
		{"valid max quantity", func(e *crdt.Entry) { e.Quantity = 1e6 }, ""},
		{"empty id", func(e *crdt.Entry) { e.ID = "" }, `"id"`},
		{"id not a uuid", func(e *crdt.Entry) { e.ID = "entry-1" }, `"id"`},
		{"id uppercase", func(e *crdt.Entry) { e.ID = strings.ToUpper(id1) }, `"id"`},
		{"id without hyphens", func(e *crdt.Entry) { e.ID = strings.ReplaceAll(id1, "-", "") }, `"id"`},
		{"id in braces", func(e *crdt.Entry) { e.ID = "{" + id1 + "}" }, `"id"`},
		{"id urn", func(e *crdt.Entry) { e.ID = "urn:uuid:" + id1 }, `"id"`},
		{"empty kind", func(e *crdt.Entry) { e.Kind = "" }, `"kind"`},
		{"unknown kind", func(e *crdt.Entry) { e.Kind = "money" }, `"kind"`},
		{"kind wrong case", func(e *crdt.Entry) { e.Kind = "Hours" }, `"kind"`},
		{"zero quantity", func(e *crdt.Entry) { e.Quantity = 0 }, `"quantity"`},
		{"negative quantity", func(e *crdt.Entry) { e.Quantity = -1 }, `"quantity"`},
		{"NaN quantity", func(e *crdt.Entry) { e.Quantity = math.NaN() }, `"quantity"`},
		{"infinite quantity", func(e *crdt.Entry) { e.Quantity = math.Inf(1) }, `"quantity"`},
		{"huge quantity", func(e *crdt.Entry) { e.Quantity = 1e6 + 1 }, `"quantity"`},
		{"note too long", func(e *crdt.Entry) { e.Note = long(2001) }, `"note"`},
		{"note not utf-8", func(e *crdt.Entry) { e.Note = "\xff\xfe" }, `"note"`},
		{"unit too long", func(e *crdt.Entry) { e.Unit = strings.Repeat("h", 33) }, `"unit"`},
		{"zero at", func(e *crdt.Entry) { e.At = time.Time{} }, `"at"`},
		{"at before 2000", func(e *crdt.Entry) { e.At = time.Date(1999, 12, 31, 23, 0, 0, 0, time.UTC) }, `"at"`},
		{"at after 2200", func(e *crdt.Entry) { e.At = time.Date(2201, 1, 1, 0, 0, 0, 0, time.UTC) }, `"at"`},
		{"counterparty too long", func(e *crdt.Entry) { e.Counterparty = strings.Repeat("m", 65) }, `"counterparty"`},
		{"counterparty with space", func(e *crdt.Entry) { e.Counterparty = "m bob" }, `"counterparty"`},
		{"counterparty with slash", func(e *crdt.Entry) { e.Counterparty = "../roster" }, `"counterparty"`},
		{"voids with quote", func(e *crdt.Entry) { e.Voids = `a"b` }, `"voids"`},
		{"voids too long", func(e *crdt.Entry) { e.Voids = strings.Repeat("v", 65) }, `"voids"`},
		{"voids itself", func(e *crdt.Entry) { e.Voids = e.ID }, `"voids"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := sampleEntry(id1)
			tt.edit(&e)
			err := e.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			wantRuleError(t, err, "schema", tt.field)
			// What Validate refuses, PutEntry must not write.
			doc := newLedger(t)
			if err := crdt.PutEntry(doc, e); err == nil {
				t.Errorf("PutEntry() = nil, want an error")
			}
			if n := mustGet(t, doc, "entries").Map().Len(); n != 0 {
				t.Errorf("after refused PutEntry, entries has %d items, want 0", n)
			}
		})
	}
}

func TestCreditValidate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*crdt.Credit)
		field string
	}{
		{"valid", func(c *crdt.Credit) {}, ""},
		{"valid empty note", func(c *crdt.Credit) { c.Note = "" }, ""},
		{"valid uuid id as receiver", func(c *crdt.Credit) { c.To = id2 }, ""},
		{"empty id", func(c *crdt.Credit) { c.ID = "" }, `"id"`},
		{"id not a uuid", func(c *crdt.Credit) { c.ID = "credit-1" }, `"id"`},
		{"id uppercase", func(c *crdt.Credit) { c.ID = strings.ToUpper(id3) }, `"id"`},
		{"id too short", func(c *crdt.Credit) { c.ID = id3[:35] }, `"id"`},
		{"empty to", func(c *crdt.Credit) { c.To = "" }, `"to"`},
		{"to with newline", func(c *crdt.Credit) { c.To = "m\nbob" }, `"to"`},
		{"to too long", func(c *crdt.Credit) { c.To = strings.Repeat("b", 65) }, `"to"`},
		{"zero amount", func(c *crdt.Credit) { c.Amount = 0 }, `"amount"`},
		{"negative amount", func(c *crdt.Credit) { c.Amount = -3 }, `"amount"`},
		{"NaN amount", func(c *crdt.Credit) { c.Amount = math.NaN() }, `"amount"`},
		{"-Inf amount", func(c *crdt.Credit) { c.Amount = math.Inf(-1) }, `"amount"`},
		{"huge amount", func(c *crdt.Credit) { c.Amount = 2e6 }, `"amount"`},
		{"note too long", func(c *crdt.Credit) { c.Note = strings.Repeat("x", 2001) }, `"note"`},
		{"note not utf-8", func(c *crdt.Credit) { c.Note = "ok\xc3" }, `"note"`},
		{"zero at", func(c *crdt.Credit) { c.At = time.Time{} }, `"at"`},
		{"at in 1970", func(c *crdt.Credit) { c.At = time.Unix(0, 0) }, `"at"`},
		{"at in 3000", func(c *crdt.Credit) { c.At = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC) }, `"at"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := sampleCredit(id3)
			tt.edit(&c)
			err := c.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			wantRuleError(t, err, "schema", tt.field)
			if err := crdt.PutCredit(newLedger(t), c); err == nil {
				t.Errorf("PutCredit() = nil, want an error")
			}
		})
	}
}

// TestReadEntryWrongShapes stores malformed entries and checks that
// ReadEntry reports a schema RuleError naming the problem, and never
// panics.
func TestReadEntryWrongShapes(t *testing.T) {
	good := func() map[string]any {
		return map[string]any{"id": id1, "kind": "hours", "quantity": 2.0, "note": "n", "at": "2025-03-14T09:26:53Z"}
	}
	with := func(k string, v any) map[string]any {
		m := good()
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name  string
		value any // written as entries["x"]
		field string
	}{
		{"string instead of map", "not an entry", "must be a map"},
		{"number instead of map", 42.0, "must be a map"},
		{"list instead of map", []any{"a", "b"}, "must be a map"},
		{"text instead of map", automerge.NewText("hi"), "must be a map"},
		{"counter instead of map", automerge.NewCounter(3), "must be a map"},
		{"missing id", with("id", nil), `"id"`},
		{"missing kind", with("kind", nil), `"kind"`},
		{"missing quantity", with("quantity", nil), `"quantity"`},
		{"missing at", with("at", nil), `"at"`},
		{"id as number", with("id", 7.0), `"id"`},
		{"id as bytes", with("id", []byte("abc")), `"id"`},
		{"kind as bool", with("kind", true), `"kind"`},
		{"kind as map", with("kind", map[string]any{"a": "b"}), `"kind"`},
		{"quantity as string", with("quantity", "2"), `"quantity"`},
		{"quantity as text", with("quantity", automerge.NewText("2")), `"quantity"`},
		{"quantity as counter", with("quantity", automerge.NewCounter(2)), `"quantity"`},
		{"quantity as list", with("quantity", []any{2.0}), `"quantity"`},
		{"quantity negative int", with("quantity", int64(-2)), `"quantity"`},
		{"quantity NaN", with("quantity", math.NaN()), `"quantity"`},
		{"note as number", with("note", 1.0), `"note"`},
		{"note as list", with("note", []any{"a"}), `"note"`},
		{"note text too long", with("note", automerge.NewText(strings.Repeat("x", 2001))), `"note"`},
		{"unit too long", with("unit", strings.Repeat("u", 33)), `"unit"`},
		{"at as number", with("at", 1.7e12), `"at"`},
		{"at not RFC 3339", with("at", "14 March 2025"), `"at"`},
		{"at as date only", with("at", "2025-03-14"), `"at"`},
		{"at in 1900", with("at", "1900-01-01T00:00:00Z"), `"at"`},
		{"counterparty as bool", with("counterparty", false), `"counterparty"`},
		{"voids as map", with("voids", map[string]any{}), `"voids"`},
		{"id not a uuid", with("id", "x"), `"id"`},
		{"unknown field", with("extra", "x"), `"extra"`},
	}
	doc := newLedger(t)
	entries := mustGet(t, doc, "entries").Map()
	for i, tt := range tests {
		if err := entries.Set(fmt.Sprint(i), tt.value); err != nil {
			t.Fatalf("%s: Set() = %v", tt.name, err)
		}
	}
	doc = mustReload(t, doc)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := mustGet(t, doc, "entries", fmt.Sprint(i))
			var err error
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("ReadEntry() panicked: %v", r)
					}
				}()
				_, err = crdt.ReadEntry(v)
			}()
			wantRuleError(t, err, "schema", tt.field)
		})
	}
	if _, _, err := crdt.ReadLedger(doc); err == nil {
		t.Errorf("ReadLedger() of a ledger with bad entries = nil, want an error")
	}
}

func TestReadLedgerShapes(t *testing.T) {
	tests := []struct {
		name    string
		build   func(*automerge.Map) error
		entries int
		rule    string // "" means no error
	}{
		{"empty doc reads as empty", func(*automerge.Map) error { return nil }, 0, ""},
		{"entries not a map", func(r *automerge.Map) error { return r.Set("entries", "x") }, 0, "schema"},
		{"credits a list", func(r *automerge.Map) error { return r.Set("credits", []any{}) }, 0, "schema"},
		{"key differs from id", func(r *automerge.Map) error {
			e := sampleEntry(id1)
			return r.Set("entries", map[string]any{id2: map[string]any{"id": e.ID, "kind": e.Kind, "quantity": e.Quantity, "note": "", "at": "2025-01-01T00:00:00Z"}})
		}, 0, "schema"},
		{"one good entry", func(r *automerge.Map) error {
			return r.Set("entries", map[string]any{id1: map[string]any{"id": id1, "kind": "meal", "quantity": int64(1), "at": "2025-01-01T00:00:00Z"}})
		}, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := automerge.New()
			if err := tt.build(doc.RootMap()); err != nil {
				t.Fatal(err)
			}
			doc = mustReload(t, doc)
			entries, _, err := crdt.ReadLedger(doc)
			if tt.rule != "" {
				wantRuleError(t, err, tt.rule, "")
				return
			}
			if err != nil || len(entries) != tt.entries {
				t.Errorf("ReadLedger() = %d entries, %v, want %d, nil", len(entries), err, tt.entries)
			}
		})
	}
}

// TestConcurrentEntriesMerge checks that entries two devices log offline
// both survive the merge.
func TestConcurrentEntriesMerge(t *testing.T) {
	server := newLedger(t)
	phone, err := server.Fork()
	if err != nil {
		t.Fatal(err)
	}
	laptop, err := server.Fork()
	if err != nil {
		t.Fatal(err)
	}
	if err := crdt.PutEntry(phone, sampleEntry(id1)); err != nil {
		t.Fatal(err)
	}
	if err := crdt.PutEntry(laptop, sampleEntry(id2)); err != nil {
		t.Fatal(err)
	}
	mustCommit(t, phone)
	mustCommit(t, laptop)
	for _, d := range []*automerge.Doc{phone, laptop} {
		if _, err := server.Merge(d); err != nil {
			t.Fatal(err)
		}
	}
	entries, _, err := crdt.ReadLedger(server)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(entries), 2; got != want {
		t.Errorf("merged ledger has %d entries, want %d", got, want)
	}
}

func BenchmarkReadLedger(b *testing.B) {
	doc := newLedger(b)
	for i := range 2000 {
		e := sampleEntry(uuid.NewString())
		e.At = t0.Add(time.Duration(i) * time.Minute)
		e.Quantity = float64(i%8 + 1)
		if err := crdt.PutEntry(doc, e); err != nil {
			b.Fatal(err)
		}
		mustCommit(b, doc) // one change per entry, as devices write them
	}
	doc = mustReload(b, doc)
	b.ResetTimer()
	for b.Loop() {
		entries, _, err := crdt.ReadLedger(doc)
		if err != nil || len(entries) != 2000 {
			b.Fatalf("ReadLedger() = %d entries, %v", len(entries), err)
		}
	}
}
