package engine

import (
	"testing"
	"time"
)

// TestMemScale: the ratio follows the measured C heap, never below the
// estimate nor above maxScale, ignores measurements taken while
// evicted documents await collection, and goes back towards 1 with
// little loaded.
func TestMemScale(t *testing.T) {
	const budget = 32 << 20
	var s memScale
	if got := s.scaled(budget); got != budget {
		t.Fatalf("unmeasured: scaled(%d) = %d, want the estimate", budget, got)
	}
	s.measure(48<<20, budget, 10, 10, budget) // 1.5× the estimate
	if got := s.get(); got != (scaleOne+scaleOne*3/2)/2 {
		t.Fatalf("after one 1.5× measurement the ratio is %d/1024, want the mean of 1 and 1.5", got)
	}
	for range 20 {
		s.measure(48<<20, budget, 10, 10, budget)
	}
	if got := s.get(); got < scaleOne*3/2-2 || got > scaleOne*3/2 {
		t.Fatalf("after repeated 1.5× measurements the ratio is %d/1024, want 1536", got)
	}
	if s.scaled(budget) <= budget {
		t.Fatal("a full budget by estimate is not over it once measured at 1.5×")
	}
	before := s.get()
	s.measure(200<<20, budget, 12, 10, budget) // two evicted documents not collected yet
	if s.get() != before {
		t.Fatalf("a measurement while evicted documents await collection moved the ratio from %d to %d", before, s.get())
	}
	s.measure(200<<20, budget/8, 10, 10, budget) // little loaded: back towards 1
	if want := (before + scaleOne) / 2; s.get() != want {
		t.Fatalf("with little loaded the ratio went from %d to %d, want halfway back to 1 (%d)", before, s.get(), want)
	}
	// At maxScale the engine keeps under a quarter of its budget loaded,
	// where nothing is measured: the ratio must come back down by itself.
	s.v.Store(maxScale)
	for range 20 {
		s.measure(200<<20, budget/4-1, 10, 10, budget)
	}
	if s.get() != scaleOne {
		t.Fatalf("at maxScale with a quarter of the budget loaded the ratio stays at %d/1024, want back to 1", s.get())
	}
	for range 20 {
		s.measure(1<<40, budget, 10, 10, budget)
	}
	if got := s.get(); got > maxScale || got < maxScale-2 {
		t.Fatalf("ratio %d/1024 with a huge C heap, want maxScale (%d)", got, maxScale)
	}
	for range 20 {
		s.measure(1<<20, budget, 10, 10, budget)
	}
	if s.get() != scaleOne {
		t.Fatalf("ratio %d/1024 with the C heap under the estimate, want 1", s.get())
	}
}

// TestEvictionCountsMeasuredMemory: with the ratio above one, documents
// under the budget by estimate are evicted down to the budget as
// measured.
func TestEvictionCountsMeasuredMemory(t *testing.T) {
	e := New(Config{MemoryBudget: 10 << 20})
	for i, id := range []string{"a", "b", "c", "d"} {
		x := &entry{id: id}
		x.size.Store(2 << 20)
		x.lastUsed = time.Unix(int64(i+1), 0)
		e.docs[id] = x
	}
	e.evict()
	if n := e.LoadedDocs(); n != 4 {
		t.Fatalf("8 MiB by estimate under a 10 MiB budget: %d documents loaded, want 4", n)
	}
	e.scale.v.Store(2 * scaleOne) // measured: twice the estimate
	e.evict()
	if n := e.LoadedDocs(); n != 2 {
		t.Fatalf("8 MiB by estimate measured at 2×: %d documents loaded, want 2 (4 MiB, 8 measured)", n)
	}
	for _, id := range []string{"c", "d"} {
		if e.docs[id] == nil {
			t.Fatalf("evicted %s, one of the most recently used", id)
		}
	}
}
