package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/circles-coop/circles/authority"
	"github.com/circles-coop/circles/federation/link"
	"github.com/circles-coop/circles/federation/replica"
	"github.com/circles-coop/circles/internal/atomicfile"
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
	// AuditSegmentEntries and GovernanceArchiveProposals, if set,
	// override the bounds of the live audit segment and governance
	// document (authority/archives.go); tests make them small.
	AuditSegmentEntries, GovernanceArchiveProposals int
	// BallotsSegmentEntries, if set, overrides how many items a member's
	// ballots document holds before the next one is opened
	// (authority/ballotsegments.go); tests make it small.
	BallotsSegmentEntries int
	// TickEvery is how often the scheduler runs the circle's clock-driven
	// work (Server.Tick). Default 30 s.
	TickEvery time.Duration
	// SyncAlways makes JetStream fsync every write (survives power cuts,
	// slower); the default survives a killed process.
	SyncAlways bool
	// TrustedProxies are the addresses or CIDRs of reverse proxies whose
	// X-Forwarded-For header names the client (for the per-address rate
	// limit). Empty: the client is the connection's remote address.
	TrustedProxies []string
	// MetricsListen, if set, is the address of a listener of its own for
	// GET /metrics (Prometheus), e.g. "127.0.0.1:9464". Default: none.
	MetricsListen string
	// MetricsOnAPI serves /metrics on the API listener too. Off by
	// default: the API listener faces the members' devices, and metrics
	// tell an outsider how the circle is used.
	MetricsOnAPI bool
	// Pprof serves the Go profiler's /debug/pprof/ on the MetricsListen
	// listener (never on the API listener): heap, goroutine and CPU
	// profiles of a running server, for operators chasing memory.
	Pprof bool
	// WriteTimeout bounds writing an ordinary response (default 60 s).
	// Event streams (GET /v1/events) are not bound by it: each of their
	// writes has its own deadline.
	WriteTimeout time.Duration
	Logger       *slog.Logger
	// Now is the clock; tests move it. Default time.Now.
	Now func() time.Time
	// NATSURL, if set, is an external NATS server or cluster with
	// JetStream (comma-separated URLs) that keeps the store instead of
	// the embedded server; DataDir then holds only the key, the lock and
	// the control socket.
	NATSURL string
	// NATSCreds is a credentials file for NATSURL, if it wants one.
	NATSCreds string
	// Replicas is the JetStream replica count of the store's streams
	// (default 1; 3 on a three-node cluster). Above 1 needs NATSURL.
	Replicas int
	// FederationWatch is how often the federation link checks its leaf
	// links and asks the hub of a dropped one whether the circle is still
	// a member (default 2 s).
	FederationWatch time.Duration

	// FederationDecided, if set, is told once of each federation proposal
	// this circle sees decided (a passed federation.expel revokes the
	// circle on the hub). It must be idempotent.
	FederationDecided func(federation string, p replica.Proposal)

	// Failover runs this process as one of several of the same circle on
	// the same cluster (needs NATSURL): one holds the circle's lease and
	// serves, the others stand by and take over when it goes
	// (server/failover.go; OpenFailover).
	Failover bool
	// Advertise is the URL devices reach this process at, told by standby
	// instances and /readyz (failover). Default: http:// and the listen
	// address.
	Advertise string
	// Instance names this process in the lease and /readyz (failover).
	// Default: the host name and the process id.
	Instance string

	// hooks, set by a Failover, makes Open serve on the failover's
	// listener and write through its fence.
	hooks *failoverHooks

	// tickHook, if set, runs before each scheduled tick (tests inject a
	// panic through it).
	tickHook func()

	// wrapStore, set by tests (export_test.go), wraps the store the engine
	// writes through, to make writes fail on purpose.
	wrapStore func(engine.Store) engine.Store
	// syncStateFlush, set by tests (export_test.go), is how often the
	// engine writes devices' sync states (default: the engine's, 1 s).
	syncStateFlush time.Duration
}

