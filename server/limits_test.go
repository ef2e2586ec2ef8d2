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
	alice := enrollRaw(t, url, c.FounderInvite, "Alice")
	counts := map[int]int{}
	for i := 0; i < 80; i++ {
		r := call(t, url, "POST", "/v1/token", "", []byte(`{"assertion":"x.y.z"}`))
		counts[r.status]++
		if r.status == http.StatusTooManyRequests && r.code != "rate_limited" {
			t.Fatalf("429 with code %q, want rate_limited", r.code)
		}
	}
	if counts[http.StatusTooManyRequests] == 0 || counts[http.StatusUnauthorized] < 40 {
		t.Errorf("statuses %v, want about 50 × 401 and then 429s", counts)
	}
	if r := call(t, url, "GET", "/v1/circle", alice.token, nil); r.status != http.StatusOK {
		t.Errorf("GET /v1/circle while the identity endpoints are limited = %d, want 200", r.status)
	}
}

// TestUnknownPathsAndJoinPage: an unknown path is a 404 with or without a
// token, and an invite URL leads to a page that explains how to join.
func TestUnknownPathsAndJoinPage(t *testing.T) {
	c := servertest.Start(t, "Paths")
	url := c.URL()
	for _, path := range []string{"/v1/nope", "/v1/", "/nope"} {
		if r := call(t, url, "GET", path, "", nil); r.status != http.StatusNotFound || r.code != "not_found" {
			t.Errorf("GET %s = %d %q, want 404 not_found", path, r.status, r.code)
		}
	}
	r := call(t, url, "GET", "/join", "", nil)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), "circlectl join") {
		t.Errorf("GET /join = %d %.100s, want a page explaining circlectl join", r.status, r.body)
	}
}
