package crdt_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
)

// TestEntryFromOpsMatchesDocument: an entry read from a change's
// operations is the entry read from the document after applying it, and
// a bad one is refused with the same error, for every kind of value.
func TestEntryFromOpsMatchesDocument(t *testing.T) {
	const id = "6f1c2a7e-9d4b-4c1e-8f3a-2b5d7e9c1a40"
	at := time.Date(2026, 5, 1, 18, 0, 0, 0, time.UTC)
	base := func() map[string]any {
		return map[string]any{"id": id, "kind": "meal", "quantity": 1.5, "note": "soup for six", "at": "2026-05-01T18:00:00Z"}
	}
	cases := []struct {
		name string
		mod  func(map[string]any)
	}{
		{"plain", func(map[string]any) {}},
		{"int quantity", func(m map[string]any) { m["quantity"] = int64(3) }},
		{"uint quantity", func(m map[string]any) { m["quantity"] = uint64(4) }},
		{"time value", func(m map[string]any) { m["at"] = at }},
		{"all optional fields", func(m map[string]any) { m["unit"] = "h"; m["counterparty"] = "m_abc"; m["voids"] = "m_x" }},
		{"missing kind", func(m map[string]any) { delete(m, "kind") }},
		{"quantity as string", func(m map[string]any) { m["quantity"] = "two" }},
		{"negative quantity", func(m map[string]any) { m["quantity"] = -1.0 }},
		{"at not a time", func(m map[string]any) { m["at"] = "yesterday" }},
		{"at as number", func(m map[string]any) { m["at"] = 12.0 }},
		{"unknown field", func(m map[string]any) { m["colour"] = "red" }},
		{"note as bool", func(m map[string]any) { m["note"] = true }},
		{"id not an id", func(m map[string]any) { m["id"] = "no spaces allowed here" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, heads := newLedgerDoc(t)
			fields := base()
			tc.mod(fields)
			if err := d.Path("entries", id).Set(fields); err != nil {
				t.Fatal(err)
			}
			if _, err := d.Commit("entry"); err != nil {
				t.Fatal(err)
			}
			nm := newEntryMap(t, d, heads, id)
			if nm == nil || nm.Nested {
				t.Fatalf("NewMaps = %+v, want the scalar fields of the new entry", nm)
			}
			assertEntryAsInDocument(t, d, nm, id)
		})
	}
}

