package server

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/circles-coop/circles/crdt"
)

// openTestServer initialises a circle in a temp dir and serves it on a
// free loopback port until the test ends.
func openTestServer(t *testing.T, mod func(*Config)) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	if mod != nil {
		mod(&cfg)
	}
	if _, err := Init(context.Background(), cfg, "Internal", crdt.DefaultPolicies()); err != nil {
		t.Fatalf("Init: %v", err)
	}
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestReadyzHidesStoreErrors: when the store fails, /readyz answers 503
// with a fixed message, not the store's error (bucket names, NATS text).
func TestReadyzHidesStoreErrors(t *testing.T) {
	s := openTestServer(t, nil)
	if status, body := get(t, s.URL()+"/readyz"); status != http.StatusOK {
		t.Fatalf("GET /readyz = %d %s, want 200", status, body)
	}
	if err := s.nats.JetStream().DeleteKeyValue(context.Background(), "circ_meta"); err != nil {
		t.Fatal(err)
	}
	status, body := get(t, s.URL()+"/readyz")
	if status != http.StatusServiceUnavailable {
		t.Fatalf("GET /readyz with the meta bucket gone = %d %s, want 503", status, body)
	}
	for _, leak := range []string{"circ_", "store", "nats", "bucket"} {
		if strings.Contains(strings.ToLower(body), leak) {
			t.Errorf("GET /readyz = %s: tells the client %q of the cause", body, leak)
		}
	}
}
