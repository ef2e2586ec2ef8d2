package authority

import (
	"errors"
	"fmt"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/crdt/amchange"
	"github.com/circles-coop/circles/sync/engine"
)

// Policy is the circle's engine.Policy: who may read and write which
// document, and what a change may contain (DESIGN.md §4).
type Policy struct{ *State }

var _ engine.Policy = (*Policy)(nil)

// docInfo says what a document is and whose it is.
type docInfo struct {
	Kind   crdt.Kind
	Member string // owner of a ledger segment or ballots document
	// roots are the object ids of the document's append-only containers,
	// read from its creating change the first time they are needed.
	roots map[string]amchange.OpID
	// kinds, for the charter draft, are the objects the document holds,
	// learned from its changes (only touched under the document's lock).
	kinds *objectKinds
	// checked is what CheckChanges found in the last batch it passed for
	// a member document, for Accept to reuse when exactly that batch was
	// applied (only touched under the document's lock).
	checked *checkedBatch
	// keys, for a loaded member document, are the keys its containers
	// hold (keyset.go; only touched under the document's lock).
	keys *keySet
	// accepted are the records Accept returned that the engine has not
	// reported stored yet (record; only touched under the document's
	// lock).
	accepted []acceptedRecord
}

// checkedBatch is a batch of changes CheckChanges passed, the keys it
// adds, and the heads of the document it was checked against.
type checkedBatch struct {
	hashes []automerge.ChangeHash
	added  []crdt.Added
	heads  []automerge.ChangeHash
}

// sameBatch reports whether changes are, in order, the batch c was made
// for.
func (c *checkedBatch) sameBatch(changes []engine.Change) bool {
	if c == nil || len(c.hashes) != len(changes) {
		return false
	}
	for i, ch := range changes {
		if ch.Hash() != c.hashes[i] {
			return false
		}
	}
	return true
}

// setChecked records (or with nil clears) the batch CheckChanges passed.
func (s *Policy) setChecked(doc string, c *checkedBatch) {
	s.updateDoc(doc, func(info *docInfo) { info.checked = c })
}

// updateDoc changes what the policy keeps of doc, if it knows doc.
func (s *State) updateDoc(doc string, f func(*docInfo)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if info, ok := s.docs[doc]; ok {
		f(&info)
		s.docs[doc] = info
	}
}

// objectKinds caches a document's objects as of its heads.
type objectKinds struct {
	heads []automerge.ChangeHash
	kinds crdt.ObjectKinds
	text  amchange.OpID // the draft's text object (crdt.DraftTextObject)
}

// policy is the circle's engine.Policy: who may read and write which
// document, and what a change may contain.

// CheckRead lets every active member read every document of the circle:
// circles are radically transparent (DESIGN.md §1). Documents of other
// circles, or unknown ids, do not exist.
func (s *Policy) CheckRead(peer engine.Peer, doc string) error {
	if _, ok := s.docInfo(doc); !ok {
		return engine.ErrUnknownDoc
	}
	m, ok := s.member(peer.Member)
	if !ok || !m.ActiveAt(s.now()) {
		return engine.ErrForbidden
	}
	return nil
}

