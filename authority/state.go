package authority

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/sync/engine"
	"github.com/circles-coop/circles/sync/store"
)

// State is what the features of the authority share. Each feature
// (Identity, Governance, Resets, …) is a small type holding a *State and
// pointers to the few other features it calls; none keeps state of its
// own that another feature reads.
//
// Locks, and what each guards:
//
//   - mu guards roster, docs and pol. Readers take copies or pointers to
//     values that are replaced, never changed in place (roster members,
//     policy maps).
//   - rosterMu serializes the roster's writers, from the read that
//     decides a change, through the document's update, to the in-memory
//     copy (writeRoster, updateMember, addMember): two writers never
//     overwrite each other, and the in-memory roster never goes back to an
//     older one. It is taken before mu (and before gov's document work
//     inside it), never while holding mu.
//   - gov serializes the governance of the circle: deciding a proposal and
//     carrying out its effect, counting reset signatures, rotating role
//     holders, ending mandates, lapsing the charter. Each of those touches
//     several documents (governance, roster, charter, audit) one after the
//     other, and must not interleave with another.
//   - Every document has its own lock in the engine; the authority never
//     holds two document locks at once.
type State struct {
	// Set by New and never changed.
	meta   Meta
	key    ed25519.PrivateKey
	store  *store.Store
	log    *slog.Logger
	clock  func() time.Time
	met    *metrics
	events *broker
	// segmentItems, if > 0, overrides the ledger.segment_changes policy.
	segmentItems int
	// federation is the circle's federation link (Config.Federation).
	federation FederationLink
	// auditSegment and govArchive, if > 0, override the bounds of the
	// live audit segment and governance document (archives.go).
	auditSegment, govArchive int
	// ballotsItems, if > 0, overrides crdt.DefaultBallotsSegmentEntries
	// (ballotsegments.go).
	ballotsItems int
	// arch knows the live and archived governance and audit documents
	// (archives.go); it has its own locks.
	arch archives
	// engine is set by Open and never changed after.
	engine *engine.Engine
	// index holds every accepted ledger entry and credit (index.go); it
	// has its own lock.
	index *Index
	// tasks owns the goroutines the authority starts (counting ballots in
	// the background, opening ledger segments); Close waits for them.
	tasks tasks

	rosterMu sync.Mutex

	mu     sync.RWMutex
	roster *crdt.Roster
	docs   map[string]docInfo // document id → what it is and whose
	pol    crdt.Policies      // the charter's policies, replaced as a whole

	gov sync.Mutex

	// rosterHook, if set, is called after every change of the in-memory
	// roster (federation.go: a federation republishes its delegates).
	rosterHook atomic.Pointer[func()]
}

// now is the authority's clock (Config.Now), in UTC.
func (s *State) now() time.Time { return s.clock().UTC() }

// loadRoster reads the roster document and builds the document registry.
func (s *State) loadRoster(ctx context.Context) error {
	s.rosterMu.Lock()
	defer s.rosterMu.Unlock()
	if err := s.reloadRoster(ctx); err != nil {
		return err
	}
	s.endStaleStreams()
	return nil
}

// reloadRoster is loadRoster with rosterMu held.
func (s *State) reloadRoster(ctx context.Context) error {
	r, err := s.readRoster(ctx)
	if err != nil {
		return err
	}
	arch, err := s.readArchives(ctx)
	if err != nil {
		return err
	}
	s.arch.set(s.meta, arch)
	defer s.rosterChanged() // after s.mu is released (federation.go)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roster = r
	// Documents never change kind or owner: keep what is known of them
	// (their cached container ids and objects) and add the new ones.
	if s.docs == nil {
		s.docs = make(map[string]docInfo)
	}
	for kind, id := range s.meta.Docs {
		if _, ok := s.docs[string(id)]; !ok {
			s.docs[string(id)] = docInfo{Kind: kind}
		}
	}
	for _, m := range r.Members {
		s.registerMemberDocs(m)
	}
	for _, id := range arch.Governance {
		if _, ok := s.docs[string(id)]; !ok {
			s.docs[string(id)] = docInfo{Kind: crdt.KindGovernance}
		}
	}
	for _, seg := range arch.Audit {
		if _, ok := s.docs[string(seg.Doc)]; !ok {
			s.docs[string(seg.Doc)] = docInfo{Kind: crdt.KindAudit}
		}
	}
	return nil
}