// DefaultConfig returns the configuration circled uses when no flag says
// otherwise.
func DefaultConfig() Config {
	return Config{
		Listen:       "127.0.0.1:8080",
		MemoryBudget: 32 << 20,
		CompactEvery: 500,
		WriteTimeout: 60 * time.Second,
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
	if c.Replicas < 0 || c.Replicas > 5 {
		return fmt.Errorf("replicas %d: want 1..5", c.Replicas)
	}
	if c.NATSURL == "" && c.Replicas > 1 {
		return errors.New("replicas above 1 need an external NATS cluster (--nats-url): the embedded server is one node")
	}
	if c.NATSURL != "" && c.SyncAlways {
		return errors.New("sync_always applies to the embedded server; with --nats-url set sync_always on the cluster's servers")
	}
	if c.Failover && c.NATSURL == "" {
		return errors.New("failover needs an external NATS cluster (--nats-url): the instances share its store and lease")
	}
	if c.NATSURL == "" && c.NATSCreds != "" {
		return errors.New("a NATS credentials file (--nats-creds) needs --nats-url")
	}
	if c.Pprof && c.MetricsListen == "" {
		return errors.New("pprof needs a metrics listener (--metrics-listen): the profiler is never served on the API listener")
	}
	if err := mobileapi.CheckTrustedProxies(c.TrustedProxies); err != nil {
		return err
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 60 * time.Second
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
// engine, the circle's authority and the HTTP API, and the scheduler that
// ticks the authority's clock.
type Server struct {
	cfg Config
	log *slog.Logger

	nats   *store.NATS
	store  *store.Store
	engine *engine.Engine
	auth   *authority.Authority
	// replicas holds the federations' documents (federation_docs.go);
	// federation_glue.go keeps them in step with fed.
	replicas                 *replica.Manager
	replicaStop, replicaDone chan struct{}
	replicaStopOnce          sync.Once
	reg                      *prometheus.Registry
	fed                      *link.Link // the circle's federations (federation.go)
	// natsName is the embedded nats-server's name (natsServerName).
	natsName string

	httpSrv *http.Server
	ln      net.Listener
	// metricsSrv serves /metrics on cfg.MetricsListen, if set.
	metricsSrv *http.Server
	metricsLn  net.Listener
	ready      atomic.Bool

	ctlSrv *http.Server // the control socket (backup.go)
	unlock func()       // releases the data directory's lock

	stopTick chan struct{}
	tickDone chan struct{}
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
	unlock := func() {}
	if cfg.hooks == nil { // a Failover holds the lock for as long as it runs
		unlock, err = lockData(cfg.DataDir)
		if err != nil {
			return nil, err
		}
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("component", "server"), reg: prometheus.NewRegistry(), unlock: unlock}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	s.natsName = natsServerName(key)
	if err := s.openStore(ctx); err != nil {
		return nil, err
	}
	meta, err := authority.ReadMeta(ctx, s.store, key)
	if err != nil {
		return nil, err
	}
	if err := s.openFederation(meta); err != nil {
		return nil, err
	}
	s.auth = authority.New(authority.Config{
		Federation:   fedLink{s.fed},
		Meta:         meta,
		Key:          key,
		Store:        s.store,
		SegmentItems: cfg.SegmentItems,
		// Tests make small archives; 0 keeps the defaults.
		AuditSegmentEntries:        cfg.AuditSegmentEntries,
		GovernanceArchiveProposals: cfg.GovernanceArchiveProposals,
		BallotsSegmentEntries:      cfg.BallotsSegmentEntries,
		Logger:                     cfg.Logger,
		Registerer:                 s.reg,
		Now:                        cfg.Now,
		IndexDir:                   cfg.DataDir,
	})
	var st engine.Store = s.store
	if cfg.wrapStore != nil {
		st = cfg.wrapStore(st)
	}
	s.engine = engine.New(engine.Config{
		Store:          st,
		Policy:         s.auth.Policy,
		Actor:          meta.Actor,
		Committed:      s.auth.Dispatcher.Committed,
		MemoryBudget:   cfg.MemoryBudget,
		CompactEvery:   cfg.CompactEvery,
		SyncStateFlush: cfg.syncStateFlush,
		Logger:         cfg.Logger,
		Metrics:        engine.NewMetrics(s.reg),
	})
	if err := s.engine.Open(ctx); err != nil {
		return nil, err
	}
	if err := s.auth.Open(ctx, s.engine); err != nil {
		return nil, err
	}
	if err := s.fed.Open(ctx); err != nil { // a joined circle links to its hubs again
		return nil, err
	}
	if err := s.openReplicas(ctx); err != nil { // the federations' documents and replicas
		return nil, err
	}
	s.startLinkingReplicas()
	if err := s.serveHTTP(); err != nil {
		return nil, err
	}
	if err := s.serveControl(); err != nil {
		return nil, err
	}
	if cfg.MetricsListen != "" {
		if err := s.serveMetrics(); err != nil {
			return nil, err
		}
	}
	s.ready.Store(true)
	s.startTicking()
	if cfg.AddrFile != "" {
		if err := atomicfile.Write(cfg.AddrFile, []byte(s.Addr()+"\n"), 0o644); err != nil {
			return nil, fmt.Errorf("write address file: %w", err)
		}
	}
	s.log.Info("circle server ready", "circle", meta.ID, "name", meta.Name, "addr", s.Addr())
	ok = true
	return s, nil
}

func (s *Server) openStore(ctx context.Context) error {
	var n *store.NATS
	var err error
	if s.cfg.NATSURL != "" {
		n, err = store.ConnectNATS(ctx, store.ExternalConfig{URL: s.cfg.NATSURL, Creds: s.cfg.NATSCreds, Logger: s.cfg.Logger})
		if err != nil {
			return fmt.Errorf("connect to NATS: %w", err)
		}
	} else {
		n, err = store.StartNATS(ctx, store.NATSConfig{
			Dir:        filepath.Join(s.cfg.DataDir, "nats"),
			ServerName: s.natsName,
			SyncAlways: s.cfg.SyncAlways,
			Logger:     s.cfg.Logger,
		})
		if err != nil {
			return fmt.Errorf("start embedded NATS: %w", err)
		}
	}
	s.nats = n
	opts := store.Options{Replicas: s.cfg.Replicas}
	if s.cfg.hooks != nil {
		opts.Fence = s.cfg.hooks.fence
	}
	st, err := store.Open(ctx, n.JetStream(), opts)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	s.store = st
	return nil
}

func (s *Server) serveHTTP() error {
	a := s.auth
	e := mobileapi.New(mobileapi.Services{
		Identity:   a.Identity,
		Circles:    a.Circle,
		Syncer:     a.Circle,
		Ledger:     a.Ledger,
		Audit:      a.Audit,
		Resets:     a.Resets,
		Events:     a.Events(),
		Readiness:  s,
		Credits:    a.Credits,
		Scorecard:  a.Scorecard,
		Governance: a.Governance,
		Charter:    a.Charter,
		Mandates:   a.Mandates,
		Rituals:    a.Meetings,
		Honours:    a.Honours,
		Sessions:   s.engine,

		DrawRounds:  a.Draws,
		PairAudits:  a.PairAudits,
		Mentorships: a.Mentorships,
		// GET /v1/federations (server/federation.go).
		Federations: fedLink{s.fed},
		// GET /v1/federations/{id} and the council (server/federation_docs.go).
		FederationDocs: replica.API{M: s.replicas, Now: s.cfg.Now},
	}, mobileapi.Options{Logger: s.cfg.Logger, Gatherer: s.reg, Metrics: s.cfg.MetricsOnAPI, TrustedProxies: s.cfg.TrustedProxies})
	if h := s.cfg.hooks; h != nil { // the failover serves its listener
		s.ln = h.ln
		h.setHandler(e)
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Listen, err)
	}
	s.ln = ln
	s.httpSrv = &http.Server{
		Handler:           e,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       120 * time.Second,
	}
	go func() {
		if err := s.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", "err", err)
		}
	}()
	return nil
}

// startTicking runs the authority's Tick every cfg.TickEvery (default
// 30 s) until Close.
func (s *Server) startTicking() {
	every := s.cfg.TickEvery
	if every <= 0 {
		every = 30 * time.Second
	}
	s.stopTick, s.tickDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(s.tickDone)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-s.stopTick:
				return
			case <-t.C:
				s.tickOnce()
			}
		}
	}()
}

