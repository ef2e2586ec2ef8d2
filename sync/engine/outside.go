// Memory outside the Go heap: automerge-go keeps every document, sync
// state and query result in C memory (automerge-rs, through malloc) and
// frees it in finalizers, which run only after a garbage collection. The
// Go heap stays small while that C memory grows, so the Go runtime alone
// would collect rarely; the engine watches the difference and asks for a
// collection when it has grown.

package engine

import (
	"runtime/metrics"
)

// outsideGo estimates the bytes resident in the process that the Go
// runtime does not account for: the resident set minus the Go runtime's
// own resident memory. Zero where the resident set cannot be read.
func outsideGo() int64 {
	rss := residentBytes()
	if rss == 0 {
		return 0
	}
	s := []metrics.Sample{
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}
	metrics.Read(s)
	goResident := int64(s[0].Value.Uint64()) - int64(s[1].Value.Uint64())
	return max(rss-goResident, 0)
}

// watchOutside is called on the engine's loop: when memory outside the
// Go heap has grown by more than the slack since the last collection,
// it asks for one (reclaim). base is what was outside after the last
// collection.
func (e *Engine) watchOutside() {
	now := outsideGo()
	e.m.outsideBytes.Set(float64(now))
	live, docs := e.LiveDocs(), e.LoadedDocs()
	e.m.liveDocs.Set(float64(live))
	e.m.loadedDocs.Set(float64(docs))
	e.m.finalQueue.Set(float64(finalizerQueue()))
	if inUse, free, ok := cHeap(); ok {
		e.m.cHeapInUse.Set(float64(inUse))
		e.m.cHeapFree.Set(float64(free))
		e.mu.Lock()
		loaded := e.loaded
		e.mu.Unlock()
		e.scale.measure(inUse, loaded, live, docs, e.cfg.MemoryBudget)
		e.m.memScale.Set(float64(e.scale.get()) / scaleOne)
	}
	if now == 0 {
		return
	}
	base := e.outsideBase.Load()
	if base == 0 || now < base {
		e.outsideBase.Store(now)
		return
	}
	if now-base > e.outsideSlack() {
		e.m.reclaims.WithLabelValues("outside_growth").Inc()
		e.requestReclaim()
	}
}

// outsideSlack is how much memory outside the Go heap may grow before a
// collection: half the memory budget, at least 16 MiB.
func (e *Engine) outsideSlack() int64 { return max(e.cfg.MemoryBudget/2, 16<<20) }

// finalizerQueue is the number of finalizers and cleanups the Go runtime
// has queued and not run yet.
func finalizerQueue() int64 {
	s := []metrics.Sample{
		{Name: "/gc/finalizers/queued:finalizers"},
		{Name: "/gc/finalizers/executed:finalizers"},
		{Name: "/gc/cleanups/queued:cleanups"},
		{Name: "/gc/cleanups/executed:cleanups"},
	}
	metrics.Read(s)
	var n int64
	for i := 0; i < len(s); i += 2 {
		if s[i].Value.Kind() == metrics.KindUint64 && s[i+1].Value.Kind() == metrics.KindUint64 {
			n += int64(s[i].Value.Uint64()) - int64(s[i+1].Value.Uint64())
		}
	}
	return n
}
