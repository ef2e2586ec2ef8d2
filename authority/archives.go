package authority

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/authority/fault"
	"github.com/circles-coop/circles/crdt"
)

// The governance document and the audit log grow with the circle's life;
// automerge keeps every change a document ever had, and the engine's cost
// of a document (memory, load time, every write) grows with its changes.
// So both are bounded by design, as a member's ledger is (crdt/archives.go
// has the layout):
//
//   - The audit log is a chain of segment documents. When the live segment
//     holds auditSegmentBound entries, the server creates the next one,
//     whose first entry continues the seq and the hash chain, and names it
//     in the roster's archives. Appends go to the live segment only; an
//     archived segment is never loaded for a write.
//   - The governance document moves on when it holds govArchiveBound
//     proposals: a new live document gets what is live — epoch, resets,
//     pending signatures and votes, draws, the authors' indexes, and the
//     proposals still open or not yet recorded — and the old document
//     stays, unchanged, as the archive of the proposals decided in it. The
//     proposal ids of each archive, with their status, are kept in the
//     store's metadata bucket (key "govarchive.<doc>"), so finding an
//     archived proposal loads no document until it is read.
//
// Both moves are crash-safe by their order: the new document is created
// first, the roster then names it (the switch); a server stopped in
// between left an unused document and goes on with the old one, which it
// moves on from again. The governance archive's index is written before
// the new document, and an index naming the live document is ignored.
// Only the server writes archives: they are registered as governance and
// audit documents, which the write rules refuse to every device.

// Default bounds of the live documents: a segment of 1,000 audit entries
// (one change each, ~4 MB in the engine's estimate) and a governance
// document of 200 proposals (~1,000 changes).
const (
	DefaultAuditSegmentEntries        = 1000
	DefaultGovernanceArchiveProposals = 200
)

// archives is what the authority knows of the live and archived
// governance and audit documents.
type archives struct {
	mu    sync.RWMutex // guards the fields below it
	gov   []crdt.DocID // oldest first; the last is live
	audit []crdt.AuditSegment
	// archived are the proposals of the governance archives, by id;
	// byDoc their ids by archive. Loaded by loadArchived.
	archived map[string]archivedProposal
	byDoc    map[string][]string
	loaded   bool
	// nextCheck is the proposal count of the live governance document at
	// which maybeArchive looks again (it found too few to move).
	nextCheck int

	// govDoc is held shared by every writer of the live governance
	// document, from reading its id to the end of its update, and
	// exclusively while the server moves to a new one, so nothing is
	// written into a document being archived.
	govDoc sync.RWMutex
	// auditMu orders the appends to the audit log and the moves to a new
	// segment: from the check of AppendOnce to the append, and from the
	// append that filled a segment to the roster naming the next.
	auditMu sync.Mutex
}

type archivedProposal struct {
	doc    string
	status string
}

// set takes the roster's archives (empty: the circle's first documents).
func (a *archives) set(meta Meta, in crdt.Archives) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.gov = in.Governance
	if len(a.gov) == 0 {
		a.gov = []crdt.DocID{meta.Docs[crdt.KindGovernance]}
	}
	a.audit = in.Audit
	if len(a.audit) == 0 {
		a.audit = []crdt.AuditSegment{{Doc: meta.Docs[crdt.KindAudit], FirstSeq: 1}}
	}
}

// first is what the roster's archives start with: the circle's first
// documents.
func (s *State) firstArchives() crdt.Archives {
	return crdt.Archives{
		Governance: []crdt.DocID{s.meta.Docs[crdt.KindGovernance]},
		Audit:      []crdt.AuditSegment{{Doc: s.meta.Docs[crdt.KindAudit], FirstSeq: 1}},
	}
}

// govID is the live governance document (before the roster is read, at
// the founding: the circle's first).
func (s *State) govID() string {
	s.arch.mu.RLock()
	defer s.arch.mu.RUnlock()
	if len(s.arch.gov) == 0 {
		return string(s.meta.Docs[crdt.KindGovernance])
	}
	return string(s.arch.gov[len(s.arch.gov)-1])
}

// auditID is the live audit segment.
func (s *State) auditID() string {
	segs := s.auditSegments()
	return string(segs[len(segs)-1].Doc)
}

// auditSegments are the segments of the audit log, oldest first.
func (s *State) auditSegments() []crdt.AuditSegment {
	s.arch.mu.RLock()
	defer s.arch.mu.RUnlock()
	if len(s.arch.audit) == 0 {
		return s.firstArchives().Audit
	}
	return slices.Clone(s.arch.audit)
}

