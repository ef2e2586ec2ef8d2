package client

import (
	"fmt"
	"slices"
	"testing"

	"github.com/automerge/automerge-go"
)

// TestSaveHeads: the heads read from a save's header are the document's,
// and anything but one document chunk is not read.
func TestSaveHeads(t *testing.T) {
	d := automerge.New()
	for i := range 3 {
		_ = d.RootMap().Set(fmt.Sprint("k", i), int64(i))
		if _, err := d.Commit("c"); err != nil {
			t.Fatal(err)
		}
	}
	other, err := d.Fork()
	if err != nil {
		t.Fatal(err)
	}
	_ = other.RootMap().Set("x", true)
	if _, err := other.Commit("x"); err != nil {
		t.Fatal(err)
	}
	_ = d.RootMap().Set("y", true)
	if _, err := d.Commit("y"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Merge(other); err != nil {
		t.Fatal(err)
	}
	save := d.Save()
	got, ok := saveHeads(save)
	want := d.Heads()
	if !ok || len(want) != 2 || !slices.Equal(got, want) {
		t.Fatalf("saveHeads = %v, %v; want %v", got, ok, want)
	}
	_ = d.RootMap().Set("z", true)
	if _, err := d.Commit("z"); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"save and a change": append(slices.Clone(save), d.SaveIncremental()...),
		"truncated":         save[:len(save)-1],
		"empty":             nil,
		"not automerge":     []byte("hello, world"),
	} {
		if _, ok := saveHeads(b); ok {
			t.Errorf("%s: read heads from it", name)
		}
	}
}
