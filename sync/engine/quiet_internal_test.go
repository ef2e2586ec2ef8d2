package engine

import (
	"testing"
	"time"
)

// TestQuietRelease: the release comes once per quiet spell, quietFor
// after allocation fell under quietRate, and not while it is busy.
func TestQuietRelease(t *testing.T) {
	var q quiet
	at := time.Unix(1000, 0)
	var allocs uint64
	step := func(perSecond uint64) bool {
		at = at.Add(time.Second)
		allocs += perSecond
		return q.tick(at, allocs)
	}
	q.tick(at, allocs)
	for i := range 60 {
		if step(10 << 20) {
			t.Fatalf("released at busy second %d", i)
		}
	}
	released := -1
	for i := range 60 {
		if step(4 << 10) {
			if released >= 0 {
				t.Fatalf("released twice in one quiet spell (seconds %d and %d)", released, i)
			}
			released = i
		}
	}
	if want := int(quietFor/time.Second) - 1; released != want {
		t.Fatalf("released at quiet second %d, want %d (quietFor after the spell began)", released, want)
	}
	// Busy again, then quiet: a new spell, a new release.
	step(10 << 20)
	released = -1
	for i := range 30 {
		if step(0) && released < 0 {
			released = i
		}
	}
	if released < 0 {
		t.Fatal("no release in the second quiet spell")
	}
	// A clock that does not move never releases nor divides by zero.
	var r quiet
	r.tick(at, 0)
	if r.tick(at, 0) {
		t.Fatal("released with no time passed")
	}
}
