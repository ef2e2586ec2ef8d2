package mobileapi

import (
	"fmt"
	"testing"
	"time"
)

// TestLimiterStoreBounded: however many addresses ask, the limiter tracks
// at most its maximum; idle buckets are dropped first.
func TestLimiterStoreBounded(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := newLimiterStore(5, 50, 100)
	s.now = func() time.Time { return now }
	for i := 0; i < 1000; i++ {
		if _, err := s.Allow(fmt.Sprintf("10.0.%d.%d", i/256, i%256)); err != nil {
			t.Fatal(err)
		}
		if got := s.size(); got > 100 {
			t.Fatalf("after %d addresses size() = %d, want at most 100", i+1, got)
		}
	}
	// An address that spent its burst keeps its bucket while it is busy.
	for i := 0; i < 60; i++ {
		_, _ = s.Allow("busy")
	}
	if ok, _ := s.Allow("busy"); ok {
		t.Fatalf("Allow(busy) after 60 requests in an instant = true, want false")
	}
	now = now.Add(limiterIdle + time.Second)
	_, _ = s.Allow("busy")
	for i := 0; i < 100; i++ {
		_, _ = s.Allow(fmt.Sprintf("new-%d", i))
	}
	if got := s.size(); got > 100 {
		t.Fatalf("size() = %d, want at most 100", got)
	}
}
