package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/automerge/automerge-go"
)

// Session is one live connection's sync with the engine: the WebSocket
// transport opens one per connected automerge-repo peer.
//
// Unlike Sync, whose sync states are kept per (device, document) and
// persisted so that a retried HTTP request is harmless, a session's sync
// states live in memory only and start fresh when the session starts, as
// an automerge-repo peer's own do on every connection. Over one ordered
// connection nothing is lost in flight, so the states are used as they
// are, without the reset Sync does before each request.
//
// The same write rules and the same store-then-acknowledge order apply as
// for Sync: a message is checked (Policy.CheckChanges), applied, validated
// (Policy.Accept) and stored before the session answers, and a message
// that breaks a rule is refused whole (a *RefusedError) and leaves the
// document as it was. Each message is its own unit: a refusal affects
// neither the session's other documents nor its later messages.
//
// A session watches every document it exchanged a message for: when
// another writer (another session, a Sync, Create or Update) stores a
// change to it, the session's notify callback is called with the
// document's id, and the transport asks Generate for the message to push.
//
// Receive and Generate may run concurrently for different documents; the
// transport must not run two calls for the same document at once if it
// wants their answers in order (the engine serialises them by the
// document's lock either way).
type Session struct {
	e       *Engine
	peer    Peer
	notify  func(doc string)
	done    chan struct{}
	endOnce sync.Once

	mu sync.Mutex
	// saved holds, per document, the session's sync state in persistent
	// form after its last successful exchange. The live state sits in the
	// document's entry and is dropped with it (eviction, a failed
	// request); it is then rebuilt from here, which costs the peer one
	// round trip and never reflects a refused message.
	saved   map[string][]byte
	watched map[string]bool
	closed  bool
}

// RefusedError is returned by Session.Receive when the policy refused a
// message: nothing of it was applied. Err is the policy's error (for
// instance a *crdt.RuleError; errors.As finds it through RefusedError).
type RefusedError struct {
	Doc string
	// Changes are the hashes of every change the refused message carried;
	// none of them entered the document.
	Changes []automerge.ChangeHash
	Err     error
}

func (e *RefusedError) Error() string { return fmt.Sprintf("doc %s: %v", e.Doc, e.Err) }

// Unwrap returns the policy's error.
func (e *RefusedError) Unwrap() error { return e.Err }

// NewSession opens a session for peer. notify is called with a document's
// id when another writer stored a change to a document the session
// watches; it runs under engine locks, so it must return at once and must
// not call the engine (queue the id and act on it elsewhere). It returns
// ErrClosed after Close.
func (e *Engine) NewSession(peer Peer, notify func(doc string)) (*Session, error) {
	if notify == nil {
		notify = func(string) {}
	}
	s := &Session{
		e: e, peer: peer, notify: notify, done: make(chan struct{}),
		saved: make(map[string][]byte), watched: make(map[string]bool),
	}
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	e.liveMu.Lock()
	e.sessions[s] = struct{}{}
	e.liveMu.Unlock()
	return s, nil
}

// Peer is the device the session syncs with.
func (s *Session) Peer() Peer { return s.peer }

// Done is closed when the session is closed, by Close or because the
// engine is closing.
func (s *Session) Done() <-chan struct{} { return s.done }

