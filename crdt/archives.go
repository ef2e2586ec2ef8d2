package crdt

import (
	"fmt"

	"github.com/automerge/automerge-go"
)

// Documents that grow with the circle's life — the governance document
// and the audit log — are bounded by design, as a member's ledger is: the
// server moves on to a new document when the live one passes a bound, and
// the old one stays, unchanged for ever, as an archive that members read
// and sync (the write rules refuse every device's change to it, as to any
// server-written document). The roster names them all under "archives":
//
//	"archives": {
//	    "governance": ["<doc id>", ...],                 // oldest first; the last is the live one
//	    "audit": [{"doc": "<doc id>", "first_seq": n}, ...] // oldest first; the last is the live one
//	}
//
// A roster without "archives" (a circle that never rotated) has one of
// each: the documents created with the circle.
//
// An audit segment after the first starts with
//
//	{ "entries": [...], "first_seq": n, "prev_hash": "<hash of entry n-1>" }
//
// so the hash chain runs on across segments unchanged: entry n's
// prev_hash is the last hash of the segment before.

// MaxArchives bounds each list of the roster's archives (a circle that
// decides ten proposals a day fills a governance archive every few weeks;
// 100,000 is centuries).
const MaxArchives = 100000

// AuditSegment is one document of the audit log and the seq of its first
// entry.
type AuditSegment struct {
	Doc      DocID
	FirstSeq int64
}

// Archives lists the governance and audit documents, oldest first; the last
// of each is the live one. Empty lists mean the circle never rotated.
type Archives struct {
	Governance []DocID
	Audit      []AuditSegment
}

// ReadArchives reads the roster's "archives". A roster without them gives
// empty lists.
func ReadArchives(doc *automerge.Doc) (Archives, error) {
	var a Archives
	v, err := doc.Path("archives").Get()
	if err != nil || v.IsVoid() {
		return a, err
	}
	o, err := readObject(v, "archives")
	if err != nil {
		return a, err
	}
	for _, s := range o.strings("governance", false, MaxArchives, maxIDLen) {
		a.Governance = append(a.Governance, DocID(s))
	}
	for i, item := range o.list("audit", false, MaxArchives) {
		so, err := readObject(item, fmt.Sprintf("archives.audit[%d]", i))
		if err != nil {
			return a, err
		}
		seg := AuditSegment{Doc: DocID(so.str("doc", true, maxIDLen)), FirstSeq: so.integer("first_seq", true)}
		if err := so.done("doc", "first_seq"); err != nil {
			return a, err
		}
		if seg.FirstSeq < 1 {
			return a, schemaErr("archives.audit[%d]: first_seq must be at least 1", i)
		}
		a.Audit = append(a.Audit, seg)
	}
	return a, o.done("governance", "audit")
}

// archivesMap returns the roster's "archives" map, creating it with the
// circle's first documents when missing.
func archivesMap(doc *automerge.Doc, firstGov, firstAudit DocID) (*automerge.Map, error) {
	v, err := doc.Path("archives").Get()
	if err != nil {
		return nil, err
	}
	if v.IsVoid() {
		m := automerge.NewMap()
		if err := doc.RootMap().Set("archives", m); err != nil {
			return nil, err
		}
		a := doc.Path("archives").Map()
		if err := a.Set("governance", []any{string(firstGov)}); err != nil {
			return nil, err
		}
		if err := a.Set("audit", []any{map[string]any{"doc": string(firstAudit), "first_seq": int64(1)}}); err != nil {
			return nil, err
		}
		return a, nil
	}
	if v.Kind() != automerge.KindMap {
		return nil, schemaErr("roster: archives must be a map")
	}
	return v.Map(), nil
}

// AddGovernanceDoc makes next the live governance document in the roster's
// archives (the one before it becomes an archive). first are the circle's
// first documents, written when the roster has no archives yet. It does
// not commit.
func AddGovernanceDoc(doc *automerge.Doc, next DocID, first Archives) error {
	a, err := archivesMap(doc, first.Governance[0], first.Audit[0].Doc)
	if err != nil {
		return err
	}
	l, err := a.Get("governance")
	if err != nil || l.Kind() != automerge.KindList {
		return schemaErr("roster: archives.governance must be a list")
	}
	return l.List().Append(string(next))
}

// AddAuditSegment makes next, whose first entry will be firstSeq, the live
// audit segment in the roster's archives. It does not commit.
func AddAuditSegment(doc *automerge.Doc, next DocID, firstSeq int64, first Archives) error {
	a, err := archivesMap(doc, first.Governance[0], first.Audit[0].Doc)
	if err != nil {
		return err
	}
	l, err := a.Get("audit")
	if err != nil || l.Kind() != automerge.KindList {
		return schemaErr("roster: archives.audit must be a list")
	}
	return l.List().Append(map[string]any{"doc": string(next), "first_seq": firstSeq})
}

