package engine

import (
	"fmt"
	"testing"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
)

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
