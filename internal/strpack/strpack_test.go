package strpack_test

import (
	"runtime"
	"testing"
	"unsafe"

	"github.com/circles-coop/circles/internal/strpack"
)

// TestPackSharesOneAllocation: the packed strings keep their values and
// all point into one allocation of at least 16 bytes.
func TestPackSharesOneAllocation(t *testing.T) {
	kind, unit, note, empty := "hours", "h", "mended the gate", ""
	strpack.Pack(&kind, &unit, &note, &empty)
	if kind != "hours" || unit != "h" || note != "mended the gate" || empty != "" {
		t.Fatalf("values changed: %q %q %q %q", kind, unit, note, empty)
	}
	base := uintptr(unsafe.Pointer(unsafe.StringData(kind)))
	if got := uintptr(unsafe.Pointer(unsafe.StringData(unit))); got != base+5 {
		t.Errorf("unit is not right after kind in one allocation (%#x, want %#x)", got, base+5)
	}
	if got := uintptr(unsafe.Pointer(unsafe.StringData(note))); got != base+6 {
		t.Errorf("note is not right after unit in one allocation (%#x, want %#x)", got, base+6)
	}
}

// TestPackedShortStringsFreeTheirNeighbours: a short string kept for ever
// after Pack does not keep alive a finalizable 8-byte value allocated just
// before it, as an unpacked one does (Go's tiny allocator).
func TestPackedShortStringsFreeTheirNeighbours(t *testing.T) {
	run := func(pack bool) int {
		finalized := 0
		done := make(chan struct{}, 1000)
		var keep []string
		for i := range 1000 {
			w := &struct{ v uintptr }{uintptr(i)} // like automerge-go's result
			runtime.SetFinalizer(w, func(*struct{ v uintptr }) { done <- struct{}{} })
			s := string([]byte{'h', byte('a' + i%26)})
			if pack {
				strpack.Pack(&s)
			}
			keep = append(keep, s)
		}
		for range 5 {
			runtime.GC()
			for len(done) > 0 {
				<-done
				finalized++
			}
		}
		runtime.KeepAlive(keep)
		return finalized
	}
	if got := run(true); got < 990 {
		t.Errorf("with packed strings kept, %d of 1000 neighbours finalized, want (nearly) all", got)
	}
	// The same with the strings as they are: the tiny allocator puts each
	// next to the value, which then stays. This shows the test can fail.
	if got := run(false); !raceEnabled && got > 100 {
		t.Errorf("with unpacked strings kept, %d of 1000 neighbours finalized; the tiny allocator no longer pins them, and Pack may not be needed", got)
	}
}
