package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// MaxPayload is the largest message, headers included, the embedded server
// accepts. It bounds a single chunk or snapshot; a snapshot of a few MB fits.
const MaxPayload = 8 << 20

// PublishAckTimeout bounds the wait for one async publish's ack on an
// external cluster (ConnectNATS).
const PublishAckTimeout = 5 * time.Second

// NATSConfig configures the embedded nats-server started by StartNATS.
type NATSConfig struct {
	// Dir is the JetStream store directory. Required. Everything the store
	// keeps lives below it, so a copy of Dir taken while the server is
	// stopped is a complete backup.
	Dir string

	// Listen is the host:port of the client listener. Empty means no
	// listener at all (DontListen): only the in-process connection can
	// reach the server. A port of 0 picks a free port.
	Listen string

	// SyncAlways makes JetStream fsync every write before acknowledging it.
	// Off by default; see the package documentation for the trade-off.
	SyncAlways bool

	// Logger receives the server's log lines: notices and debug lines at
	// debug level, warnings and errors at their own. Nil discards them.
	Logger *slog.Logger

	// ServerName names the server to the federation hubs it links to as a
	// leaf node; a hub replaces a leaf connection from a server of the same
	// name, so every circle needs its own. Default "circled".
	ServerName string
}

// NATS is a running embedded nats-server with JetStream and an in-process
// client connection to it. Create it with StartNATS and stop it with Close.
type NATS struct {
	srv    *server.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	closed chan struct{} // closed when nc is closed

	closeOnce sync.Once
	closeErr  error

	// optsMu guards opts, the options the embedded server runs with (a
	// clone of those it was started with): SetLeafRemotes reloads a clone
	// of them.
	optsMu sync.Mutex
	opts   *server.Options
}

// StartNATS starts nats-server with JetStream storing in cfg.Dir, waits
// until it accepts connections (bounded by ctx, or 30 s when ctx has no
// deadline), and connects to it in-process. The caller must Close the
// returned NATS.
func StartNATS(ctx context.Context, cfg NATSConfig) (*NATS, error) {
	if cfg.Dir == "" {
		return nil, errors.New("store: NATSConfig.Dir is required")
	}
	name := cfg.ServerName
	if name == "" {
		name = "circled"
	}
	opts := &server.Options{
		ServerName: name,
		JetStream:  true,
		StoreDir:   cfg.Dir,
		SyncAlways: cfg.SyncAlways,
		MaxPayload: MaxPayload,
		NoSigs:     true,
		NoLog:      cfg.Logger == nil,
	}
	if cfg.Listen == "" {
		opts.DontListen = true
	} else {
		host, portStr, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("store: listen address %q: %w", cfg.Listen, err)
		}
		port, err := strconv.Atoi(portStr)
		if err != nil || port < 0 || port > 65535 {
			return nil, fmt.Errorf("store: listen port %q is not a port number", portStr)
		}
		if port == 0 {
			// nats-server reads 0 as "the default port 4222".
			port = server.RANDOM_PORT
		}
		opts.Host, opts.Port = host, port
	}

	base := opts.Clone() // NewServer may change opts
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("store: new nats-server: %w", err)
	}
	if cfg.Logger != nil {
		l := cfg.Logger.With("component", "nats")
		srv.SetLoggerV2(slogLogger{l}, l.Enabled(ctx, slog.LevelDebug), false, false)
	}
	go srv.Start()

	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	for !srv.ReadyForConnections(100 * time.Millisecond) {
		if err := ctx.Err(); err != nil {
			srv.Shutdown()
			srv.WaitForShutdown()
			return nil, fmt.Errorf("store: nats-server not ready: %w", err)
		}
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("store: JetStream did not start in %s (see the server log)", cfg.Dir)
	}

	n := &NATS{srv: srv, opts: base, closed: make(chan struct{})}
	nc, err := nats.Connect(srv.ClientURL(),
		nats.InProcessServer(srv),
		nats.Name("circled-store"),
		nats.ClosedHandler(func(*nats.Conn) { close(n.closed) }),
	)
	if err != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("store: connect in-process: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("store: jetstream: %w", err)
	}
	n.nc, n.js = nc, js
	return n, nil
}

// ExternalConfig configures ConnectNATS: a connection to a NATS server or
// cluster with JetStream run by someone else, instead of the embedded one.
type ExternalConfig struct {
	// URL is one or more server URLs, comma separated
	// (nats://host:4222,nats://host2:4222). Required.
	URL string
	// Creds is a NATS credentials file (JWT and seed), if the servers
	// want one.
	Creds string
	// Logger receives reconnects and errors. Nil discards them.
	Logger *slog.Logger
}

