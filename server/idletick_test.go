package server_test

import (
	"context"
	"testing"

	"github.com/circles-coop/circles/mobile-api/client"
	"github.com/circles-coop/circles/server"
	"github.com/circles-coop/circles/server/servertest"
)

// TestIdleTicksLoadNothing: once a circle has nothing due, its ticks read
// the documents they need from memory. A tick's update that finds nothing
// to write used to make the engine drop the document, so every tick read
// the governance document back from JetStream (a 25 MB swing of a resting
// server's memory every 30 s).
func TestIdleTicksLoadNothing(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t, "Quiet Garden", servertest.WithConfig(func(cfg *server.Config) {
		cfg.MetricsListen = "127.0.0.1:0"
	}))
	if _, err := client.Join(ctx, t.TempDir(), c.URL(), c.FounderInvite, "Ana", "phone"); err != nil {
		t.Fatalf("join: %v", err)
	}
	metrics := "http://" + c.Server.MetricsAddr()
	// The first ticks load what they read and do what is due.
	for range 2 {
		if err := c.Server.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	before := metric(t, metrics, "circles_sync_doc_loads_total")
	for range 5 {
		if err := c.Server.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if after := metric(t, metrics, "circles_sync_doc_loads_total"); after != before {
		t.Errorf("five idle ticks loaded documents %v times from the store, want 0", after-before)
	}
}
