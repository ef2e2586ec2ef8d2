package replica

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/nats-io/nats.go"
)

// Source is what the circle shares, read by the replica whenever it
// refreshes its own document.
type Source interface {
	// Profile is what the circle says about itself.
	Profile() Profile
	// Delegates are the circle's members with an active mandate scoped
	// "federation:<federation>" at this moment.
	Delegates(federation string) []Delegate
	// Scorecard is the circle's published sovereignty scorecard.
	Scorecard(ctx context.Context) (json.RawMessage, error)
}

// Config configures one federation's replica in one circle.
type Config struct {
	Federation string // the federation's id (a subject token)
	Name       string // the federation's name, for views
	Circle     string // this circle's id (a subject token)
	// Conn is a connection to the circle's own nats-server, which holds
	// the leaf link to the hub: what is published on it reaches the hub
	// as far as the leaf user's permissions allow.
	Conn   *nats.Conn
	Source Source
	// Blueprints returns the circle's blueprints (Manager keeps them).
	Blueprints func() []Blueprint
	// LinkState, if set, reports the link's status ("joined", "left",
	// "expelled", …) and whether it is connected; nil: "joined", and
	// connected while announcements from other circles keep arriving.
	LinkState func() (status string, connected bool)
	// OnDecided is called once for each federation proposal this circle
	// sees decided (passed or rejected), e.g. to revoke an expelled
	// circle on the hub. It must be idempotent: after a restart, a
	// proposal decided while the circle was down is reported then.
	OnDecided func(federation string, p Proposal)
	// AnnounceEvery is how often the circle announces the heads it holds
	// (default 1 s); RefreshEvery how often it rereads Source (default
	// 250 ms; the scorecard every 60 refreshes).
	AnnounceEvery time.Duration
	RefreshEvery  time.Duration
	// MaxReplicaBytes bounds one other circle's document in this circle's
	// store (default DefaultMaxReplicaBytes): a member circle cannot fill
	// the others' disks by writing without end into its own document.
	MaxReplicaBytes int
	Logger          *slog.Logger
}

// peer is this circle's replica of another member's document.
type peer struct {
	doc     *automerge.Doc
	chunks  int      // stored chunks of doc
	dirty   bool     // changes not stored yet
	pending [][]byte // changes waiting for their dependencies
	size    int      // bytes of the document (saved size at load + changes since)
}

// DefaultMaxReplicaBytes bounds what one circle's document may take in
// another circle's store (Config.MaxReplicaBytes).
const DefaultMaxReplicaBytes = 64 << 20

// ErrReplicaFull refuses changes of a circle whose document has reached
// Config.MaxReplicaBytes in this circle's replica.
var ErrReplicaFull = errors.New("the circle's document is at the size this circle keeps of it")

// maxPending bounds the changes of one circle waiting for dependencies.
const maxPending = 20000

// Replica keeps this circle's federated document for one federation, and
// its replicas of every other member's, in the circle's own JetStream.
type Replica struct {
	cfg   Config
	log   *slog.Logger
	st    *docStore
	actor string

	// mu guards everything below; own-document writes hold it from the
	// commit to the publish, so changes leave in the order they were made.
	mu        sync.Mutex
	own       *automerge.Doc
	ownChunks int
	peers     map[string]*peer
	departed  map[string]bool
	decided   map[string]string // proposal id → status it was decided with
	served    map[string]time.Time
	changed   chan struct{} // closed and replaced on every change
	recount   bool
	lastHeard time.Time
	refreshes int

	refused  atomic.Int64
	sub      *nats.Subscription
	stop     chan struct{}
	done     chan struct{}
	wake     chan struct{} // refresh now
	announce chan struct{} // announce soon
}

// SetLinkState sets how the view reports the link (Config.LinkState); the
// federation link calls it once it knows the membership's state.
func (r *Replica) SetLinkState(fn func() (status string, connected bool)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cfg.LinkState = fn
}

// Refused counts the change messages refused (forged author, wrong
// subject, malformed).
func (r *Replica) Refused() int64 { return r.refused.Load() }

// Actor is the automerge actor this circle writes its document with.
func (r *Replica) Actor() string { return r.actor }

