package engine

import (
	"runtime"
	"testing"

	"github.com/automerge/automerge-go"
	dto "github.com/prometheus/client_model/go"
)

// TestWatchOutsideAsksForReclaim: memory that automerge holds in C grows
// the resident set without growing the Go heap; once it has grown past
// the slack the watch asks for a collection, and not before.
func TestWatchOutsideAsksForReclaim(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the resident set is read from /proc")
	}
	e := &Engine{cfg: Config{MemoryBudget: 1 << 20}, m: NewMetrics(nil), reclaim: make(chan struct{}, 1)}
	grown := func() float64 {
		var m dto.Metric
		if err := e.m.reclaims.WithLabelValues("outside_growth").Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetCounter().GetValue()
	}

	e.watchOutside() // sets the base
	if e.outsideBase.Load() <= 0 {
		t.Fatalf("outside the Go heap: %d bytes, want the binary and C runtime at least", e.outsideBase.Load())
	}
	e.watchOutside()
	if n := grown(); n != 0 {
		t.Fatalf("reclaims after no growth = %v, want 0", n)
	}

	// 48 MiB held by automerge, in C: three times the 16 MiB slack.
	doc := automerge.New()
	big := make([]byte, 48<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	if err := doc.Path("blob").Set(big); err != nil {
		t.Fatal(err)
	}
	big = nil
	runtime.GC() // the Go copy is gone; automerge's stays
	e.watchOutside()
	runtime.KeepAlive(doc)
	if n := grown(); n != 1 {
		t.Fatalf("reclaims after 48 MiB in C = %v, want 1 (outside now %d, base %d)", n, outsideGo(), e.outsideBase.Load())
	}
	select {
	case <-e.reclaim:
	default:
		t.Fatal("the watch counted a reclaim but did not ask the loop for one")
	}
}