// tickOnce is one scheduled tick. A panic in it is logged with its
// stack and counted (circles_panics_total{where="tick"}), and the
// scheduler goes on.
func (s *Server) tickOnce() {
	defer s.auth.Recover("tick") // a panic is logged and counted; the next tick runs
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if s.cfg.tickHook != nil {
		s.cfg.tickHook()
	}
	if err := s.Tick(ctx); err != nil {
		s.log.Warn("scheduler tick", "err", err)
	}
}

// Tick runs the circle's clock-driven work once (authority.Tick): the
// scheduler calls it on a timer, tests after moving the clock.
func (s *Server) Tick(ctx context.Context) error { return s.auth.Tick(ctx) }

// Addr is the address the HTTP server listens on ("host:port").
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// MetricsAddr is the address of the metrics listener ("host:port"), or
// "" if Config.MetricsListen is not set.
func (s *Server) MetricsAddr() string {
	if s.metricsLn == nil {
		return ""
	}
	return s.metricsLn.Addr().String()
}

// serveMetrics serves GET /metrics, and nothing else, on
// cfg.MetricsListen.
func (s *Server) serveMetrics() error {
	ln, err := net.Listen("tcp", s.cfg.MetricsListen)
	if err != nil {
		return fmt.Errorf("listen for metrics on %s: %w", s.cfg.MetricsListen, err)
	}
	s.metricsLn = ln
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	writeTimeout := 30 * time.Second
	if s.cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		writeTimeout = 0 // a CPU profile or trace takes as long as asked
	}
	s.metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: writeTimeout}
	go func() {
		if err := s.metricsSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("metrics server stopped", "err", err)
		}
	}()
	return nil
}