// TestEntryFromTextOpsMatchesDocument: an entry whose strings are
// automerge text (what JS automerge writes by default) is read from the
// operations when each text was written in one run, and is then the entry
// read from the document, refusals included; a text edited any other way
// in the batch is left to the document (Nested).
func TestEntryFromTextOpsMatchesDocument(t *testing.T) {
	const id = "6f1c2a7e-9d4b-4c1e-8f3a-2b5d7e9c1a40"
	long := ""
	for range crdt.MaxNoteLen + 1 {
		long += "é"
	}
	txt := func(s string) *automerge.Text { return automerge.NewText(s) }
	cases := []struct {
		name       string
		fields     map[string]any
		edit       func(d *automerge.Doc) error // in a second change of the batch
		wantNested bool
	}{
		{name: "all text", fields: map[string]any{"id": txt(id), "kind": txt("meal"), "quantity": 1.0, "note": txt("soup for six 🍲"), "at": txt("2026-05-01T18:00:00Z")}},
		{name: "empty note", fields: map[string]any{"id": txt(id), "kind": txt("meal"), "quantity": 1.0, "note": txt(""), "at": txt("2026-05-01T18:00:00Z")}},
		{name: "note too long", fields: map[string]any{"id": txt(id), "kind": txt("meal"), "quantity": 1.0, "note": txt(long), "at": txt("2026-05-01T18:00:00Z")}},
		{name: "id differs", fields: map[string]any{"id": txt("m_other"), "kind": txt("meal"), "quantity": 1.0, "at": txt("2026-05-01T18:00:00Z")}},
		{name: "at not a time", fields: map[string]any{"id": txt(id), "kind": txt("meal"), "quantity": 1.0, "at": txt("soon")}},
		{name: "note edited in the middle", fields: map[string]any{"id": txt(id), "kind": txt("meal"), "quantity": 1.0, "note": txt("soup"), "at": txt("2026-05-01T18:00:00Z")},
			edit: func(d *automerge.Doc) error {
				v, err := d.Path("entries", id, "note").Get()
				if err != nil {
					return err
				}
				return v.Text().Insert(2, "xx")
			}, wantNested: true},
		{name: "note shortened", fields: map[string]any{"id": txt(id), "kind": txt("meal"), "quantity": 1.0, "note": txt("soup"), "at": txt("2026-05-01T18:00:00Z")},
			edit: func(d *automerge.Doc) error {
				v, err := d.Path("entries", id, "note").Get()
				if err != nil {
					return err
				}
				return v.Text().Delete(3, 1)
			}, wantNested: true},
		{name: "note appended", fields: map[string]any{"id": txt(id), "kind": txt("meal"), "quantity": 1.0, "note": txt("soup"), "at": txt("2026-05-01T18:00:00Z")},
			edit: func(d *automerge.Doc) error {
				v, err := d.Path("entries", id, "note").Get()
				if err != nil {
					return err
				}
				return v.Text().Append(" for six")
			}},
		{name: "text replaced by a string", fields: map[string]any{"id": txt(id), "kind": txt("meal"), "quantity": 1.0, "note": txt("soup"), "at": txt("2026-05-01T18:00:00Z")},
			edit: func(d *automerge.Doc) error { return d.Path("entries", id, "note").Set("bread") }, wantNested: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, heads := newLedgerDoc(t)
			if err := d.Path("entries", id).Set(tc.fields); err != nil {
				t.Fatal(err)
			}
			if _, err := d.Commit("entry"); err != nil {
				t.Fatal(err)
			}
			if tc.edit != nil {
				if err := tc.edit(d); err != nil {
					t.Fatal(err)
				}
				if _, err := d.Commit("edit"); err != nil {
					t.Fatal(err)
				}
			}
			nm := newEntryMap(t, d, heads, id)
			if nm == nil {
				t.Fatal("NewMaps does not report the new entry")
			}
			if nm.Nested != tc.wantNested {
				t.Fatalf("NewMaps Nested = %v, want %v", nm.Nested, tc.wantNested)
			}
			if nm.Nested {
				return
			}
			assertEntryAsInDocument(t, d, nm, id)
		})
	}
}

// TestNewMapsLeavesWideMapsToTheDocument: a new map with more keys than
// any record has is not followed key by key (its search would grow with
// what a device sends); it is marked Nested, so the policy reads it from
// the document and refuses it there, with the same message. Up to the
// bound, later puts to a key replace its value and deletes remove it.
func TestNewMapsLeavesWideMapsToTheDocument(t *testing.T) {
	const id = "6f1c2a7e-9d4b-4c1e-8f3a-2b5d7e9c1a41"
	for _, tc := range []struct {
		name       string
		extra      int
		wantNested bool
	}{
		{"one extra key left after a delete", 2, false},
		{"more keys than the bound", 40, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, heads := newLedgerDoc(t)
			fields := map[string]any{"id": id, "kind": "meal", "quantity": 1.5, "note": "first", "at": "2026-05-01T18:00:00Z"}
			for i := range tc.extra {
				fields[fmt.Sprintf("x%02d", i)] = int64(i)
			}
			if err := d.Path("entries", id).Set(fields); err != nil {
				t.Fatal(err)
			}
			entry := d.Path("entries", id).Map()
			if err := entry.Set("note", "second"); err != nil {
				t.Fatal(err)
			}
			if err := entry.Delete("x00"); err != nil {
				t.Fatal(err)
			}
			if _, err := d.Commit("entry"); err != nil {
				t.Fatal(err)
			}
			nm := newEntryMap(t, d, heads, id)
			if nm == nil || nm.Nested != tc.wantNested {
				t.Fatalf("NewMaps = %+v, want Nested %v", nm, tc.wantNested)
			}
			_, _, wantErr := crdt.LookupEntry(d, id)
			if wantErr == nil {
				t.Fatal("LookupEntry accepted an entry with unknown fields")
			}
			if nm.Nested {
				return
			}
			if v, _ := nm.Fields.Get("note"); v.Str != "second" {
				t.Errorf("note = %v, want the later put", v)
			}
			if _, ok := nm.Fields.Get("x00"); ok {
				t.Error("a deleted key is still among the fields")
			}
			if len(nm.Fields) != 5+tc.extra-1 {
				t.Errorf("%d fields, want %d", len(nm.Fields), 5+tc.extra-1)
			}
			if _, gotErr := crdt.EntryFromFields(nm.Fields); gotErr == nil || gotErr.Error() != wantErr.Error() {
				t.Errorf("EntryFromFields error %v, want %v (as read from the document)", gotErr, wantErr)
			}
		})
	}
}

