package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/sync/store"
)

// Errors the engine returns; callers map them to their transport's codes.
// Policy errors (for instance *crdt.RuleError) are returned unwrapped or
// wrapped with %w, so errors.As finds them.
var (
	// ErrUnknownDoc means the document does not exist in this circle.
	ErrUnknownDoc = errors.New("unknown document")
	// ErrForbidden means the peer may not read the document.
	ErrForbidden = errors.New("forbidden")
	// ErrBadMessage means a sync message could not be decoded.
	ErrBadMessage = errors.New("malformed sync message")
	// ErrStore means the store did not acknowledge a write; nothing of the
	// request was applied, except the documents of a multi-document batch
	// whose writes the store did acknowledge (a batch is not atomic in the
	// store): those are kept and reported to Committed.
	ErrStore = errors.New("store unavailable")
	// ErrExists is returned by Create for a document that already exists.
	ErrExists = errors.New("document already exists")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("engine closed")
)

// Peer is an authenticated device on the other side of a sync.
type Peer struct {
	Device string // device id
	Member string // member id
	Actor  string // the hex automerge actor id registered for the device
}

// Policy decides what a peer may read and write. It is the only place where
// the circle's rules enter the engine.
type Policy interface {
	// CheckRead returns ErrUnknownDoc, ErrForbidden or nil.
	CheckRead(peer Peer, doc string) error
	// CheckChanges is called, under the document's lock, with every change
	// of an incoming message that d does not hold yet (a retried message
	// carries changes that were checked when they first came), decoded,
	// before any of them is applied to d.
	CheckChanges(peer Peer, doc string, d *automerge.Doc, changes []Change) error
	// Accept is called, under the document's lock, after changes were
	// applied to d. applied are the changes that actually entered the
	// document (it may include changes that were queued earlier waiting
	// for their dependencies). It validates the result and returns a
	// record to store with the chunk (nil for none). An error rolls the
	// whole request back.
	Accept(doc string, d *automerge.Doc, applied []Change) ([]byte, error)
	// Snapshot returns the record that describes all of d; it is stored
	// with a compacted snapshot and replaces the records of the chunks it
	// covers.
	Snapshot(doc string, d *automerge.Doc) ([]byte, error)
}

// Unloader is implemented by a Policy that keeps what it learned of a
// loaded document (to check the next message without asking automerge):
// the engine calls Unloaded, under the document's lock, whenever it drops
// the document from memory — eviction, a refused or failed request, a
// compaction — so the policy drops it too. A document may change without
// the policy's involvement (Create, Update), so such a cache must also
// check the document's heads before it trusts itself.
type Unloader interface {
	Unloaded(doc string)
}

// Committed is called with a document's records once they are stored,
// with the store's sequence of the chunk that holds them, under the
// document's lock.
type Committed func(doc string, seq uint64, records [][]byte)

// Message is one automerge sync message for one document.
type Message struct {
	Doc  string
	Data []byte
}

// Config configures an Engine.
type Config struct {
	Store  Store // usually a *store.Store
	Policy Policy
	// Actor is the hex actor id the engine writes its own changes with.
	Actor string
	// Committed receives records after they are stored. Optional.
	Committed Committed
	// MemoryBudget is the approximate number of bytes of loaded documents
	// kept in memory before idle ones are evicted. Default 32 MiB.
	MemoryBudget int64
	// CompactEvery is the number of stored chunks after which a document
	// is compacted into a snapshot. Default 500.
	CompactEvery int
	// SyncStateFlush is how often dirty sync states are written to the
	// store. Default 1 s.
	SyncStateFlush time.Duration
	// IdleEvict unloads documents nobody used for this long, whatever the
	// budget, so an idle server shrinks back. Default 1 min.
	IdleEvict time.Duration
	// MaxApplying bounds the messages carrying changes that are checked
	// and applied at once, across all devices; the others wait their
	// turn. Each holds its document busy (not evictable) and its decoded
	// changes in memory, so this caps the memory a burst of devices
	// coming back online takes beyond MemoryBudget. Default GOMAXPROCS+2.
	MaxApplying int
	Logger      *slog.Logger
	Metrics     *Metrics
}

