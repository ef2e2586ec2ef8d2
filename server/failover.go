package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/circles-coop/circles/authority/fault"
	"github.com/circles-coop/circles/internal/atomicfile"
	"github.com/circles-coop/circles/sync/store"
	"github.com/circles-coop/circles/wire"
)

// Failover mode: several `circled serve --failover` processes of one
// circle on one JetStream cluster. One of them holds the circle's lease
// — a key in the JetStream KV bucket LeaseBucket whose entries expire
// LeaseTTL after they are written — and serves; the others stand by.
//
//   - Acquiring is kv.Create: it succeeds only while the key is absent
//     (JetStream's expected-last-subject-sequence check), so of several
//     standbys racing exactly one wins.
//   - Renewing is kv.Update at the revision the holder last wrote, every
//     LeaseRenew; a renewal refused for its revision means another holds
//     the lease now: this process has lost it.
//   - Fencing: the holder may write (store.Options.Fence, asked under the
//     store's write gate before every write) only until LeaseValid after
//     it sent its last renewal that JetStream acknowledged. The key expires
//     LeaseTTL after JetStream stored that renewal, which is later, so a
//     holder that is paused or cut off stops writing at least
//     LeaseTTL-LeaseValid before anyone else can acquire the lease.
//   - On losing the lease the process closes its circle (engine,
//     authority) and stands by again; on acquiring it opens the circle
//     from the store (Open: every in-memory state is rebuilt from what is
//     stored).
//   - A standby that has read the same revision for leaseStale (6 s)
//     takes the lease over with kv.Update at that revision: if the
//     holder renewed meanwhile the compare-and-set fails; if not, the
//     holder's fence closed long before. This does not rely on JetStream
//     expiring the key in time.
//   - A graceful stop deletes the key (at the holder's revision), so a
//     standby takes over at once instead of after LeaseTTL.
//
// A standby answers every request except /healthz, /readyz and /metrics
// with 503, Retry-After: 1, and the serving instance in the headers
// Circle-Serving-Instance and Circle-Serving-URL; a load balancer routes
// by /readyz (200 only on the serving instance).
const (
	LeaseBucket = "circ_lease"
	leaseKey    = "serving"
	LeaseTTL    = 3 * time.Second
	LeaseRenew  = 500 * time.Millisecond
	LeaseValid  = 2 * time.Second
	leasePoll   = 200 * time.Millisecond
	// leaseStale: a lease whose revision a standby has seen unchanged
	// this long is taken over by compare-and-set at that revision, in
	// case JetStream is slow to expire it (its holder stopped writing
	// LeaseValid after sending that renewal at the latest).
	leaseStale = LeaseTTL + LeaseValid + time.Second
	// openTimeout bounds opening the circle on taking the lease; past
	// it the lease is given up (another instance, or this one again, tries
	// afresh) rather than held by an instance that does not serve.
	openTimeout = 15 * time.Second
)

// leaseBucketTTL is the lease bucket's TTL: LeaseTTL, except in a test
// of the takeover of a lease JetStream does not expire.
var leaseBucketTTL = LeaseTTL

// ErrNotServing is the fence's refusal: this process does not hold the
// circle's lease (or can no longer be sure it does).
var ErrNotServing = errors.New("this instance does not hold the circle's lease")

// LeaseHolder is the lease's value: who serves the circle.
type LeaseHolder struct {
	Instance string    `json:"instance"`
	URL      string    `json:"url"`
	Since    time.Time `json:"since"`
}

// failoverHooks connect a Server opened by a Failover to it.
type failoverHooks struct {
	ln         net.Listener
	setHandler func(http.Handler)
	fence      func() error
}

// Failover is a circled process in failover mode: it always serves HTTP
// on its listener, and runs the circle (a Server) only while it holds the
// lease.
type Failover struct {
	cfg    Config
	self   LeaseHolder
	ln     net.Listener
	http   *http.Server
	unlock func()

	nats *store.NATS // the lease's own connection
	kv   jetstream.KeyValue

	handler atomic.Pointer[http.Handler] // the circle's, while serving
	// validUntil is when the fence closes, in nanoseconds since start
	// (monotonic); 0 when not holding the lease.
	start      time.Time
	validUntil atomic.Int64
	rev        atomic.Uint64 // the lease revision this process wrote last
	holder     atomic.Pointer[LeaseHolder]

	mu       sync.Mutex
	srv      *Server
	serving  atomic.Bool
	takeover atomic.Int64 // how long the last takeover took to serve, ns

	stop chan struct{}
	done chan struct{}
}