// CheckChanges enforces the write rules of DESIGN.md §4 on the decoded
// operations, before anything is applied.
func (s *Policy) CheckChanges(peer engine.Peer, doc string, d *automerge.Doc, changes []engine.Change) error {
	info, _ := s.docInfo(doc)
	// The engine passes only the changes d does not hold yet.
	if len(changes) == 0 {
		return nil
	}
	for _, ch := range changes {
		if ch.ActorID() != peer.Actor {
			s.met.rejected.WithLabelValues(crdt.RuleActor).Inc()
			return &crdt.RuleError{Rule: crdt.RuleActor, Message: fmt.Sprintf("change %s was made by actor %s, but this device writes as %s", short(ch.Hash().String()), ch.ActorID(), peer.Actor)}
		}
	}
	switch {
	case info.Kind.ServerWritten():
		return s.reject(&crdt.RuleError{Rule: crdt.RulePermission, Message: fmt.Sprintf("the %s document is written by the circle server only", info.Kind)})
	case (info.Kind == crdt.KindLedger || info.Kind == crdt.KindBallots) && info.Member != peer.Member:
		return s.reject(&crdt.RuleError{Rule: crdt.RulePermission, Message: fmt.Sprintf("this %s belongs to another member; a device writes only its own member's ledger and ballots", info.Kind)})
	case info.Kind == crdt.KindCharterDraft:
		// Any active member edits the draft together (CheckRead already
		// refused inactive members); its text is free-form, but every
		// operation must address an object that exists, the right way.
		kinds, err := s.kindsOf(doc, d)
		if err != nil {
			return err
		}
		decoded := decodedOf(changes)
		if err := crdt.CheckFreeForm(info.Kind, kinds.kinds, decoded); err != nil {
			return s.reject(err)
		}
		// The draft's size is bounded before anything is applied.
		return s.reject(crdt.CheckDraftChanges(d, kinds.text, decoded))
	}
	decoded := decodedOf(changes)
	roots, err := s.rootsOf(doc, d)
	if err != nil {
		return err
	}
	heads := d.Heads()
	keys, err := s.keysOf(doc, d, heads)
	if err != nil {
		return err
	}
	exists := func(container, key string) bool {
		if !keys.mayHave(crdt.Added{Container: container, Key: key}) {
			return false
		}
		v, err := d.Path(container, key).Get() // the hash may have collided
		return err == nil && !v.IsVoid()
	}
	added, err := crdt.CheckAppendOnly(info.Kind, roots, exists, decoded)
	if err != nil {
		return s.reject(err)
	}
	if info.Kind == crdt.KindBallots {
		if err := crdt.CheckBallotsGrowth(d, added); err != nil {
			return s.reject(err)
		}
		if err := s.checkClosedBallots(doc, info, d, added); err != nil { // ballotsegments.go
			return s.reject(err)
		}
	}
	c := &checkedBatch{hashes: make([]automerge.ChangeHash, len(changes)), added: added, heads: heads}
	for i, ch := range changes {
		c.hashes[i] = ch.Hash()
	}
	s.setChecked(doc, c)
	return nil
}

func (s *Policy) reject(err error) error {
	var re *crdt.RuleError
	if errors.As(err, &re) {
		s.met.rejected.WithLabelValues(re.Rule).Inc()
	}
	return err
}

func decodedOf(changes []engine.Change) []*amchange.Change {
	out := make([]*amchange.Change, len(changes))
	for i, ch := range changes {
		out[i] = ch.Decoded
	}
	return out
}

// kindsOf returns the objects a free-form document holds, learning them
// from the changes applied since the last call. The caller holds the
// document's lock.
func (s *Policy) kindsOf(doc string, d *automerge.Doc) (*objectKinds, error) {
	s.mu.RLock()
	info := s.docs[doc]
	s.mu.RUnlock()
	k := info.kinds
	if k == nil {
		k = &objectKinds{kinds: make(crdt.ObjectKinds)}
	}
	heads := d.Heads()
	if crdt.SameHeads(heads, k.heads) {
		return k, nil
	}
	news, err := d.Changes(k.heads...)
	if err != nil {
		return nil, fmt.Errorf("list changes of %s: %w", doc, err)
	}
	for i, ch := range news {
		dc, err := amchange.Decode(ch.Save())
		if err != nil {
			return nil, fmt.Errorf("decode stored change of %s: %w", doc, err)
		}
		if i == 0 && k.heads == nil {
			k.text, _ = crdt.DraftTextObject(dc)
		}
		k.kinds.Learn(dc)
	}
	k.heads = heads
	s.mu.Lock()
	info = s.docs[doc]
	info.kinds = k
	s.docs[doc] = info
	s.mu.Unlock()
	return k, nil
}

