// Quiet release: memory a burst of requests used comes back to the
// system once the server has been quiet for a while, whether or not
// the burst loaded documents. Serving stored snapshots, in-sync answers
// and JetStream reads load none, so the release after eviction
// (releaseAtRest) never comes for them, and the Go runtime keeps the
// freed heap and JetStream's pooled block buffers for minutes.

package engine

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

const (
	// quietFor is how long allocation must stay low before the release;
	// longer than JetStream's block cache expiry (10 s), so the caches
	// of the burst have been dropped by then.
	quietFor = 15 * time.Second
	// quietRate is the allocation rate, in bytes a second, under which
	// the process counts as quiet: the engine's own tick and a metrics
	// scrape allocate less.
	quietRate = 256 << 10
)

// quiet is the state of releaseWhenQuiet, used only by the engine's
// background loop.
type quiet struct {
	allocs   uint64    // cumulative heap allocations at the last tick
	at       time.Time // the last tick
	since    time.Time // start of the current quiet spell (zero: busy)
	released bool      // released in this quiet spell
}

// tick records the cumulative allocations at now and reports whether to
// release: once per quiet spell, after quietFor of it.
func (q *quiet) tick(now time.Time, allocs uint64) bool {
	prevAllocs, prevAt := q.allocs, q.at
	q.allocs, q.at = allocs, now
	if prevAt.IsZero() || !now.After(prevAt) {
		return false
	}
	rate := float64(allocs-prevAllocs) / now.Sub(prevAt).Seconds()
	if rate >= quietRate {
		q.since, q.released = time.Time{}, false
		return false
	}
	if q.since.IsZero() {
		q.since = prevAt
	}
	if q.released || now.Sub(q.since) < quietFor {
		return false
	}
	q.released = true
	return true
}

// heapAllocs is the cumulative bytes allocated on the Go heap.
func heapAllocs() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// releaseWhenQuiet is called on the engine's loop each tick.
func (e *Engine) releaseWhenQuiet(now time.Time) {
	if !e.quiet.tick(now, heapAllocs()) {
		return
	}
	e.m.reclaims.WithLabelValues("quiet").Inc()
	// Three collections: JetStream's block buffers reach their pool in a
	// cleanup after one and leave the pool over two more (releaseAtRest).
	for range 3 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	releaseCMemory()
	e.m.trims.Inc()
	debug.FreeOSMemory()
	e.outsideBase.Store(outsideGo())
	// The release allocated a little itself: start the next measurement
	// after it.
	e.quiet.allocs = heapAllocs()
}
