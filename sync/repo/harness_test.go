package repo_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/coder/websocket"
	"github.com/fxamacker/cbor/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/circles-coop/circles/sync/engine"
	"github.com/circles-coop/circles/sync/repo"
	"github.com/circles-coop/circles/sync/store"
)

// Document ids of the test circle (automerge-repo ids).
const (
	docA      = "4NMNnkMhL8jXrdJ9jamS2b2WYiWd"
	docB      = "2YnfbnYBmHMf3Gp1nA8HpPMHFq5d"
	docSlow   = "3Tx5sWKaYh8Lk4tGn3s2QJ6M9Vbe" // CheckChanges waits for the test
	docSecret = "3dKmU5c4bB2j9Yr1zN8wVhHq7XpF" // exists, but nobody may read it
	docNone   = "25bYv1cQ7WnV3sJkE8mR2tHxPdLa" // exists nowhere
)

// testPolicy lets everybody read every document but docSecret, refuses
// changes whose commit message is "forbidden", and holds CheckChanges of
// docSlow until the test releases it.
type testPolicy struct {
	slow chan struct{}
}

var errRefused = errors.New("this change is forbidden by the test policy")

func (p *testPolicy) CheckRead(_ engine.Peer, doc string) error {
	if doc == docSecret {
		return engine.ErrForbidden
	}
	return nil
}

func (p *testPolicy) CheckChanges(_ engine.Peer, doc string, _ *automerge.Doc, changes []engine.Change) error {
	if doc == docSlow {
		<-p.slow
	}
	for _, ch := range changes {
		if ch.Message() == "forbidden" {
			return errRefused
		}
	}
	return nil
}

func (p *testPolicy) Accept(string, *automerge.Doc, []engine.Change) ([]byte, error) { return nil, nil }

func (p *testPolicy) Snapshot(string, *automerge.Doc) ([]byte, error) { return nil, nil }

// harness is a real engine on an embedded NATS store, served by a
// repo.Server on a real HTTP server on 127.0.0.1.
type harness struct {
	e      *engine.Engine
	policy *testPolicy
	srv    *repo.Server
	http   *httptest.Server
	// denied makes the credentials re-check fail.
	denied atomic.Bool
	// reg holds the engine's metrics.
	reg *prometheus.Registry
}

func startHarness(t testing.TB, opts repo.Options, configure ...func(*http.Server)) *harness {
	t.Helper()
	ctx := context.Background()
	n, err := store.StartNATS(ctx, store.NATSConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, n.JetStream(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{policy: &testPolicy{slow: make(chan struct{})}, reg: prometheus.NewRegistry()}
	h.e = engine.New(engine.Config{Store: st, Policy: h.policy, Actor: "00aa", Metrics: engine.NewMetrics(h.reg)})
	if err := h.e.Open(ctx); err != nil {
		t.Fatal(err)
	}
	for _, doc := range []string{docA, docB, docSlow, docSecret} {
		if err := h.e.Create(ctx, doc, func(d *automerge.Doc) ([]byte, error) {
			return nil, d.RootMap().Set("items", automerge.NewMap())
		}); err != nil {
			t.Fatal(err)
		}
	}
	if opts.PeerID == "" {
		opts.PeerID = "test-server"
	}
	h.srv = repo.New(h.e, opts)
	h.http = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dev := r.URL.Query().Get("device")
		peer := engine.Peer{Device: dev, Member: "m-" + dev, Actor: actorOf(dev)}
		_ = h.srv.Serve(w, r, peer, func(context.Context) error {
			if h.denied.Load() {
				return errors.New("token expired")
			}
			return nil
		})
	}))
	for _, fn := range configure {
		fn(h.http.Config)
	}
	h.http.Start()
	t.Cleanup(func() {
		// Release a held document, end the sessions (their connections
		// close), then stop HTTP and NATS.
		select {
		case <-h.policy.slow:
		default:
			close(h.policy.slow)
		}
		if err := h.e.Close(); err != nil {
			t.Errorf("engine Close: %v", err)
		}
		h.http.CloseClientConnections()
		h.http.Close()
		if err := n.Close(); err != nil {
			t.Errorf("NATS Close: %v", err)
		}
	})
	return h
}

// actorOf is the actor id of a test device.
func actorOf(dev string) string { return fmt.Sprintf("%x", "actor-"+dev) }

func (h *harness) heads(t testing.TB, doc string) string {
	t.Helper()
	hs, err := h.e.Heads(context.Background(), doc)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(hs)
}

