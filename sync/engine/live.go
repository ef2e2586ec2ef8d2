// Live automerge documents: automerge-go frees a document's C memory
// only when the Go value that owns it is collected, so any reference
// kept to a document (or to a sync state, map, list, value or path,
// which all hold their document) after the engine evicts it keeps the
// whole C document alive. The engine counts the documents it created
// that the Go runtime still holds, next to those it has loaded: after a
// collection the two should match.

package engine

import (
	"runtime"
	"sync/atomic"

	"github.com/automerge/automerge-go"
)

// liveCounter counts tracked documents not yet collected. It is a
// separate allocation so that a cleanup refers to it and not to the
// engine.
type liveCounter struct{ n atomic.Int64 }

// track counts d as live until the garbage collector finds it
// unreachable. A cleanup, unlike a finalizer, does not keep d (and the
// C document its result owns) alive for one more cycle.
func (e *Engine) track(d *automerge.Doc) *automerge.Doc {
	e.live.n.Add(1)
	runtime.AddCleanup(d, func(c *liveCounter) { c.n.Add(-1) }, e.live)
	return d
}

// LiveDocs is the number of automerge documents the engine loaded or
// created that the Go runtime has not collected yet; it includes the
// loaded ones (LoadedDocs) and any evicted document something still
// refers to, until the next collection.
func (e *Engine) LiveDocs() int64 {
	if e.live == nil { // an Engine not made by New
		return 0
	}
	return e.live.n.Load()
}

// LoadedDocs is the number of documents the engine holds in memory.
func (e *Engine) LoadedDocs() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, x := range e.docs {
		if x.sizeHint() > 0 {
			n++
		}
	}
	return n
}