func newReplica(cfg Config, st *docStore) *Replica {
	if cfg.AnnounceEvery <= 0 {
		cfg.AnnounceEvery = time.Second
	}
	if cfg.RefreshEvery <= 0 {
		cfg.RefreshEvery = 250 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxReplicaBytes <= 0 {
		cfg.MaxReplicaBytes = DefaultMaxReplicaBytes
	}
	if cfg.Blueprints == nil {
		cfg.Blueprints = func() []Blueprint { return nil }
	}
	return &Replica{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "federation.replica", "federation", cfg.Federation),
		st:       st,
		actor:    ActorFor(cfg.Federation, cfg.Circle),
		peers:    map[string]*peer{},
		departed: map[string]bool{},
		decided:  map[string]string{},
		served:   map[string]time.Time{},
		changed:  make(chan struct{}),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		wake:     make(chan struct{}, 1),
		announce: make(chan struct{}, 1),
	}
}

// open loads the stored documents, subscribes to the federation and
// starts the loop that refreshes, stores and announces.
func (r *Replica) open(ctx context.Context) error {
	docs, decided, err := r.st.loadAll(ctx, r.cfg.Federation)
	if err != nil {
		return fmt.Errorf("load federation %s: %w", r.cfg.Federation, err)
	}
	for _, line := range sortedCopy(mapsKeys(decided)) {
		id, status, _ := strings.Cut(line, "=")
		r.decided[id] = status
	}
	prefix := replicaSubject(r.cfg.Federation, "")
	for subj, sd := range docs {
		switch {
		case subj == ownSubject(r.cfg.Federation):
			r.own, r.ownChunks = sd.doc, sd.chunks
		case strings.HasPrefix(subj, prefix):
			r.peers[strings.TrimPrefix(subj, prefix)] = &peer{doc: sd.doc, chunks: sd.chunks, size: len(sd.doc.Save())}
		}
	}
	if r.own == nil {
		r.own = automerge.New()
	}
	if err := r.own.SetActorID(r.actor); err != nil {
		return fmt.Errorf("own document actor: %w", err)
	}
	r.recount = true
	sub, err := r.cfg.Conn.Subscribe("fed."+r.cfg.Federation+".c.*.*", r.handle)
	if err != nil {
		return fmt.Errorf("subscribe to federation %s: %w", r.cfg.Federation, err)
	}
	if err := sub.SetPendingLimits(1<<16, 256<<20); err != nil {
		sub.Unsubscribe()
		return err
	}
	r.sub = sub
	if err := r.refresh(ctx, true); err != nil {
		r.log.Warn("first refresh", "err", err)
	}
	go r.loop()
	r.Announce()
	return nil
}

// close stops the loop and stores what is not stored yet.
func (r *Replica) close() {
	select {
	case <-r.stop:
		return
	default:
	}
	if r.sub != nil {
		_ = r.sub.Unsubscribe()
	}
	close(r.stop)
	<-r.done
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.flush(ctx)
}

func (r *Replica) loop() {
	defer close(r.done)
	ann := time.NewTicker(r.cfg.AnnounceEvery)
	defer ann.Stop()
	ref := time.NewTicker(r.cfg.RefreshEvery)
	defer ref.Stop()
	flush := time.NewTicker(100 * time.Millisecond)
	defer flush.Stop()
	var soon <-chan time.Time
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		select {
		case <-r.stop:
			cancel()
			return
		case <-ann.C:
			r.sendAnnounce()
		case <-r.announce:
			if soon == nil {
				soon = time.After(50 * time.Millisecond) // several triggers, one announcement
			}
		case <-soon:
			soon = nil
			r.sendAnnounce()
		case <-ref.C:
			r.mu.Lock()
			r.refreshes++
			full := r.refreshes%60 == 0
			r.mu.Unlock()
			if err := r.refresh(ctx, full); err != nil {
				r.log.Warn("refresh", "err", err)
			}
		case <-r.wake:
			if err := r.refresh(ctx, false); err != nil {
				r.log.Warn("refresh", "err", err)
			}
		case <-flush.C:
			r.flush(ctx)
			r.countDecided(ctx)
		}
		cancel()
	}
}

