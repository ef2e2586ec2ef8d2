package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/circles-coop/circles/sync/store"
)

// MustNATS starts an embedded server with JetStream in dir and stops it when
// the test ends (closing it earlier is fine).
func MustNATS(tb testing.TB, dir string) *store.NATS {
	tb.Helper()
	return MustNATSConfig(tb, store.NATSConfig{Dir: dir})
}

// MustNATSConfig is MustNATS with a full config.
func MustNATSConfig(tb testing.TB, cfg store.NATSConfig) *store.NATS {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := store.StartNATS(ctx, cfg)
	if err != nil {
		tb.Fatalf("StartNATS(%+v) error = %v", cfg, err)
	}
	tb.Cleanup(func() {
		if err := n.Close(); err != nil {
			tb.Errorf("NATS.Close() error = %v", err)
		}
	})
	return n
}

// MustStore opens a store on n.
func MustStore(tb testing.TB, n *store.NATS, opts store.Options) *store.Store {
	tb.Helper()
	s, err := store.Open(testCtx(tb), n.JetStream(), opts)
	if err != nil {
		tb.Fatalf("Open() error = %v", err)
	}
	return s
}

// MustNewStore starts a server in a fresh temp dir and opens a store on it.
func MustNewStore(tb testing.TB) (*store.Store, *store.NATS) {
	tb.Helper()
	n := MustNATS(tb, tb.TempDir())
	return MustStore(tb, n, store.Options{}), n
}

// testCtx is a context that ends with the test, bounded to 30 s.
func testCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// MustAppend appends each of chunks to doc and returns their sequences.
func MustAppend(tb testing.TB, s *store.Store, doc string, chunks ...string) []uint64 {
	tb.Helper()
	ctx := testCtx(tb)
	seqs := make([]uint64, len(chunks))
	for i, c := range chunks {
		seq, err := s.AppendChunk(ctx, doc, []byte(c))
		if err != nil {
			tb.Fatalf("AppendChunk(%q, %q) error = %v", doc, c, err)
		}
		seqs[i] = seq
	}
	return seqs
}

// chunkStrings renders chunks as "seq:data" for comparison.
func chunkStrings(chunks []store.Chunk) []string {
	out := make([]string, len(chunks))
	for i, c := range chunks {
		out[i] = fmt.Sprintf("%d:%s", c.Seq, c.Data)
	}
	return out
}

// expectChunks builds the chunkStrings form of seqs and data.
func expectChunks(seqs []uint64, data []string) []string {
	out := make([]string, len(seqs))
	for i := range seqs {
		out[i] = fmt.Sprintf("%d:%s", seqs[i], data[i])
	}
	return out
}