// writeRoster runs fn on the roster document and then reloads the
// in-memory roster from it, all under rosterMu. fn may return errNoChange
// to write nothing (writeRoster then returns errNoChange too).
func (s *State) writeRoster(ctx context.Context, fn func(d *automerge.Doc) error) error {
	s.rosterMu.Lock()
	defer s.rosterMu.Unlock()
	err := s.engine.Update(ctx, string(s.meta.Docs[crdt.KindRoster]), func(d *automerge.Doc) ([]byte, error) {
		return nil, fn(d)
	})
	if err != nil {
		return err
	}
	if err := s.reloadRoster(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("reload roster: %w", err)
	}
	s.endStaleStreams()
	return nil
}

// endStaleStreams ends the event streams of devices that are revoked or
// whose member left the circle, at once after the roster changed. It
// takes s.mu (through activeDevice), so the caller must not hold it.
func (s *State) endStaleStreams() {
	s.events.endWhere(func(c Caller) bool {
		_, _, err := s.activeDevice(c.Member, c.Device)
		return err != nil
	})
}

// registerMemberDocs adds a member's documents to the registry; s.mu held.
func (s *State) registerMemberDocs(m *crdt.Member) {
	for _, id := range m.Ledgers {
		if _, ok := s.docs[string(id)]; !ok {
			s.docs[string(id)] = docInfo{Kind: crdt.KindLedger, Member: m.ID}
		}
	}
	for _, id := range append(slices.Clone(m.BallotsClosed), m.Ballots) {
		if _, ok := s.docs[string(id)]; !ok && id != "" {
			s.docs[string(id)] = docInfo{Kind: crdt.KindBallots, Member: m.ID}
		}
	}
}

func (s *State) docInfo(id string) (docInfo, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	info, ok := s.docs[id]
	return info, ok
}

// member returns the roster's member; callers must not modify it (see
// updateMember).
func (s *State) member(id string) (*crdt.Member, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	m, ok := s.roster.Members[id]
	return m, ok
}

// updateMember changes member id: fn gets the roster as it stands
// (read-only) and a copy of the member to change, then the copy is
// written. From the read to the in-memory copy it holds rosterMu, so of
// two concurrent changes of one member neither is lost. An unknown id
// gives errNoMember; an error of fn is returned as is and nothing is
// written.
func (s *State) updateMember(ctx context.Context, id string, fn func(r *crdt.Roster, m *crdt.Member) error) (*crdt.Member, error) {
	s.rosterMu.Lock()
	defer s.rosterMu.Unlock()
	// Writers hold rosterMu, so the roster does not change under fn.
	s.mu.RLock()
	r := s.roster
	old, ok := r.Members[id]
	s.mu.RUnlock()
	if !ok {
		return nil, errNoMember
	}
	m := cloneMember(old)
	if err := fn(r, m); err != nil {
		return nil, err
	}
	return m, s.putMember(ctx, m)
}

// addMember writes a new member m, once check (given the roster as it
// stands) allows it, under rosterMu as updateMember.
func (s *State) addMember(ctx context.Context, m *crdt.Member, check func(r *crdt.Roster) error) error {
	s.rosterMu.Lock()
	defer s.rosterMu.Unlock()
	s.mu.RLock()
	r := s.roster
	_, taken := r.Members[m.ID]
	s.mu.RUnlock()
	if taken {
		return fmt.Errorf("member id %s is taken", m.ID)
	}
	if err := check(r); err != nil {
		return err
	}
	return s.putMember(ctx, m)
}

// errNoMember is updateMember's answer for an unknown member.
var errNoMember = errors.New("no such member")