// URL is the base URL of the HTTP API.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Store is the circle's store, for tools and tests that inspect what is
// stored (backups, "nothing changed" checks).
func (s *Server) Store() *store.Store { return s.store }

// Authority is the circle's authority, for tools and tests that call it
// without going through HTTP.
func (s *Server) Authority() *authority.Authority { return s.auth }

// CircleID is the circle's id.
func (s *Server) CircleID() string { return s.auth.CircleID() }

// Ready reports whether the store and NATS are usable.
func (s *Server) Ready(ctx context.Context) error {
	if !s.ready.Load() {
		return errors.New("starting")
	}
	if s.nats == nil || !s.nats.Conn().IsConnected() {
		return errors.New("NATS connection is down")
	}
	return s.auth.Ready(ctx)
}

// Close stops the scheduler, then serving HTTP (letting requests in
// flight finish; event streams end first), then the authority's
// background work, the engine and NATS.
func (s *Server) Close() error {
	var errs []error
	if s.stopTick != nil {
		close(s.stopTick)
		<-s.tickDone
	}
	if s.auth != nil {
		s.auth.CloseEvents() // event streams end, so Shutdown need not wait for them
	}
	if s.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := s.httpSrv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
		cancel()
	} else if s.ln != nil && s.cfg.hooks == nil {
		s.ln.Close()
	}
	if s.ctlSrv != nil {
		// A backup being sent ends with the process's store.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := s.ctlSrv.Shutdown(ctx); err != nil {
			s.ctlSrv.Close()
		}
		cancel()
		os.Remove(filepath.Join(s.cfg.DataDir, controlSocket))
	}
	if s.metricsSrv != nil {
		if err := s.metricsSrv.Close(); err != nil {
			errs = append(errs, err)
		}
	} else if s.metricsLn != nil {
		s.metricsLn.Close()
	}
	s.stopLinkingReplicas()
	if s.replicas != nil {
		s.replicas.Close()
	}
	if s.fed != nil {
		s.fed.Close()
	}
	if s.auth != nil {
		s.auth.Close()
	}
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
	if s.unlock != nil {
		s.unlock() // last: the store is closed
		s.unlock = nil
	}
	return errors.Join(errs...)
}
