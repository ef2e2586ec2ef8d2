// Reclaim: evicting documents, and growth of the memory outside the Go
// heap, ask the background loop to give automerge's C memory back: a
// collection, after which automerge-go's finalizers free the documents
// nothing holds any more, then malloc_trim, which hands the pages malloc
// keeps to the operating system. Under a burst of writes (a backlog of
// devices coming online at once) documents are evicted several times a
// second, and doing both every time took a third of the server's CPU:
// the trim walks the whole C heap, 30–290 ms each at 60–90 MB. So:
//
//   - no collection is forced when two have completed since the last
//     request (the burst's own allocation ran them; the finalizers are
//     queued);
//   - while documents are loaded, at most one trim per trimGap. Memory
//     freed and not trimmed is what malloc hands the next allocations,
//     so it does not add to the peak; once nothing is loaded, or the
//     server has been quiet a while (quiet.go), the trim comes at once.

package engine

import (
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"time"
)

// trimGap is the least time between two trims while documents are
// loaded.
const trimGap = 2 * time.Second

// reclaimer is the pacing state: asked is written by requestReclaim from
// any goroutine, lastTrim only by the engine's loop.
type reclaimer struct {
	asked    atomic.Uint64 // completed collections at the latest request
	lastTrim time.Time
}

// requestReclaim asks the background loop for a reclaim; requests that
// arrive meanwhile are coalesced into one.
func (e *Engine) requestReclaim() {
	e.reclaimer.asked.Store(gcCycles())
	select {
	case e.reclaim <- struct{}{}:
	default:
	}
}

// reclaimMemory runs on the engine's loop for a request. It reports false
// when the engine stopped meanwhile.
func (e *Engine) reclaimMemory() bool {
	if gcCycles() < e.reclaimer.asked.Load()+2 {
		runtime.GC()
	}
	// Let the finalizers free what the collection found.
	select {
	case <-time.After(50 * time.Millisecond):
	case <-e.stop:
		return false
	}
	e.mu.Lock()
	idle := e.loaded == 0
	e.mu.Unlock()
	if now := time.Now(); idle || now.Sub(e.reclaimer.lastTrim) >= trimGap {
		releaseCMemory()
		e.reclaimer.lastTrim = now
		e.m.trims.Inc()
	}
	e.releaseAtRest() // snapshots.go
	e.outsideBase.Store(outsideGo())
	return true
}

// gcCycles is the number of garbage collections completed so far.
func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
