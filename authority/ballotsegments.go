package authority

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
)

// Ballots segments (crdt/ballotsegments.go): a member's ballots document
// is bounded as a ledger is. After a change to the member's current
// ballots document is stored, once it holds the bound of proposals, votes
// and reset statements, a background task opens the next one:
//
//  1. it creates the new document (its root written by the server, as at
//     enrolment);
//  2. it writes the roster: the member's "ballots" names the new one and
//     "ballots_closed" gains the old one — the switch, one roster write;
//  3. it compacts the old one, so devices fetch it whole (snapshots.go).
//
// A crash before 2 leaves an unused document and the old one current (the
// next stored change tries again); after 2, the old one is compacted by
// the next late write into it or on a device's request. Nothing stored is
// lost: every item of a ballots document is counted from the record of
// the change that brought it (Dispatcher.Committed, and again at start
// from the stored records), whichever document it is in, and a closed
// document stays writable by its member's devices under the same write
// rules, so a vote written offline into it before the device learnt of
// the switch counts as any other (an item for a decided proposal gets
// the usual refusal in the log: votes are closed).

// checkClosedBallots bounds late writes into a closed ballots document:
// a device that wrote offline into what it took for the current one
// delivers those items, but a closed document never grows past twice the
// bound (the member's devices write into the current one, named by GET
// /v1/circle); past it the write is refused with a clear error
// (422, rule schema) and nothing of it is applied.
func (s *State) checkClosedBallots(doc string, info docInfo, d *automerge.Doc, added []crdt.Added) error {
	m, ok := s.member(info.Member)
	if !ok || string(m.Ballots) == doc {
		return nil
	}
	adds := 0
	for _, a := range added {
		switch a.Container {
		case "proposals", "votes", "resets":
			adds++
		}
	}
	if adds == 0 {
		return nil
	}
	n, err := crdt.BallotsLen(d)
	if err != nil {
		return err
	}
	if limit := 2 * s.ballotsBound(); n+adds > limit {
		return &crdt.RuleError{Rule: crdt.RuleSchema, Message: fmt.Sprintf(
			"this ballots document is closed and holds %d items (at most %d): write into the member's current ballots document %s (GET /v1/circle docs.ballots)", n, limit, m.Ballots)}
	}
	return nil
}

// ballotsBound is the number of items after which the next ballots
// document is opened.
func (s *State) ballotsBound() int {
	if s.ballotsItems > 0 {
		return s.ballotsItems
	}
	return crdt.DefaultBallotsSegmentEntries
}

// maybeNewBallots runs after a change to doc was stored.
func (s *Dispatcher) maybeNewBallots(doc string) {
	info, ok := s.docInfo(doc)
	if !ok || info.Kind != crdt.KindBallots {
		return
	}
	m, ok := s.member(info.Member)
	if !ok {
		return
	}
	if string(m.Ballots) != doc {
		// A late write into a closed ballots document: serve it whole
		// again.
		if _, _, ok := s.engine.SnapshotHash(doc); !ok {
			s.compactClosed(doc)
		}
		return
	}
	s.tasks.Do("ballots:"+info.Member, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.newBallots(ctx, info.Member, doc); err != nil {
			s.log.Error("open new ballots document", "member", info.Member, "err", err)
		}
	})
}

// newBallots opens the member's next ballots document if current, their
// current one, holds the bound.
func (s *State) newBallots(ctx context.Context, member, current string) error {
	var n int
	if err := s.engine.View(ctx, current, func(d *automerge.Doc) error {
		var err error
		n, err = crdt.BallotsLen(d)
		return err
	}); err != nil {
		return err
	}
	if n < s.ballotsBound() {
		return nil
	}
	if m, ok := s.member(member); !ok || string(m.Ballots) != current {
		return nil // opened already
	}
	next := crdt.NewDocID()
	if err := s.engine.Create(ctx, string(next), func(d *automerge.Doc) ([]byte, error) {
		return nil, crdt.InitBallots(d, member)
	}); err != nil {
		return fmt.Errorf("create ballots: %w", err)
	}
	nm, err := s.updateMember(ctx, member, func(_ *crdt.Roster, m *crdt.Member) error {
		if string(m.Ballots) != current {
			return errNoChange // next stays unused
		}
		m.BallotsClosed = append(m.BallotsClosed, m.Ballots)
		m.Ballots = next
		return nil
	})
	if errors.Is(err, errNoChange) {
		return nil
	}
	if err != nil {
		return err
	}
	s.log.Info("opened new ballots document", "member", member, "doc", next, "closed", len(nm.BallotsClosed), "items", n)
	s.compactClosed(current) // snapshots.go
	return nil
}