// archiveLists returns the archived (not live) documents, for GET
// /v1/circle; nil lists when there are none.
func (s *State) archiveLists() (gov []crdt.DocID, audit []crdt.AuditSegment) {
	s.arch.mu.RLock()
	defer s.arch.mu.RUnlock()
	return slices.Clone(s.arch.gov[:len(s.arch.gov)-1]), slices.Clone(s.arch.audit[:len(s.arch.audit)-1])
}

// readArchives reads the roster's archives.
func (s *State) readArchives(ctx context.Context) (crdt.Archives, error) {
	var a crdt.Archives
	err := s.engine.View(ctx, string(s.meta.Docs[crdt.KindRoster]), func(d *automerge.Doc) error {
		var err error
		a, err = crdt.ReadArchives(d)
		return err
	})
	if err != nil {
		return a, fmt.Errorf("read archives: %w", err)
	}
	return a, nil
}

// updateGov runs fn on the live governance document (engine.Update),
// never on one being archived.
func (s *State) updateGov(ctx context.Context, fn func(d *automerge.Doc) ([]byte, error)) error {
	s.arch.govDoc.RLock()
	defer s.arch.govDoc.RUnlock()
	return s.engine.Update(ctx, s.govID(), fn)
}

// viewGov runs fn on the live governance document.
func (s *State) viewGov(ctx context.Context, fn func(d *automerge.Doc) error) error {
	return s.engine.View(ctx, s.govID(), fn)
}

func (s *State) auditSegmentBound() int {
	return cmp.Or(s.auditSegment, DefaultAuditSegmentEntries)
}

func (s *State) govArchiveBound() int {
	return cmp.Or(s.govArchive, DefaultGovernanceArchiveProposals)
}

// moveAuditOn moves the audit log to a new segment, in the background,
// if the live one is full: the append that filled it does not wait for the
// move (the next append waits for arch.auditMu).
func (s *Audit) moveAuditOn() {
	s.tasks.Do("audit segment", func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s.arch.auditMu.Lock()
		defer s.arch.auditMu.Unlock()
		var last *crdt.AuditEntry
		var n int
		err := s.engine.View(ctx, s.auditID(), func(d *automerge.Doc) error {
			var err error
			if n, err = crdt.AuditLen(d); err != nil {
				return err
			}
			last, err = crdt.LastAudit(d)
			return err
		})
		if err == nil && (n < s.auditSegmentBound() || last == nil) {
			return // moved meanwhile
		}
		if err == nil {
			err = s.nextAuditSegment(ctx, *last)
		}
		if err != nil {
			s.log.Error("audit: open the next segment", "err", err) // the next append tries again
		}
	})
}

// nextAuditSegment moves the audit log to a new segment after last, the
// last entry of the live one. The caller holds arch.auditMu.
func (s *Audit) nextAuditSegment(ctx context.Context, last crdt.AuditEntry) error {
	old := s.auditID()
	next := crdt.NewDocID()
	if err := s.engine.Create(ctx, string(next), func(d *automerge.Doc) ([]byte, error) {
		return nil, crdt.InitAuditSegment(d, last.Seq+1, last.Hash)
	}); err != nil {
		return fmt.Errorf("create audit segment: %w", err)
	}
	if err := s.writeRoster(ctx, func(d *automerge.Doc) error {
		return crdt.AddAuditSegment(d, next, last.Seq+1, s.firstArchives())
	}); err != nil {
		return fmt.Errorf("name audit segment: %w", err) // next stays unused
	}
	s.log.Info("opened new audit segment", "doc", next, "first_seq", last.Seq+1)
	s.compactClosed(old) // served whole to new devices (snapshots.go)
	return nil
}

// findAudit reports whether an entry recorded at or after since matches,
// reading the live segment from its end, and the segments before it only
// while the search has not reached since.
func (s *State) findAudit(ctx context.Context, since time.Time, match func(crdt.AuditEntry) bool) (bool, error) {
	segs := s.auditSegments()
	for i := len(segs) - 1; i >= 0; i-- {
		var found, done bool
		err := s.engine.View(ctx, string(segs[i].Doc), func(d *automerge.Doc) error {
			var err error
			found, done, err = crdt.FindAuditSegment(d, since, match)
			return err
		})
		if err != nil || done {
			return found, err
		}
	}
	return false, nil
}