// Engine is the sync engine. Create it with New, start it with Open, stop it
// with Close.
type Engine struct {
	cfg Config
	log *slog.Logger
	m   *Metrics

	mu     sync.Mutex
	docs   map[string]*entry
	loaded int64 // approximate bytes of loaded documents
	closed bool
	// opsSeen remembers, per document, the operations counted while it
	// was loaded, so its memory estimate survives eviction.
	opsSeen map[string]int

	applying chan struct{} // one token per message being applied (MaxApplying)

	dirtyMu sync.Mutex
	dirty   map[string][]byte // sync-state key → encoded state

	reclaim chan struct{} // evicted documents wait for a GC to free their memory
	// reclaimer paces the reclaims (reclaim.go).
	reclaimer reclaimer
	// outsideBase is the memory outside the Go heap after the last
	// reclaim (outside.go).
	outsideBase atomic.Int64
	// live counts the automerge documents not yet collected (live.go).
	live *liveCounter
	// scale is the measured C memory per estimated byte (measured.go).
	scale memScale
	// quiet is the state of the release after a quiet spell (quiet.go).
	quiet quiet

	// live are the open sessions (session.go) and, per document, the
	// sessions to tell when it changes. Lock order: an entry's mu, then
	// liveMu; notify callbacks run under both and must not block.
	liveMu   sync.Mutex
	sessions map[*Session]struct{}
	watchers map[string]map[*Session]struct{}

	// snaps remembers the complete stored snapshots (snapshots.go).
	snaps snapCache

	stop chan struct{}
	done chan struct{}
}

// entry is one document's in-memory state. mu guards every field but
// lastUsed, which is guarded by Engine.mu.
type entry struct {
	mu      sync.Mutex
	id      string
	doc     *automerge.Doc // nil while not loaded
	size    atomic.Int64   // approximate memory, read without mu by eviction
	lastSeq uint64
	chunks  int // chunks stored since the last snapshot
	changes int // changes in the document, for the memory estimate
	ops     int // operations of the changes counted in changes, where known
	peers   map[string]*automerge.SyncState
	// known are the hashes of every change in doc (applied.go).
	known map[automerge.ChangeHash]struct{}
	// queued are the changes handed to automerge that wait for their
	// dependencies (applied.go).
	queued      map[automerge.ChangeHash]Change
	queuedBytes atomic.Int64 // their encoded size, read without mu by eviction
	// sessions are the live sessions' sync states for this document
	// (session.go); like peers they refer to doc and go with it.
	sessions map[*Session]*automerge.SyncState
	lastUsed time.Time
	busy     int // requests holding or waiting for mu; guarded by Engine.mu
}

// New returns an engine; call Open before using it.
func New(cfg Config) *Engine {
	if cfg.MemoryBudget <= 0 {
		cfg.MemoryBudget = 32 << 20
	}
	if cfg.CompactEvery <= 0 {
		cfg.CompactEvery = 500
	}
	if cfg.SyncStateFlush <= 0 {
		cfg.SyncStateFlush = time.Second
	}
	if cfg.IdleEvict <= 0 {
		cfg.IdleEvict = time.Minute
	}
	if cfg.MaxApplying <= 0 {
		cfg.MaxApplying = runtime.GOMAXPROCS(0) + 2
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	return &Engine{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "sync"),
		m:        cfg.Metrics,
		docs:     make(map[string]*entry),
		opsSeen:  make(map[string]int),
		applying: make(chan struct{}, cfg.MaxApplying),
		dirty:    make(map[string][]byte),
		reclaim:  make(chan struct{}, 1),
		live:     new(liveCounter),
		stop:     make(chan struct{}),
		// sessions and watchers: see session.go
		sessions: make(map[*Session]struct{}),
		watchers: make(map[string]map[*Session]struct{}),
		done:     make(chan struct{}),
	}
}

// Open starts the engine's background flusher of sync states.
func (e *Engine) Open(ctx context.Context) error {
	go e.flushLoop()
	return nil
}

// Close flushes sync states and stops the engine. Documents need no
// flushing: everything accepted is already stored.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	e.endSessions()
	close(e.stop)
	<-e.done
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return e.flushSyncStates(ctx)
}