// putMember writes m into the roster document and, once stored, into the
// in-memory roster and registry. The caller holds rosterMu.
func (s *State) putMember(ctx context.Context, m *crdt.Member) error {
	err := s.engine.Update(ctx, string(s.meta.Docs[crdt.KindRoster]), func(d *automerge.Doc) ([]byte, error) {
		return nil, crdt.PutMember(d, m)
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.roster.Members[m.ID] = m
	s.registerMemberDocs(m)
	s.mu.Unlock()
	s.endStaleStreams()
	return nil
}

// cloneMember copies m deeply enough to change its fields, devices and
// ledgers.
func cloneMember(m *crdt.Member) *crdt.Member {
	c := *m
	c.Devices = make(map[string]*crdt.Device, len(m.Devices)+1)
	for k, d := range m.Devices {
		dc := *d
		c.Devices[k] = &dc
	}
	c.Ledgers = append([]crdt.DocID(nil), m.Ledgers...)
	c.BallotsClosed = append([]crdt.DocID(nil), m.BallotsClosed...)
	return &c
}

// voter is a member active now, with when they joined.
type voter struct {
	id     string
	joined time.Time
}

// activeVoters lists the members active at now with when they joined;
// eligibleAt picks those who may vote on a proposal from them.
func (s *State) activeVoters(now time.Time) []voter {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []voter
	for _, m := range s.roster.Active(now) {
		out = append(out, voter{id: m.ID, joined: m.JoinedAt})
	}
	return out
}

// eligibleAt returns the voters of a proposal opened at opened: the
// members active at its opening who are still active. A member who
// joined after it opened neither votes on it nor counts for its quorum,
// so members invited once a proposal is open (sock puppets) cannot sway
// it. voters are the members active now (activeVoters); a member is
// never re-admitted under the same id, so "joined by then and active
// now" is "active then and still".
func eligibleAt(voters []voter, opened time.Time) []string {
	out := make([]string, 0, len(voters))
	for _, v := range voters {
		if opened.IsZero() || !v.joined.After(opened) {
			out = append(out, v.id)
		}
	}
	return out
}

// policies returns the charter's policies as last loaded. A passed
// policy.set or charter.ratify replaces them; the map is never changed in
// place, so callers may keep it.
func (s *State) policies() crdt.Policies {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.pol
}

// loadPolicies reads the charter's policies: at start, and after a
// governance decision changed the charter.
func (s *State) loadPolicies(ctx context.Context) error {
	ch, err := s.readCharter(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.pol = ch.Policies // replaced, never changed in place: see policies()
	s.mu.Unlock()
	return nil
}

// readProposals reads every proposal of the governance document.
func (s *State) readProposals(ctx context.Context) ([]crdt.ProposalState, error) {
	var out []crdt.ProposalState
	err := s.viewGov(ctx, func(d *automerge.Doc) error {
		var err error
		out, err = crdt.ReadProposalStates(d)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read proposals: %w", err)
	}
	return out, nil
}

func (s *State) readRoster(ctx context.Context) (*crdt.Roster, error) {
	var r *crdt.Roster
	err := s.engine.View(ctx, string(s.meta.Docs[crdt.KindRoster]), func(d *automerge.Doc) error {
		var err error
		r, err = crdt.ReadRoster(d)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read roster: %w", err)
	}
	return r, nil
}

func (s *State) readCharter(ctx context.Context) (crdt.Charter, error) {
	var ch crdt.Charter
	err := s.engine.View(ctx, string(s.meta.Docs[crdt.KindCharter]), func(d *automerge.Doc) error {
		var err error
		ch, err = crdt.ReadCharter(d)
		return err
	})
	if err != nil {
		return crdt.Charter{}, fmt.Errorf("read charter: %w", err)
	}
	return ch, nil
}

// readEpoch reads the circle's reset epoch from the governance document.
func (s *State) readEpoch(ctx context.Context) (int, error) {
	var epoch int
	err := s.viewGov(ctx, func(d *automerge.Doc) error {
		var err error
		epoch, err = crdt.ReadEpoch(d)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("read epoch: %w", err)
	}
	return epoch, nil
}
