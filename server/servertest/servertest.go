package servertest

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/server"
)

// Circle is a circle served for one test.
type Circle struct {
	tb            testing.TB
	DataDir       string
	FounderInvite string
	CircleID      string

	mu     sync.Mutex
	cfg    server.Config
	Server *server.Server
}

// Option changes the server configuration before the circle starts.
type Option func(*server.Config)

// WithClock makes the server read time from now.
func WithClock(now func() time.Time) Option { return func(c *server.Config) { c.Now = now } }

// WithConfig lets a test change anything else.
func WithConfig(fn func(*server.Config)) Option { return func(c *server.Config) { fn(c) } }

// Start creates a circle named name and serves it until the test ends.
func Start(tb testing.TB, name string, opts ...Option) *Circle {
	tb.Helper()
	c := Init(tb, name, crdt.DefaultPolicies(), opts...)
	c.Start()
	return c
}

// Init creates a circle without serving it; call Start.
func Init(tb testing.TB, name string, policies crdt.Policies, opts ...Option) *Circle {
	tb.Helper()
	cfg := server.DefaultConfig()
	cfg.DataDir = tb.TempDir()
	cfg.Listen = "127.0.0.1:0"
	if os.Getenv("CIRCLES_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	for _, o := range opts {
		o(&cfg)
	}
	res, err := server.Init(context.Background(), cfg, name, policies)
	if err != nil {
		tb.Fatalf("server.Init: %v", err)
	}
	c := &Circle{tb: tb, DataDir: cfg.DataDir, FounderInvite: res.Invite, CircleID: res.CircleID, cfg: cfg}
	tb.Cleanup(func() { c.Stop() })
	return c
}

// Start serves the circle (again, after Stop: then on the same address).
func (c *Circle) Start() {
	c.tb.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.Server != nil {
		return
	}
	s, err := server.Open(context.Background(), c.cfg)
	if err != nil {
		c.tb.Fatalf("server.Open: %v", err)
	}
	c.Server = s
}

// MoveTo makes the stopped circle serve from dir from its next Start (a
// data directory restored from a backup, say), on the same address.
func (c *Circle) MoveTo(dir string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.Server != nil {
		c.tb.Fatalf("servertest: MoveTo a serving circle; Stop it first")
	}
	c.DataDir, c.cfg.DataDir = dir, dir
}

// Stop shuts the server down; the data stays.
func (c *Circle) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.Server == nil {
		return
	}
	// Come back on the same address, as a real server would.
	c.cfg.Listen = c.Server.Addr()
	if err := c.Server.Close(); err != nil {
		c.tb.Errorf("server.Close: %v", err)
	}
	c.Server = nil
}

// URL is the base URL of the running server.
func (c *Circle) URL() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.Server == nil {
		c.tb.Fatalf("servertest: circle is stopped")
	}
	return c.Server.URL()
}
