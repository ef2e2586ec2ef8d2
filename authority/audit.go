package authority

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/wire"
)

// Audit is the circle's hash-chained audit log (crdt/audit.go): every
// feature records what it decided through Append; members read it with
// Entries (GET /v1/audit) and verify it offline.
type Audit struct{ *State }

// Append writes one entry at the end of the hash-chained audit log.
// The audit document's lock orders concurrent appends.
func (s *Audit) Append(ctx context.Context, kind string, data any) error {
	return s.AppendOnce(ctx, time.Time{}, kind, data, nil)
}

// AppendOnce writes an entry like Append unless an entry recorded at or
// after since already matches (match nil: always writes): under the audit document's lock, so two
// callers finishing the same work record it once. Work that can be
// interrupted between its effect and its record (a passed proposal, a
// reset) records itself with AppendOnce, and finishing it records it if
// it was not.
//
// Appends go to the live segment of the log (archives.go); the one that
// fills it has the log moved on to a new segment in the background.
func (s *Audit) AppendOnce(ctx context.Context, since time.Time, kind string, data any, match func(crdt.AuditEntry) bool) error {
	s.arch.auditMu.Lock()
	defer s.arch.auditMu.Unlock()
	if match != nil {
		found, err := s.findAudit(ctx, since, match)
		if err != nil {
			return fmt.Errorf("audit %s: %w", kind, err)
		}
		if found {
			return nil
		}
	}
	var n int
	err := s.engine.Update(ctx, s.auditID(), func(d *automerge.Doc) ([]byte, error) {
		prev, err := crdt.LastAudit(d)
		if err != nil {
			return nil, err
		}
		e, err := crdt.NewAuditEntry(prev, s.now(), kind, data)
		if err != nil {
			return nil, err
		}
		if err := crdt.AppendAudit(d, e); err != nil {
			return nil, err
		}
		n, err = crdt.AuditLen(d)
		return nil, err
	})
	if err != nil {
		return fmt.Errorf("audit %s: %w", kind, err)
	}
	if n >= s.auditSegmentBound() {
		s.moveAuditOn()
	}
	return nil
}

// auditFor matches an entry of kind whose data names value under key.
func auditFor(kind, key string, value any) func(crdt.AuditEntry) bool {
	return func(e crdt.AuditEntry) bool {
		if e.Kind != kind {
			return false
		}
		var data map[string]any
		if json.Unmarshal(e.Data, &data) != nil {
			return false
		}
		v, ok := data[key]
		if f, isNum := v.(float64); isNum {
			if n, want := value.(int64); want {
				return ok && f == float64(n)
			}
		}
		return ok && v == value
	}
}

// Entries returns up to limit audit entries after seq.
func (s *Audit) Entries(ctx context.Context, c Caller, after int64, limit int) (wire.AuditPage, error) {
	// One more than the page, to know whether there is a next one.
	out, err := s.readAuditFrom(ctx, after, limit+1)
	if err != nil {
		return wire.AuditPage{}, err
	}
	page := wire.AuditPage{Entries: make([]wire.AuditEntry, 0, min(len(out), limit))}
	for i, e := range out {
		if i == limit {
			page.Next = e.Seq - 1
			break
		}
		page.Entries = append(page.Entries, wire.AuditEntry{Seq: e.Seq, At: e.At, Kind: e.Kind, Data: e.Data, PrevHash: e.PrevHash, Hash: e.Hash})
	}
	return page, nil
}