// readAuditFrom reads up to limit (< 0: all) entries with seq > after,
// across segments, loading only the segments that hold them.
func (s *State) readAuditFrom(ctx context.Context, after int64, limit int) ([]crdt.AuditEntry, error) {
	segs := s.auditSegments()
	start := 0
	for i, seg := range segs {
		if seg.FirstSeq <= after+1 {
			start = i
		}
	}
	var out []crdt.AuditEntry
	for _, seg := range segs[start:] {
		if limit >= 0 && len(out) >= limit {
			break
		}
		rest := -1
		if limit >= 0 {
			rest = limit - len(out)
		}
		err := s.engine.View(ctx, string(seg.Doc), func(d *automerge.Doc) error {
			es, err := crdt.ReadAuditRange(d, after, rest)
			out = append(out, es...)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("read audit segment %s: %w", seg.Doc, err)
		}
	}
	return out, nil
}

// govArchiveKey is the metadata key of a governance archive's index.
func govArchiveKey(doc string) string { return "govarchive." + doc }

// govArchiveIndex is the value under govArchiveKey: the proposals the
// archive holds (decided and recorded), with their status.
type govArchiveIndex struct {
	Doc       string            `json:"doc"`
	Proposals map[string]string `json:"proposals"`
}

// loadArchived reads the governance archives' indexes from the store
// (once; later archives are added as they are made).
func (s *State) loadArchived(ctx context.Context) error {
	s.arch.mu.RLock()
	loaded := s.arch.loaded
	s.arch.mu.RUnlock()
	if loaded {
		return nil
	}
	keys, err := s.store.Meta().Keys(ctx)
	if err != nil {
		return fmt.Errorf("list governance archives: %w", err)
	}
	archived, byDoc := map[string]archivedProposal{}, map[string][]string{}
	live := s.govID()
	s.arch.mu.RLock()
	isArchive := map[string]bool{}
	for _, d := range s.arch.gov[:len(s.arch.gov)-1] {
		isArchive[string(d)] = true
	}
	s.arch.mu.RUnlock()
	for _, k := range keys {
		if !strings.HasPrefix(k, "govarchive.") {
			continue
		}
		b, _, err := s.store.Meta().Get(ctx, k)
		if err != nil {
			return fmt.Errorf("read %s: %w", k, err)
		}
		var ix govArchiveIndex
		if err := json.Unmarshal(b, &ix); err != nil {
			return fmt.Errorf("decode %s: %w", k, err)
		}
		// An index of the live document (a stop before the roster named
		// the next one) or of an unknown one is no archive.
		if ix.Doc == live || !isArchive[ix.Doc] {
			continue
		}
		for id, status := range ix.Proposals {
			archived[id] = archivedProposal{doc: ix.Doc, status: status}
			byDoc[ix.Doc] = append(byDoc[ix.Doc], id)
		}
	}
	s.arch.mu.Lock()
	defer s.arch.mu.Unlock()
	if !s.arch.loaded {
		s.arch.archived, s.arch.byDoc, s.arch.loaded = archived, byDoc, true
	}
	return nil
}

// archivedProposal says in which archive proposal id is, and its status.
func (s *State) archivedProposal(ctx context.Context, id string) (archivedProposal, bool, error) {
	if err := s.loadArchived(ctx); err != nil {
		return archivedProposal{}, false, err
	}
	s.arch.mu.RLock()
	defer s.arch.mu.RUnlock()
	a, ok := s.arch.archived[id]
	return a, ok, nil
}

// lookupProposal reads proposal id from the live governance document or,
// if it was archived, from its archive.
func (s *State) lookupProposal(ctx context.Context, id string) (crdt.ProposalState, bool, error) {
	var st crdt.ProposalState
	var found bool
	err := s.viewGov(ctx, func(d *automerge.Doc) error {
		var err error
		st, found, err = crdt.LookupProposalState(d, id)
		return err
	})
	if err != nil || found {
		return st, found, err
	}
	a, ok, err := s.archivedProposal(ctx, id)
	if err != nil || !ok {
		return st, false, err
	}
	err = s.engine.View(ctx, a.doc, func(d *automerge.Doc) error {
		var err error
		st, found, err = crdt.LookupProposalState(d, id)
		return err
	})
	return st, found, err
}

// readArchivedProposals reads every archived proposal, archive by archive
// (each is loaded once, and may be evicted after).
func (s *State) readArchivedProposals(ctx context.Context) ([]crdt.ProposalState, error) {
	if err := s.loadArchived(ctx); err != nil {
		return nil, err
	}
	s.arch.mu.RLock()
	docs := slices.Clone(s.arch.gov[:len(s.arch.gov)-1])
	byDoc := make(map[string][]string, len(docs))
	for _, d := range docs {
		byDoc[string(d)] = slices.Clone(s.arch.byDoc[string(d)])
	}
	s.arch.mu.RUnlock()
	var out []crdt.ProposalState
	for _, d := range docs {
		ids := byDoc[string(d)]
		if len(ids) == 0 {
			continue
		}
		err := s.engine.View(ctx, string(d), func(doc *automerge.Doc) error {
			for _, id := range ids {
				st, ok, err := crdt.LookupProposalState(doc, id)
				if err != nil {
					return err
				}
				if ok {
					out = append(out, st)
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read governance archive %s: %w", d, err)
		}
	}
	return out, nil
}

// stays says a proposal stays in the live governance document: open, or
// decided but not yet recorded (the server finishes it there).
func stays(st crdt.ProposalState) bool {
	return st.Status == crdt.ProposalOpen || !st.Recorded
}

// maybeArchive moves the governance document on, in the background, once
// it holds govArchiveBound proposals of which at least half can move: the
// decision that reached the bound does not wait for the move. The caller
// holds s.gov.
func (s *Governance) maybeArchive(ctx context.Context) {
	if s.archiveDue(ctx) {
		s.tasks.Do("archive governance", func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			s.gov.Lock()
			defer s.gov.Unlock()
			if !s.archiveDue(ctx) {
				return // moved meanwhile
			}
			if err := s.archiveGovernance(ctx); err != nil {
				s.log.Error("archive governance", "err", err) // tried again after the next decision
			}
		})
	}
}

// archiveDue says the live governance document has reached its bound.
func (s *Governance) archiveDue(ctx context.Context) bool {
	var n int
	err := s.viewGov(ctx, func(d *automerge.Doc) error {
		v, err := d.Path("proposals").Get()
		if err == nil && v.Kind() == automerge.KindMap {
			n = v.Map().Len()
		}
		return err
	})
	s.arch.mu.RLock()
	next := s.arch.nextCheck
	s.arch.mu.RUnlock()
	return err == nil && n >= max(s.govArchiveBound(), next)
}

// errFewToMove ends an archiving that would move too little.
var errFewToMove = errors.New("too few decided proposals to move")

// archiveGovernance makes a new live governance document with what stays
// live and leaves the old one as an archive. The caller holds s.gov.
func (s *Governance) archiveGovernance(ctx context.Context) error {
	if err := s.loadArchived(ctx); err != nil {
		return err
	}
	s.arch.govDoc.Lock()
	defer s.arch.govDoc.Unlock()
	old := s.govID()
	var live map[string]any
	var left map[string]string
	var total int
	err := s.engine.View(ctx, old, func(d *automerge.Doc) error {
		var err error
		live, left, total, err = crdt.LiveGovernance(d, stays)
		if err == nil && len(left) < total/2 {
			return errFewToMove
		}
		return err
	})
	if errors.Is(err, errFewToMove) {
		s.arch.mu.Lock()
		s.arch.nextCheck = total + max(s.govArchiveBound()/4, 1)
		s.arch.mu.Unlock()
		return nil
	}
	if err != nil {
		return err
	}
	ix, err := json.Marshal(govArchiveIndex{Doc: old, Proposals: left})
	if err != nil {
		return err
	}
	if _, err := s.store.Meta().Put(ctx, govArchiveKey(old), ix); err != nil {
		return fmt.Errorf("store the archive's index: %w", err)
	}
	next := crdt.NewDocID()
	if err := s.engine.Create(ctx, string(next), func(d *automerge.Doc) ([]byte, error) {
		return nil, crdt.WriteLiveGovernance(d, live)
	}); err != nil {
		return fmt.Errorf("create governance document: %w", err)
	}
	// Known as archived before the roster names the next document, so no
	// reader finds them in neither. Until then (or for good, if the write
	// fails) they are in the live document too, which readers look in
	// first.
	s.arch.mu.Lock()
	for id, status := range left {
		if _, ok := s.arch.archived[id]; !ok {
			s.arch.byDoc[old] = append(s.arch.byDoc[old], id)
		}
		s.arch.archived[id] = archivedProposal{doc: old, status: status}
	}
	s.arch.nextCheck = 0
	s.arch.mu.Unlock()
	if err := s.writeRoster(ctx, func(d *automerge.Doc) error {
		return crdt.AddGovernanceDoc(d, next, s.firstArchives())
	}); err != nil {
		return fmt.Errorf("name governance document: %w", err) // next stays unused
	}
	s.log.Info("archived governance document", "archive", old, "proposals", len(left), "live", next, "kept", total-len(left))
	s.compactClosed(old) // served whole to new devices (snapshots.go)
	return nil
}

// archivedRefusal is the answer to a vote on an archived proposal.
func archivedRefusal(id string, a archivedProposal) error {
	return fault.Errorf(fault.Conflict, "proposal %s is already %s; votes are closed", id, a.status)
}
