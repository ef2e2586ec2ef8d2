package authority

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/mr-tron/base58"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/sync/engine"
	"github.com/circles-coop/circles/sync/store"
)

// Config is what the authority needs from the composition root.
type Config struct {
	// Meta is the circle (ReadMeta); Key is its Ed25519 key, which signs
	// access tokens and seeds draws.
	Meta Meta
	Key  ed25519.PrivateKey
	// Store holds invites, token ids and the circle's metadata.
	Store *store.Store
	// SegmentItems, if > 0, overrides the ledger.segment_changes policy.
	SegmentItems int
	// AuditSegmentEntries and GovernanceArchiveProposals, if > 0,
	// override the bounds of the live audit segment (default
	// DefaultAuditSegmentEntries) and of the live governance document
	// (DefaultGovernanceArchiveProposals); see archives.go.
	AuditSegmentEntries, GovernanceArchiveProposals int
	// BallotsSegmentEntries, if > 0, overrides
	// crdt.DefaultBallotsSegmentEntries (ballotsegments.go).
	BallotsSegmentEntries int
	Logger                *slog.Logger
	// Registerer receives the authority's metrics; nil: none.
	Registerer prometheus.Registerer
	// Now is the clock; tests move it. Default time.Now.
	Now func() time.Time
	// IndexDir is where the ledger index keeps its scratch file (unlinked
	// at once; see indexfile.go): the circle's data directory. "": the
	// system's temporary directory.
	IndexDir string
	// Federation carries out passed federation.join and federation.leave
	// proposals (authority/federation.go); nil: they are rejected.
	Federation FederationLink
}

// Authority is the circle's authority: the only writer of the documents
// the server writes (roster, charter, governance, audit), the judge of
// every device's change (Policy), and the features the transports call.
// Its features are small types over one shared State (state.go).
type Authority struct {
	st *State

	Identity   *Identity   // invites, enrolment, tokens, device revocation
	Circle     *Circle     // GET /v1/circle and sync batches
	Ledger     *Ledger     // ledger entries, balances, ledger segments
	Credits    *Credits    // mutual credit and its limit
	Scorecard  *Scorecard  // the sovereignty scorecard
	Audit      *Audit      // the hash-chained audit log
	Resets     *Resets     // the hard reset
	Governance *Governance // proposals, votes and their effects; roles and mandates as decided
	Draws      *Draws      // verifiable random draws; commit–reveal draws (rounds.go)
	Terms      *Terms      // role terms ending: rotation out or by draw
	Charter    *Charter    // the charter's renewal and lapse
	Mandates   *Mandates   // delegates' mandates ending
	Policy     *Policy     // the write rules the sync engine asks
	Dispatcher *Dispatcher // what happens after a change is stored
	Meetings   *Meetings   // meetings, drawn facilitation, temperature checks (rituals)
	Honours    *Honours    // stepping down; honours for handing power on (rituals)

	// PairAudits and Mentorships are the quarterly pair-link audits and
	// the yearly mentorship inversion (pairaudits.go).
	PairAudits  *PairAudits
	Mentorships *Mentorships
}

// New builds the authority. It needs the sync engine to work, which in
// turn needs the authority's Policy and Dispatcher: build the engine with
// those, then call Open.
func New(cfg Config) *Authority {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	st := &State{
		meta:         cfg.Meta,
		key:          cfg.Key,
		store:        cfg.Store,
		log:          cfg.Logger.With("component", "authority"),
		clock:        cfg.Now,
		met:          newMetrics(cfg.Registerer),
		events:       newBroker(),
		segmentItems: cfg.SegmentItems,
		auditSegment: cfg.AuditSegmentEntries,
		govArchive:   cfg.GovernanceArchiveProposals,
		ballotsItems: cfg.BallotsSegmentEntries,
		index:        NewIndex(cfg.IndexDir, cfg.Logger.With("component", "index")),
		federation:   cfg.Federation,
	}
	st.tasks.onPanic = st.recovered
	a := &Authority{st: st}
	a.Audit = &Audit{State: st}
	a.Identity = &Identity{State: st, audit: a.Audit}
	a.Circle = &Circle{State: st}
	a.Credits = &Credits{State: st, audit: a.Audit}
	a.Ledger = &Ledger{State: st, credits: a.Credits}
	a.Scorecard = &Scorecard{State: st}
	a.Draws = &Draws{State: st, audit: a.Audit}
	a.Governance = &Governance{State: st, audit: a.Audit, draws: a.Draws}
	a.Resets = &Resets{State: st, audit: a.Audit, governance: a.Governance}
	a.PairAudits = &PairAudits{State: st, audit: a.Audit, draws: a.Draws}
	a.Mentorships = &Mentorships{State: st, audit: a.Audit}
	a.Terms = &Terms{State: st, audit: a.Audit, draws: a.Draws}
	a.Charter = &Charter{State: st, audit: a.Audit, governance: a.Governance}
	a.Mandates = &Mandates{State: st, audit: a.Audit}
	a.Policy = &Policy{State: st}
	a.Meetings = &Meetings{State: st, audit: a.Audit, draws: a.Draws}
	a.Honours = &Honours{State: st, audit: a.Audit}
	a.Dispatcher = &Dispatcher{State: st, resets: a.Resets, governance: a.Governance, credits: a.Credits, ledger: a.Ledger}
	return a
}

