package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/circles-coop/circles/server/servertest"
)

// TestIdentityRateLimit: the endpoints that take no token are limited per
// client address; beyond the burst the answer is 429 rate_limited, and
// other endpoints are not affected.
func TestIdentityRateLimit(t *testing.T) {
	c := servertest.Start(t, "Limits")
	url := c.URL()
	alice := servertest.MustEnroll(t, url, c.FounderInvite, "Alice")
	counts := map[int]int{}
	for i := 0; i < 80; i++ {
		r := servertest.Call(t, url, "POST", "/v1/token", "", []byte(`{"assertion":"x.y.z"}`))
		counts[r.Status]++
		if r.Status == http.StatusTooManyRequests && r.Code != "rate_limited" {
			t.Fatalf("429 with code %q, want rate_limited", r.Code)
		}
	}
	if counts[http.StatusTooManyRequests] == 0 || counts[http.StatusUnauthorized] < 40 {
		t.Errorf("statuses %v, want about 50 × 401 and then 429s", counts)
	}
	if r := servertest.Call(t, url, "GET", "/v1/circle", alice.Token, nil); r.Status != http.StatusOK {
		t.Errorf("GET /v1/circle while the identity endpoints are limited = %d, want 200", r.Status)
	}
}

// TestUnknownPathsAndJoinPage: an unknown path is a 404 with or without a
// token, and an invite URL leads to a page that explains how to join.
func TestUnknownPathsAndJoinPage(t *testing.T) {
	c := servertest.Start(t, "Paths")
	url := c.URL()
	for _, path := range []string{"/v1/nope", "/v1/", "/nope"} {
		if r := servertest.Call(t, url, "GET", path, "", nil); r.Status != http.StatusNotFound || r.Code != "not_found" {
			t.Errorf("GET %s = %d %q, want 404 not_found", path, r.Status, r.Code)
		}
	}
	r := servertest.Call(t, url, "GET", "/join", "", nil)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), "circlectl join") {
		t.Errorf("GET /join = %d %.100s, want a page explaining circlectl join", r.Status, r.Body)
	}
}