// Receive checks, applies and stores one sync message for doc and returns
// the engine's answer (nil when it has nothing to say). Errors:
// ErrUnknownDoc or ErrForbidden when the peer may not read doc (nothing
// else is looked at), ErrBadMessage for bytes that are not a well-formed
// sync message, *RefusedError when the policy refused the message, ErrStore
// when the store did not acknowledge, ErrClosed. After any error nothing
// of the message is applied and the session goes on.
func (s *Session) Receive(ctx context.Context, doc string, data []byte) ([]byte, error) {
	start := time.Now()
	defer func() { s.e.m.syncSeconds.Observe(time.Since(start).Seconds()) }()
	if err := s.e.cfg.Policy.CheckRead(s.peer, doc); err != nil {
		return nil, fmt.Errorf("doc %s: %w", doc, err)
	}
	raws, err := splitMessage(data)
	if err != nil {
		return nil, fmt.Errorf("doc %s: %w", doc, err)
	}
	doneApplying := func() {}
	if len(raws) > 0 {
		done, err := s.e.startApplying(ctx)
		if err != nil {
			return nil, err
		}
		doneApplying = sync.OnceFunc(done)
		defer doneApplying()
	}
	changes, err := decodeChanges(raws)
	if err != nil {
		return nil, fmt.Errorf("doc %s: %w", doc, err)
	}
	if len(changes) == 0 {
		if ans, ok := s.inSync(doc, data); ok {
			return ans, nil // the peer holds all of doc (sessioninsync.go)
		}
	}
	xs, release, err := s.e.acquire([]string{doc})
	if err != nil {
		return nil, err
	}
	defer release()
	x := xs[0]
	if err := s.e.ensureLoaded(ctx, x); err != nil {
		return nil, err
	}
	refused := func(err error) error {
		s.e.m.rejected.Inc()
		hashes := make([]automerge.ChangeHash, len(changes))
		for i, ch := range changes {
			hashes[i] = ch.Hash()
		}
		return &RefusedError{Doc: doc, Changes: hashes, Err: err}
	}
	fresh := x.unseen(changes)
	if len(fresh) > 0 {
		// Nothing is applied yet: a refusal here leaves the document and
		// the session's state untouched.
		if err := s.e.cfg.Policy.CheckChanges(s.peer, doc, x.doc, fresh); err != nil {
			return nil, refused(err)
		}
	}
	ss, err := s.state(x)
	if err != nil {
		return nil, err
	}
	before := x.doc.Heads()
	if err := receive(ss, data); err != nil {
		s.e.unload(x)
		return nil, fmt.Errorf("doc %s: %w", doc, err)
	}
	applied, err := x.applied(before, fresh)
	if err != nil {
		s.e.unload(x) // waiting changes and all (applied.go)
		if errors.Is(err, ErrBadMessage) {
			return nil, fmt.Errorf("doc %s: %w", doc, err)
		}
		return nil, refused(err)
	}
	if len(applied) > 0 {
		rec, err := s.e.cfg.Policy.Accept(doc, x.doc, applied)
		if err != nil {
			s.e.unload(x)
			return nil, refused(err)
		}
		// Applied and checked: the store's round trip need not keep
		// another message from being applied meanwhile.
		doneApplying()
		if err := s.e.persist(ctx, s, []*entry{x}, map[string][][]byte{doc: nonNil(rec)}, map[string]int{doc: len(applied)}, map[string]int{doc: opsOf(applied)}); err != nil {
			s.e.unload(x)
			return nil, err
		}
		s.e.m.accepted.Add(float64(len(applied)))
		s.e.maybeCompact(ctx, x)
	}
	return s.answer(x, ss), nil
}

// Generate returns the engine's next sync message for doc (nil when it
// has nothing to send): what the transport pushes after notify named doc.
// Errors: ErrUnknownDoc or ErrForbidden when the peer may no longer read
// doc, ErrStore, ErrClosed.
func (s *Session) Generate(ctx context.Context, doc string) ([]byte, error) {
	if err := s.e.cfg.Policy.CheckRead(s.peer, doc); err != nil {
		return nil, fmt.Errorf("doc %s: %w", doc, err)
	}
	xs, release, err := s.e.acquire([]string{doc})
	if err != nil {
		return nil, err
	}
	defer release()
	x := xs[0]
	if err := s.e.ensureLoaded(ctx, x); err != nil {
		return nil, err
	}
	ss, err := s.state(x)
	if err != nil {
		return nil, err
	}
	return s.answer(x, ss), nil
}

