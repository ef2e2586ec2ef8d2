package authority

import (
	"fmt"
	"testing"
	"time"
)

// TestVerifiedTokens: a remembered token holds only between its bounds,
// and only for its exact text; a full cache starts over.
func TestVerifiedTokens(t *testing.T) {
	var c verifiedTokens
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	c.put("tok", verifiedToken{member: "m", device: "d", notBefore: t0, until: t0.Add(time.Minute)})
	if v, ok := c.get("tok", t0.Add(30*time.Second)); !ok || v.member != "m" || v.device != "d" {
		t.Fatalf("get within bounds = %+v, %v; want m/d", v, ok)
	}
	if _, ok := c.get("tok2", t0.Add(30*time.Second)); ok {
		t.Fatal("another token's text matched")
	}
	if _, ok := c.get("tok", t0.Add(-time.Second)); ok {
		t.Fatal("a token held before its start")
	}
	if _, ok := c.get("tok", t0.Add(time.Minute)); ok {
		t.Fatal("a token held at its end")
	}
	if _, ok := c.get("tok", t0.Add(30*time.Second)); ok {
		t.Fatal("an expired token is still remembered after it was refused")
	}
	for i := range maxVerifiedTokens + 1 {
		c.put(fmt.Sprint(i), verifiedToken{until: t0.Add(time.Hour)})
	}
	if n := len(c.m); n > maxVerifiedTokens {
		t.Fatalf("cache holds %d tokens, want at most %d", n, maxVerifiedTokens)
	}
}
