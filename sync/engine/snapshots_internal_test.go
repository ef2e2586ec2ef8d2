package engine

import (
	"fmt"
	"testing"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
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
		heads, ok := savedHeads(saved)
		if !ok {
			t.Fatalf("%s: heads not read from the save", name)
		}
		if !crdt.SameHeads(heads, d.Heads()) {
			t.Fatalf("%s: read heads %v, document has %v", name, heads, d.Heads())
		}
		// A save followed by a change chunk: declined.
		if _, ok := savedHeads(append(saved, chunk...)); ok {
			t.Fatalf("%s: a save with a trailing chunk was read", name)
		}
		for _, cut := range []int{0, 5, 9, len(saved) / 2, len(saved) - 1} {
			if cut < len(saved) {
				if _, ok := savedHeads(saved[:cut]); ok {
					t.Fatalf("%s: a save cut at %d bytes was read", name, cut)
				}
			}
		}
	}
	if _, ok := savedHeads(chunk); ok {
		t.Fatal("a change chunk was read as a save")
	}
}

// TestEncodeInSync: the handmade message decodes as automerge's own, and
// a peer holding exactly those heads, answered with it, has nothing more
// to say; a peer missing changes still asks for them.
func TestEncodeInSync(t *testing.T) {
	d := automerge.New()
	for i := range 20 {
		if err := d.RootMap().Set(fmt.Sprint("k", i), int64(i)); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Commit("c"); err != nil {
			t.Fatal(err)
		}
	}
	msg := encodeInSync(d.Heads())
	sm, err := automerge.LoadSyncMessage(msg)
	if err != nil {
		t.Fatalf("automerge does not read the message: %v", err)
	}
	if !crdt.SameHeads(sm.Heads(), d.Heads()) || len(sm.Changes()) != 0 {
		t.Fatalf("decoded heads %v (%d changes), want %v", sm.Heads(), len(sm.Changes()), d.Heads())
	}
	// A peer holding the same document.
	peer, err := automerge.Load(d.Save())
	if err != nil {
		t.Fatal(err)
	}
	ss := automerge.NewSyncState(peer)
	if _, ok := ss.GenerateMessage(); !ok {
		t.Fatal("a fresh peer had nothing to say")
	}
	if _, err := ss.ReceiveMessage(msg); err != nil {
		t.Fatal(err)
	}
	if m, ok := ss.GenerateMessage(); ok {
		t.Fatalf("after the in-sync answer the peer still says %d bytes", len(m.Bytes()))
	}
	// A peer holding less: the message makes it ask for the rest.
	less, err := d.Fork(d.Heads()...)
	if err != nil {
		t.Fatal(err)
	}
	if err := less.RootMap().Set("mine", true); err != nil {
		t.Fatal(err)
	}
	if _, err := less.Commit("mine"); err != nil {
		t.Fatal(err)
	}
	ss2 := automerge.NewSyncState(less)
	ss2.GenerateMessage()
	if _, err := ss2.ReceiveMessage(msg); err != nil {
		t.Fatal(err)
	}
	m, ok := ss2.GenerateMessage()
	if !ok {
		t.Fatal("a peer with a change of its own stayed silent")
	}
	if got, _ := automerge.LoadSyncMessage(m.Bytes()); len(got.Changes()) != 1 {
		t.Fatalf("the peer sent %d changes, want its 1", len(got.Changes()))
	}
}
