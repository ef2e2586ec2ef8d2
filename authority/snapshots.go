package authority

import (
	"errors"
	"runtime/debug"

	"context"
	"sync/atomic"
	"time"

	"github.com/circles-coop/circles/authority/fault"
	"github.com/circles-coop/circles/sync/engine"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/wire"
)

// Closed ledger segments (every segment of a member but the current one)
// are kept compacted: their stored snapshot holds all of them, so a new
// device fetches each whole (GET /v1/docs/{doc}/snapshot) instead of
// replaying it change by change, and the engine answers a device that
// holds one without loading it (sync/engine/snapshots.go). A segment is
// compacted when it closes, again after a late write into it (a device
// that wrote offline into what was then its current segment), and at
// start for those that are not (closedSweep).

// closedSweep stops the start-up compaction of closed segments when the
// authority closes.
type closedSweep struct{ stopped atomic.Bool }

// closedSegments lists the documents that never change again: the closed
// ledger segments of the active members and the archives (archives.go).
func (s *State) closedSegments() []string {
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for _, m := range s.roster.Members {
		if !m.ActiveAt(now) {
			continue
		}
		for i := 0; i+1 < len(m.Ledgers); i++ {
			out = append(out, string(m.Ledgers[i]))
		}
		for _, b := range m.BallotsClosed { // ballotsegments.go
			out = append(out, string(b))
		}
	}
	// Governance archives and old audit segments never change either.
	gov, audit := s.archiveLists()
	for _, d := range gov {
		out = append(out, string(d))
	}
	for _, seg := range audit {
		out = append(out, string(seg.Doc))
	}
	return out
}

// isClosedSegment reports whether doc is a ledger segment that is not its
// member's current one.
func (s *Ledger) isClosedSegment(doc string) bool {
	info, ok := s.docInfo(doc)
	if !ok || info.Kind != crdt.KindLedger {
		return false
	}
	m, ok := s.member(info.Member)
	return ok && string(m.CurrentLedger()) != doc
}

// compactClosed compacts one document that will not change again (a
// closed ledger segment, a governance archive, an old audit segment) in
// the background, at most one task per document at a time.
func (s *State) compactClosed(doc string) {
	s.tasks.Do("compact:"+doc, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := s.engine.CompactSnapshot(ctx, doc); err != nil {
			s.log.Error("compact closed document", "doc", doc, "err", err)
		}
	})
}

// afterCommit compacts doc again when a late write went into a closed
// segment.
func (s *Ledger) afterCommit(doc string) {
	if _, _, ok := s.engine.SnapshotHash(doc); ok {
		return
	}
	if s.isClosedSegment(doc) {
		s.compactClosed(doc)
	}
}

// sweepClosed compacts, one after the other in the background, every
// closed segment not known to be compacted (after a start, or segments
// closed before this server compacted them).
func (s *Ledger) sweepClosed() {
	s.tasks.Do("compact-closed-segments", func() {
		for _, doc := range s.closedSegments() {
			if s.sweep.stopped.Load() {
				return
			}
			if _, _, ok := s.engine.SnapshotHash(doc); ok {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			err := s.engine.CompactSnapshot(ctx, doc)
			cancel()
			if err != nil {
				s.log.Error("compact closed ledger segment", "doc", doc, "err", err)
			}
		}
		// Reading the snapshots (and compacting any) left garbage; give it
		// back now, as Open does after rebuilding the index.
		debug.FreeOSMemory()
	})
}

// snapshotHashes names, for each ledger segment whose stored snapshot
// holds all of it (always so for closed segments once compacted, for the
// current ones until their next write), the hash of that snapshot (GET
// /v1/circle).
func (s *Circle) snapshotHashes(c *wire.Circle) {
	docs := []string{}
	for _, m := range c.Members {
		docs = append(docs, m.Ledgers...)
		docs = append(docs, m.BallotsClosed...)
	}
	if c.Archives != nil {
		docs = append(docs, c.Archives.Governance...)
		for _, seg := range c.Archives.Audit {
			docs = append(docs, seg.Doc)
		}
	}
	for _, d := range docs {
		if h, _, ok := s.engine.SnapshotHash(d); ok {
			if c.Snapshots == nil {
				c.Snapshots = map[string]string{}
			}
			c.Snapshots[d] = h
		}
	}
}

// LatestSnapshot returns doc's stored snapshot after compacting doc if
// it changed since (GET /v1/docs/{doc}/snapshot), with the read check of
// sync.
func (s *Circle) LatestSnapshot(ctx context.Context, c Caller, doc string) (engine.Snapshot, error) {
	snap, err := s.engine.ReadLatestSnapshot(ctx, engine.Peer{Device: c.Device, Member: c.Member, Actor: c.Actor}, doc)
	if errors.Is(err, engine.ErrNoSnapshot) {
		return engine.Snapshot{}, fault.Errorf(fault.NotFound, "document %s has no stored snapshot; sync it with POST /v1/sync", doc)
	}
	return snap, err
}

// Snapshot returns doc's stored snapshot for the caller's device, with
// the read check of sync (GET /v1/docs/{doc}/snapshot).
func (s *Circle) Snapshot(ctx context.Context, c Caller, doc string) (engine.Snapshot, error) {
	snap, err := s.engine.ReadSnapshot(ctx, engine.Peer{Device: c.Device, Member: c.Member, Actor: c.Actor}, doc)
	if errors.Is(err, engine.ErrNoSnapshot) {
		return engine.Snapshot{}, fault.Errorf(fault.NotFound, "document %s has no stored snapshot yet; sync it with POST /v1/sync", doc)
	}
	return snap, err
}