// Open starts the authority on eng (built with a.Policy and
// a.Dispatcher.Committed): it reads the roster and the policies, rebuilds
// the index from the store, and counts what the server may have stored
// but not counted before it stopped (reset signatures, proposals and
// votes from ballots documents; proposals passed but not carried out).
func (a *Authority) Open(ctx context.Context, eng *engine.Engine) error {
	s := a.st
	s.engine = eng
	if err := s.loadRoster(ctx); err != nil {
		return err
	}
	if err := s.loadPolicies(ctx); err != nil {
		return err
	}
	t := time.Now()
	if err := eng.Replay(ctx, a.Dispatcher.replay); err != nil {
		return fmt.Errorf("rebuild index: %w", err)
	}
	s.log.Info("index rebuilt", "entries", s.index.Len(), "took", time.Since(t).Round(time.Millisecond).String())
	// Rebuilding read every stored chunk once; give that garbage back to
	// the operating system now rather than keeping the heap at its peak.
	debug.FreeOSMemory()
	if err := a.recordMissing(ctx); err != nil {
		s.log.Error("recording what a stop left unrecorded", "err", err) // the circle still serves
	}
	// Proposals decided before the stop are carried out first, before an
	// interrupted reset is finished or signatures are counted again: one
	// decided before a reset takes effect before it, as without the stop.
	if err := a.Governance.finishDecided(ctx); err != nil {
		s.log.Error("proposals: finish carrying out", "err", err) // Tick tries again
	}
	if err := a.Resets.recountResets(ctx); err != nil {
		return err
	}
	a.Ledger.sweepClosed() // snapshots.go: in the background
	return a.Governance.recountBallots(ctx)
}

// recovered logs a panic recovered in background work (where: "task",
// "tick") with its stack, and counts it in circles_panics_total.
func (s *State) recovered(where string, v any, stack []byte) {
	s.log.Error("panic recovered in background work", "where", where, "panic", fmt.Sprint(v), "stack", string(stack))
	s.met.panics.WithLabelValues(where).Inc()
}

// Recover, deferred directly (defer a.Recover("tick")), recovers a panic
// of the goroutine it runs in, logs it with its stack and counts it in
// circles_panics_total{where}. The server's scheduler uses it.
func (a *Authority) Recover(where string) {
	if v := recover(); v != nil {
		a.st.recovered(where, v, debug.Stack())
	}
}

// CloseEvents ends every event stream (GET /v1/events), so an HTTP
// server can shut down without waiting for them.
func (a *Authority) CloseEvents() { a.st.events.Close() }

// Close waits for the authority's background work. Call it once no
// request can reach the authority any more, before closing the engine.
func (a *Authority) Close() {
	a.Ledger.sweep.stopped.Store(true)
	a.st.events.Close()
	a.st.tasks.Wait()
	if err := a.st.index.Close(); err != nil {
		a.st.log.Warn("closing the ledger index", "err", err)
	}
}

// Tick runs the clock-driven work of the circle once: counting the
// pending reset signatures again, since a signature can start to count
// when its member passes reset.min_membership, and finishing a reset a
// failed write left unfinished (resets.go); deciding the
// proposals whose period ended (governance.go); rotating out the role
// holders whose term ended (terms.go); opening the charter's
// re-ratification when it is due and lapsing it when it expired
// (charter.go); ending the mandates whose deadline passed (mandates.go);
// purging invites used or expired a day ago (invites.go); closing
// meetings' temperature checks CheckWindow after the meeting (meetings.go).
// The server calls it on a timer; tests call it after moving the clock.
func (a *Authority) Tick(ctx context.Context) error {
	_, err := a.Resets.countResets(ctx, nil, false)
	return errors.Join(err, a.Resets.finishReset(ctx), a.Governance.tickProposals(ctx), a.Terms.tickRoles(ctx), a.Mandates.tickMandates(ctx), a.Charter.tickCharter(ctx), a.Identity.purgeInvites(ctx), a.Meetings.tickChecks(ctx), a.tickRituals(ctx))
}

