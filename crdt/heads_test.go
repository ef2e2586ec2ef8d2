package crdt_test

import (
	"testing"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
)

func TestSameHeads(t *testing.T) {
	h := func(b byte) automerge.ChangeHash { return automerge.ChangeHash{0: b, 31: b} }
	x, y, z := h(1), h(2), h(3)
	tests := []struct {
		name string
		a, b []automerge.ChangeHash
		want bool
	}{
		{"both empty", nil, []automerge.ChangeHash{}, true},
		{"empty and one", nil, []automerge.ChangeHash{x}, false},
		{"equal", []automerge.ChangeHash{x, y}, []automerge.ChangeHash{x, y}, true},
		{"other order", []automerge.ChangeHash{y, x}, []automerge.ChangeHash{x, y}, true},
		{"one differs", []automerge.ChangeHash{x, y}, []automerge.ChangeHash{x, z}, false},
		{"longer", []automerge.ChangeHash{x, y}, []automerge.ChangeHash{x, y, z}, false},
		{"repeated hash is not another", []automerge.ChangeHash{x, x}, []automerge.ChangeHash{x, y}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := crdt.SameHeads(tt.a, tt.b); got != tt.want {
				t.Errorf("SameHeads(%d, %d hashes) = %v, want %v", len(tt.a), len(tt.b), got, tt.want)
			}
			if got := crdt.SameHeads(tt.b, tt.a); got != tt.want {
				t.Errorf("SameHeads swapped = %v, want %v", got, tt.want)
			}
		})
	}

	// On real documents: a commit changes the heads; two concurrent
	// changes merged give two heads, equal on both sides.
	a := automerge.New()
	before := a.Heads()
	if err := a.RootMap().Set("n", int64(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Commit("one"); err != nil {
		t.Fatal(err)
	}
	if crdt.SameHeads(before, a.Heads()) {
		t.Errorf("SameHeads(before, after a commit) = true, want false")
	}
	b, err := a.Fork()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []*automerge.Doc{a, b} {
		if err := d.RootMap().Set("n", int64(2)); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Commit("two"); err != nil {
			t.Fatal(err)
		}
	}
	if crdt.SameHeads(a.Heads(), b.Heads()) {
		t.Errorf("SameHeads of diverged documents = true, want false")
	}
	if _, err := a.Merge(b); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Merge(a); err != nil {
		t.Fatal(err)
	}
	if len(a.Heads()) != 2 || !crdt.SameHeads(a.Heads(), b.Heads()) {
		t.Errorf("merged heads %x and %x, want the same two", a.Heads(), b.Heads())
	}
}
