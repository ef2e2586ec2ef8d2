package repo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/circles-coop/circles/sync/engine"
)

// conn is one WebSocket connection. Its goroutines — the reader, the
// writer, the keep-alive loop and Workers document workers — are started
// and waited for by run; fail ends them all.
//
// Incoming request and sync messages are queued per document; a document
// is handed to one worker at a time, so its messages are processed in
// order, while up to Workers documents proceed at once. A push (another
// writer changed a document this connection syncs) is queued the same way,
// coalesced into one pending push per document.
type conn struct {
	srv     *Server
	opts    *Options
	ws      *websocket.Conn
	peer    engine.Peer
	recheck func(context.Context) error
	sess    *engine.Session
	log     *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc

	closeMu     sync.Mutex
	closeCode   websocket.StatusCode
	closeReason string

	joined atomic.Bool
	// remote is the client's senderId, set once by the reader at its join
	// and read by the workers and Serve after that.
	remoteMu sync.Mutex
	remote   string

	// sessionID and count number the ephemeral messages the server sends,
	// which clients deduplicate by (sender, sessionId, count).
	sessionID string
	count     atomic.Uint64

	// mu guards the incoming queues.
	mu          sync.Mutex
	docs        map[string]*docQueue
	ready       []string // documents with work that no worker holds, oldest first
	queued      int      // incoming messages waiting, all documents
	queuedBytes int64
	wake        chan struct{} // a document became ready (cap Workers)
	room        chan struct{} // an incoming message left the queue (cap 1)

	out outQueue
}

// docQueue is one document's pending work; guarded by conn.mu.
type docQueue struct {
	items   []item
	push    bool // another writer changed the document: send what is new
	running bool // a worker holds the document
	isReady bool // the document is in conn.ready
}

// item is one incoming request or sync message.
type item struct {
	typ  string
	data []byte
}

func newConn(s *Server, ws *websocket.Conn, peer engine.Peer, recheck func(context.Context) error) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{
		srv: s, opts: &s.opts, ws: ws, peer: peer, recheck: recheck,
		log: s.log.With("device", peer.Device, "member", peer.Member),
		ctx: ctx, cancel: cancel,
		sessionID: randomID(8),
		docs:      make(map[string]*docQueue),
		wake:      make(chan struct{}, s.opts.Workers),
		room:      make(chan struct{}, 1),
	}
	c.out = outQueue{max: s.opts.MaxSendQueue, maxBytes: s.opts.MaxSendBytes, avail: make(chan struct{}, 1), room: make(chan struct{}, 1)}
	return c
}

// run serves the connection until it fails or closes, then closes the
// WebSocket with the recorded reason and waits for every goroutine.
func (c *conn) run() {
	c.log.Debug("connection open")
	var wg sync.WaitGroup
	wg.Go(c.readLoop)
	wg.Go(c.writeLoop)
	wg.Go(c.keepAlive)
	for range c.opts.Workers {
		wg.Go(c.work)
	}
	<-c.ctx.Done()
	code, reason := c.reason()
	// Close sends the close frame and waits (bounded) for the client's;
	// it also ends the reader's Read.
	_ = c.ws.Close(code, reason)
	wg.Wait()
	c.log.Info("connection closed", "peer", c.target(), "code", code.String(), "reason", reason)
}

// fail ends the connection with code and reason (the first call wins).
// It never blocks, so any goroutine may call it, also another
// connection's.
func (c *conn) fail(code websocket.StatusCode, reason string) {
	c.closeMu.Lock()
	if c.closeCode == 0 {
		if len(reason) > 123 { // the protocol's limit for a close reason
			reason = strings.ToValidUTF8(reason[:123], "")
		}
		c.closeCode, c.closeReason = code, reason
	}
	c.closeMu.Unlock()
	c.cancel()
}

func (c *conn) reason() (websocket.StatusCode, string) {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.closeCode == 0 {
		return websocket.StatusNormalClosure, ""
	}
	return c.closeCode, c.closeReason
}

func (c *conn) target() string {
	c.remoteMu.Lock()
	defer c.remoteMu.Unlock()
	return c.remote
}

