package crdt

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/gowebpki/jcs"
)

// GenesisHash is the prev_hash of the first audit entry: 64 zeros.
var GenesisHash = strings.Repeat("0", 64)

// Audit entry kinds the server writes.
const (
	AuditCircleCreated  = "circle.created"
	AuditMemberEnrolled = "member.enrolled"
	AuditDeviceEnrolled = "device.enrolled"
	AuditDeviceRevoked  = "device.revoked"
	AuditResetExecuted  = "reset.executed"
	// A transfer the mutual-credit view flagged over_limit when the server
	// accepted it: {credit, author, to, amount, at, balance, limit}.
	AuditCreditOverLimit = "credit.over_limit"
)

// AuditEntry is one entry of the circle's hash-chained audit log
// (API.md "Audit"). Hash is the hex SHA-256 of PrevHash followed by the
// RFC 8785 canonical JSON of the entry without its hash.
type AuditEntry struct {
	Seq      int64           `json:"seq"`
	At       time.Time       `json:"at"`
	Kind     string          `json:"kind"`
	Data     json.RawMessage `json:"data"`
	PrevHash string          `json:"prev_hash"`
	Hash     string          `json:"hash"`
}

// ErrAuditBroken is wrapped by VerifyAudit for a chain that does not hold.
var ErrAuditBroken = errors.New("audit log does not verify")

// AuditHash computes an entry's hash from its other fields.
func AuditHash(e AuditEntry) (string, error) {
	body := struct {
		Seq      int64           `json:"seq"`
		At       string          `json:"at"`
		Kind     string          `json:"kind"`
		Data     json.RawMessage `json:"data"`
		PrevHash string          `json:"prev_hash"`
	}{e.Seq, formatTime(e.At), e.Kind, e.Data, e.PrevHash}
	if len(body.Data) == 0 {
		body.Data = json.RawMessage("{}")
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return "", fmt.Errorf("audit entry %d: %w", e.Seq, err)
	}
	canon, err := jcs.Transform(raw)
	if err != nil {
		return "", fmt.Errorf("audit entry %d: canonical JSON: %w", e.Seq, err)
	}
	h := sha256.New()
	h.Write([]byte(e.PrevHash))
	h.Write(canon)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// NewAuditEntry makes the entry that follows prev (nil for the first),
// with its hash. data is marshalled to JSON.
func NewAuditEntry(prev *AuditEntry, at time.Time, kind string, data any) (AuditEntry, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return AuditEntry{}, fmt.Errorf("audit data: %w", err)
	}
	e := AuditEntry{Seq: 1, At: at.UTC().Truncate(time.Millisecond), Kind: kind, Data: raw, PrevHash: GenesisHash}
	if prev != nil {
		e.Seq, e.PrevHash = prev.Seq+1, prev.Hash
	}
	if e.Hash, err = AuditHash(e); err != nil {
		return AuditEntry{}, err
	}
	return e, nil
}

// VerifyAudit recomputes the chain: sequence numbers from 1 without gaps,
// each prev_hash the hash before it, each hash its content's. The error
// names the first entry that does not hold.
func VerifyAudit(entries []AuditEntry) error {
	prev := GenesisHash
	for i, e := range entries {
		if e.Seq != int64(i+1) {
			return fmt.Errorf("%w: entry %d has seq %d", ErrAuditBroken, i+1, e.Seq)
		}
		if e.PrevHash != prev {
			return fmt.Errorf("%w: entry %d (%s): prev_hash %.12s… is not the hash of entry %d", ErrAuditBroken, e.Seq, e.Kind, e.PrevHash, e.Seq-1)
		}
		h, err := AuditHash(e)
		if err != nil {
			return fmt.Errorf("%w: entry %d: %v", ErrAuditBroken, e.Seq, err)
		}
		if h != e.Hash {
			return fmt.Errorf("%w: entry %d (%s): content does not match its hash", ErrAuditBroken, e.Seq, e.Kind)
		}
		prev = e.Hash
	}
	return nil
}

// AppendAudit writes e at the end of the audit document's "entries"
// list, its data as a JSON string. It does not commit.
func AppendAudit(doc *automerge.Doc, e AuditEntry) error {
	l, err := doc.Path("entries").Get()
	if err != nil || l.Kind() != automerge.KindList {
		return fmt.Errorf("audit document: %w", ErrNotInitialized)
	}
	return l.List().Append(map[string]any{
		"seq":       e.Seq,
		"at":        formatTime(e.At),
		"kind":      e.Kind,
		"data":      string(e.Data),
		"prev_hash": e.PrevHash,
		"hash":      e.Hash,
	})
}

// ReadAudit reads the audit entries with seq > after, in order. doc may be
// any segment of the log (crdt/archives.go): its entries start at its
// first_seq.
func ReadAudit(doc *automerge.Doc, after int64) ([]AuditEntry, error) {
	return ReadAuditRange(doc, after, -1)
}

