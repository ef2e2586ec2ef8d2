package authority

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/circles-coop/circles/authority/fault"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/wire"
)

// Ledger writes and reads the members' ledger entries (REST reads come
// from the index), derives balances and their signals, and opens a new
// ledger segment when one passes its bound (DESIGN.md §4).
type Ledger struct {
	*State
	credits *Credits
	sweep   closedSweep // snapshots.go
}

var errSameEntry = errors.New("identical entry already stored")

// CreateEntry writes an entry into the caller's current ledger segment, as
// the server's actor, exactly as if the device had synced it. A retry with
// the same id and content answers created=false; other content → 409.
func (s *Ledger) CreateEntry(ctx context.Context, c Caller, in wire.Entry) (wire.Entry, bool, error) {
	e := crdt.Entry{ID: in.ID, Kind: in.Kind, Quantity: in.Quantity, Unit: in.Unit, Note: in.Note, At: in.At.UTC(), Counterparty: in.Counterparty, Voids: in.Voids}
	if err := e.Validate(); err != nil {
		var re *crdt.RuleError
		if errors.As(err, &re) {
			return wire.Entry{}, false, fault.Errorf(fault.InvalidRequest, "%s", re.Message)
		}
		return wire.Entry{}, false, err
	}
	if e.Counterparty != "" {
		if _, ok := s.member(e.Counterparty); !ok {
			return wire.Entry{}, false, fault.Errorf(fault.InvalidRequest, "field \"counterparty\" must be a member of this circle")
		}
	}
	m, ok := s.member(c.Member)
	if !ok {
		return wire.Entry{}, false, errUnauthenticated
	}
	doc := string(m.CurrentLedger())
	err := s.engine.Update(ctx, doc, func(d *automerge.Doc) ([]byte, error) {
		// The index is updated under the document's lock, so this check
		// and the write are atomic for this segment; ids are unique across
		// segments through the index too.
		prev, ok, err := s.index.Entry(e.ID)
		if err != nil {
			return nil, err
		}
		if ok {
			if prev.Member == c.Member && prev.Entry.Same(e) {
				return nil, errSameEntry
			}
			return nil, fault.Errorf(fault.Conflict, "an entry with id %s already exists with other content; use a new id", e.ID)
		}
		if err := crdt.PutEntry(d, e); err != nil {
			return nil, err
		}
		return mustJSON(chunkRecord{Member: c.Member, Entries: []crdt.Entry{e}}), nil
	})
	switch {
	case errors.Is(err, errSameEntry):
		return toWire(c.Member, e), false, nil
	case err != nil:
		return wire.Entry{}, false, err
	}
	return toWire(c.Member, e), true, nil
}

func toWire(member string, e crdt.Entry) wire.Entry {
	return wire.Entry{ID: e.ID, Member: member, Kind: e.Kind, Quantity: e.Quantity, Unit: e.Unit, Note: e.Note, At: e.At, Counterparty: e.Counterparty, Voids: e.Voids}
}

// ListEntries pages through accepted entries in the order they were
// accepted, for one member or everybody, from the index.
func (s *Ledger) ListEntries(ctx context.Context, c Caller, member string, limit int, cursor string) (wire.EntryList, error) {
	if member != "" {
		if _, ok := s.member(member); !ok {
			return wire.EntryList{}, fault.Errorf(fault.NotFound, "no member %q in this circle", member)
		}
	}
	items, next, err := s.index.Page(member, cursor, limit)
	if err != nil {
		return wire.EntryList{}, fault.Errorf(fault.InvalidRequest, "query parameter \"cursor\" must be a next_cursor from an earlier page")
	}
	out := wire.EntryList{Entries: make([]wire.Entry, len(items)), NextCursor: next}
	for i, it := range items {
		out.Entries[i] = toWire(it.Member, it.Entry)
	}
	return out, nil
}

// Balances derives every active member's balance and the circle's signals
// from the index.
func (s *Ledger) Balances(ctx context.Context, c Caller) (wire.Balances, error) {
	now := s.now()
	silent := s.policies().Duration("signals.silent_after")
	names := map[string]string{}
	var ids []string
	s.mu.RLock()
	for _, m := range s.roster.Members {
		if m.ActiveAt(now) {
			ids = append(ids, m.ID)
			names[m.ID] = m.Name
		}
	}
	s.mu.RUnlock()
	sort.Strings(ids)
	byMember, err := s.index.ByMember()
	if err != nil {
		return wire.Balances{}, err
	}
	bals, sig := crdt.Balances(ids, byMember, now, silent)
	out := wire.Balances{Members: make([]wire.Balance, len(bals)), Signals: wire.Signals{TopShare: sig.TopShare, Gini: sig.Gini, SilentMembers: sig.SilentMembers}}
	if out.Signals.SilentMembers == nil {
		out.Signals.SilentMembers = []string{}
	}
	credit, err := s.credits.creditView()
	if err != nil {
		return wire.Balances{}, err
	}
	for i, b := range bals {
		out.Members[i] = wire.Balance{MemberID: b.Member, Name: names[b.Member], Given: b.Given, Received: b.Received, Balance: b.Balance, LastActive: b.LastActive}
		acct, _ := credit.Account(b.Member)
		out.Members[i].CreditBalance, out.Members[i].CreditLimit, out.Members[i].CreditOverLimit = acct.Balance, s.credits.creditLimit(), acct.OverLimit
	}
	return out, nil
}

// maybeNewSegment opens a new ledger segment for a member whose current
// segment passed the size bound (DESIGN.md §4). It runs after the change
// that crossed the bound was stored, in its own goroutine so it never
// holds the old segment's lock; devices may keep writing into old
// segments.
func (s *Ledger) maybeNewSegment(doc string) {
	info, ok := s.docInfo(doc)
	if !ok || info.Kind != crdt.KindLedger {
		return
	}
	if s.index.DocItems(doc) < s.segmentBound() {
		return
	}
	m, ok := s.member(info.Member)
	if !ok || string(m.CurrentLedger()) != doc {
		return
	}
	s.tasks.Do(info.Member, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.newSegment(ctx, info.Member, doc); err != nil {
			s.log.Error("open new ledger segment", "member", info.Member, "err", err)
		}
	})
}

func (s *Ledger) segmentBound() int {
	if s.segmentItems > 0 {
		return s.segmentItems
	}
	return s.policies().Int("ledger.segment_changes")
}

func (s *Ledger) newSegment(ctx context.Context, member, current string) error {
	m, ok := s.member(member)
	if !ok || string(m.CurrentLedger()) != current {
		return nil // someone else opened the next one already
	}
	next := crdt.NewDocID()
	if err := s.engine.Create(ctx, string(next), func(d *automerge.Doc) ([]byte, error) {
		return nil, crdt.InitLedger(d, member, len(m.Ledgers))
	}); err != nil {
		return fmt.Errorf("create segment: %w", err)
	}
	nm, err := s.updateMember(ctx, member, func(_ *crdt.Roster, m *crdt.Member) error {
		if string(m.CurrentLedger()) != current {
			return errNoChange // opened by someone else meanwhile; next stays unused
		}
		m.Ledgers = append(m.Ledgers, next)
		return nil
	})
	if errors.Is(err, errNoChange) {
		return nil
	}
	if err != nil {
		return err
	}
	s.log.Info("opened new ledger segment", "member", member, "segment", len(nm.Ledgers)-1, "doc", next)
	s.compactClosed(current) // snapshots.go
	return nil
}
