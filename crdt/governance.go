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

// The governance document keeps the pending reset signatures of the
// current epoch, one per member, as the server verified them when they
// arrived:
//
//	"pending_resets": { "<member id>": {
//	    "jti", "device", "epoch", "iat", "reason"?, "statement" } }
//
// Keyed by the member the signature verified as — never by anything the
// statement's author chooses, such as its jti — so one member can neither
// displace nor shadow another's signature, and a member's duplicates or
// later statements take no more room. Recounting reads these records and
// needs no cryptography: the statement was verified once, on arrival.
//
// Earlier versions kept statements by jti under "reset_signatures"; that
// map is still read by PendingResetStatements (never written) and cleared
// with the epoch.
const (
	pendingResets       = "pending_resets"
	legacyPendingResets = "reset_signatures"
)

var pendingResetFields = []string{"jti", "device", "epoch", "iat", "reason", "statement"}

// AddResetStatement keeps sig, a signature ParseReset verified, as its
// member's pending signature, without judging it against a clock (the
// caller did, or AdmitReset does). Per member one is kept: the same
// statement again, or one signed no later than the kept one for the same
// epoch, writes nothing; a later one replaces it. It does not commit.
//
// Prefer AdmitReset, which also judges the epoch and the window and keeps
// a member's first live signature instead of the latest, so that a
// member cannot make the server write once per statement.
func AddResetStatement(doc *automerge.Doc, sig ResetSignature) error {
	old, ok, err := pendingReset(doc, sig.Member)
	if err != nil {
		return err
	}
	if ok && old.Epoch == sig.Epoch && !sig.IssuedAt.After(old.IssuedAt) {
		return nil
	}
	return putPendingReset(doc, sig)
}

// AdmitReset judges sig, a signature ParseReset verified, against the
// governance document's epoch and the clock, and keeps it as its member's
// pending signature. It refuses, with a *RuleError of rule "reset", a
// statement for another epoch, signed in the future (beyond ResetSkew) or
// before the reset window, from a member who is not active or a device
// that is revoked. A signer who joined less than reset.min_membership ago
// is kept: their signature counts once they pass it, within the window.
//
// One signature per member and epoch is kept — the first that arrives. A
// later one from the same member (a duplicate, or a new statement) is
// ignored while the kept one is live (for this epoch, within the window,
// its device not revoked), and replaces it only once it is not. So one
// member can never displace or shadow another's signature, and a member
// who sends many statements makes the server write at most once per
// window. It reports whether it wrote; it does not commit.
func AdmitReset(doc *automerge.Doc, sig ResetSignature, r *Roster, p Policies, now time.Time) (bool, error) {
	epoch, err := ReadEpoch(doc)
	if err != nil {
		return false, err
	}
	if err := resetLive(sig, int64(epoch), r, p, now); err != nil {
		return false, err
	}
	old, ok, err := pendingReset(doc, sig.Member)
	if err != nil {
		return false, err
	}
	if ok && resetLive(old, int64(epoch), r, p, now) == nil {
		return false, nil
	}
	return true, putPendingReset(doc, sig)
}

// resetLive says whether sig can count toward a reset of epoch now or
// later within its window: CheckReset without reset.min_membership.
func resetLive(sig ResetSignature, epoch int64, r *Roster, p Policies, now time.Time) error {
	return checkReset(sig, epoch, r, p.Duration("reset.window"), 0, now)
}

func putPendingReset(doc *automerge.Doc, sig ResetSignature) error {
	if !isID(sig.Member) || !isID(sig.Device) || !isID(sig.JTI) || len(sig.Statement) > MaxStatementLen || len(sig.Reason) > MaxNoteLen {
		return resetErr("the signature is not one ParseReset returned")
	}
	all, err := ensureMap(doc, pendingResets)
	if err != nil {
		return err
	}
	m := automerge.NewMap()
	if err := all.Set(sig.Member, m); err != nil {
		return err
	}
	return setAll(m, []kv{
		{"jti", sig.JTI}, {"device", sig.Device}, {"epoch", sig.Epoch}, {"iat", formatTime(sig.IssuedAt)},
		{"reason", sig.Reason}, {"statement", sig.Statement},
	})
}