// OpenFailover starts a process in failover mode: it listens at once
// (answering as a standby), connects to the cluster, and from then on
// serves the circle whenever it holds the lease. It returns once the
// listener is up and the address file written.
func OpenFailover(ctx context.Context, cfg Config) (*Failover, error) {
	cfg.Failover = true
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if _, err := readKey(cfg.DataDir); err != nil {
		return nil, err
	}
	unlock, err := lockData(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	f := &Failover{cfg: cfg, unlock: unlock, start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			f.closeResources()
		}
	}()
	f.ln, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	f.self = LeaseHolder{Instance: cfg.Instance, URL: cfg.Advertise}
	if f.self.Instance == "" {
		host, _ := os.Hostname()
		f.self.Instance = host + "-" + strconv.Itoa(os.Getpid())
	}
	if f.self.URL == "" {
		f.self.URL = "http://" + f.ln.Addr().String()
	}
	f.nats, err = store.ConnectNATS(ctx, store.ExternalConfig{URL: cfg.NATSURL, Creds: cfg.NATSCreds, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("connect to NATS: %w", err)
	}
	replicas := max(cfg.Replicas, 1)
	f.kv, err = f.nats.JetStream().CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      LeaseBucket,
		Description: "circles: which circled instance serves the circle (failover lease)",
		History:     1,
		TTL:         leaseBucketTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("lease bucket: %w", err)
	}
	f.http = &http.Server{
		Handler:           http.HandlerFunc(f.serveHTTP),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       120 * time.Second,
	}
	go func() {
		if err := f.http.Serve(f.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cfg.Logger.Error("http server stopped", "err", err)
		}
	}()
	if cfg.AddrFile != "" {
		if err := writeAddrFile(cfg.AddrFile, f.ln.Addr().String()); err != nil {
			return nil, err
		}
	}
	go f.run()
	ok = true
	cfg.Logger.Info("failover instance up", "instance", f.self.Instance, "url", f.self.URL, "addr", f.ln.Addr().String())
	return f, nil
}

// Addr is the address the HTTP listener listens on.
func (f *Failover) Addr() string { return f.ln.Addr().String() }

// URL is the base URL of this instance.
func (f *Failover) URL() string { return "http://" + f.Addr() }

// Instance is this process's name in the lease.
func (f *Failover) Instance() string { return f.self.Instance }

// Serving reports whether this process holds the lease and serves.
func (f *Failover) Serving() bool { return f.serving.Load() }

// Server is the circle while this process serves it, else nil.
func (f *Failover) Server() *Server {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.srv
}

// fence is the store's write fence: nil while the lease is surely held.
func (f *Failover) fence() error {
	until := f.validUntil.Load()
	if until == 0 || int64(time.Since(f.start)) >= until {
		return ErrNotServing
	}
	return nil
}

func (f *Failover) now() int64 { return int64(time.Since(f.start)) }

// run acquires the lease, serves while holding it, and stands by again
// when it is lost, until Close.
func (f *Failover) run() {
	defer close(f.done)
	log := f.cfg.Logger.With("component", "failover", "instance", f.self.Instance)
	for {
		// Stand by until the lease is ours.
		if !f.acquire(log) {
			return
		}
		began := time.Now()
		log.Info("holding the circle's lease; opening the circle")
		lost, quit := make(chan struct{}), make(chan struct{})
		renewDone := make(chan struct{})
		go func() {
			defer close(renewDone)
			f.renew(log, lost, quit)
		}()
		srv, err := f.openServer()
		if err != nil {
			log.Error("holding the lease but the circle did not open; giving it up", "err", err)
			close(quit)
			<-renewDone
			f.release(log)
			if !f.pause(time.Second) {
				return
			}
			continue
		}
		f.takeover.Store(int64(time.Since(began)))
		log.Info("serving the circle", "circle", srv.CircleID(), "open_took", time.Since(began).String())
		select {
		case <-lost:
			log.Warn("lost the circle's lease; standing by")
			f.closeServer()
			<-renewDone
		case <-f.stop:
			f.closeServer() // still fenced open: its last flush is written
			close(quit)
			<-renewDone
			f.release(log)
			return
		}
	}
}

// pause waits d or until Close; false means Close.
func (f *Failover) pause(d time.Duration) bool {
	select {
	case <-f.stop:
		return false
	case <-time.After(d):
		return true
	}
}