// ReadAuditRange reads at most limit (< 0: all) audit entries of the
// segment doc with seq > after, in order, reading no others.
func ReadAuditRange(doc *automerge.Doc, after int64, limit int) ([]AuditEntry, error) {
	v, err := doc.Path("entries").Get()
	if err != nil || v.Kind() != automerge.KindList {
		return nil, fmt.Errorf("audit document: %w", ErrNotInitialized)
	}
	first, _, err := auditBase(doc)
	if err != nil {
		return nil, err
	}
	l := v.List()
	n := l.Len()
	start := int(max(after-(first-1), 0))
	end := n
	if limit >= 0 && start+limit < n {
		end = start + limit
	}
	out := make([]AuditEntry, 0, max(end-start, 0))
	for i := start; i < end; i++ {
		item, err := l.Get(i)
		if err != nil {
			return nil, err
		}
		e, err := readAuditEntry(item)
		if err != nil {
			return nil, fmt.Errorf("audit entry at %d: %w", int64(i)+first, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// FindAudit reports whether an entry recorded at or after since matches,
// reading the log from its end back to since: recent entries cost little
// however long the log is. Entries' times are kept to the millisecond and
// a clock may step back, so it reads a minute further back than since.
func FindAudit(doc *automerge.Doc, since time.Time, match func(AuditEntry) bool) (bool, error) {
	found, _, err := FindAuditSegment(doc, since, match)
	return found, err
}

// FindAuditSegment is FindAudit on one segment of the log; done says the
// search ended in it (an entry before since, or a match), so the segments
// before it need not be read.
func FindAuditSegment(doc *automerge.Doc, since time.Time, match func(AuditEntry) bool) (found, done bool, err error) {
	since = since.Add(-time.Minute)
	v, err := doc.Path("entries").Get()
	if err != nil || v.Kind() != automerge.KindList {
		return false, true, fmt.Errorf("audit document: %w", ErrNotInitialized)
	}
	l := v.List()
	for i := l.Len() - 1; i >= 0; i-- {
		item, err := l.Get(i)
		if err != nil {
			return false, true, err
		}
		e, err := readAuditEntry(item)
		if err != nil {
			return false, true, err
		}
		if e.At.Before(since) {
			return false, true, nil
		}
		if match(e) {
			return true, true, nil
		}
	}
	return false, false, nil
}

// LastAudit returns the last audit entry, or nil for an empty log. For a
// segment that holds no entry yet it returns the entry before it as far
// as the chain needs (its seq and hash), so NewAuditEntry continues the
// chain across segments.
func LastAudit(doc *automerge.Doc) (*AuditEntry, error) {
	v, err := doc.Path("entries").Get()
	if err != nil || v.Kind() != automerge.KindList {
		return nil, fmt.Errorf("audit document: %w", ErrNotInitialized)
	}
	l := v.List()
	if l.Len() == 0 {
		first, prev, err := auditBase(doc)
		if err != nil || first == 1 {
			return nil, err
		}
		return &AuditEntry{Seq: first - 1, Hash: prev}, nil
	}
	item, err := l.Get(l.Len() - 1)
	if err != nil {
		return nil, err
	}
	e, err := readAuditEntry(item)
	if err != nil {
		return nil, err
	}
	return &e, nil
}

func readAuditEntry(v *automerge.Value) (AuditEntry, error) {
	o, err := readObject(v, "audit entry")
	if err != nil {
		return AuditEntry{}, err
	}
	e := AuditEntry{
		Seq:      o.integer("seq", true),
		At:       o.time("at", true),
		Kind:     o.str("kind", true, 64),
		PrevHash: o.str("prev_hash", true, 64),
		Hash:     o.str("hash", true, 64),
	}
	data := o.str("data", true, 1<<20)
	if err := o.done("seq", "at", "kind", "data", "prev_hash", "hash"); err != nil {
		return AuditEntry{}, err
	}
	if !json.Valid([]byte(data)) {
		return AuditEntry{}, schemaErr("audit entry %d: data is not JSON", e.Seq)
	}
	e.Data = json.RawMessage(data)
	return e, nil
}

// VerifyAuditResets re-verifies every executed hard reset in the log
// against the roster's public keys: each statement must be signed by the
// device it names, for this circle and for the epoch the reset ended, and
// come from the member the entry lists, with no member twice. The error
// names the first entry that does not hold.
func VerifyAuditResets(entries []AuditEntry, r *Roster, circle string) error {
	for _, e := range entries {
		if e.Kind != AuditResetExecuted {
			continue
		}
		var data struct {
			Epoch      int64    `json:"epoch"`
			Members    []string `json:"members"`
			Statements []string `json:"statements"`
		}
		if err := json.Unmarshal(e.Data, &data); err != nil || len(data.Members) != len(data.Statements) || len(data.Statements) == 0 {
			return fmt.Errorf("%w: entry %d (%s): the reset's members and statements do not match", ErrAuditBroken, e.Seq, e.Kind)
		}
		seen := map[string]bool{}
		for i, st := range data.Statements {
			sig, err := ParseReset(st, circle, r)
			switch {
			case err != nil:
				return fmt.Errorf("%w: entry %d (%s): statement %d does not verify against the roster: %v", ErrAuditBroken, e.Seq, e.Kind, i+1, err)
			case sig.Member != data.Members[i]:
				return fmt.Errorf("%w: entry %d (%s): statement %d is signed by %s, not %s", ErrAuditBroken, e.Seq, e.Kind, i+1, sig.Member, data.Members[i])
			case sig.Epoch != data.Epoch:
				return fmt.Errorf("%w: entry %d (%s): statement %d is for epoch %d, not %d", ErrAuditBroken, e.Seq, e.Kind, i+1, sig.Epoch, data.Epoch)
			case seen[sig.Member]:
				return fmt.Errorf("%w: entry %d (%s): member %s signed twice", ErrAuditBroken, e.Seq, e.Kind, sig.Member)
			}
			seen[sig.Member] = true
		}
	}
	return nil
}
