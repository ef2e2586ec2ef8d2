package server_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// An enrolment and an opened proposal are written first and recorded in
// the audit log after; a server that stops in between (here: the audit
// log refuses its writes, then the server stops) records them at its
// next start, once. The kill -9 harness (cmd/circled crash_test.go)
// found both left unrecorded.
func TestUnrecordedWritesRecordedAtStart(t *testing.T) {
	clk := &servertest.Clock{}
	var armed atomic.Bool
	var target atomic.Value
	c := failingCircle(t, clk, &armed, &target)
	url := c.URL()
	a := servertest.MustEnroll(t, url, c.FounderInvite, "Ada")
	code := servertest.MustInvite(t, url, a, "member", "1h")
	devCode := servertest.MustInvite(t, url, a, "device", "1h")
	target.Store(servertest.MustCircle(t, url, a).Docs["audit"])

	armed.Store(true)
	b := servertest.MustEnroll(t, url, code, "Bo")      // answered 201; its audit entry failed
	a2 := servertest.MustEnroll(t, url, devCode, "Ada") // Ada's second device
	p := mustPropose(t, url, a, "role.create", "A treasurer", treasurer(2))
	armed.Store(false)

	count := func(entries []wire.AuditEntry, kind, word string) int {
		n := 0
		for _, e := range entries {
			if e.Kind == kind && strings.Contains(string(e.Data), word) {
				n++
			}
		}
		return n
	}
	before := auditKinds(t, url, a)
	if n := count(before, crdt.AuditMemberEnrolled, b.Member) + count(before, crdt.AuditDeviceEnrolled, a2.ID) + count(before, crdt.AuditProposalOpened, p.ID); n != 0 {
		t.Fatalf("%d of the entries meant to fail were written; the test proves nothing", n)
	}

	for round := 1; round <= 2; round++ { // a second start adds nothing
		c.Stop()
		c.Start()
		url = c.URL()
		entries := auditKinds(t, url, a)
		mustVerifyAudit(t, entries)
		if n := count(entries, crdt.AuditMemberEnrolled, b.Member); n != 1 {
			t.Errorf("start %d: %d member.enrolled entries for Bo, want 1", round, n)
		}
		if n := count(entries, crdt.AuditDeviceEnrolled, a2.ID); n != 1 {
			t.Errorf("start %d: %d device.enrolled entries for Ada's second device, want 1", round, n)
		}
		if n := count(entries, crdt.AuditProposalOpened, p.ID); n != 1 {
			t.Errorf("start %d: %d proposal.opened entries for %s, want 1", round, n, p.ID)
		}
		// Those recorded in time are not recorded again.
		if n := count(entries, crdt.AuditMemberEnrolled, a.Member); n != 1 {
			t.Errorf("start %d: %d member.enrolled entries for Ada, want 1", round, n)
		}
		wantAudit(t, entries, crdt.AuditMemberEnrolled, b.Member, "finished_after_stop")
		wantAudit(t, entries, crdt.AuditProposalOpened, p.ID, "finished_after_stop")
	}
	// The members and the proposal work on.
	if r := vote(t, url, b, p.ID, "yes"); r.Status != http.StatusOK {
		t.Fatalf("Bo's vote after restart: %d %s", r.Status, r.Body)
	}
}
