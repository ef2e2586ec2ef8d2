package servertest

import (
	"bytes"
	"context"
	"testing"
)

// MustStoredDocs is every document of c's store, id to its stored bytes:
// taken before and after a request, it proves that nothing changed.
func MustStoredDocs(tb testing.TB, c *Circle) map[string][]byte {
	tb.Helper()
	ctx := context.Background()
	st := c.Server.Store()
	ids, err := st.Docs(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	out := make(map[string][]byte, len(ids))
	for _, id := range ids {
		b, err := st.DocBytes(ctx, id)
		if err != nil {
			tb.Fatal(err)
		}
		out[id] = b
	}
	return out
}

// MustStoreUnchanged fails the test unless c's store holds exactly the
// documents of before, byte for byte.
func MustStoreUnchanged(tb testing.TB, c *Circle, before map[string][]byte) {
	tb.Helper()
	after := MustStoredDocs(tb, c)
	if len(after) != len(before) {
		tb.Fatalf("stored documents: %d, want %d", len(after), len(before))
	}
	for id, b := range before {
		if !bytes.Equal(after[id], b) {
			tb.Fatalf("document %s changed in the store", id)
		}
	}
}