// Replay calls fn with the records of every stored document, in the order
// they were stored (by the store's sequence; a snapshot's records stand at
// the sequence of the last chunk it covers), so the caller can rebuild its
// indexes — in the same order as when it built them first — without
// loading any document.
func (e *Engine) Replay(ctx context.Context, fn func(doc string, seq uint64, records [][]byte) error) error {
	type stored struct {
		seq     uint64
		doc     string
		records [][]byte
	}
	var all []stored
	err := e.cfg.Store.Each(ctx, func(doc string, d store.Doc) error {
		if d.Snapshot != nil {
			env, err := decodeEnvelope(d.Snapshot)
			if err != nil {
				return fmt.Errorf("doc %s snapshot: %w", doc, err)
			}
			if len(d.Chunks) == 0 {
				e.noteComplete(doc, env.Automerge) // snapshots.go
			}
			if len(env.Records) > 0 {
				all = append(all, stored{d.Covers, doc, env.Records})
			}
		}
		for _, c := range d.Chunks {
			env, err := decodeEnvelope(c.Data)
			if err != nil {
				return fmt.Errorf("doc %s chunk %d: %w", doc, c.Seq, err)
			}
			if len(env.Records) > 0 {
				all = append(all, stored{c.Seq, doc, env.Records})
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.SortStableFunc(all, func(a, b stored) int { return cmp.Compare(a.seq, b.seq) })
	for _, r := range all {
		if err := fn(r.doc, r.seq, r.records); err != nil {
			return err
		}
	}
	return nil
}

// Create stores a new document whose initial content init writes. init
// must not commit; Create commits with the engine's actor.
func (e *Engine) Create(ctx context.Context, doc string, init func(d *automerge.Doc) ([]byte, error)) error {
	en, release, err := e.acquire([]string{doc})
	if err != nil {
		return err
	}
	defer release()
	x := en[0]
	if x.doc != nil || x.lastSeq != 0 {
		return fmt.Errorf("create %s: %w", doc, ErrExists)
	}
	if _, err := e.cfg.Store.Load(ctx, doc); err == nil {
		return fmt.Errorf("create %s: %w", doc, ErrExists)
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("create %s: %w: %v", doc, ErrStore, err)
	}
	d := e.track(automerge.New())
	if err := d.SetActorID(e.cfg.Actor); err != nil {
		return fmt.Errorf("create %s: set actor: %w", doc, err)
	}
	rec, err := init(d)
	if err != nil {
		return err
	}
	if _, err := d.Commit("create"); err != nil {
		return fmt.Errorf("create %s: commit: %w", doc, err)
	}
	x.doc = d
	x.learnHeads()
	if err := e.persist(ctx, nil, []*entry{x}, map[string][][]byte{doc: nonNil(rec)}, map[string]int{doc: 1}, nil); err != nil {
		e.unload(x)
		return err
	}
	e.account()
	return nil
}

// Update runs fn on the document under its lock; fn changes the document
// and returns a record describing the change. Update commits, stores the
// change and then reports the record to Committed. If fn changes nothing,
// nothing is stored. If fn or the store fails, the document is reloaded
// and nothing is applied.
func (e *Engine) Update(ctx context.Context, doc string, fn func(d *automerge.Doc) ([]byte, error)) error {
	en, release, err := e.acquire([]string{doc})
	if err != nil {
		return err
	}
	defer release()
	x := en[0]
	if err := e.ensureLoaded(ctx, x); err != nil {
		return err
	}
	before := x.doc.Heads()
	rec, err := fn(x.doc)
	if err != nil {
		// Most such errors say there is nothing to write (a tick with
		// nothing due): keep an untouched document loaded rather than
		// read it from the store again at the next use.
		if !untouched(x.doc, before) {
			e.unload(x)
		}
		return err
	}
	if _, err := x.doc.Commit("update"); err != nil {
		if err.Error() == emptyCommit && crdt.SameHeads(before, x.doc.Heads()) {
			return nil // fn changed nothing: nothing to store
		}
		e.unload(x)
		return fmt.Errorf("update %s: commit: %w", doc, err)
	}
	x.learnHeads()
	if err := e.persist(ctx, nil, []*entry{x}, map[string][][]byte{doc: nonNil(rec)}, map[string]int{doc: 1}, nil); err != nil {
		e.unload(x)
		return err
	}
	e.maybeCompact(ctx, x)
	return nil
}

// untouched reports whether d holds exactly the changes it held at
// heads before and no pending operation. It commits what is pending to
// find out (automerge-go cannot roll back), so when it reports false the
// caller must drop d.
func untouched(d *automerge.Doc, before []automerge.ChangeHash) bool {
	_, err := d.Commit("discarded")
	return err != nil && err.Error() == emptyCommit && crdt.SameHeads(before, d.Heads())
}

// emptyCommit is automerge-go's error for a commit with no operations.
const emptyCommit = "Commit is empty"

// View runs fn on the document under its lock; fn must not change it.
func (e *Engine) View(ctx context.Context, doc string, fn func(d *automerge.Doc) error) error {
	en, release, err := e.acquire([]string{doc})
	if err != nil {
		return err
	}
	defer release()
	if err := e.ensureLoaded(ctx, en[0]); err != nil {
		return err
	}
	return fn(en[0].doc)
}

// Heads returns the current heads of a document, loading it if needed.
func (e *Engine) Heads(ctx context.Context, doc string) ([]automerge.ChangeHash, error) {
	var heads []automerge.ChangeHash
	err := e.View(ctx, doc, func(d *automerge.Doc) error {
		heads = d.Heads()
		return nil
	})
	return heads, err
}

// persist stores one chunk per changed document (all in one batch) and
// reports the records. The caller holds the entries' locks.
//
// Sessions watching a stored document are told, except writer (the session
// whose message made the change, if any), which answers its own peer.
func (e *Engine) persist(ctx context.Context, writer *Session, xs []*entry, records map[string][][]byte, newChanges map[string]int, newOps map[string]int) error {
	batch := make([]store.ChunkWrite, len(xs))
	for i, x := range xs {
		batch[i] = store.ChunkWrite{Doc: x.id, Data: encodeEnvelope(x.doc.SaveIncremental(), records[x.id])}
	}
	// Once sent, a write may be stored whether or not the caller still
	// waits (a client that disconnects cancels its request), and Committed
	// must learn what is stored: wait for the store's answer regardless of
	// cancellation, within the caller's deadline if it has one.
	wctx := context.WithoutCancel(ctx)
	if d, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		wctx, cancel = context.WithDeadline(wctx, d)
		defer cancel()
	}
	t := time.Now()
	seqs, err := e.cfg.Store.AppendChunks(wctx, batch)
	e.m.storeSeconds.Observe(time.Since(t).Seconds())
	if err != nil {
		e.log.Error("store chunks", "err", err, "docs", len(xs))
	}
	// A batch is not atomic: when some writes fail, the others are stored
	// (seqs holds their sequences). Those are reported like any stored
	// chunk, so Committed always learns what the store holds, as Replay
	// would after a restart.
	for i, x := range xs {
		if i >= len(seqs) || seqs[i] == 0 {
			continue // not stored
		}
		e.snaps.drop(x.id) // the stored snapshot no longer holds everything
		x.lastSeq = seqs[i]
		x.chunks++
		x.changes += newChanges[x.id]
		x.ops += newOps[x.id]
		x.size.Store(max(x.size.Load()+int64(len(batch[i].Data))*chunkFactor, int64(x.changes)*bytesPerChange, int64(x.ops)*bytesPerOp))
		if e.cfg.Committed != nil && len(records[x.id]) > 0 {
			e.cfg.Committed(x.id, seqs[i], records[x.id])
		}
		e.notifyWatchers(x.id, writer)
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrStore, err)
	}
	return nil
}

// maybeCompact writes a snapshot when enough chunks piled up. Failure is
// logged and retried at the next write: the chunks are still there.
func (e *Engine) maybeCompact(ctx context.Context, x *entry) {
	if x.chunks < e.cfg.CompactEvery || x.doc == nil {
		return
	}
	rec, err := e.cfg.Policy.Snapshot(x.id, x.doc)
	if err != nil {
		e.log.Error("snapshot record", "doc", x.id, "err", err)
		return
	}
	saved := x.doc.Save()
	if err := e.cfg.Store.PutSnapshot(ctx, x.id, encodeEnvelope(saved, nonNil(rec)), x.lastSeq); err != nil {
		e.log.Error("store snapshot", "doc", x.id, "err", err)
		return
	}
	x.chunks = 0
	x.size.Store(max(int64(len(saved))*snapshotFactor, int64(x.changes)*bytesPerChange, int64(x.ops)*bytesPerOp))
	e.m.compactions.Inc()
	e.noteSaved(x, saved)
}

// A loaded document's memory is estimated from its stored bytes and its
// number of changes, whichever says more: automerge's in-memory form is
// much larger than its save format, and how much larger depends on how
// the changes were batched. Measured with a ledger segment of 2,000
// single-entry changes: 7.4 MB in memory for a 110 kB save (×68), 556 kB
// of one-change chunks (×13), or about 3.7 kB a change.
//
// What a change costs depends most on its operations: an entry written
// with scalar strings is about 7 operations, one written with JS
// automerge's default text about 90 (one per character), and automerge
// spends some 400–550 bytes on each (measured: 100 such entries hold
// 3.6 MB as text, 390 kB as scalar strings). The operations of the
// changes the engine applied are counted, and remembered across eviction
// (Engine.opsSeen), so a document of text is not taken for a small one.
const (
	snapshotFactor = 64
	chunkFactor    = 16
	bytesPerChange = 4 << 10
	bytesPerOp     = 512
)

// ensureLoaded loads x from the store if it is not in memory.
func (e *Engine) ensureLoaded(ctx context.Context, x *entry) error {
	if x.doc != nil {
		return nil
	}
	t := time.Now()
	sd, err := e.cfg.Store.Load(ctx, x.id)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("load %s: %w", x.id, ErrUnknownDoc)
	}
	if err != nil {
		return fmt.Errorf("load %s: %w: %v", x.id, ErrStore, err)
	}
	var d *automerge.Doc
	var size int64 // estimated memory
	if sd.Snapshot != nil {
		env, err := decodeEnvelope(sd.Snapshot)
		if err != nil {
			return fmt.Errorf("load %s: %w", x.id, err)
		}
		if d, err = automerge.Load(env.Automerge); err != nil {
			return fmt.Errorf("load %s snapshot: %w", x.id, err)
		}
		e.track(d)
		size += int64(len(env.Automerge)) * snapshotFactor
	} else {
		d = e.track(automerge.New())
	}
	for _, c := range sd.Chunks {
		env, err := decodeEnvelope(c.Data)
		if err != nil {
			return fmt.Errorf("load %s: %w", x.id, err)
		}
		if err := d.LoadIncremental(env.Automerge); err != nil {
			return fmt.Errorf("load %s chunk %d: %w", x.id, c.Seq, err)
		}
		size += int64(len(env.Automerge)) * chunkFactor
	}
	if err := d.SetActorID(e.cfg.Actor); err != nil {
		return fmt.Errorf("load %s: set actor: %w", x.id, err)
	}
	n, err := x.learnAll(d)
	if err != nil {
		return fmt.Errorf("load %s: list changes: %w", x.id, err)
	}
	x.changes = n
	e.mu.Lock()
	x.ops = max(x.ops, e.opsSeen[x.id])
	e.mu.Unlock()
	size = max(size, int64(x.changes)*bytesPerChange, int64(x.ops)*bytesPerOp)
	// Mark everything loaded as saved, so the next SaveIncremental holds
	// only new changes.
	d.SaveIncremental()
	x.doc = d
	x.lastSeq = sd.LastSeq
	x.chunks = len(sd.Chunks)
	x.size.Store(size)
	x.peers = make(map[string]*automerge.SyncState)
	e.m.loads.Inc()
	e.m.loadSeconds.Observe(time.Since(t).Seconds())
	e.account()
	return nil
}

// unload drops the in-memory document (after a failed request, so the next
// use reloads the stored state) and tells the policy (Unloader). x.mu held.
func (e *Engine) unload(x *entry) {
	loaded := x.doc != nil
	x.unload()
	if u, ok := e.cfg.Policy.(Unloader); ok && loaded {
		u.Unloaded(x.id)
	}
}

// unload drops the in-memory document. Sync states are dropped with it:
// they refer to the document.
func (x *entry) unload() {
	x.doc = nil
	x.peers = nil
	x.sessions = nil
	x.size.Store(0)
	x.known = nil
	x.queued = nil
	x.queuedBytes.Store(0)
}

// acquire returns the entries for ids, locked in a global order so that
// requests touching several documents cannot deadlock. release unlocks
// them and evicts idle documents if the memory budget is exceeded.
func (e *Engine) acquire(ids []string) ([]*entry, func(), error) {
	sorted := slices.Clone(ids)
	sort.Strings(sorted)
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, nil, ErrClosed
	}
	xs := make([]*entry, len(sorted))
	for i, id := range sorted {
		x, ok := e.docs[id]
		if !ok {
			x = &entry{id: id}
			e.docs[id] = x
		}
		x.busy++
		xs[i] = x
	}
	e.mu.Unlock()
	for _, x := range xs {
		x.mu.Lock()
	}
	release := func() {
		now := time.Now()
		for _, x := range xs {
			x.mu.Unlock()
		}
		e.mu.Lock()
		for _, x := range xs {
			x.busy--
			x.lastUsed = now
		}
		e.mu.Unlock()
		e.evict()
	}
	// Return in the caller's order.
	out := make([]*entry, len(ids))
	for i, id := range ids {
		out[i] = xs[slices.Index(sorted, id)]
	}
	return out, release, nil
}

// startApplying waits for a turn to apply a message with changes (see
// Config.MaxApplying); done ends it. It must be called before the
// documents are acquired, so that no request waits for a turn while it
// holds a document's lock.
func (e *Engine) startApplying(ctx context.Context) (done func(), err error) {
	select {
	case e.applying <- struct{}{}:
		return func() { <-e.applying }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-e.stop:
		return nil, ErrClosed
	}
}

func nonNil(rec []byte) [][]byte {
	if rec == nil {
		return nil
	}
	return [][]byte{rec}
}