// readLoop reads frames until the connection ends. It is the only reader,
// so it also answers pings and reads the pongs the keep-alive waits for.
func (c *conn) readLoop() {
	for {
		// Not c.ctx: a cancelled Read drops the connection at once, and
		// run closes it properly instead.
		typ, frame, err := c.ws.Read(context.Background())
		if err != nil {
			switch {
			case errors.Is(err, websocket.ErrMessageTooBig):
				c.fail(websocket.StatusMessageTooBig, fmt.Sprintf("a frame is over the limit of %d bytes", c.opts.MaxFrame))
			case websocket.CloseStatus(err) != -1:
				c.fail(websocket.StatusNormalClosure, "")
			default:
				c.fail(websocket.StatusGoingAway, "")
			}
			return
		}
		if typ != websocket.MessageBinary {
			c.protocolError(websocket.StatusUnsupportedData, "frames must be binary, one CBOR map each")
			return
		}
		m, err := decode(frame)
		if err != nil {
			c.protocolError(websocket.StatusInvalidFramePayloadData, err.Error())
			return
		}
		if !c.handle(m) {
			return
		}
	}
}

// handle acts on one decoded message; false ends the reading.
func (c *conn) handle(m inbound) bool {
	if m.Type == TypeJoin {
		return c.handleJoin(m)
	}
	if remote := c.target(); remote == "" || m.SenderID != remote {
		// Not from this socket's peer (or before its join): dropped, as
		// the reference server does.
		c.log.Debug("dropped a message from another sender", "type", m.Type, "sender", m.SenderID)
		return true
	}
	switch m.Type {
	case TypeRequest, TypeSync:
		if m.DocumentID == "" || len(m.Data) == 0 {
			c.protocolError(websocket.StatusPolicyViolation, fmt.Sprintf("a %s message needs a documentId and non-empty data", m.Type))
			return false
		}
		return c.enqueue(m.DocumentID, item{typ: m.Type, data: m.Data})
	default:
		// ephemeral (presence: not stored, and not relayed between
		// members), doc-unavailable, remote-subscription-change,
		// remote-heads-changed (the server gossips no heads), and types
		// of later protocol versions: nothing to do.
		return true
	}
}

func (c *conn) handleJoin(m inbound) bool {
	if v := m.SupportedProtocolVersions; v != nil && !slices.Contains(*v, ProtocolVersion) {
		c.writeNow(errorMessage{Type: TypeError, SenderID: c.opts.PeerID, TargetID: m.SenderID, Message: "unsupported protocol version: this server speaks " + ProtocolVersion})
		c.fail(websocket.StatusPolicyViolation, "unsupported protocol version")
		return false
	}
	if len(m.SenderID) > 256 {
		c.protocolError(websocket.StatusPolicyViolation, "senderId is over 256 bytes")
		return false
	}
	c.remoteMu.Lock()
	first, same := c.remote == "", c.remote == m.SenderID
	if first {
		c.remote = m.SenderID
	}
	c.remoteMu.Unlock()
	if !first && !same {
		c.protocolError(websocket.StatusPolicyViolation, "this connection already joined as another peer")
		return false
	}
	if first {
		c.joined.Store(true)
		c.srv.join(c, m.SenderID)
	}
	return c.send(peerMessage{
		Type: TypePeer, SenderID: c.opts.PeerID, TargetID: m.SenderID,
		PeerMetadata:            map[string]any{"isEphemeral": false},
		SelectedProtocolVersion: ProtocolVersion,
	})
}

// protocolError tells the client what was wrong and closes the connection.
func (c *conn) protocolError(code websocket.StatusCode, msg string) {
	c.log.Info("protocol error", "err", msg)
	c.writeNow(errorMessage{Type: TypeError, SenderID: c.opts.PeerID, TargetID: c.target(), Message: msg})
	c.fail(code, msg)
}

// writeNow sends v past the queue, before the connection closes.
func (c *conn) writeNow(v any) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.ws.Write(ctx, websocket.MessageBinary, encode(v))
}