// acquire polls the lease until this process creates it (true) or Close
// (false). Between attempts it remembers who holds it. Failures other
// than "held by another" are logged, at most every 5 s.
func (f *Failover) acquire(log *slog.Logger) bool {
	var lastWarn time.Time
	var seenRev uint64   // the holder's revision this process read last
	var seenAt time.Time // when it first read it
	for {
		select {
		case <-f.stop:
			return false
		default:
		}
		self := f.self
		self.Since = time.Now().UTC()
		val, _ := json.Marshal(self)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		sent := f.now()
		rev, err := f.kv.Create(ctx, leaseKey, val)
		if err == nil {
			cancel()
			f.rev.Store(rev)
			f.validUntil.Store(sent + int64(LeaseValid))
			f.holder.Store(&self)
			return true
		}
		e, gerr := f.kv.Get(ctx, leaseKey)
		switch {
		case gerr == nil:
			var h LeaseHolder
			if json.Unmarshal(e.Value(), &h) == nil {
				f.holder.Store(&h)
			}
			if e.Revision() != seenRev {
				seenRev, seenAt = e.Revision(), time.Now()
			} else if time.Since(seenAt) > leaseStale {
				// Nobody renewed it for longer than anyone may write on
				// it; JetStream has not expired it yet. Take it over at
				// that revision: the compare-and-set fails if it was
				// renewed after all.
				sent = f.now()
				rev, uerr := f.kv.Update(ctx, leaseKey, val, seenRev)
				if uerr == nil {
					cancel()
					log.Warn("took over a lease nobody renewed", "holder", h.Instance, "revision", seenRev, "unrenewed_for", time.Since(seenAt).String())
					f.rev.Store(rev)
					f.validUntil.Store(sent + int64(LeaseValid))
					f.holder.Store(&self)
					return true
				}
				if time.Since(lastWarn) > 5*time.Second {
					lastWarn = time.Now()
					log.Warn("standing by: taking over an unrenewed lease failed", "holder", h.Instance, "revision", seenRev, "err", uerr)
				}
			}
		case errors.Is(gerr, jetstream.ErrKeyNotFound):
			f.holder.Store(nil)
			seenRev = 0
		default:
			seenRev = 0 // unsure what is stored: watch afresh
		}
		cancel()
		if (!errors.Is(err, jetstream.ErrKeyExists) || (gerr != nil && !errors.Is(gerr, jetstream.ErrKeyNotFound))) && time.Since(lastWarn) > 5*time.Second {
			lastWarn = time.Now()
			log.Warn("standing by: acquiring the lease failed", "err", err, "read_err", gerr)
		}
		if !f.pause(leasePoll) {
			return false
		}
	}
}

// renew keeps the lease until it is lost (closes lost) or Close.
func (f *Failover) renew(log interface {
	Warn(string, ...any)
}, lost, quit chan struct{}) {
	t := time.NewTicker(LeaseRenew)
	defer t.Stop()
	val, _ := json.Marshal(f.holder.Load())
	for {
		select {
		case <-quit:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), LeaseRenew)
		sent := f.now()
		rev, err := f.kv.Update(ctx, leaseKey, val, f.rev.Load())
		cancel()
		switch {
		case err == nil:
			f.rev.Store(rev)
			f.validUntil.Store(sent + int64(LeaseValid))
			continue
		case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyNotFound), isWrongSequence(err):
			log.Warn("lease renewal refused: another instance holds it", "err", err)
		default:
			if f.fence() == nil {
				log.Warn("lease renewal failed; retrying while the lease is still valid", "err", err)
				continue
			}
			log.Warn("lease renewal failed past its validity", "err", err)
		}
		f.validUntil.Store(0) // the fence closes before anything else
		f.holder.Store(nil)   // acquire's next poll reads who holds it
		close(lost)
		return
	}
}