// rootsOf returns the object ids of a member document's containers, read
// from the document's first change (the server's create change) and cached.
func (s *Policy) rootsOf(doc string, d *automerge.Doc) (map[string]amchange.OpID, error) {
	s.mu.RLock()
	info := s.docs[doc]
	s.mu.RUnlock()
	if info.roots != nil {
		return info.roots, nil
	}
	all, err := d.Changes()
	if err != nil || len(all) == 0 {
		return nil, fmt.Errorf("read create change of %s: %v", doc, err)
	}
	first, err := amchange.Decode(all[0].Save())
	if err != nil {
		return nil, fmt.Errorf("decode create change of %s: %w", doc, err)
	}
	want := crdt.Containers(info.Kind)
	roots := make(map[string]amchange.OpID, len(want))
	for _, op := range first.Ops {
		if op.Obj.IsRoot() && op.Action.MakesObject() {
			if _, ok := want[op.Key]; ok {
				roots[op.Key] = op.ID
			}
		}
	}
	if len(roots) != len(want) {
		return nil, fmt.Errorf("document %s lacks its %s containers", doc, info.Kind)
	}
	s.mu.Lock()
	info.roots = roots
	s.docs[doc] = info
	s.mu.Unlock()
	return roots, nil
}

// Accept validates what a device's changes added, after they were applied,
// and returns the index record of a ledger segment.
func (s *Policy) Accept(doc string, d *automerge.Doc, applied []engine.Change) ([]byte, error) {
	info, _ := s.docInfo(doc)
	if info.Kind == crdt.KindCharterDraft {
		if err := crdt.CheckCharterDraft(d); err != nil {
			return nil, s.reject(err)
		}
		return nil, s.reject(checkReloads(d))
	}
	if info.Kind != crdt.KindLedger && info.Kind != crdt.KindBallots {
		return nil, nil
	}
	decoded := decodedOf(applied)
	roots, err := s.rootsOf(doc, d)
	if err != nil {
		return nil, err
	}
	// When what was applied is exactly the batch CheckChanges passed, its
	// keys are known: CheckAppendOnly gives the same over the same
	// changes (an existing key only adds refusals, and there were none).
	// Otherwise (changes that waited for their dependencies entered too),
	// the whole applied batch is checked again.
	var added []crdt.Added
	same := info.checked.sameBatch(applied)
	s.acceptedKeys(doc, d, info.checked, same)
	if same {
		added = info.checked.added
	} else if added, err = crdt.CheckAppendOnly(info.Kind, roots, func(string, string) bool { return false }, decoded); err != nil {
		return nil, s.reject(err)
	}
	if info.checked != nil {
		s.setChecked(doc, nil)
	}
	if info.Kind == crdt.KindBallots {
		if err := checkBallots(d, added); err != nil {
			return nil, s.reject(err)
		}
		rec := chunkRecord{Member: info.Member}
		for _, a := range added {
			switch a.Container {
			case "resets":
				st, ok, err := crdt.LookupResetStatement(d, a.Key)
				if err == nil && ok {
					rec.Resets = append(rec.Resets, st)
				}
			case "proposals": // checkBallots validated them
				if p, ok, err := crdt.LookupProposal(d, a.Key); err == nil && ok {
					rec.Proposals = append(rec.Proposals, p)
				}
			case "votes":
				if v, ok, err := crdt.LookupVote(d, a.Key); err == nil && ok {
					rec.Votes = append(rec.Votes, v)
				}
			}
		}
		if len(rec.Resets)+len(rec.Proposals)+len(rec.Votes) == 0 {
			return nil, nil
		}
		return s.record(doc, rec), nil
	}
	// New entries written with scalar strings are read from the
	// operations; ones holding automerge text are read back from the
	// document.
	fromOps := crdt.NewMaps(roots, decoded)
	rec := chunkRecord{Member: info.Member}
	for _, a := range added {
		nm := fromOps[a]
		switch a.Container {
		case "entries":
			var e crdt.Entry
			var err error
			ok := true
			if nm != nil && !nm.Nested {
				e, err = crdt.EntryFromFields(nm.Fields)
			} else {
				e, ok, err = crdt.LookupEntry(d, a.Key)
			}
			if err != nil || !ok {
				return nil, s.reject(ruleOr(err, "entry %q cannot be read", a.Key))
			}
			if err := checkEntry(e, a.Key); err != nil {
				return nil, s.reject(err)
			}
			prev, ok, err := s.index.Entry(e.ID)
			if err != nil {
				return nil, err
			}
			if ok && prev.Doc != doc {
				return nil, s.reject(&crdt.RuleError{Rule: crdt.RuleImmutable, Message: fmt.Sprintf("entry id %s is already used in another ledger segment", e.ID)})
			}
			rec.Entries = append(rec.Entries, e)
		case "credits":
			var c crdt.Credit
			var err error
			ok := true
			if nm != nil && !nm.Nested {
				c, err = crdt.CreditFromFields(nm.Fields)
			} else {
				c, ok, err = crdt.LookupCredit(d, a.Key)
			}
			if err != nil || !ok {
				return nil, s.reject(ruleOr(err, "credit %q cannot be read", a.Key))
			}
			if err := c.Validate(); err != nil {
				return nil, s.reject(err)
			}
			if c.ID != a.Key {
				return nil, s.reject(&crdt.RuleError{Rule: crdt.RuleSchema, Message: fmt.Sprintf("credit %q has id %q; the key and the id must match", a.Key, c.ID)})
			}
			prev, ok, err := s.index.Credit(c.ID)
			if err != nil {
				return nil, err
			}
			if ok && prev.Doc != doc {
				return nil, s.reject(&crdt.RuleError{Rule: crdt.RuleImmutable, Message: fmt.Sprintf("credit id %s is already used in another ledger", c.ID)})
			}
			rec.Credits = append(rec.Credits, c)
		}
	}
	if len(rec.Entries) == 0 && len(rec.Credits) == 0 {
		return nil, nil
	}
	return s.record(doc, rec), nil
}