// Refresh makes the replica reread its Source at once (the circle calls
// it when a mandate ends, so the others stop listing that delegate in
// well under the 2 s DESIGN.md asks).
func (r *Replica) Refresh() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Announce makes the replica announce its heads soon (the link calls it
// when the leaf connection comes back).
func (r *Replica) Announce() {
	select {
	case r.announce <- struct{}{}:
	default:
	}
}

// Changed returns a channel closed at the next change of any document of
// this replica (own or another circle's).
func (r *Replica) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

// notifyLocked closes the changed channel; r.mu is held.
func (r *Replica) notifyLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
	r.recount = true
}

// refresh writes into the own document what Source says now, where it
// differs from what is there. full also rereads the scorecard.
func (r *Replica) refresh(ctx context.Context, full bool) error {
	src := r.cfg.Source
	if src == nil {
		return nil
	}
	prof, _ := json.Marshal(src.Profile())
	dels := src.Delegates(r.cfg.Federation)
	if dels == nil {
		dels = []Delegate{}
	}
	sort.Slice(dels, func(i, j int) bool { return dels[i].Mandate < dels[j].Mandate })
	delJSON, _ := json.Marshal(dels)
	var card json.RawMessage
	if full {
		c, err := src.Scorecard(ctx)
		if err != nil {
			r.log.Warn("scorecard", "err", err)
		} else {
			var buf bytes.Buffer
			if json.Compact(&buf, c) == nil {
				card = buf.Bytes()
			}
		}
	}
	bps := r.cfg.Blueprints()
	return r.write(ctx, "refresh", func(d *automerge.Doc) (bool, error) {
		n := 0
		set := func(key, val string) error {
			if readString(d, key) == val {
				return nil
			}
			n++
			return d.RootMap().Set(key, val)
		}
		if err := set("profile", string(prof)); err != nil {
			return false, err
		}
		if err := set("delegates", string(delJSON)); err != nil {
			return false, err
		}
		if card != nil {
			if err := set("scorecard", string(card)); err != nil {
				return false, err
			}
		}
		have := readMap(d, "blueprints")
		for _, b := range bps {
			s, _ := json.Marshal(b)
			if have[b.ID] == string(s) {
				continue
			}
			n++
			if err := putMapString(d, "blueprints", b.ID, string(s)); err != nil {
				return false, err
			}
		}
		return n > 0, nil
	})
}

// write runs fn on the own document; if fn reports a change it is
// committed, stored in JetStream and published on the circle's subject.
// fn must check everything before it writes: automerge-go cannot roll
// back operations not yet committed.
func (r *Replica) write(ctx context.Context, msg string, fn func(d *automerge.Doc) (bool, error)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.writeLocked(ctx, msg, fn)
}

func (r *Replica) writeLocked(ctx context.Context, msg string, fn func(d *automerge.Doc) (bool, error)) error {
	changed, err := fn(r.own)
	if err != nil || !changed {
		return err
	}
	h, err := r.own.Commit(msg, automerge.CommitOptions{AllowEmpty: false})
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	ch, err := r.own.Change(h)
	if err != nil {
		return fmt.Errorf("new change: %w", err)
	}
	// The change's own bytes are its incremental chunk: cheaper than
	// SaveIncremental, whose cost grows with the document.
	n, err := r.st.appendChunk(ctx, ownSubject(r.cfg.Federation), ch.Save(), r.own, r.ownChunks)
	r.ownChunks = n
	if err != nil {
		return err
	}
	r.notifyLocked()
	r.publishLocked([]*automerge.Change{ch})
	return nil
}

// publishLocked sends changes of the own document on the circle's
// subject, framed under the max payload.
func (r *Replica) publishLocked(chs []*automerge.Change) {
	raw := make([][]byte, len(chs))
	for i, c := range chs {
		raw[i] = c.Save()
	}
	subj := CircleSubject(r.cfg.Federation, r.cfg.Circle, SuffixChanges)
	for _, m := range frame(raw) {
		if err := r.cfg.Conn.Publish(subj, m); err != nil {
			r.log.Warn("publish changes", "err", err)
			return
		}
	}
}

// flush stores every replica document with changes not yet stored.
func (r *Replica) flush(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for circle, p := range r.peers {
		if !p.dirty {
			continue
		}
		n, err := r.st.append(ctx, replicaSubject(r.cfg.Federation, circle), p.doc, p.chunks)
		p.chunks = n
		if err != nil {
			r.log.Warn("store replica", "circle", circle, "err", err)
			continue
		}
		p.dirty = false
	}
}