// enqueue queues an incoming message for its document, waiting up to
// QueueWait for room; false ends the connection.
func (c *conn) enqueue(doc string, it item) bool {
	var timer *time.Timer
	for {
		c.mu.Lock()
		if c.queued < c.opts.MaxQueued && (c.queued == 0 || c.queuedBytes+int64(len(it.data)) <= c.opts.MaxQueuedBytes) {
			q := c.docQueue(doc)
			q.items = append(q.items, it)
			c.queued++
			c.queuedBytes += int64(len(it.data))
			c.markReady(doc, q)
			c.mu.Unlock()
			if timer != nil {
				timer.Stop()
			}
			return true
		}
		c.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(c.opts.QueueWait)
			defer timer.Stop()
		}
		select {
		case <-c.room:
		case <-timer.C:
			c.fail(websocket.StatusPolicyViolation, fmt.Sprintf("too many messages waiting to be processed (%d); send fewer at once", c.opts.MaxQueued))
			return false
		case <-c.ctx.Done():
			return false
		}
	}
}

// notify is the session's callback: another writer stored a change to
// doc. It runs under engine locks and only marks the document.
func (c *conn) notify(doc string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx.Err() != nil {
		return
	}
	q := c.docQueue(doc)
	q.push = true
	c.markReady(doc, q)
}

// docQueue returns doc's queue; c.mu held.
func (c *conn) docQueue(doc string) *docQueue {
	q := c.docs[doc]
	if q == nil {
		q = &docQueue{}
		c.docs[doc] = q
	}
	return q
}

// markReady puts doc in the ready list unless a worker holds it (that
// worker puts it back when done); c.mu held.
func (c *conn) markReady(doc string, q *docQueue) {
	if q.running || q.isReady {
		return
	}
	q.isReady = true
	c.ready = append(c.ready, doc)
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// take hands the oldest ready document and its next piece of work to a
// worker.
func (c *conn) take() (doc string, it item, push, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.ready) == 0 {
		return "", item{}, false, false
	}
	doc = c.ready[0]
	c.ready = c.ready[1:]
	if len(c.ready) == 0 {
		c.ready = nil
	}
	q := c.docs[doc]
	q.isReady, q.running = false, true
	if len(q.items) > 0 {
		it = q.items[0]
		q.items[0] = item{}
		q.items = q.items[1:]
		c.queued--
		c.queuedBytes -= int64(len(it.data))
		select {
		case c.room <- struct{}{}:
		default:
		}
		return doc, it, false, true
	}
	q.push = false
	return doc, item{}, true, true
}

// finish releases doc after a piece of work.
func (c *conn) finish(doc string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	q := c.docs[doc]
	q.running = false
	if len(q.items) > 0 || q.push {
		c.markReady(doc, q)
		return
	}
	delete(c.docs, doc)
}

func (c *conn) work() {
	for {
		doc, it, push, ok := c.take()
		if !ok {
			select {
			case <-c.wake:
				continue
			case <-c.ctx.Done():
				return
			}
		}
		if c.ctx.Err() != nil {
			return
		}
		c.process(doc, it, push)
		c.finish(doc)
	}
}

// process runs one message (or one push) through the engine and answers.
func (c *conn) process(doc string, it item, push bool) {
	if !validDocID(doc) {
		// Not an automerge-repo id: no such document here, and nothing
		// for the engine or the store to look at.
		c.send(docMessage{Type: TypeDocUnavailable, SenderID: c.opts.PeerID, TargetID: c.target(), DocumentID: doc})
		return
	}
	var reply []byte
	var err error
	if push {
		reply, err = c.sess.Generate(c.ctx, doc)
	} else {
		reply, err = c.sess.Receive(c.ctx, doc, it.data)
	}
	var refused *engine.RefusedError
	switch {
	case err == nil:
		if reply != nil {
			c.send(docMessage{Type: TypeSync, SenderID: c.opts.PeerID, TargetID: c.target(), DocumentID: doc, Data: reply})
		}
	case errors.Is(err, engine.ErrUnknownDoc), errors.Is(err, engine.ErrForbidden):
		// Unknown and unreadable documents look the same: the client
		// learns nothing about documents it may not read.
		if !push {
			c.send(docMessage{Type: TypeDocUnavailable, SenderID: c.opts.PeerID, TargetID: c.target(), DocumentID: doc})
		}
	case errors.As(err, &refused):
		rule, msg, ok := c.opts.Refusal(refused.Err)
		if !ok {
			c.log.Error("message refused by an error that is not a rule", "doc", doc, "err", err)
			rule, msg = "internal", "internal error; nothing of the message was applied"
		} else {
			c.log.Debug("message refused", "doc", doc, "rule", rule, "err", err)
		}
		hashes := make([]string, len(refused.Changes))
		for i, h := range refused.Changes {
			hashes[i] = h.String()
		}
		c.sendNotice(Notice{Type: NoticeRefused, Doc: doc, Changes: hashes, Rule: rule, Message: msg})
	case errors.Is(err, engine.ErrBadMessage):
		c.log.Debug("malformed sync message", "doc", doc, "err", err)
		c.sendNotice(Notice{Type: NoticeRefused, Doc: doc, Changes: []string{}, Rule: "malformed", Message: err.Error()})
	case c.ctx.Err() != nil:
		// The connection is closing; nothing of the message was applied.
	case errors.Is(err, engine.ErrClosed):
		c.fail(websocket.StatusGoingAway, "the server is shutting down")
	case errors.Is(err, engine.ErrStore):
		c.log.Warn("store unavailable", "doc", doc, "err", err)
		c.fail(websocket.StatusTryAgainLater, "the circle's store is not available; nothing was applied, reconnect later")
	default:
		c.log.Error("sync failed", "doc", doc, "err", err)
		c.fail(websocket.StatusInternalError, "internal error")
	}
}