func (h *harness) has(t testing.TB, doc, key string) bool {
	t.Helper()
	found := false
	if err := h.e.View(context.Background(), doc, func(d *automerge.Doc) error {
		v, err := d.Path("items", key).Get()
		found = err == nil && v.Kind() != automerge.KindVoid
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return found
}

// frame is any message of the protocol, as the test client reads it.
type frame struct {
	Type                    string         `cbor:"type"`
	SenderID                string         `cbor:"senderId"`
	TargetID                string         `cbor:"targetId"`
	DocumentID              string         `cbor:"documentId,omitempty"`
	Data                    []byte         `cbor:"data,omitempty"`
	Message                 string         `cbor:"message,omitempty"`
	SelectedProtocolVersion string         `cbor:"selectedProtocolVersion,omitempty"`
	PeerMetadata            map[string]any `cbor:"peerMetadata,omitempty"`
	SessionID               string         `cbor:"sessionId,omitempty"`
	Count                   uint64         `cbor:"count,omitempty"`
}

// replica is the client's copy of a document.
type replica struct {
	d  *automerge.Doc
	ss *automerge.SyncState
}

// client is a small automerge-repo peer: it answers every sync message
// it gets (as a repo does) and records every other message.
type client struct {
	t      testing.TB
	ws     *websocket.Conn
	id     string
	actor  string
	frames chan frame
	done   chan struct{}
	err    error // why reading ended; read after done

	mu     sync.Mutex
	docs   map[string]*replica
	events []frame
	syncs  []frame
}

func (h *harness) dial(t testing.TB, device, peerID string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(h.http.URL, "http") + "/?device=" + device
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	ws.SetReadLimit(64 << 20)
	c := &client{t: t, ws: ws, id: peerID, actor: actorOf(device), frames: make(chan frame, 1024), done: make(chan struct{}), docs: make(map[string]*replica)}
	go c.read()
	t.Cleanup(func() {
		ws.CloseNow()
		<-c.done
	})
	return c
}

// read runs until the connection ends; it is stopped by the test's
// cleanup (CloseNow).
func (c *client) read() {
	defer close(c.done)
	for {
		typ, b, err := c.ws.Read(context.Background())
		if err != nil {
			c.err = err
			return
		}
		if typ != websocket.MessageBinary {
			c.err = fmt.Errorf("server sent a %v frame", typ)
			return
		}
		var f frame
		if err := cbor.Unmarshal(b, &f); err != nil {
			c.err = fmt.Errorf("server sent a frame that is not CBOR: %v", err)
			return
		}
		c.frames <- f
	}
}

func (c *client) sendValue(v any) {
	c.t.Helper()
	b, err := cbor.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(websocket.MessageBinary, b)
}

func (c *client) sendRaw(typ websocket.MessageType, b []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, typ, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// join sends a join and waits for the peer message.
func (c *client) join() frame {
	c.t.Helper()
	c.sendValue(map[string]any{"type": "join", "senderId": c.id, "peerMetadata": map[string]any{"isEphemeral": true}, "supportedProtocolVersions": []string{"1"}})
	return c.expect("peer", "")
}

// open starts syncing doc from an empty replica, with a request message.
func (c *client) open(doc string) {
	c.t.Helper()
	d := automerge.New()
	if err := d.SetActorID(c.actor); err != nil {
		c.t.Fatal(err)
	}
	r := &replica{d: d, ss: automerge.NewSyncState(d)}
	c.mu.Lock()
	c.docs[doc] = r
	c.mu.Unlock()
	m, ok := r.ss.GenerateMessage()
	if !ok {
		c.t.Fatalf("no first message for %s", doc)
	}
	c.sendValue(map[string]any{"type": "request", "senderId": c.id, "targetId": "test-server", "documentId": doc, "data": m.Bytes()})
}

// flush sends doc's next sync message, if it has one.
func (c *client) flush(doc string) {
	c.t.Helper()
	c.mu.Lock()
	r := c.docs[doc]
	m, ok := r.ss.GenerateMessage()
	c.mu.Unlock()
	if ok {
		c.sendValue(map[string]any{"type": "sync", "senderId": c.id, "targetId": "test-server", "documentId": doc, "data": m.Bytes()})
	}
}

// changesMessage is a sync message carrying every change of d. A
// replica's own next message may rightly leave a new change out (its hash
// can be a false positive in the Bloom filter of what the server has), so
// tests that need a change on the wire build the message this way: from a
// sync state that has heard an empty peer, whose filter holds nothing.
func changesMessage(t testing.TB, d *automerge.Doc) []byte {
	t.Helper()
	empty := automerge.NewSyncState(automerge.New())
	hello, ok := empty.GenerateMessage()
	if !ok {
		t.Fatal("an empty document has no first message")
	}
	ss := automerge.NewSyncState(d)
	if _, err := ss.ReceiveMessage(hello.Bytes()); err != nil {
		t.Fatal(err)
	}
	m, ok := ss.GenerateMessage()
	if !ok || len(m.Changes()) != len(mustChanges(t, d)) {
		t.Fatal("the message does not carry every change")
	}
	return m.Bytes()
}

func mustChanges(t testing.TB, d *automerge.Doc) []*automerge.Change {
	t.Helper()
	chs, err := d.Changes()
	if err != nil {
		t.Fatal(err)
	}
	return chs
}

// write sets items[key] in the replica of doc with a commit message.
func (c *client) write(doc, key, msg string) automerge.ChangeHash {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.docs[doc]
	items, err := r.d.RootMap().Get("items")
	if err != nil {
		c.t.Fatal(err)
	}
	if items.Kind() != automerge.KindMap {
		c.t.Fatalf("replica of %s has no items map yet", doc)
	}
	if err := items.Map().Set(key, "v"); err != nil {
		c.t.Fatal(err)
	}
	h, err := r.d.Commit(msg)
	if err != nil {
		c.t.Fatal(err)
	}
	return h
}

func (c *client) has(doc, key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.docs[doc]
	if r == nil {
		return false
	}
	v, err := r.d.Path("items", key).Get()
	return err == nil && v.Kind() != automerge.KindVoid
}

// handle applies a sync frame to its replica and answers it; other frames
// are recorded.
func (c *client) handle(f frame) {
	c.t.Helper()
	c.mu.Lock()
	r := c.docs[f.DocumentID]
	if f.Type != "sync" || r == nil {
		c.events = append(c.events, f)
		c.mu.Unlock()
		return
	}
	c.syncs = append(c.syncs, f)
	_, err := r.ss.ReceiveMessage(f.Data)
	c.mu.Unlock()
	if err != nil {
		c.t.Fatalf("receive sync message for %s: %v", f.DocumentID, err)
	}
	c.flush(f.DocumentID)
}

// waitFor handles incoming frames until cond holds (10 s at most).
func (c *client) waitFor(what string, cond func() bool) {
	c.t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for !cond() {
		select {
		case f := <-c.frames:
			c.handle(f)
		case <-c.done:
			// Drain what arrived before the end.
			for len(c.frames) > 0 {
				c.handle(<-c.frames)
			}
			if cond() {
				return
			}
			c.t.Fatalf("waiting for %s: connection ended: %v", what, c.err)
		case <-deadline.C:
			c.t.Fatalf("waiting for %s: nothing within 10 s; events %+v", what, c.eventList())
		}
	}
}

func (c *client) eventList() []frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]frame(nil), c.events...)
}