// isWrongSequence reports JetStream's refusal of a write at a stale
// revision (expected last subject sequence).
func isWrongSequence(err error) bool {
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// release deletes the lease at this process's revision, so a standby
// takes over without waiting for it to expire.
func (f *Failover) release(log interface{ Warn(string, ...any) }) {
	f.validUntil.Store(0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := f.kv.Delete(ctx, leaseKey, jetstream.LastRevision(f.rev.Load())); err != nil {
		log.Warn("releasing the lease", "err", err)
	}
}

func (f *Failover) openServer() (*Server, error) {
	cfg := f.cfg
	cfg.AddrFile = "" // written once, for the listener
	cfg.hooks = &failoverHooks{
		ln:         f.ln,
		setHandler: func(h http.Handler) { f.handler.Store(&h) },
		fence:      f.fence,
	}
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	srv, err := Open(ctx, cfg)
	if err != nil {
		f.handler.Store(nil)
		return nil, err
	}
	f.mu.Lock()
	f.srv = srv
	f.mu.Unlock()
	f.serving.Store(true)
	return srv, nil
}

func (f *Failover) closeServer() {
	f.serving.Store(false)
	f.handler.Store(nil) // requests from now on get the standby's answer
	f.mu.Lock()
	srv := f.srv
	f.srv = nil
	f.mu.Unlock()
	if srv != nil {
		if err := srv.Close(); err != nil {
			f.cfg.Logger.Warn("closing the circle", "err", err)
		}
	}
}

// Close stops serving (releasing the lease if held) and ends the process's
// listener and connection.
func (f *Failover) Close() error {
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	<-f.done
	return f.closeResources()
}

func (f *Failover) closeResources() error {
	var errs []error
	if f.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := f.http.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
		cancel()
	} else if f.ln != nil {
		f.ln.Close()
	}
	if f.nats != nil {
		if err := f.nats.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if f.unlock != nil {
		f.unlock()
		f.unlock = nil
	}
	return errors.Join(errs...)
}

// ReadyStatus is the body of GET /readyz in failover mode: API.md's
// {"status": "ready"} (or the error body) with these fields added.
type ReadyStatus struct {
	Status   string            `json:"status,omitempty"`
	Error    *wire.ErrorDetail `json:"error,omitempty"`
	Role     string            `json:"role"` // "serving" or "standby"
	Instance string            `json:"instance"`
	Serving  *LeaseHolder      `json:"serving,omitempty"`
	// TakeoverMS is how long this instance took from acquiring the lease
	// to serving (opening the circle from the store), while serving.
	TakeoverMS int64 `json:"takeover_ms,omitempty"`
}

// serveHTTP is the listener's handler: /readyz here, everything else to
// the circle while serving, the standby's answer otherwise.
func (f *Failover) serveHTTP(w http.ResponseWriter, r *http.Request) {
	h := f.handler.Load()
	if r.URL.Path == "/readyz" && r.Method == http.MethodGet {
		f.readyz(w, r)
		return
	}
	if h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	if r.URL.Path == "/healthz" && r.Method == http.MethodGet {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return
	}
	holder := f.holder.Load()
	msg := "this instance is a standby and no instance serves the circle right now; try again shortly"
	if holder != nil && holder.Instance != f.self.Instance {
		w.Header().Set("Circle-Serving-Instance", holder.Instance)
		w.Header().Set("Circle-Serving-URL", holder.URL)
		msg = fmt.Sprintf("this instance is a standby; %s at %s serves the circle", holder.Instance, holder.URL)
	}
	w.Header().Set("Retry-After", "1")
	writeJSON(w, http.StatusServiceUnavailable, wire.ErrorBody{Error: wire.ErrorDetail{Code: fault.NotReady, Message: msg}})
}

func (f *Failover) readyz(w http.ResponseWriter, r *http.Request) {
	st := ReadyStatus{Instance: f.self.Instance, Role: "standby", Serving: f.holder.Load()}
	srv := f.Server()
	if srv != nil && f.fence() == nil {
		st.Role = "serving"
		st.TakeoverMS = time.Duration(f.takeover.Load()).Milliseconds()
		if err := srv.Ready(r.Context()); err != nil {
			f.cfg.Logger.Warn("not ready", "err", err)
			st.Error = &wire.ErrorDetail{Code: fault.NotReady, Message: "the server is not ready; try again shortly"}
			writeJSON(w, http.StatusServiceUnavailable, st)
			return
		}
		st.Status = "ready"
		writeJSON(w, http.StatusOK, st)
		return
	}
	w.Header().Set("Retry-After", "1")
	msg := "this instance is a standby"
	if st.Serving != nil {
		msg += "; " + st.Serving.Instance + " at " + st.Serving.URL + " serves the circle"
	}
	st.Error = &wire.ErrorDetail{Code: fault.NotReady, Message: msg}
	writeJSON(w, http.StatusServiceUnavailable, st)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeAddrFile writes "host:port\n" atomically.
func writeAddrFile(path, addr string) error {
	if err := atomicfile.Write(path, []byte(addr+"\n"), 0o644); err != nil {
		return fmt.Errorf("write address file: %w", err)
	}
	return nil
}