// sendNotice sends n to the client as an ephemeral message for its
// document.
func (c *conn) sendNotice(n Notice) {
	c.send(ephemeralMessage{
		Type: TypeEphemeral, SenderID: c.opts.PeerID, TargetID: c.target(), DocumentID: n.Doc,
		SessionID: c.sessionID, Count: c.count.Add(1), Data: encode(n),
	})
}

// send queues a frame for the writer, waiting up to QueueWait for room;
// false when the connection ends (the queue stayed full: the client does
// not read).
func (c *conn) send(v any) bool {
	switch err := c.out.push(c.ctx, encode(v), c.opts.QueueWait); {
	case err == nil:
		return true
	case errors.Is(err, errQueueTimeout):
		c.fail(websocket.StatusPolicyViolation, "too many messages waiting to be sent: the client is not reading")
	}
	return false
}

func (c *conn) writeLoop() {
	for {
		frame, ok := c.out.pop(c.ctx)
		if !ok {
			return
		}
		// Not c.ctx: a cancelled Write drops the connection at once.
		ctx, cancel := context.WithTimeout(context.Background(), c.opts.WriteTimeout)
		err := c.ws.Write(ctx, websocket.MessageBinary, frame)
		cancel()
		if err != nil {
			c.fail(websocket.StatusGoingAway, "sending failed")
			return
		}
	}
}

// keepAlive pings the client, checks its credentials again, enforces the
// handshake timeout and ends the connection when the engine closes.
func (c *conn) keepAlive() {
	ping := time.NewTicker(c.opts.PingInterval)
	defer ping.Stop()
	recheck := time.NewTicker(c.opts.RecheckEvery)
	defer recheck.Stop()
	handshake := time.NewTimer(c.opts.HandshakeTimeout)
	defer handshake.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.sess.Done():
			c.fail(websocket.StatusGoingAway, "the server is shutting down")
			return
		case <-handshake.C:
			if !c.joined.Load() {
				c.fail(websocket.StatusPolicyViolation, fmt.Sprintf("no join message within %s", c.opts.HandshakeTimeout))
				return
			}
		case <-ping.C:
			ctx, cancel := context.WithTimeout(c.ctx, c.opts.PingTimeout)
			err := c.ws.Ping(ctx)
			cancel()
			if err != nil && c.ctx.Err() == nil {
				c.fail(websocket.StatusGoingAway, fmt.Sprintf("no answer to a ping within %s", c.opts.PingTimeout))
				return
			}
		case <-recheck.C:
			if c.recheck == nil {
				continue
			}
			if err := c.recheck(c.ctx); err != nil && c.ctx.Err() == nil {
				c.log.Info("credentials no longer valid", "err", err)
				c.fail(websocket.StatusPolicyViolation, "the access token expired or the device was revoked; reconnect with a fresh token")
				return
			}
		}
	}
}

// validDocID reports whether id can be an automerge-repo document id: a
// base58 string (bs58check of 16 bytes is about 28 characters).
func validDocID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !strings.ContainsRune(base58, rune(id[i])) {
			return false
		}
	}
	return true
}

const base58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