// tickRituals closes the commit–reveal draws whose reveals closed, then
// opens or advances the pair-link audits (which read their draws'
// results) and pairs the year's mentorships.
func (a *Authority) tickRituals(ctx context.Context) error {
	return errors.Join(a.Draws.tickRounds(ctx), a.PairAudits.tick(ctx), a.Mentorships.tick(ctx))
}

// Events lets clients follow what happens in the circle.
func (a *Authority) Events() interface {
	Subscribe(Caller) (<-chan Event, func())
} {
	return a.st.events
}

// Meta is the circle's identity and the ids of its server-written
// documents, kept in the store's meta bucket.
type Meta struct {
	ID        string                   `json:"circle_id"`
	Name      string                   `json:"name"`
	CreatedAt time.Time                `json:"created_at"`
	Actor     string                   `json:"actor"` // the server's automerge actor id
	PublicKey []byte                   `json:"public_key"`
	Docs      map[crdt.Kind]crdt.DocID `json:"docs"`
}

// metaKey is the key of the circle's Meta in the store's meta bucket.
const metaKey = "circle"

// ReadMeta reads the circle from the store and checks that key is its
// key.
func ReadMeta(ctx context.Context, st *store.Store, key ed25519.PrivateKey) (Meta, error) {
	var m Meta
	b, _, err := st.Meta().Get(ctx, metaKey)
	if err != nil {
		return m, fmt.Errorf("read circle from store: %w", err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("decode circle: %w", err)
	}
	if !ed25519.PublicKey(m.PublicKey).Equal(key.Public()) {
		return m, errors.New("circle.key does not match the circle in the store")
	}
	return m, nil
}

// NewMeta makes the identity of a new circle named name with key.
func NewMeta(name string, key ed25519.PrivateKey, now time.Time) Meta {
	return Meta{
		ID:        newID(10),
		Name:      name,
		CreatedAt: now.UTC(),
		Actor:     automerge.NewActorID(),
		PublicKey: key.Public().(ed25519.PublicKey),
		Docs:      make(map[crdt.Kind]crdt.DocID),
	}
}

// founderTTL is how long the founder invite of a new circle is valid.
const founderTTL = 7 * 24 * time.Hour

// Found creates a new circle's documents on eng (built with a.Policy): the
// charter with policies, its draft, the roster, governance and the audit
// log with its first entry; saves the circle's Meta in the store; and
// returns a founder invite (valid 7 days). a's Meta has no document ids
// yet; Found fills them in.
func (a *Authority) Found(ctx context.Context, eng *engine.Engine, policies crdt.Policies) (code string, err error) {
	s := a.st
	s.engine = eng
	inits := []struct {
		kind crdt.Kind
		fn   func(d *automerge.Doc) error
	}{
		{crdt.KindCharter, func(d *automerge.Doc) error { return crdt.InitCharter(d, s.meta.Name, policies) }},
		{crdt.KindCharterDraft, crdt.InitCharterDraft},
		{crdt.KindRoster, crdt.InitRoster},
		{crdt.KindGovernance, crdt.InitGovernance},
		{crdt.KindAudit, crdt.InitAudit},
	}
	for _, in := range inits {
		id := crdt.NewDocID()
		fn := in.fn
		if err := eng.Create(ctx, string(id), func(d *automerge.Doc) ([]byte, error) { return nil, fn(d) }); err != nil {
			return "", fmt.Errorf("create %s document: %w", in.kind, err)
		}
		s.meta.Docs[in.kind] = id
	}
	if _, err := s.store.Meta().Create(ctx, metaKey, mustJSON(s.meta)); err != nil {
		return "", fmt.Errorf("save circle: %w", err)
	}
	if err := a.Audit.Append(ctx, crdt.AuditCircleCreated, map[string]any{
		"circle_id": s.meta.ID, "name": s.meta.Name, "public_key": s.meta.PublicKey, "policies": policies,
	}); err != nil {
		return "", err
	}
	return a.Identity.newInvite(ctx, invite{For: inviteMember, Founder: true, ExpiresAt: s.now().Add(founderTTL)})
}

// CircleID is the circle's id.
func (a *Authority) CircleID() string { return a.st.meta.ID }

// Ready reports whether the authority's store answers.
func (a *Authority) Ready(ctx context.Context) error {
	if _, _, err := a.st.store.Meta().Get(ctx, metaKey); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// newID returns a random base58 id of n bytes of entropy.
func newID(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("authority: random: %v", err))
	}
	return base58.Encode(b)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("authority: marshal %T: %v", v, err))
	}
	return b
}
