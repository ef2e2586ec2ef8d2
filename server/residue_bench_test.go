package server_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/circles-coop/circles/server"
	"github.com/circles-coop/circles/server/servertest"
)

// BenchmarkSyncResidue measures the C memory a circle keeps after its
// load is gone (issue 7: the soak's C heap stayed in use at rest with no
// document loaded). In this process, 20 members' devices each log 240
// entries, syncing each through POST /v1/sync, with a memory budget so
// small that every document is evicted after each request. Then the
// devices are dropped and, after collections, the C heap still in use
// (glibc mallinfo2, circles_process_c_heap_bytes) is what the server
// holds with nothing loaded: residue_MB, and per entry. glibc's
// per-thread caches count as in use too (up to about 0.2 MB a thread);
// GLIBC_TUNABLES=glibc.malloc.tcache_count=0 leaves them out.
//
// What kept it was Go's tiny allocator: automerge-go's 8-byte result
// wrappers shared 16-byte blocks with short strings the index keeps for
// ever, so their finalizers never ran (internal/strpack). Measured on
// 2026-12-01 with GLIBC_TUNABLES=glibc.malloc.tcache_count=0: about
// 4.3 MB for 4,800 entries (~940 B an entry) before the index packed
// its strings, 0 after.
func BenchmarkSyncResidue(b *testing.B) {
	const devices, perDevice = 20, 240
	for b.Loop() {
		b.StopTimer()
		c := servertest.Start(b, "Residue", servertest.WithConfig(func(cfg *server.Config) {
			cfg.MetricsOnAPI = true
			cfg.MemoryBudget = 1
		}))
		h := newBenchHTTP(c.URL())
		devs, err := h.enrollWithLedgers(c.FounderInvite, devices)
		if err != nil {
			b.Fatal(err)
		}
		cHeap := func() float64 {
			for range 6 {
				runtime.GC()
				time.Sleep(50 * time.Millisecond)
			}
			time.Sleep(1500 * time.Millisecond) // the engine reads the C heap each second
			m, err := h.metrics()
			if err != nil {
				b.Fatal(err)
			}
			return m["circles_process_c_heap_bytes"] / (1 << 20)
		}
		before := cHeap()
		b.StartTimer()
		n := 0
		for range perDevice {
			for _, d := range devs {
				if _, err := d.writeEntry(n, time.Now()); err != nil {
					b.Fatal(err)
				}
				n++
				if _, err := h.syncLedger(d); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.StopTimer()
		devs = nil // their documents are C memory of this process too
		h.HTTP.CloseIdleConnections()
		residue := cHeap() - before
		b.ReportMetric(residue, "residue_MB")
		b.ReportMetric(residue*(1<<20)/float64(n), "residue_B/entry")
		h.close()
		c.Stop()
		b.StartTimer()
	}
}