// answer generates the next message, keeps the state's persistent form
// and watches the document; x is locked.
func (s *Session) answer(x *entry, ss *automerge.SyncState) []byte {
	msg, _ := generate(ss)
	saved := ss.Save()
	s.mu.Lock()
	closed := s.closed
	if !closed {
		s.saved[x.id] = saved
		s.watched[x.id] = true
	}
	s.mu.Unlock()
	if !closed {
		s.e.watch(x.id, s)
	}
	return msg
}

// state returns the session's sync state for x (locked and loaded):
// the live one, or one rebuilt from the last saved form, or a fresh one.
func (s *Session) state(x *entry) (*automerge.SyncState, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	if ss, ok := x.sessions[s]; ok {
		return ss, nil
	}
	s.mu.Lock()
	raw := s.saved[x.id]
	s.mu.Unlock()
	var ss *automerge.SyncState
	if raw != nil {
		loaded, err := automerge.LoadSyncState(x.doc, raw)
		if err != nil {
			s.e.log.Warn("discarding unreadable session sync state", "doc", x.id, "device", s.peer.Device, "err", err)
		} else {
			ss = loaded
		}
	}
	if ss == nil {
		ss = automerge.NewSyncState(x.doc)
	}
	if x.sessions == nil {
		x.sessions = make(map[*Session]*automerge.SyncState)
	}
	x.sessions[s] = ss
	return ss, nil
}

func (s *Session) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close ends the session: it stops watching its documents and drops its
// sync states. Calls in flight finish; later ones return ErrClosed.
func (s *Session) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	docs := make([]string, 0, len(s.watched))
	for doc := range s.watched {
		docs = append(docs, doc)
	}
	s.saved, s.watched = nil, nil
	s.mu.Unlock()

	e := s.e
	e.liveMu.Lock()
	delete(e.sessions, s)
	for _, doc := range docs {
		e.unwatchLocked(doc, s)
	}
	e.liveMu.Unlock()
	s.end()
	// Drop the live states, so they do not keep memory until the
	// documents are evicted.
	for _, doc := range docs {
		e.mu.Lock()
		x, ok := e.docs[doc]
		if ok {
			x.busy++
		}
		e.mu.Unlock()
		if !ok {
			continue
		}
		x.mu.Lock()
		delete(x.sessions, s)
		x.mu.Unlock()
		e.mu.Lock()
		x.busy--
		e.mu.Unlock()
	}
}

// end closes done once (Close and the engine's Close may both call it).
func (s *Session) end() { s.endOnce.Do(func() { close(s.done) }) }

// watch makes s a watcher of doc.
func (e *Engine) watch(doc string, s *Session) {
	e.liveMu.Lock()
	defer e.liveMu.Unlock()
	if _, live := e.sessions[s]; !live {
		return
	}
	w := e.watchers[doc]
	if w == nil {
		w = make(map[*Session]struct{})
		e.watchers[doc] = w
	}
	w[s] = struct{}{}
}

// unwatchLocked removes s from doc's watchers; liveMu held.
func (e *Engine) unwatchLocked(doc string, s *Session) {
	if w := e.watchers[doc]; w != nil {
		delete(w, s)
		if len(w) == 0 {
			delete(e.watchers, doc)
		}
	}
}

// notifyWatchers tells every session watching doc but writer that it
// changed; the document's lock is held.
func (e *Engine) notifyWatchers(doc string, writer *Session) {
	e.liveMu.Lock()
	defer e.liveMu.Unlock()
	for s := range e.watchers[doc] {
		if s != writer {
			s.notify(doc)
		}
	}
}

// endSessions closes every session's Done channel when the engine closes;
// the transports then close their connections and the sessions.
func (e *Engine) endSessions() {
	e.liveMu.Lock()
	live := make([]*Session, 0, len(e.sessions))
	for s := range e.sessions {
		live = append(live, s)
	}
	e.liveMu.Unlock()
	for _, s := range live {
		s.end()
	}
}
