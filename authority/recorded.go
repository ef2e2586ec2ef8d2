package authority

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/circles-coop/circles/crdt"
)

// recordMissing writes, after a stop, the audit entries of work that was
// stored but whose record was not: an enrolment (the roster written, the
// server stopped before member.enrolled or device.enrolled) and an opened
// proposal (the governance document written, proposal.opened not). Both
// are recorded with Append right after their write, so only a stop in
// between leaves them out; the kill -9 harness (cmd/circled
// crash_test.go) found both. Each entry is written with AppendOnce and
// says finished_after_stop. Open calls it before anything can enrol a
// device or open a proposal, so nothing it writes races the first
// record.
func (a *Authority) recordMissing(ctx context.Context) error {
	s := a.st
	// Only the live segment and the one before it are read: what a stop
	// left unrecorded was written after the last entry before the stop,
	// and an earlier start recorded everything older (archives.go). So
	// devices and proposals from before the first entry read (a minute's
	// margin for the clock) are taken as recorded.
	segs := s.auditSegments()
	from := segs[max(len(segs)-2, 0)].FirstSeq - 1
	entries, err := s.readAuditFrom(ctx, from, -1)
	if err != nil {
		return fmt.Errorf("read the audit log: %w", err)
	}
	var since time.Time
	if from > 0 && len(entries) > 0 {
		since = entries[0].At.Add(-time.Minute)
	}
	devices, members, proposals := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, e := range entries {
		var data struct {
			ID     string `json:"id"`
			Member string `json:"member"`
			Device string `json:"device"`
		}
		switch e.Kind {
		case crdt.AuditMemberEnrolled, crdt.AuditDeviceEnrolled:
			if json.Unmarshal(e.Data, &data) == nil {
				devices[data.Device] = true
				if e.Kind == crdt.AuditMemberEnrolled {
					members[data.Member] = true
				}
			}
		case crdt.AuditProposalOpened:
			if json.Unmarshal(e.Data, &data) == nil {
				proposals[data.ID] = true
			}
		}
	}

	var errs []error
	s.mu.RLock()
	roster := s.roster
	s.mu.RUnlock()
	for _, m := range roster.Members {
		devs := slices.Collect(maps.Values(m.Devices))
		// The member's first device came with them (member.enrolled);
		// the others by device invites (device.enrolled).
		slices.SortFunc(devs, func(x, y *crdt.Device) int {
			if c := x.AddedAt.Compare(y.AddedAt); c != 0 {
				return c
			}
			return strings.Compare(x.ID, y.ID)
		})
		for i, dev := range devs {
			if devices[dev.ID] || (i == 0 && members[m.ID]) || dev.AddedAt.Before(since) {
				continue
			}
			kind := crdt.AuditDeviceEnrolled
			if i == 0 {
				kind = crdt.AuditMemberEnrolled
			}
			data := map[string]any{
				"member": m.ID, "member_name": m.Name, "device": dev.ID, "device_name": dev.Name,
				"public_key": dev.PublicKey, "actor": dev.ActorID, "finished_after_stop": true,
			}
			s.log.Warn("recording an enrolment the server stopped before recording", "member", m.ID, "device", dev.ID)
			if err := a.Audit.AppendOnce(ctx, dev.AddedAt, kind, data, auditFor(kind, "device", dev.ID)); err != nil {
				errs = append(errs, err)
			}
		}
	}

	states, err := s.readProposals(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, st := range states {
		if proposals[st.ID] || st.OpenedAt.Before(since) {
			continue
		}
		s.log.Warn("recording a proposal the server stopped before recording", "proposal", st.ID)
		err := a.Audit.AppendOnce(ctx, st.OpenedAt, crdt.AuditProposalOpened, map[string]any{
			"id": st.ID, "kind": st.Kind, "title": st.Title, "author": st.Author, "payload": payloadOf(st.Payload),
			"opened_at": st.OpenedAt, "closes_at": st.ClosesAt, "finished_after_stop": true,
		}, auditFor(crdt.AuditProposalOpened, "id", st.ID))
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
