package engine_test

import (
	"testing"
	"time"

	"github.com/circles-coop/circles/internal/inprocess"
)

// BenchmarkInProcessBacklog is BenchmarkBacklog of package server with
// automerge-go alone (package inprocess): 50 ledgers, each with 100
// single-entry changes made offline on the device, synced to a
// server-side automerge.Doc by passing sync messages in memory, all 50 at
// once in their own goroutines. No HTTP, no JSON, no write rules, no
// storage. It reports changes per second, the ceiling the HTTP figure can
// be compared with (BenchmarkBacklog also runs it, interleaved with its
// own passes, and reports the ratio). The text case is the same backlog
// written as make bench-sync's JavaScript clients write it by default:
// the most a server applying it with automerge-go could ingest here.
func BenchmarkInProcessBacklog(b *testing.B) {
	const docs, perDoc = 50, 100
	for _, bc := range []struct {
		name string
		make func(docs, perDoc int) (*inprocess.Backlog, error)
	}{
		// BenchmarkBacklog's entries: scalar strings, as API.md asks.
		{"scalar", inprocess.NewBacklog},
		// make bench-sync's entries with JS automerge's default text.
		{"text", inprocess.NewTextBacklog},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var (
				changes int
				wall    time.Duration
			)
			for b.Loop() {
				b.StopTimer()
				bl, err := bc.make(docs, perDoc)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				elapsed, err := bl.Sync()
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				changes += bl.Changes()
				wall += elapsed
				b.StartTimer()
			}
			b.ReportMetric(float64(changes)/wall.Seconds(), "changes/s")
			b.Logf("in-process backlog (%s): %d changes in %.3fs (%.0f changes/s)", bc.name, changes, wall.Seconds(), float64(changes)/wall.Seconds())
		})
	}
}