// expect waits for a non-sync frame of type typ (and doc, unless empty)
// and returns it.
func (c *client) expect(typ, doc string) frame {
	c.t.Helper()
	var got frame
	c.waitFor(typ+" "+doc, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, f := range c.events {
			if f.Type == typ && (doc == "" || f.DocumentID == doc) {
				got = f
				c.events = append(c.events[:i:i], c.events[i+1:]...)
				return true
			}
		}
		return false
	})
	return got
}

// closed waits until the server closes the connection and returns the
// close status and reason.
func (c *client) closed() (websocket.StatusCode, string) {
	c.t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case f := <-c.frames:
			c.handle(f)
		case <-c.done:
			for len(c.frames) > 0 {
				c.handle(<-c.frames)
			}
			var ce websocket.CloseError
			if errors.As(c.err, &ce) {
				return ce.Code, ce.Reason
			}
			return -1, c.err.Error()
		case <-deadline.C:
			c.t.Fatalf("the server did not close the connection within 10 s")
		}
	}
}

// stillOpen checks the connection works: a document syncs to its end.
func (c *client) stillOpen(doc string) {
	c.t.Helper()
	c.open(doc)
	c.waitFor("sync of "+doc, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		v, err := c.docs[doc].d.RootMap().Get("items")
		return err == nil && v.Kind() == automerge.KindMap
	})
}
