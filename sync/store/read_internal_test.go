package store

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestScanMissingStream: a batched read of a stream that does not exist
// fails at once, naming the cause, rather than waiting out its deadline.
func TestScanMissingStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := StartNATS(ctx, NATSConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	s, err := Open(ctx, n.JetStream(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = s.scan(ctx, "NO_SUCH_STREAM", "x.>", 0, func(string, uint64, []byte) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "no responders") {
		t.Fatalf("scan of a missing stream = %v, want a no-responders error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("scan of a missing stream took %v, want an answer at once", d)
	}
}