// InitAuditSegment writes the root of an audit segment whose first entry
// will be firstSeq, following the entry whose hash is prevHash. It does
// not commit.
func InitAuditSegment(doc *automerge.Doc, firstSeq int64, prevHash string) error {
	if firstSeq < 1 || len(prevHash) != 64 {
		return fmt.Errorf("audit segment: first_seq %d, prev_hash %q", firstSeq, prevHash)
	}
	for _, p := range []kv{{"entries", automerge.NewList()}, {"first_seq", firstSeq}, {"prev_hash", prevHash}} {
		if err := doc.RootMap().Set(p.key, p.val); err != nil {
			return fmt.Errorf("init audit segment %s: %w", p.key, err)
		}
	}
	return nil
}

// auditBase returns the seq of a segment's first entry and the hash its
// prev_hash must be: 1 and GenesisHash for the circle's first segment.
func auditBase(doc *automerge.Doc) (int64, string, error) {
	o, err := rootObject(doc, "audit")
	if err != nil {
		return 0, "", err
	}
	first, prev := o.integer("first_seq", false), o.str("prev_hash", false, 64)
	if o.err != nil {
		return 0, "", o.err
	}
	if first == 0 {
		return 1, GenesisHash, nil
	}
	return first, prev, nil
}

// AuditLen is the number of entries an audit segment holds.
func AuditLen(doc *automerge.Doc) (int, error) {
	v, err := doc.Path("entries").Get()
	if err != nil || v.Kind() != automerge.KindList {
		return 0, fmt.Errorf("audit document: %w", ErrNotInitialized)
	}
	return v.List().Len(), nil
}

// LiveGovernance reads from the governance document doc what stays live
// when it is archived: every root value as it is (epoch, past resets,
// pending signatures and votes, draws, the authors' indexes), and of
// "proposals" only those keep says stay. It returns them as Go values for
// WriteLiveGovernance, the proposals left behind with their status, and
// how many proposals doc holds.
func LiveGovernance(doc *automerge.Doc, keep func(ProposalState) bool) (map[string]any, map[string]string, int, error) {
	vals, err := doc.RootMap().Values()
	if err != nil {
		return nil, nil, 0, err
	}
	live := make(map[string]any, len(vals))
	for key, v := range vals {
		if key == "proposals" {
			continue
		}
		if live[key], err = goValue(v); err != nil {
			return nil, nil, 0, fmt.Errorf("governance %s: %w", key, err)
		}
	}
	pv, ok := vals["proposals"]
	if !ok || pv.Kind() != automerge.KindMap {
		return nil, nil, 0, fmt.Errorf("governance proposals: %w", ErrNotInitialized)
	}
	props, err := pv.Map().Values()
	if err != nil {
		return nil, nil, 0, err
	}
	kept, left := map[string]any{}, map[string]string{}
	for id, v := range props {
		st, err := readProposalState(v)
		if err != nil {
			return nil, nil, 0, err
		}
		if !keep(st) {
			left[id] = st.Status
			continue
		}
		if kept[id], err = goValue(v); err != nil {
			return nil, nil, 0, fmt.Errorf("proposal %s: %w", id, err)
		}
	}
	live["proposals"] = kept
	return live, left, len(props), nil
}

// WriteLiveGovernance writes what LiveGovernance read into a new
// governance document. It does not commit.
func WriteLiveGovernance(doc *automerge.Doc, live map[string]any) error {
	for _, k := range sortedKeys(live) {
		if err := doc.RootMap().Set(k, live[k]); err != nil {
			return fmt.Errorf("write governance %s: %w", k, err)
		}
	}
	return nil
}

// goValue turns a value of a server-written document into Go values that
// automerge writes back the same: maps, lists and scalars.
func goValue(v *automerge.Value) (any, error) {
	switch v.Kind() {
	case automerge.KindMap:
		vals, err := v.Map().Values()
		if err != nil {
			return nil, err
		}
		out := make(map[string]any, len(vals))
		for k, x := range vals {
			if out[k], err = goValue(x); err != nil {
				return nil, err
			}
		}
		return out, nil
	case automerge.KindList:
		items, err := v.List().Values()
		if err != nil {
			return nil, err
		}
		out := make([]any, len(items))
		for i, x := range items {
			if out[i], err = goValue(x); err != nil {
				return nil, err
			}
		}
		return out, nil
	case automerge.KindStr:
		return v.Str(), nil
	case automerge.KindInt64:
		return v.Int64(), nil
	case automerge.KindUint64:
		return v.Uint64(), nil
	case automerge.KindFloat64:
		return v.Float64(), nil
	case automerge.KindBool:
		return v.Bool(), nil
	case automerge.KindTime:
		return v.Time(), nil
	case automerge.KindNull:
		return nil, nil
	case automerge.KindText:
		s, err := v.Text().Get()
		return s, err
	}
	return nil, fmt.Errorf("cannot copy a value of kind %v", v.Kind())
}