// checkReloads proves the document still loads from its saved form. The
// charter draft is edited freely by every member, so its operations cannot
// be checked one by one as ledger operations are; a change automerge
// accepts but cannot load again (an operation on a missing object, say)
// is refused here instead. Drafts are small, so the round trip is cheap.
func checkReloads(d *automerge.Doc) error {
	// Save a fork, not d: Save moves d's incremental-save point, and the
	// engine's SaveIncremental after Accept would then store nothing.
	f, err := d.Fork()
	if err != nil {
		return fmt.Errorf("fork charter draft: %w", err)
	}
	re, err := automerge.Load(f.Save())
	if err == nil && crdt.SameHeads(re.Heads(), d.Heads()) {
		return nil
	}
	return &crdt.RuleError{Rule: crdt.RuleSchema, Message: "the change leaves a charter draft that cannot be loaded again"}
}

func checkEntry(e crdt.Entry, key string) error {
	if err := e.Validate(); err != nil {
		return err
	}
	if e.ID != key {
		return &crdt.RuleError{Rule: crdt.RuleSchema, Message: fmt.Sprintf("entry %q has id %q; the key and the id must match", key, e.ID)}
	}
	return nil
}

func checkBallots(d *automerge.Doc, added []crdt.Added) error {
	b, err := crdt.ReadBallots(d)
	if err != nil {
		return err
	}
	for _, a := range added {
		switch a.Container {
		case "proposals":
			if err := b.Proposals[a.Key].Validate(); err != nil {
				return err
			}
		case "votes":
			if err := b.Votes[a.Key].Validate(); err != nil {
				return err
			}
		}
	}
	return nil
}

func ruleOr(err error, format string, args ...any) error {
	var re *crdt.RuleError
	if errors.As(err, &re) {
		return re
	}
	return &crdt.RuleError{Rule: crdt.RuleSchema, Message: fmt.Sprintf(format, args...)}
}

// Snapshot describes a whole ledger segment, so a compacted snapshot can
// rebuild the index on its own.
func (s *Policy) Snapshot(doc string, d *automerge.Doc) ([]byte, error) {
	info, _ := s.docInfo(doc)
	if info.Kind != crdt.KindLedger {
		return nil, nil
	}
	entries, credits, err := crdt.ReadLedger(d)
	if err != nil {
		return nil, err
	}
	keys, err := s.index.Keys(entries, credits)
	if err != nil {
		return nil, err
	}
	return mustJSON(chunkRecord{Member: info.Member, Entries: entries, Credits: credits, Keys: keys}), nil
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
