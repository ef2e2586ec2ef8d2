package engine

import (
	"testing"

	"github.com/automerge/automerge-go"
)

// FuzzDecodeMessage feeds arbitrary bytes to the decoder of incoming sync
// messages. It must refuse or accept without panicking, and what it
// accepts must be safe to apply: a fresh document takes the message, and
// still saves and loads again afterwards.
func FuzzDecodeMessage(f *testing.F) {
	for _, seed := range fuzzSeedMessages(f) {
		f.Add(seed)
	}
	f.Add([]byte{0x42})
	f.Add([]byte{0x42, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		changes, err := decodeMessage(data)
		if err != nil {
			return
		}
		for _, ch := range changes {
			if ch.Decoded == nil || ch.Decoded.Hash != ch.Hash() {
				t.Fatalf("accepted change %x without its decoded form", ch.Hash())
			}
		}
		// What the Go parser finds is what automerge applies.
		assertSameChanges(t, data)
		doc := automerge.New()
		ss := automerge.NewSyncState(doc)
		if err := receive(ss, data); err != nil {
			return // automerge refused it cleanly: fine
		}
		saved := doc.Save()
		if _, err := automerge.Load(saved); err != nil {
			t.Fatalf("a document that took an accepted message no longer loads: %v", err)
		}
	})
}

// fuzzSeedMessages are real sync messages: a first message of a document
// with a few changes, and one carrying text.
func fuzzSeedMessages(tb testing.TB) [][]byte {
	tb.Helper()
	var out [][]byte
	src := automerge.New()
	for i, note := range []string{"one", "two", "three"} {
		if err := src.RootMap().Set(note, int64(i)); err != nil {
			tb.Fatal(err)
		}
		if _, err := src.Commit(note); err != nil {
			tb.Fatal(err)
		}
	}
	txt := automerge.NewText("hello")
	if err := src.RootMap().Set("text", txt); err != nil {
		tb.Fatal(err)
	}
	if _, err := src.Commit("text"); err != nil {
		tb.Fatal(err)
	}
	a, b := automerge.NewSyncState(src), automerge.NewSyncState(automerge.New())
	for range 4 {
		m, ok := a.GenerateMessage()
		if ok {
			out = append(out, m.Bytes())
			if _, err := b.ReceiveMessage(m.Bytes()); err != nil {
				tb.Fatal(err)
			}
		}
		m, ok = b.GenerateMessage()
		if ok {
			out = append(out, m.Bytes())
			if _, err := a.ReceiveMessage(m.Bytes()); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return out
}
