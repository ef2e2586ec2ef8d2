package amchange_test

import (
	"strings"
	"testing"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt/amchange"
)

// TestSplitSyncMessage: the framing reader finds the changes automerge put
// in a real sync message, each one a chunk Decode reads with the hash
// automerge gives it, and refuses what is not a whole sync message.
func TestSplitSyncMessage(t *testing.T) {
	doc := MustDoc(t, actorA)
	for i := range 3 {
		Must(t, doc.RootMap().Set("n", int64(i)))
		MustCommit(t, doc, "")
	}
	want := MustChanges(t, doc)
	m, ok := automerge.NewSyncState(doc).GenerateMessage()
	if !ok {
		t.Fatal("no first message")
	}
	first := m.Bytes() // heads and a Bloom filter, no changes yet
	if raws, err := amchange.SplitSyncMessage(first); err != nil || len(raws) != 0 {
		t.Fatalf("first message: %d changes, %v; want none", len(raws), err)
	}

	// A peer that has nothing asks for everything: the answer carries all.
	peer := automerge.NewSyncState(automerge.New())
	ask, _ := peer.GenerateMessage()
	ss := automerge.NewSyncState(doc)
	if _, err := ss.ReceiveMessage(ask.Bytes()); err != nil {
		t.Fatal(err)
	}
	ans, ok := ss.GenerateMessage()
	if !ok {
		t.Fatal("no answer")
	}
	data := ans.Bytes()
	raws, err := amchange.SplitSyncMessage(data)
	if err != nil || len(raws) != len(want) {
		t.Fatalf("answer: %d changes, %v; want %d", len(raws), err, len(want))
	}
	hashes := map[automerge.ChangeHash]bool{}
	for _, ch := range want {
		hashes[ch.Hash()] = true
	}
	for i, raw := range raws {
		c, err := amchange.Decode(raw)
		if err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
		if !hashes[automerge.ChangeHash(c.Hash)] {
			t.Errorf("change %d has hash %x, not one of the document's", i, c.Hash)
		}
	}

	for _, bad := range []struct {
		data []byte
		want string
	}{
		{nil, "empty"},
		{[]byte{}, "empty"},
		{[]byte{0x43}, "first byte 0x43"},
		{append([]byte{0x00}, data[1:]...), "first byte 0x00"},
	} {
		if _, err := amchange.SplitSyncMessage(bad.data); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("SplitSyncMessage(% x...) = %v, want an error saying %q", bad.data[:min(len(bad.data), 4)], err, bad.want)
		}
	}
	// Every field is length-prefixed and the changes come last, so every
	// cut of the message leaves something short: all are refused.
	for cut := 1; cut < len(data); cut++ {
		if raws, err := amchange.SplitSyncMessage(data[:cut]); err == nil {
			t.Fatalf("cut at %d of %d: accepted, %d changes", cut, len(data), len(raws))
		}
	}
}
