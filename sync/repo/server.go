package repo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/circles-coop/circles/sync/engine"
)

// Sessions opens the engine's live sessions; *engine.Engine implements it.
type Sessions interface {
	NewSession(peer engine.Peer, notify func(doc string)) (*engine.Session, error)
}

var _ Sessions = (*engine.Engine)(nil)

// Options configure a Server. Zero values take the defaults named.
type Options struct {
	// PeerID is the server's peer id in the protocol. Default "circled-"
	// and 16 random hex digits, new for every Server: a client's Repo
	// routes messages by peer id, so two circles it connects to must not
	// share one.
	PeerID string
	// PingInterval is how often the server pings a client; a client that
	// has not answered a ping within PingTimeout is dropped. Defaults 5 s
	// and 10 s.
	PingInterval time.Duration
	PingTimeout  time.Duration
	// HandshakeTimeout is how long a client has to send its join. Default
	// 10 s.
	HandshakeTimeout time.Duration
	// MaxFrame bounds one incoming frame (the read limit). Default 16 MiB.
	MaxFrame int64
	// MaxQueued and MaxQueuedBytes bound the incoming messages of one
	// connection waiting to be processed; MaxSendQueue and MaxSendBytes
	// bound the frames waiting to be sent to it. When a queue stays full
	// for QueueWait, the connection is closed with a reason. Defaults 256
	// messages, 64 MiB, 256 frames, 64 MiB, 5 s.
	MaxQueued      int
	MaxQueuedBytes int64
	MaxSendQueue   int
	MaxSendBytes   int64
	QueueWait      time.Duration
	// Workers bounds the documents of one connection processed at once
	// (messages of one document are processed in order). Default 4.
	Workers int
	// WriteTimeout bounds the sending of one frame. Default 30 s.
	WriteTimeout time.Duration
	// RecheckEvery is how often a connection's credentials are checked
	// again (the recheck function given to Serve), so a revoked device or
	// an expired token loses its socket within that time. Default 5 s.
	RecheckEvery time.Duration
	// Refusal turns the policy's error inside an *engine.RefusedError into
	// the rule name and message of the notice sent to the client; ok false
	// means the error is not a rule (the client is told "internal" and it
	// is logged). Default: every refusal is rule "refused" with the
	// error's text.
	Refusal func(err error) (rule, message string, ok bool)
	Logger  *slog.Logger
}

func (o *Options) defaults() {
	if o.PeerID == "" {
		o.PeerID = "circled-" + randomID(8)
	}
	if o.PingInterval <= 0 {
		o.PingInterval = 5 * time.Second
	}
	if o.PingTimeout <= 0 {
		o.PingTimeout = 10 * time.Second
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = 10 * time.Second
	}
	if o.MaxFrame <= 0 {
		o.MaxFrame = 16 << 20
	}
	if o.MaxQueued <= 0 {
		o.MaxQueued = 256
	}
	if o.MaxQueuedBytes <= 0 {
		o.MaxQueuedBytes = 64 << 20
	}
	if o.MaxSendQueue <= 0 {
		o.MaxSendQueue = 256
	}
	if o.MaxSendBytes <= 0 {
		o.MaxSendBytes = 64 << 20
	}
	if o.QueueWait <= 0 {
		o.QueueWait = 5 * time.Second
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 30 * time.Second
	}
	if o.RecheckEvery <= 0 {
		o.RecheckEvery = 5 * time.Second
	}
	if o.Refusal == nil {
		o.Refusal = func(err error) (string, string, bool) { return "refused", err.Error(), true }
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Server speaks the automerge-repo network protocol over WebSocket
// connections on the engine's sessions. Create it with New; each
// authenticated upgrade request goes to Serve.
type Server struct {
	sessions Sessions
	opts     Options
	log      *slog.Logger

	mu    sync.Mutex
	peers map[peerKey]*conn // joined connections; a later join with the same key replaces the earlier
}

// peerKey names a joined peer: its device and the senderId it chose, so
// that one device cannot displace another's connection.
type peerKey struct{ device, sender string }

// New returns a Server running sessions of sessions.
func New(sessions Sessions, opts Options) *Server {
	opts.defaults()
	return &Server{sessions: sessions, opts: opts, log: opts.Logger.With("component", "repo"), peers: make(map[peerKey]*conn)}
}

// Serve upgrades r to a WebSocket and runs the protocol for peer, already
// authenticated by the caller, until the connection ends. recheck (may be
// nil) is called every RecheckEvery; when it fails the connection is
// closed (an expired token, a revoked device). If the upgrade fails, Serve
// has answered with an HTTP error and returns the reason; otherwise it
// returns nil once the connection is closed.
//
// The HTTP server's read and write deadlines are lifted for the
// connection, so a server WriteTimeout does not cut long-lived sockets;
// the keep-alive pings take their place.
func (s *Server) Serve(w http.ResponseWriter, r *http.Request, peer engine.Peer, recheck func(context.Context) error) error {
	rc := http.NewResponseController(w)
	// Errors mean the writer cannot set deadlines (a test recorder): then
	// there are none to lift.
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return err
	}
	ws.SetReadLimit(s.opts.MaxFrame)
	c := newConn(s, ws, peer, recheck)
	sess, err := s.sessions.NewSession(peer, c.notify)
	if err != nil {
		ws.Close(websocket.StatusTryAgainLater, "the server is shutting down")
		return nil
	}
	c.sess = sess
	c.run()
	sess.Close()
	s.mu.Lock()
	if c.remote != "" && s.peers[peerKey{peer.Device, c.remote}] == c {
		delete(s.peers, peerKey{peer.Device, c.remote})
	}
	s.mu.Unlock()
	return nil
}

// join registers c as the connection of sender, closing the connection it
// replaces.
func (s *Server) join(c *conn, sender string) {
	key := peerKey{c.peer.Device, sender}
	s.mu.Lock()
	old := s.peers[key]
	s.peers[key] = c
	s.mu.Unlock()
	if old != nil && old != c {
		old.log.Info("connection replaced by a newer one of the same peer")
		old.fail(websocket.StatusNormalClosure, "replaced by a newer connection of the same peer")
	}
}

// randomID returns n random bytes in hex.
func randomID(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("repo: random id: %v", err))
	}
	return hex.EncodeToString(b)
}

// errQueueTimeout is a queue that stayed full for QueueWait.
var errQueueTimeout = errors.New("queue full")
