package client

import (
	"errors"
	"fmt"

	"github.com/circles-coop/circles/crdt"
)

// ErrNotSynced is returned for a document this device has not fetched yet.
var ErrNotSynced = errors.New("not synced yet; run sync first")

// AuditLog reads the circle's audit log from this device's copy (no
// network) and verifies it: the hash chain, every executed reset's
// statements against the public keys in this device's copy of the roster,
// and every random draw (the seed revealed is the one committed, the
// recorded holder is the one the seed and the eligible members pick, and
// those members are the ones active then), and every commit–reveal draw
// (crdt.VerifyAuditRounds: signed commitments, reveals matching them,
// the server's value matching its commitment, the seed and the picks).
// It returns the entries with the verification error, if any:
// crdt.ErrAuditBroken naming the first entry that does not hold.
func (d *Device) AuditLog() ([]crdt.AuditEntry, error) {
	info := d.Info()
	if info.Circle == nil || info.Circle.Docs["audit"] == "" {
		return nil, fmt.Errorf("audit log: %w", ErrNotSynced)
	}
	// The log is its archived segments' entries in order, then the live
	// segment's; the chain runs across them, so a segment missing or out
	// of order fails verification.
	var ids []string
	if info.Circle.Archives != nil {
		for _, seg := range info.Circle.Archives.Audit {
			ids = append(ids, seg.Doc)
		}
	}
	ids = append(ids, info.Circle.Docs["audit"])
	var entries []crdt.AuditEntry
	for _, id := range ids {
		doc, found, err := d.store.loadDoc(id)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, fmt.Errorf("audit log segment %s: %w", id, ErrNotSynced)
		}
		es, err := crdt.ReadAudit(doc, 0)
		if err != nil {
			return nil, fmt.Errorf("audit log segment %s: %w", id, err)
		}
		entries = append(entries, es...)
	}
	if err := crdt.VerifyAudit(entries); err != nil {
		return entries, err
	}
	rosterDoc, found, err := d.store.loadDoc(info.Circle.Docs["roster"])
	if err != nil {
		return entries, err
	}
	if !found {
		return entries, fmt.Errorf("audit log: the roster: %w", ErrNotSynced)
	}
	roster, err := crdt.ReadRoster(rosterDoc)
	if err != nil {
		return entries, fmt.Errorf("audit log: read roster: %w", err)
	}
	if err := crdt.VerifyAuditResets(entries, roster, info.CircleID); err != nil {
		return entries, err
	}
	if err := crdt.VerifyAuditDraws(entries, roster); err != nil { // roles' holders, meetings' facilitators
		return entries, err
	}
	return entries, crdt.VerifyAuditRounds(entries, roster, info.CircleID)
}