// ConnectNATS connects to an external NATS server or cluster with
// JetStream and waits (bounded by ctx, or 30 s) until its JetStream
// answers. The connection reconnects forever; Close drains and closes it
// and stops no server.
func ConnectNATS(ctx context.Context, cfg ExternalConfig) (*NATS, error) {
	if cfg.URL == "" {
		return nil, errors.New("store: ExternalConfig.URL is required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "nats")
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	n := &NATS{closed: make(chan struct{})}
	opts := []nats.Option{
		nats.Name("circled-store"),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(false),
		nats.ClosedHandler(func(*nats.Conn) { close(n.closed) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("disconnected from NATS", "err", err) }),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("reconnected to NATS", "url", c.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { log.Warn("NATS error", "err", err) }),
	}
	if cfg.Creds != "" {
		opts = append(opts, nats.UserCredentials(cfg.Creds))
	}
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("store: connect to %s: %w", redactURL(cfg.URL), err)
	}
	// An async publish whose ack never comes (it reached a node that died
	// before answering) fails after PublishAckTimeout instead of holding
	// its batch, and the documents it writes, for the batch's whole
	// deadline: the client is told to retry, nothing acknowledged is lost.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(PublishAckTimeout))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("store: jetstream: %w", err)
	}
	// A cluster answers once it has a JetStream meta leader.
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := js.AccountInfo(actx)
		cancel()
		if err == nil {
			break
		}
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			nc.Close()
			return nil, fmt.Errorf("store: %s: %w", redactURL(cfg.URL), err)
		}
		select {
		case <-ctx.Done():
			nc.Close()
			return nil, fmt.Errorf("store: JetStream at %s not ready: %w (last: %v)", redactURL(cfg.URL), ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	n.nc, n.js = nc, js
	return n, nil
}

// redactURL drops passwords and tokens from URLs for messages.
func redactURL(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			u.User = url.User("redacted")
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}

// Conn returns the client connection (in-process for the embedded server).
func (n *NATS) Conn() *nats.Conn { return n.nc }

// JetStream returns a JetStream context on the in-process connection.
func (n *NATS) JetStream() jetstream.JetStream { return n.js }

// Server returns the embedded server, e.g. for its ClientURL or monitoring;
// nil for a connection made by ConnectNATS.
func (n *NATS) Server() *server.Server { return n.srv }

// ErrNoEmbeddedServer is returned by SetLeafRemotes on a connection to an
// external NATS server (ConnectNATS): there is no server of ours to link.
var ErrNoEmbeddedServer = errors.New("store: no embedded nats-server (external NATS in use)")

// SetLeafRemotes replaces the embedded server's leaf node remotes at
// runtime (federation links): ReloadOptions on a clone of the options it
// runs with, so a remote that is gone or Disabled is closed at once and a
// new one connects. Each remote must be a fresh value, not one passed
// before (nats-server keeps the pointers it was given).
func (n *NATS) SetLeafRemotes(remotes []*server.RemoteLeafOpts) error {
	if n.srv == nil {
		return ErrNoEmbeddedServer
	}
	n.optsMu.Lock()
	defer n.optsMu.Unlock()
	next := n.opts.Clone()
	next.LeafNode.Remotes = remotes
	if err := n.srv.ReloadOptions(next); err != nil {
		return fmt.Errorf("store: reload leaf node remotes: %w", err)
	}
	n.opts = next
	return nil
}

// Options returns a copy of the options the embedded server runs with,
// as the base of a ReloadOptions (a test adding a leaf remote); nil for a
// connection made by ConnectNATS.
func (n *NATS) Options() *server.Options {
	if n.srv == nil {
		return nil
	}
	n.optsMu.Lock()
	defer n.optsMu.Unlock()
	return n.opts.Clone()
}

// Close drains the in-process connection (pending publishes and their acks
// finish), shuts the server down and waits until it has stopped, so the
// store directory may be reopened or copied afterwards. Calling Close again
// returns the first result.
func (n *NATS) Close() error {
	n.closeOnce.Do(func() {
		if err := n.nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			n.closeErr = fmt.Errorf("store: drain: %w", err)
			n.nc.Close()
		}
		// Drain is asynchronous; it closes the connection when done, bounded
		// by the connection's drain timeout.
		<-n.closed
		if n.srv != nil {
			n.srv.Shutdown()
			n.srv.WaitForShutdown()
		}
	})
	return n.closeErr
}

// slogLogger adapts a *slog.Logger to nats-server's Logger interface.
type slogLogger struct{ l *slog.Logger }

var _ server.Logger = slogLogger{}

// Noticef logs at debug level: the server's notices (startup banner,
// JetStream recovery details) are too chatty for a circle's info log.
func (s slogLogger) Noticef(format string, v ...any) { s.l.Debug(fmt.Sprintf(format, v...)) }
func (s slogLogger) Warnf(format string, v ...any)   { s.l.Warn(fmt.Sprintf(format, v...)) }
func (s slogLogger) Errorf(format string, v ...any)  { s.l.Error(fmt.Sprintf(format, v...)) }
func (s slogLogger) Debugf(format string, v ...any)  { s.l.Debug(fmt.Sprintf(format, v...)) }
func (s slogLogger) Tracef(format string, v ...any)  { s.l.Debug(fmt.Sprintf(format, v...)) }

// Fatalf logs at error level and, unlike nats-server's own loggers, does not
// exit the process: the owner of NATS decides what a failed server means.
func (s slogLogger) Fatalf(format string, v ...any) {
	s.l.Error(fmt.Sprintf(format, v...), "fatal", true)
}
