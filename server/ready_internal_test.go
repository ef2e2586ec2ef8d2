package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// TestTickPanicIsRecovered: a panic in the scheduler's tick is logged
// with its stack and counted, and the scheduler keeps ticking.
func TestTickPanicIsRecovered(t *testing.T) {
	logs := &lockedBuffer{}
	var n atomic.Int32
	s := openTestServer(t, func(c *Config) {
		c.TickEvery = 10 * time.Millisecond
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
		c.tickHook = func() {
			if n.Add(1) == 1 {
				panic("injected in tick")
			}
		}
	})
	for deadline := time.Now().Add(5 * time.Second); n.Load() < 3; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the scheduler ticked %d times in 5 s after a panic, want 3", n.Load())
		}
	}
	if got := panicsCounted(t, s, "tick"); got != 1 {
		t.Errorf("circles_panics_total{where=tick} = %v, want 1", got)
	}
	if out := logs.String(); !strings.Contains(out, "injected in tick") || !strings.Contains(out, "ready_internal_test.go") {
		t.Errorf("log does not show the panic with its stack:\n%s", out)
	}
}

// panicsCounted reads circles_panics_total{where} from the server's
// registry.
func panicsCounted(t *testing.T, s *Server, where string) float64 {
	t.Helper()
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "circles_panics_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "where" && l.GetValue() == where {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
