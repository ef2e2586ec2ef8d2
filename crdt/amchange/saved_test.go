package amchange_test

import (
	"fmt"
	"testing"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/crdt/amchange"
)

// TestSavedHeads: the heads read from a save's header are the document's
// heads, for documents of one or several actors and concurrent branches;
// anything that is not exactly one document chunk is declined.
func TestSavedHeads(t *testing.T) {
	docs := map[string]*automerge.Doc{"empty": automerge.New()}
	extra := automerge.New()
	if err := extra.RootMap().Set("e", true); err != nil {
		t.Fatal(err)
	}
	if _, err := extra.Commit("e"); err != nil {
		t.Fatal(err)
	}
	chunk := extra.SaveIncremental()
	one := automerge.New()
	for i := range 50 {
		if err := one.RootMap().Set(fmt.Sprint("k", i), int64(i)); err != nil {
			t.Fatal(err)
		}
		if _, err := one.Commit("c"); err != nil {
			t.Fatal(err)
		}
	}
	docs["one actor, 50 changes"] = one
	// Three actors writing concurrently: three heads.
	base := automerge.New()
	if err := base.RootMap().Set("x", "y"); err != nil {
		t.Fatal(err)
	}
	if _, err := base.Commit("base"); err != nil {
		t.Fatal(err)
	}
	merged, _ := base.Fork()
	for a := range 3 {
		f, err := base.Fork()
		if err != nil {
			t.Fatal(err)
		}
		if err := f.RootMap().Set(fmt.Sprint("a", a), int64(a)); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Commit("branch"); err != nil {
			t.Fatal(err)
		}
		if _, err := merged.Merge(f); err != nil {
			t.Fatal(err)
		}
	}
	if len(merged.Heads()) != 3 {
		t.Fatalf("merged has %d heads, want 3", len(merged.Heads()))
	}
	docs["three branches"] = merged
	for name, d := range docs {
		saved := d.Save()
		heads, ok := amchange.SavedHeads[automerge.ChangeHash](saved)
		if !ok {
			t.Fatalf("%s: heads not read from the save", name)
		}
		if !crdt.SameHeads(heads, d.Heads()) {
			t.Fatalf("%s: read heads %v, document has %v", name, heads, d.Heads())
		}
		// A save followed by a change chunk: declined.
		if _, ok := amchange.SavedHeads[automerge.ChangeHash](append(saved, chunk...)); ok {
			t.Fatalf("%s: a save with a trailing chunk was read", name)
		}
		for _, cut := range []int{0, 5, 9, len(saved) / 2, len(saved) - 1} {
			if cut < len(saved) {
				if _, ok := amchange.SavedHeads[automerge.ChangeHash](saved[:cut]); ok {
					t.Fatalf("%s: a save cut at %d bytes was read", name, cut)
				}
			}
		}
	}
	if _, ok := amchange.SavedHeads[automerge.ChangeHash](chunk); ok {
		t.Fatal("a change chunk was read as a save")
	}
}
