package engine_test

import (
	"context"
	"strings"
	"testing"

	"github.com/automerge/automerge-go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/circles-coop/circles/sync/engine"
	"github.com/circles-coop/circles/sync/store"
)

// TestMemoryEstimateCountsOperations: a document that received a long
// text in one change — few changes and few stored bytes, but one automerge
// operation per character — is counted at what its operations cost in
// memory, so the memory budget sees it.
func TestMemoryEstimateCountsOperations(t *testing.T) {
	ctx := context.Background()
	n, err := store.StartNATS(ctx, store.NATSConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = n.Close() }()
	st, err := store.Open(ctx, n.JetStream(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	e := engine.New(engine.Config{Store: st, Policy: openPolicy{}, Actor: "00aa", Metrics: engine.NewMetrics(reg), MemoryBudget: 1 << 30})
	if err := e.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Close() }()
	const doc = "4NMNnkMhL8jXrdJ9jamS2b2WYiWd"
	if err := e.Create(ctx, doc, func(d *automerge.Doc) ([]byte, error) {
		return nil, d.RootMap().Set("items", automerge.NewMap())
	}); err != nil {
		t.Fatal(err)
	}
	s, err := e.NewSession(engine.Peer{Device: "d", Member: "m", Actor: "0b"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	local := automerge.New()
	if err := local.SetActorID("0b"); err != nil {
		t.Fatal(err)
	}
	ss := automerge.NewSyncState(local)
	if err := exchange(t, s, doc, ss); err != nil {
		t.Fatal(err)
	}
	const chars = 4000
	if err := local.Path("items", "text").Set(automerge.NewText(strings.Repeat("a", chars))); err != nil {
		t.Fatal(err)
	}
	if _, err := local.Commit("long text"); err != nil {
		t.Fatal(err)
	}
	if err := exchange(t, s, doc, ss); err != nil {
		t.Fatal(err)
	}
	got := loadedBytes(t, reg)
	// automerge spends some 400 bytes per operation; the estimate from
	// changes and stored bytes alone was about 10 kB here.
	if want := float64(chars * 400); got < want {
		t.Errorf("circles_sync_loaded_bytes = %.0f after %d operations, want at least %.0f", got, chars, want)
	}
}

func loadedBytes(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "circles_sync_loaded_bytes" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("no circles_sync_loaded_bytes metric")
	return 0
}
