package server_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/circles-coop/circles/server"
	"github.com/circles-coop/circles/server/servertest"
)

// postToken sends a bad assertion to POST /v1/token with an
// X-Forwarded-For header and returns the status and body.
func postToken(t *testing.T, url, xff string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", url+"/v1/token", strings.NewReader(`{"assertion":"x.y.z"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", xff)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// TestRateLimitIgnoresForwardedFor: one client sending 200 requests with
// 200 different X-Forwarded-For values is still one client: once the
// burst (50) is spent it gets 429s, and no answer repeats the forged
// address.
func TestRateLimitIgnoresForwardedFor(t *testing.T) {
	c := servertest.Start(t, "XFF")
	url := c.URL()
	counts := map[int]int{}
	for i := 0; i < 200; i++ {
		xff := fmt.Sprintf("203.0.%d.%d", i/250, i%250+1)
		status, body := postToken(t, url, xff)
		counts[status]++
		if strings.Contains(body, xff) {
			t.Fatalf("answer %d echoes the forged address %s: %s", status, xff, body)
		}
	}
	if counts[http.StatusTooManyRequests] < 100 {
		t.Errorf("statuses %v, want 429s once the burst of 50 is spent", counts)
	}
}

// TestRateLimitTrustedProxy: with the loopback named as a trusted proxy,
// X-Forwarded-For names the client, so two clients behind the proxy have
// buckets of their own.
func TestRateLimitTrustedProxy(t *testing.T) {
	c := servertest.Start(t, "Proxy", servertest.WithConfig(func(cfg *server.Config) {
		cfg.TrustedProxies = []string{"127.0.0.1"}
	}))
	url := c.URL()
	for i := 0; i < 60; i++ {
		postToken(t, url, "198.51.100.7")
	}
	if status, _ := postToken(t, url, "198.51.100.7"); status != http.StatusTooManyRequests {
		t.Errorf("client behind the proxy after 61 requests: %d, want 429", status)
	}
	if status, _ := postToken(t, url, "198.51.100.8"); status != http.StatusUnauthorized {
		t.Errorf("another client behind the proxy: %d, want 401 (its own bucket)", status)
	}
}