// pendingReset reads member's pending signature.
func pendingReset(doc *automerge.Doc, member string) (ResetSignature, bool, error) {
	v, err := doc.Path(pendingResets, member).Get()
	if err != nil || v.IsVoid() {
		return ResetSignature{}, false, err
	}
	sig, err := readPendingReset(member, v)
	return sig, err == nil, err
}

func readPendingReset(member string, v *automerge.Value) (ResetSignature, error) {
	o, err := readObject(v, fmt.Sprintf("pending reset of %q", truncate(member, maxIDLen)))
	if err != nil {
		return ResetSignature{}, err
	}
	sig := ResetSignature{
		Member: member, JTI: o.str("jti", true, maxIDLen), Device: o.str("device", true, maxIDLen),
		Epoch: o.integer("epoch", true), IssuedAt: o.time("iat", true), Reason: o.str("reason", false, MaxNoteLen),
		Statement: o.str("statement", true, MaxStatementLen),
	}
	return sig, o.done(pendingResetFields...)
}

// PendingResets returns the pending reset signatures, one per member,
// sorted by member, as they were verified on arrival: counting them with
// CountReset needs no cryptography. It returns a *RuleError of rule
// "schema" if a record does not read.
func PendingResets(doc *automerge.Doc) ([]ResetSignature, error) {
	v, err := doc.Path(pendingResets).Get()
	if err != nil || v.IsVoid() {
		return nil, err
	}
	if v.Kind() != automerge.KindMap {
		return nil, schemaErr("governance: %s must be a map", pendingResets)
	}
	vals, err := v.Map().Values()
	if err != nil {
		return nil, err
	}
	out := make([]ResetSignature, 0, len(vals))
	for _, member := range sortedKeys(vals) {
		sig, err := readPendingReset(member, vals[member])
		if err != nil {
			return nil, err
		}
		out = append(out, sig)
	}
	return out, nil
}

// PendingResetStatements returns the pending reset statements, verbatim:
// one per member, and those an earlier version kept by jti. Callers that
// count should use PendingResets, which needs no re-verification.
func PendingResetStatements(doc *automerge.Doc) ([]string, error) {
	sigs, err := PendingResets(doc)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(sigs))
	for _, s := range sigs {
		out = append(out, s.Statement)
	}
	v, err := doc.Path(legacyPendingResets).Get()
	if err != nil || v.Kind() != automerge.KindMap {
		return out, err
	}
	vals, err := v.Map().Values()
	if err != nil {
		return nil, err
	}
	for _, k := range sortedKeys(vals) {
		if str, ok, _ := valueString(vals[k], MaxStatementLen); ok {
			out = append(out, str)
		}
	}
	return out, nil
}

// MigratePendingResets moves the statements an earlier version kept by
// jti (under "reset_signatures") into the per-member pending signatures:
// each is verified (ParseReset) and admitted (AdmitReset) once, then the
// old map is removed. A statement that does not verify or does not count
// any more is dropped. The server calls it once, at start, under the
// governance document's lock. It returns how many it kept; it does not
// commit.
func MigratePendingResets(doc *automerge.Doc, circle string, r *Roster, p Policies, now time.Time) (int, error) {
	v, err := doc.Path(legacyPendingResets).Get()
	if err != nil || v.IsVoid() {
		return 0, err
	}
	kept := 0
	if v.Kind() == automerge.KindMap {
		vals, err := v.Map().Values()
		if err != nil {
			return 0, err
		}
		for _, k := range sortedKeys(vals) {
			st, ok, _ := valueString(vals[k], MaxStatementLen)
			if !ok {
				continue
			}
			sig, err := ParseReset(st, circle, r)
			if err != nil {
				continue
			}
			if wrote, err := AdmitReset(doc, sig, r, p, now); err == nil && wrote {
				kept++
			}
		}
	}
	return kept, doc.RootMap().Delete(legacyPendingResets)
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
	if v, err := doc.Path(legacyPendingResets).Get(); err == nil && !v.IsVoid() {
		if err := doc.RootMap().Delete(legacyPendingResets); err != nil {
			return err
		}
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