// newLedgerDoc returns a ledger document as the server creates it, and
// its heads.
func newLedgerDoc(t *testing.T) (*automerge.Doc, []automerge.ChangeHash) {
	t.Helper()
	d := automerge.New()
	if err := crdt.InitLedger(d, "m_abc", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Commit("init"); err != nil {
		t.Fatal(err)
	}
	return d, d.Heads()
}

// newEntryMap decodes the changes made to d since heads and returns what
// NewMaps reports for the new entry id (nil if nothing).
func newEntryMap(t *testing.T, d *automerge.Doc, heads []automerge.ChangeHash, id string) *crdt.NewMap {
	t.Helper()
	roots, decoded := decodedSince(t, d, heads)
	return crdt.NewMaps(roots, decoded)[crdt.Added{Container: "entries", Key: id}]
}

// assertEntryAsInDocument fails unless the entry built from nm's fields
// is the entry read from the document, refusal messages included.
func assertEntryAsInDocument(t *testing.T, d *automerge.Doc, nm *crdt.NewMap, id string) {
	t.Helper()
	got, gotErr := crdt.EntryFromFields(nm.Fields)
	want, _, wantErr := crdt.LookupEntry(d, id)
	if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
		t.Fatalf("EntryFromFields error %v, want %v (as read from the document)", gotErr, wantErr)
	}
	if gotErr == nil && !got.Same(want) {
		t.Errorf("EntryFromFields = %+v, want %+v", got, want)
	}
}

// TestNewMapsTextPastTheFieldBound: a text written in one run counts
// against the same bound as the scalar fields: a new map whose scalars
// already fill it is left to the document when a text comes on top.
func TestNewMapsTextPastTheFieldBound(t *testing.T) {
	const id = "6f1c2a7e-9d4b-4c1e-8f3a-2b5d7e9c1a42"
	for _, tc := range []struct {
		name       string
		extra      int // scalar keys beyond id, kind, quantity and at
		wantNested bool
	}{
		{"room for the text", 27, false}, // 31 scalars and the text
		{"no room left", 28, true},       // 32 scalars, then the text
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, heads := newLedgerDoc(t)
			fields := map[string]any{"id": id, "kind": "meal", "quantity": 1.5, "at": "2026-05-01T18:00:00Z",
				"note": automerge.NewText("soup for six")}
			for i := range tc.extra {
				fields[fmt.Sprintf("x%02d", i)] = int64(i)
			}
			if err := d.Path("entries", id).Set(fields); err != nil {
				t.Fatal(err)
			}
			if _, err := d.Commit("entry"); err != nil {
				t.Fatal(err)
			}
			nm := newEntryMap(t, d, heads, id)
			if nm == nil || nm.Nested != tc.wantNested {
				t.Fatalf("NewMaps = %+v, want Nested %v", nm, tc.wantNested)
			}
			if !nm.Nested {
				if v, ok := nm.Fields.Get("note"); !ok || v.Str != "soup for six" {
					t.Errorf("note = %v, %v; want the text's content", v, ok)
				}
			}
		})
	}
}
