package server

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/circles-coop/circles/crdt"
	mobileapi "github.com/circles-coop/circles/mobile-api"
	"github.com/circles-coop/circles/sync/engine"
	"github.com/circles-coop/circles/sync/store"
)

// Config configures a circle server. DefaultConfig gives the defaults.
type Config struct {
	// DataDir holds everything of the circle: its key and the JetStream
	// store. Required.
	DataDir string
	// Listen is the HTTP address, e.g. "127.0.0.1:8080" or "127.0.0.1:0".
	Listen string
	// AddrFile, if set, receives "host:port" once the server is ready.
	AddrFile string
	// MemoryBudget bounds the loaded documents (bytes, estimated).
	MemoryBudget int64
	// CompactEvery is the number of chunks after which a document is
	// compacted into a snapshot.
	CompactEvery int
	// SegmentItems, if set, overrides the charter policy
	// ledger.segment_changes: the number of entries and credits after
	// which a member's ledger gets a new segment document.
	SegmentItems int
	// TickEvery is how often the scheduler runs the circle's clock-driven
	// work (Server.Tick). Default 30 s.
	TickEvery time.Duration
	// SyncAlways makes JetStream fsync every write (survives power cuts,
	// slower); the default survives a killed process.
	SyncAlways bool
	Logger     *slog.Logger
	// Now is the clock; tests move it. Default time.Now.
	Now func() time.Time
}

// DefaultConfig returns the configuration circled uses when no flag says
// otherwise.
func DefaultConfig() Config {
	return Config{
		Listen:       "127.0.0.1:8080",
		MemoryBudget: 32 << 20,
		CompactEvery: 500,
		Now:          time.Now,
	}
}

