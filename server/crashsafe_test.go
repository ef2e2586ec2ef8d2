package server_test

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/server"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// Work that spans several documents — carrying out a passed proposal, a
// hard reset — is interrupted between two of its writes by a store that
// fails the next one, then the server is stopped and started again, as
// after a crash. What was interrupted must be finished, recorded in the
// audit log exactly once, and the chain must still verify.

// failingCircle starts a circle whose writes into the document *target
// fail while armed is set.
func failingCircle(t *testing.T, clk *servertest.Clock, armed *atomic.Bool, target *atomic.Value) *servertest.Circle {
	t.Helper()
	target.Store("")
	return servertest.Start(t, "Crash Circle", servertest.WithClock(clk.Now), servertest.WithConfig(func(c *server.Config) {
		server.FailWrites(c, func(doc string) bool { return armed.Load() && doc == target.Load().(string) })
	}))
}

func mustVerifyAudit(t *testing.T, entries []wire.AuditEntry) {
	t.Helper()
	chain := make([]crdt.AuditEntry, len(entries))
	for i, e := range entries {
		chain[i] = crdt.AuditEntry{Seq: e.Seq, At: e.At, Kind: e.Kind, Data: e.Data, PrevHash: e.PrevHash, Hash: e.Hash}
	}
	if err := crdt.VerifyAudit(chain); err != nil {
		t.Fatalf("audit chain: %v", err)
	}
}

func TestPassedProposalFinishedAfterStop(t *testing.T) {
	// allowed is how many audit entries are still written before the
	// audit log fails: 0, the decision's own entry fails (nothing is
	// carried out); 1, the role is written and its entry fails.
	for _, allowed := range []int64{0, 1} {
		t.Run(fmt.Sprintf("audit fails after %d", allowed), func(t *testing.T) {
			clk := &servertest.Clock{}
			var armed atomic.Bool
			var target atomic.Value
			var writes atomic.Int64
			target.Store("")
			c := servertest.Start(t, "Crash Circle", servertest.WithClock(clk.Now), servertest.WithConfig(func(c *server.Config) {
				server.FailWrites(c, func(doc string) bool {
					return armed.Load() && doc == target.Load().(string) && writes.Add(1) > allowed
				})
			}))
			url := c.URL()
			a := servertest.MustEnroll(t, url, c.FounderInvite, "Ada")
			b := servertest.MustEnroll(t, url, servertest.MustInvite(t, url, a, "member", "1h"), "Bo")
			docs := servertest.MustCircle(t, url, a).Docs

			p := mustPropose(t, url, a, "role.create", "A treasurer", treasurer(2))
			mustVote(t, url, a, p.ID, "yes")
			target.Store(docs["audit"])
			armed.Store(true)
			if r := vote(t, url, b, p.ID, "yes"); r.Status != http.StatusOK {
				t.Fatalf("deciding vote: %d %s", r.Status, r.Body)
			}
			_, written := roles(t, url, a)["treasurer"]
			if written != (allowed == 1) {
				t.Fatalf("role written before the stop: %v, want %v", written, allowed == 1)
			}
			if got := getProposal(t, url, a, p.ID); got.Status != "passed" || got.Applied {
				t.Fatalf("before the stop the proposal is %s, applied %v; want passed, not applied", got.Status, got.Applied)
			}
			c.Stop()
			armed.Store(false)
			c.Start()
			url = c.URL()
			// The restarted server finishes it in the background at start,
			// and again on every Tick; run one to be sure it happened.
			if err := c.Server.Tick(t.Context()); err != nil {
				t.Fatal(err)
			}

			got := getProposal(t, url, a, p.ID)
			if got.Status != "passed" || !got.Applied {
				t.Fatalf("after restart the proposal is %s, applied %v; want passed and applied", got.Status, got.Applied)
			}
			if _, ok := roles(t, url, a)["treasurer"]; !ok {
				t.Errorf("after restart there is no treasurer role")
			}
			entries := auditKinds(t, url, a)
			mustVerifyAudit(t, entries)
			if n := countAudit(entries, crdt.AuditRoleCreated); n != 1 {
				t.Errorf("%d role.created entries, want exactly 1", n)
			}
			if n := countAudit(entries, crdt.AuditProposalDecided); n != 1 {
				t.Errorf("%d proposal.decided entries, want exactly 1", n)
			}
			wantAudit(t, entries, crdt.AuditRoleCreated, p.ID, "treasurer")
		})
	}
}

func TestHardResetFinishedAfterStop(t *testing.T) {
	clk := &servertest.Clock{}
	var armed atomic.Bool
	var target atomic.Value
	c := failingCircle(t, clk, &armed, &target)
	url := c.URL()
	devs := []*servertest.Device{servertest.MustEnroll(t, url, c.FounderInvite, "Ada")}
	for _, n := range []string{"Bo", "Cy"} {
		devs = append(devs, servertest.MustEnroll(t, url, servertest.MustInvite(t, url, devs[0], "member", ""), n))
	}
	circle := servertest.MustCircle(t, url, devs[0]).CircleID
	docs := servertest.MustCircle(t, url, devs[0]).Docs
	// A role held by Ada, which the reset must vacate.
	p := mustPropose(t, url, devs[0], "role.create", "A treasurer", treasurer(2))
	for _, d := range devs {
		mustVote(t, url, d, p.ID, "yes")
	}
	q := mustPropose(t, url, devs[0], "role.assign", "Ada keeps the cash", map[string]any{"role": "treasurer", "member": devs[0].Member})
	for _, d := range devs {
		mustVote(t, url, d, q.ID, "yes")
	}
	if roles(t, url, devs[0])["treasurer"].Holder != devs[0].Member {
		t.Fatal("the treasurer role was not assigned")
	}
	clk.Set(8 * day)
	for _, d := range devs {
		servertest.MustRefresh(t, url, circle, d, clk.Now())
	}

	// The third signature moves the epoch; the roster then refuses to be
	// written: roles stay held and nothing is recorded.
	target.Store(docs["roster"])
	armed.Store(true)
	for _, d := range devs {
		if r := servertest.Call(t, url, "POST", "/v1/resets/signatures", d.Token, resetStatement(t, circle, d, 0, clk.Now())); r.Status != http.StatusAccepted {
			t.Fatalf("sign: %d %s", r.Status, r.Body)
		}
	}
	if st := resetStatus(t, url, devs[0]); st.Epoch != 1 {
		t.Fatalf("epoch %d after three signatures, want 1", st.Epoch)
	}
	if n := countAudit(auditKinds(t, url, devs[0]), crdt.AuditResetExecuted); n != 0 {
		t.Fatalf("%d reset.executed entries while the roster write failed, want 0", n)
	}
	c.Stop()
	armed.Store(false)
	c.Start()
	url = c.URL()

	if h := roles(t, url, devs[0])["treasurer"].Holder; h != "" {
		t.Errorf("after restart the treasurer is still %q, want vacant", h)
	}
	entries := auditKinds(t, url, devs[0])
	mustVerifyAudit(t, entries)
	if n := countAudit(entries, crdt.AuditResetExecuted); n != 1 {
		t.Errorf("%d reset.executed entries after restart, want exactly 1", n)
	}
	wantAudit(t, entries, crdt.AuditResetExecuted, `"epoch":0`, "finished_after_stop")
	// A Tick finds nothing left to do.
	if err := c.Server.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := countAudit(auditKinds(t, url, devs[0]), crdt.AuditResetExecuted); n != 1 {
		t.Errorf("%d reset.executed entries after a Tick, want exactly 1", n)
	}
}
