package crdt

import (
	"fmt"
	"time"

	"github.com/automerge/automerge-go"
)

// ResetRecord is an executed hard reset as the governance document keeps
// it: the epoch it ended and the signatures that triggered it.
type ResetRecord struct {
	Epoch      int64            `json:"epoch"` // the epoch that ended
	At         time.Time        `json:"at"`
	Signatures []ResetSignature `json:"signatures"`
}

const pendingResets = "reset_signatures"

// AddResetStatement keeps a reset statement in the governance document's
// pending signatures (by jti) until the epoch ends. It does not commit.
func AddResetStatement(doc *automerge.Doc, sig ResetSignature) error {
	m, err := ensureMap(doc, pendingResets)
	if err != nil {
		return err
	}
	return m.Set(sig.JTI, sig.Statement)
}

// PendingResetStatements returns the pending reset statements.
func PendingResetStatements(doc *automerge.Doc) ([]string, error) {
	v, err := doc.Path(pendingResets).Get()
	if err != nil {
		return nil, err
	}
	if v.IsVoid() {
		return nil, nil
	}
	if v.Kind() != automerge.KindMap {
		return nil, schemaErr("governance: %s must be a map", pendingResets)
	}
	vals, err := v.Map().Values()
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(vals))
	for _, s := range vals {
		if str, ok, _ := valueString(s, MaxStatementLen); ok {
			out = append(out, str)
		}
	}
	return out, nil
}

// RecordReset ends the current epoch: it appends rec to "resets", moves
// "epoch" to rec.Epoch+1 and clears the pending signatures. It does not
// commit.
func RecordReset(doc *automerge.Doc, rec ResetRecord) error {
	v, err := doc.Path("resets").Get()
	if err != nil || v.Kind() != automerge.KindList {
		return fmt.Errorf("governance resets: %w", ErrNotInitialized)
	}
	sigs := make([]any, len(rec.Signatures))
	for i, s := range rec.Signatures {
		sigs[i] = map[string]any{
			"jti": s.JTI, "member": s.Member, "device": s.Device, "reason": s.Reason,
			"iat": formatTime(s.IssuedAt), "statement": s.Statement,
		}
	}
	if err := v.List().Append(map[string]any{"epoch": rec.Epoch, "at": formatTime(rec.At), "signatures": sigs}); err != nil {
		return err
	}
	if err := doc.RootMap().Set("epoch", rec.Epoch+1); err != nil {
		return err
	}
	return doc.RootMap().Set(pendingResets, automerge.NewMap())
}

// ReadResets returns the executed resets, oldest first.
func ReadResets(doc *automerge.Doc) ([]ResetRecord, error) {
	v, err := doc.Path("resets").Get()
	if err != nil || v.Kind() != automerge.KindList {
		return nil, fmt.Errorf("governance resets: %w", ErrNotInitialized)
	}
	items, err := v.List().Values()
	if err != nil {
		return nil, err
	}
	out := make([]ResetRecord, 0, len(items))
	for i, it := range items {
		o, err := readObject(it, fmt.Sprintf("reset %d", i+1))
		if err != nil {
			return nil, err
		}
		rec := ResetRecord{Epoch: o.integer("epoch", true), At: o.time("at", true)}
		for j, sv := range o.list("signatures", true, 1000) {
			so, err := readObject(sv, fmt.Sprintf("reset %d signature %d", i+1, j+1))
			if err != nil {
				return nil, err
			}
			rec.Signatures = append(rec.Signatures, ResetSignature{
				JTI: so.str("jti", true, maxIDLen), Member: so.str("member", true, maxIDLen),
				Device: so.str("device", true, maxIDLen), Reason: so.str("reason", false, MaxNoteLen),
				IssuedAt: so.time("iat", true), Statement: so.str("statement", true, MaxStatementLen), Epoch: rec.Epoch,
			})
			if err := so.done(); err != nil {
				return nil, err
			}
		}
		if err := o.done(); err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// ensureMap returns the root map under key, creating it if missing.
func ensureMap(doc *automerge.Doc, key string) (*automerge.Map, error) {
	v, err := doc.Path(key).Get()
	if err != nil {
		return nil, err
	}
	if v.IsVoid() {
		if err := doc.RootMap().Set(key, automerge.NewMap()); err != nil {
			return nil, err
		}
		return doc.Path(key).Map(), nil
	}
	if v.Kind() != automerge.KindMap {
		return nil, schemaErr("%s must be a map", key)
	}
	return v.Map(), nil
}