// Validate reports the first problem with the configuration.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("a data directory is required (--data DIR)")
	}
	if c.Listen == "" {
		return errors.New("a listen address is required (--listen HOST:PORT)")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Server is a running circle: embedded NATS with JetStream, the sync
// engine, the circle's authority and the HTTP API.
type Server struct {
	cfg Config
	log *slog.Logger

	nats   *store.NATS
	store  *store.Store
	engine *engine.Engine
	reg    *prometheus.Registry
	met    *metrics

	meta circleMeta
	key  ed25519.PrivateKey
	pol  crdt.Policies // the charter's policies, read at start

	mu     sync.RWMutex
	roster *crdt.Roster
	docs   map[string]docInfo // document id → what it is

	index    *Index
	rotating background
	events   *broker
	stopTick chan struct{}
	// replayedResets are the reset statements met while rebuilding the
	// index; those of the current epoch are counted again after start, in
	// case the server stopped before counting them.
	replayedResets []string
	// gov serializes deciding proposals and carrying them out
	// (server/governance.go); replayedBallots are the proposals and votes
	// met while rebuilding the index, counted again after start.
	gov             sync.Mutex
	replayedBallots []ballotItems
	// breaches are the credits with a credit.over_limit audit entry
	// (server/breach.go).
	breaches breaches

	httpSrv *http.Server
	ln      net.Listener
	ready   bool
}

// Open starts everything and begins serving HTTP. It returns once the
// server is ready (and the address file, if any, is written).
func Open(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	key, err := readKey(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("component", "server"), key: key, reg: prometheus.NewRegistry(), events: newBroker()}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.met = newMetrics(s.reg)
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	if err := s.openStore(ctx); err != nil {
		return nil, err
	}
	if err := s.loadMeta(ctx); err != nil {
		return nil, err
	}
	s.index = NewIndex()
	s.engine = engine.New(engine.Config{
		Store:        s.store,
		Policy:       (*policy)(s),
		Actor:        s.meta.Actor,
		Committed:    s.committed,
		MemoryBudget: cfg.MemoryBudget,
		CompactEvery: cfg.CompactEvery,
		Logger:       cfg.Logger,
		Metrics:      engine.NewMetrics(s.reg),
	})
	if err := s.engine.Open(ctx); err != nil {
		return nil, err
	}
	if err := s.loadRoster(ctx); err != nil {
		return nil, err
	}
	if err := s.loadPolicies(ctx); err != nil {
		return nil, err
	}
	t := time.Now()
	if err := s.engine.Replay(ctx, s.replay); err != nil {
		return nil, fmt.Errorf("rebuild index: %w", err)
	}
	s.log.Info("index rebuilt", "entries", s.index.Len(), "took", time.Since(t).Round(time.Millisecond).String())
	// Rebuilding read every stored chunk once; give that garbage back to
	// the operating system now rather than keeping the heap at its peak.
	debug.FreeOSMemory()
	if err := s.recountResets(ctx); err != nil {
		return nil, err
	}
	if err := s.recountBallots(ctx); err != nil {
		return nil, err
	}

	if err := s.serveHTTP(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.ready = true
	s.mu.Unlock()
	s.stopTick = make(chan struct{})
	s.rotating.Go(func() { s.tickLoop(s.stopTick) })
	if cfg.AddrFile != "" {
		if err := writeFileAtomic(cfg.AddrFile, []byte(s.Addr()+"\n"), 0o644); err != nil {
			return nil, fmt.Errorf("write address file: %w", err)
		}
	}
	s.log.Info("circle server ready", "circle", s.meta.ID, "name", s.meta.Name, "addr", s.Addr())
	ok = true
	return s, nil
}

func (s *Server) openStore(ctx context.Context) error {
	n, err := store.StartNATS(ctx, store.NATSConfig{
		Dir:        filepath.Join(s.cfg.DataDir, "nats"),
		SyncAlways: s.cfg.SyncAlways,
		Logger:     s.cfg.Logger,
	})
	if err != nil {
		return fmt.Errorf("start embedded NATS: %w", err)
	}
	s.nats = n
	st, err := store.Open(ctx, n.JetStream(), store.Options{})
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	s.store = st
	return nil
}

func (s *Server) serveHTTP() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Listen, err)
	}
	s.ln = ln
	e := mobileapi.New(mobileapi.Services{
		Identity:  (*identity)(s),
		Circles:   (*circles)(s),
		Syncer:    (*syncer)(s),
		Ledger:    (*ledger)(s),
		Audit:     (*auditLog)(s),
		Resets:    (*resets)(s),
		Events:    s.events,
		Readiness: s,
		Credits:   (*credits)(s),
		Scorecard: (*scorecard)(s),
		// Governance: proposals, votes, roles, mandates.
		Governance: (*governance)(s),
		Sessions:   s.engine,
	}, mobileapi.Options{Logger: s.cfg.Logger, Gatherer: s.reg})
	s.httpSrv = &http.Server{
		Handler:           e,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	go func() {
		if err := s.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", "err", err)
		}
	}()
	return nil
}

// Addr is the address the HTTP server listens on ("host:port").
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// URL is the base URL of the HTTP API.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Store is the circle's store, for tools and tests that inspect what is
// stored (backups, "nothing changed" checks).
func (s *Server) Store() *store.Store { return s.store }

// CircleID is the circle's id.
func (s *Server) CircleID() string { return s.meta.ID }

// Ready reports whether the store and NATS are usable.
func (s *Server) Ready(ctx context.Context) error {
	s.mu.RLock()
	ready := s.ready
	s.mu.RUnlock()
	if !ready {
		return errors.New("starting")
	}
	if s.nats == nil || !s.nats.Conn().IsConnected() {
		return errors.New("NATS connection is down")
	}
	if _, _, err := s.store.Meta().Get(ctx, metaCircleKey); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// Close stops serving HTTP (letting requests in flight finish), then the
// engine, then NATS.
func (s *Server) Close() error {
	var errs []error
	if s.stopTick != nil {
		close(s.stopTick)
	}
	if s.events != nil {
		s.events.Close() // event streams end, so Shutdown need not wait for them
	}
	if s.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := s.httpSrv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
		cancel()
	} else if s.ln != nil {
		s.ln.Close()
	}
	s.rotating.Wait()
	if s.engine != nil {
		if err := s.engine.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if s.nats != nil {
		if err := s.nats.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// now is the server's clock.
func (s *Server) now() time.Time { return s.cfg.Now().UTC() }

func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("server: marshal %T: %v", v, err))
	}
	return b
}
