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
// own passes, and reports the ratio).
func BenchmarkInProcessBacklog(b *testing.B) {
	const docs, perDoc = 50, 100
	var (
		changes int
		wall    time.Duration
	)
	for b.Loop() {
		b.StopTimer()
		bl, err := inprocess.NewBacklog(docs, perDoc)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		elapsed, err := bl.Sync()
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if err := bl.Check(); err != nil {
			b.Fatal(err)
		}
		changes += bl.Changes()
		wall += elapsed
		b.StartTimer()
	}
	b.ReportMetric(float64(changes)/wall.Seconds(), "changes/s")
	b.Logf("in-process backlog: %d changes in %.3fs (%.0f changes/s)", changes, wall.Seconds(), float64(changes)/wall.Seconds())
}
