// Memory: loaded documents are counted by an estimate of what they hold
// inside automerge, and the least recently used idle ones are evicted when
// the total passes MemoryBudget (or when idle past IdleEvict).

package engine

import (
	"sort"
	"time"
)

// account recomputes the memory estimate after a document was loaded.
func (e *Engine) account() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.recount()
}

// recount sums the sizes of loaded documents; e.mu held.
func (e *Engine) recount() {
	var total int64
	for _, x := range e.docs {
		total += x.sizeHint()
	}
	e.loaded = total
	e.m.loadedBytes.Set(float64(total))
}

// evict unloads the least recently used idle documents while the loaded
// total exceeds the memory budget.
func (e *Engine) evict() { e.evictWhere(time.Time{}) }

// evictWhere unloads idle documents, least recently used first: all those
// unused since before idleSince (if not zero), and then more while the
// loaded total exceeds the memory budget.
func (e *Engine) evictWhere(idleSince time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.recount()
	if e.scale.scaled(e.loaded) <= e.cfg.MemoryBudget && idleSince.IsZero() {
		return
	}
	var idle []*entry
	evicted := false
	for _, x := range e.docs {
		if x.busy == 0 && x.sizeHint() > 0 {
			idle = append(idle, x)
		}
	}
	sort.Slice(idle, func(i, j int) bool { return idle[i].lastUsed.Before(idle[j].lastUsed) })
	for _, x := range idle {
		if e.scale.scaled(e.loaded) <= e.cfg.MemoryBudget && !x.lastUsed.Before(idleSince) {
			break
		}
		if x.queuedBytes.Load() > 0 && !x.lastUsed.Before(idleSince) {
			// Changes wait in it for their dependencies. A peer does not
			// send a change twice in one session: dropping them now would
			// leave its sync stuck until it reconnects. They are bounded
			// (applied.go) and counted; the document goes when idle.
			continue
		}
		if !x.mu.TryLock() {
			continue
		}
		for dev, ss := range x.peers {
			e.markDirty(dev, x.id, ss)
		}
		e.loaded -= x.sizeHint()
		if x.ops > 0 {
			e.opsSeen[x.id] = x.ops
		}
		e.unload(x)
		x.mu.Unlock()
		delete(e.docs, x.id)
		e.m.evictions.Inc()
		evicted = true
	}
	e.m.loadedBytes.Set(float64(e.loaded))
	if evicted {
		// automerge-go frees a document's C memory in finalizers, which
		// run only after a garbage collection; the Go heap is small and
		// would not trigger one for a long time. Ask the background loop.
		e.m.reclaims.WithLabelValues("evicted").Inc()
		e.requestReclaim()
	}
}

func (x *entry) sizeHint() int64 { return x.size.Load() + x.queuedBytes.Load()*queuedFactor }
