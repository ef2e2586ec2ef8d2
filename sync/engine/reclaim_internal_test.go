package engine

import (
	"runtime"
	"runtime/debug"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// TestReclaimPacesTrims: while documents are loaded, reclaims close
// together trim once; with nothing loaded every reclaim trims. A reclaim
// forces a collection unless two completed since it was asked for.
func TestReclaimPacesTrims(t *testing.T) {
	e := &Engine{m: NewMetrics(nil), reclaim: make(chan struct{}, 1), stop: make(chan struct{})}
	trims := func() float64 {
		var m dto.Metric
		if err := e.m.trims.Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetCounter().GetValue()
	}

	e.loaded = 1 << 20 // a document is loaded
	for i := range 3 {
		before := gcCycles()
		e.requestReclaim()
		if !e.reclaimMemory() {
			t.Fatal("reclaimMemory reported the engine stopped")
		}
		if gcCycles() == before {
			t.Fatalf("reclaim %d: no collection ran, want one forced", i)
		}
	}
	if n := trims(); n != 1 {
		t.Fatalf("trims after 3 reclaims within %v while loaded = %v, want 1", trimGap, n)
	}

	e.loaded = 0 // at rest: nothing to wait for
	for range 2 {
		e.requestReclaim()
		e.reclaimMemory()
	}
	if n := trims(); n != 3 {
		t.Fatalf("trims after 2 more reclaims with nothing loaded = %v, want 3", n)
	}

	// Two collections since the request: none is forced. (Automatic
	// collections are off meanwhile, so only a forced one would count.)
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	e.loaded = 1 << 20 // loaded again: the release at rest collects by itself
	e.requestReclaim()
	runtime.GC()
	runtime.GC()
	before := gcCycles()
	e.reclaimMemory()
	if n := gcCycles() - before; n != 0 {
		t.Fatalf("reclaim after two collections ran %d more, want none", n)
	}
	// One since the request is not enough: it may have begun before the
	// document was dropped.
	e.requestReclaim()
	runtime.GC()
	before = gcCycles()
	e.reclaimMemory()
	if gcCycles() == before {
		t.Fatal("reclaim after one collection forced none, want one")
	}

	close(e.stop)
	if e.reclaimMemory() {
		t.Fatal("reclaimMemory after stop = true, want false")
	}
}
