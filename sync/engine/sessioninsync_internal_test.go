package engine

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/automerge/automerge-go"
)

// TestEncodeSyncState: the handmade state is byte for byte what automerge
// saves for a peer that shares exactly those heads, and automerge loads
// it.
func TestEncodeSyncState(t *testing.T) {
	d := automerge.New()
	for i := range 5 {
		if err := d.RootMap().Set(fmt.Sprint("k", i), int64(i)); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Commit("c"); err != nil {
			t.Fatal(err)
		}
	}
	// Two heads: a fork merged in.
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
	// A peer that starts empty and syncs to the end with d.
	peer := automerge.New()
	a, b := automerge.NewSyncState(d), automerge.NewSyncState(peer)
	for range 10 {
		m1, ok1 := a.GenerateMessage()
		if ok1 {
			if _, err := b.ReceiveMessage(m1.Bytes()); err != nil {
				t.Fatal(err)
			}
		}
		m2, ok2 := b.GenerateMessage()
		if ok2 {
			if _, err := a.ReceiveMessage(m2.Bytes()); err != nil {
				t.Fatal(err)
			}
		}
		if !ok1 && !ok2 {
			break
		}
	}
	want := a.Save()
	got := encodeSyncState(d.Heads())
	if len(d.Heads()) != 2 || !bytes.Equal(got, want) {
		t.Fatalf("encodeSyncState(%d heads) = %x, automerge saves %x", len(d.Heads()), got, want)
	}
	if _, err := automerge.LoadSyncState(d, got); err != nil {
		t.Fatalf("automerge does not load the state: %v", err)
	}
}
