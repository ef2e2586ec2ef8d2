package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/google/uuid"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/mobile-api/client"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

const day = 24 * time.Hour

func resetStatement(t *testing.T, circle string, d *servertest.Device, epoch int64, at time.Time) []byte {
	t.Helper()
	st, err := crdt.SignReset(d.Key, d.ID, circle, epoch, "the coordinator hoards the keys", uuid.NewString(), at)
	if err != nil {
		t.Fatal(err)
	}
	return servertest.MustJSON(t, wire.ResetRequest{Statement: st})
}

func resetStatus(t *testing.T, url string, d *servertest.Device) wire.Resets {
	t.Helper()
	r := servertest.Call(t, url, "GET", "/v1/resets", d.Token, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /v1/resets: %d %s", r.Status, r.Body)
	}
	var st wire.Resets
	_ = json.Unmarshal(r.Body, &st)
	return st
}

// resetCircle starts a circle with members enrolled at the start of its
// clock, the clock moved on past reset.min_membership, and fresh tokens.
func resetCircle(t *testing.T, names ...string) (*servertest.Circle, *servertest.Clock, string, []*servertest.Device) {
	t.Helper()
	clk := &servertest.Clock{}
	c := servertest.Start(t, "Reset Circle", servertest.WithClock(clk.Now))
	url := c.URL()
	devs := []*servertest.Device{servertest.MustEnroll(t, url, c.FounderInvite, names[0])}
	for _, n := range names[1:] {
		devs = append(devs, servertest.MustEnroll(t, url, servertest.MustInvite(t, url, devs[0], "member", ""), n))
	}
	circle := servertest.MustCircle(t, url, devs[0]).CircleID
	clk.Set(8 * day)
	for _, d := range devs {
		servertest.MustRefresh(t, url, circle, d, clk.Now())
	}
	return c, clk, circle, devs
}

// TestHardReset walks the safeguards of DESIGN.md §6 one signature at a
// time, then executes the reset and checks what it did.
func TestHardReset(t *testing.T) {
	c, clk, circle, devs := resetCircle(t, "Alice", "Bob", "Carol", "Dave")
	url := c.URL()
	alice, bob, carol, dave := devs[0], devs[1], devs[2], devs[3]

	// A newcomer and a revoked device, made now (after the others).
	erin := servertest.MustEnroll(t, url, servertest.MustInvite(t, url, alice, "member", ""), "Erin")
	carolOld := servertest.MustEnroll(t, url, servertest.MustInvite(t, url, carol, "device", ""), "Carol")
	if r := servertest.Call(t, url, "POST", "/v1/devices/"+carolOld.ID+"/revoke", carol.Token, nil); r.Status != http.StatusOK {
		t.Fatalf("revoke: %d", r.Status)
	}

	// Connected clients hear about signatures and the reset.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := make(chan string, 16)
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+dave.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/events: %v %v", err, resp)
	}
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			// The reset's own events; the charter's ratification it
			// opens (proposal.opened) is checked in
			// TestHardResetCancelsOpenProposals.
			if ev, ok := strings.CutPrefix(sc.Text(), "event: "); ok && strings.HasPrefix(ev, "reset.") {
				events <- ev
			}
		}
	}()

	now := clk.Now()
	steps := []struct {
		name      string
		by        *servertest.Device
		body      []byte
		status    int
		counted   int
		executed  bool
		wantEpoch int64
	}{
		{"first signature", alice, resetStatement(t, circle, alice, 0, now), 202, 1, false, 0},
		{"second signature", bob, resetStatement(t, circle, bob, 0, now), 202, 2, false, 0},
		{"Alice again: one per member", alice, resetStatement(t, circle, alice, 0, now.Add(time.Minute)), 202, 2, false, 0},
		{"a member of two days", erin, resetStatement(t, circle, erin, 0, now), 422, 0, false, 0},
		{"a revoked device", carol, resetStatement(t, circle, carolOld, 0, now), 422, 0, false, 0},
		{"older than the window", dave, resetStatement(t, circle, dave, 0, now.Add(-73*time.Hour)), 422, 0, false, 0},
		{"for another epoch", dave, resetStatement(t, circle, dave, 3, now), 422, 0, false, 0},
		{"signed in the future", dave, resetStatement(t, circle, dave, 0, now.Add(time.Hour)), 422, 0, false, 0},
		{"the third member executes it", carol, resetStatement(t, circle, carol, 0, now), 202, 0, true, 1},
		{"a fourth, a moment late", dave, resetStatement(t, circle, dave, 0, now), 202, 0, true, 1},
	}
	for _, st := range steps {
		r := servertest.Call(t, url, "POST", "/v1/resets/signatures", st.by.Token, st.body)
		if r.Status != st.status {
			t.Fatalf("%s: %d %s, want %d", st.name, r.Status, r.Body, st.status)
		}
		if st.status != 202 {
			if r.Code != "rule_violation" || !strings.Contains(string(r.Body), "rule reset") {
				t.Errorf("%s: %s, want rule_violation naming the reset rule", st.name, r.Body)
			}
			continue
		}
		var got wire.ResetStatus
		_ = json.Unmarshal(r.Body, &got)
		if got.Signatures != st.counted || got.Executed != st.executed || got.Epoch != st.wantEpoch || got.Needed != 3 {
			t.Errorf("%s: %+v, want %d counted, executed %v, epoch %d, needed 3", st.name, got, st.counted, st.executed, st.wantEpoch)
		}
	}

	status := resetStatus(t, url, alice)
	if status.Epoch != 1 || len(status.Past) != 1 || len(status.Past[0].Signatures) != 3 || len(status.Pending) != 0 {
		t.Fatalf("GET /v1/resets = %+v, want epoch 1, one past reset with 3 signatures, none pending", status)
	}
	members := map[string]bool{}
	for _, s := range status.Past[0].Signatures {
		members[s.Member] = true
	}
	if !members[alice.Member] || !members[bob.Member] || !members[carol.Member] {
		t.Errorf("reset signed by %v, want Alice, Bob and Carol", members)
	}

	// The charter is flagged for re-ratification; the ledgers are untouched.
	charter, _ := servertest.MustPull(t, url, alice, servertest.MustCircle(t, url, alice).Docs["charter"], automerge.NewActorID())
	if ch, err := crdt.ReadCharter(charter); err != nil || ch.Status != crdt.CharterNeedsRatification {
		t.Errorf("charter status %q (%v), want %q", ch.Status, err, crdt.CharterNeedsRatification)
	}
	var audit struct{ Entries []wire.AuditEntry }
	_ = json.Unmarshal(servertest.Call(t, url, "GET", "/v1/audit", alice.Token, nil).Body, &audit)
	last := audit.Entries[len(audit.Entries)-1]
	if last.Kind != crdt.AuditResetExecuted || !strings.Contains(string(last.Data), alice.Member) {
		t.Errorf("last audit entry %s %s, want reset.executed with the signers", last.Kind, last.Data)
	}

	var got []string
	timeout := time.After(5 * time.Second)
	for len(got) < 5 {
		select {
		case ev := <-events:
			got = append(got, ev)
		case <-timeout:
			t.Fatalf("events so far %v, want 4 signatures and the reset", got)
		}
	}
	// Alice, Bob, Alice again, Carol; then the reset. The refused ones and
	// the late fourth tell nobody anything.
	if strings.Join(got, " ") != "reset.signature reset.signature reset.signature reset.signature reset.executed" {
		t.Errorf("events %v", got)
	}
}

// TestHardResetConcurrentThirdAndFourth: two signatures arrive at the same
// moment as the third and the fourth; exactly one reset executes.
func TestHardResetConcurrentThirdAndFourth(t *testing.T) {
	c, clk, circle, devs := resetCircle(t, "A", "B", "C", "D")
	url := c.URL()
	now := clk.Now()
	for _, d := range devs[:2] {
		if r := servertest.Call(t, url, "POST", "/v1/resets/signatures", d.Token, resetStatement(t, circle, d, 0, now)); r.Status != 202 {
			t.Fatalf("sign: %d %s", r.Status, r.Body)
		}
	}
	var wg sync.WaitGroup
	results := make([]wire.ResetStatus, 2)
	for i, d := range devs[2:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := servertest.Call(t, url, "POST", "/v1/resets/signatures", d.Token, resetStatement(t, circle, d, 0, now))
			_ = json.Unmarshal(r.Body, &results[i])
		}()
	}
	wg.Wait()
	if !results[0].Executed || !results[1].Executed {
		t.Errorf("results %+v, want both to report the reset executed", results)
	}
	if st := resetStatus(t, url, devs[0]); st.Epoch != 1 || len(st.Past) != 1 {
		t.Errorf("epoch %d with %d past resets, want exactly one reset", st.Epoch, len(st.Past))
	}
}

// TestHardResetSignedOffline: three members sign on their own devices with
// no network, sync hours later — still inside the window — and the reset
// executes; a signature that arrives after the window does not count.
func TestHardResetSignedOffline(t *testing.T) {
	ctx := context.Background()
	c, clk, phones := joinPhones(t, "Offline Reset", "M", 4)
	clk.Set(10 * day)

	c.Stop() // offline: the server is unreachable while they sign
	signedAt := clk.Now()
	for _, p := range phones[:3] {
		if _, err := p.SignReset("we need a fresh start", signedAt); err != nil {
			t.Fatalf("SignReset offline: %v", err)
		}
	}
	// The fourth signs now but syncs only after the window closed.
	if _, err := phones[3].SignReset("late", signedAt); err != nil {
		t.Fatal(err)
	}
	c.Start()
	clk.Set(10*day + 5*time.Hour)

	for _, p := range phones[:2] {
		if _, err := p.Sync(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	st, err := phones[0].Resets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Epoch != 0 || st.Signatures != 2 {
		t.Fatalf("after two offline signatures synced: epoch %d, %d counted; want epoch 0, 2", st.Epoch, st.Signatures)
	}
	if _, err := phones[2].Sync(ctx, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for st.Epoch != 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		if st, err = phones[0].Resets(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if st.Epoch != 1 || len(st.Past) != 1 || len(st.Past[0].Signatures) != 3 {
		t.Fatalf("after the third offline signature synced: %+v, want epoch 1 with one reset of 3", st)
	}
	// Any member can re-verify it offline: the chain, and the three
	// statements against the roster's public keys.
	deadline = time.Now().Add(10 * time.Second)
	for {
		if _, err := phones[1].Sync(ctx, nil); err != nil {
			t.Fatal(err)
		}
		entries, err := phones[1].AuditLog()
		if err != nil {
			t.Fatalf("AuditLog: %v", err)
		}
		if entries[len(entries)-1].Kind == crdt.AuditResetExecuted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the audit log never showed the reset")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A signature for epoch 0 that arrives after the window does not count
	// toward anything; it does not block the device's sync either.
	clk.Set(14 * day)
	if _, err := phones[3].Sync(ctx, nil); err != nil {
		t.Fatalf("late signer's sync: %v", err)
	}
	if st, _ := phones[0].Resets(ctx); st.Epoch != 1 || st.Signatures != 0 {
		t.Errorf("after a late signature: epoch %d, %d counted; want 1, 0", st.Epoch, st.Signatures)
	}
}

// TestHardResetCountsWhenMembersComeOfAge: signatures synced while their
// members are younger than reset.min_membership are kept, and the
// scheduler executes the reset once they come of age inside the window.
func TestHardResetCountsWhenMembersComeOfAge(t *testing.T) {
	ctx := context.Background()
	c, clk, phones := joinPhones(t, "Young Circle", "Y", 3)
	clk.Set(6*day + 20*time.Hour) // not yet seven days
	for _, p := range phones {
		if _, err := p.Sync(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := p.SignReset("too young?", clk.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Sync(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	waitFor := func(cond func(*wire.Resets) bool) *wire.Resets {
		t.Helper()
		var st *wire.Resets
		var err error
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if st, err = phones[0].Resets(ctx); err != nil {
				t.Fatal(err)
			}
			if cond(st) {
				break
			}
		}
		return st
	}
	st := waitFor(func(st *wire.Resets) bool { return len(st.Pending) == 3 })
	if st.Epoch != 0 || st.Signatures != 0 || len(st.Pending) != 3 {
		t.Fatalf("young signatures: epoch %d, %d counted, %d pending; want 0, 0, 3", st.Epoch, st.Signatures, len(st.Pending))
	}
	if err := c.Server.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := phones[0].Resets(ctx); st.Epoch != 0 {
		t.Fatalf("a tick before they come of age reset the circle")
	}
	clk.Set(7*day + time.Hour) // of age, and the signatures are 5 hours old
	if err := c.Server.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if st := waitFor(func(st *wire.Resets) bool { return st.Epoch == 1 }); st.Epoch != 1 || len(st.Past) != 1 {
		t.Errorf("after the tick: epoch %d, %d past resets; want 1, 1", st.Epoch, len(st.Past))
	}
}

// joinPhones starts a circle on a clock the test moves and joins n Go
// devices (members prefix0, prefix1, ...), each synced once.
func joinPhones(t *testing.T, name, prefix string, n int) (*servertest.Circle, *servertest.Clock, []*client.Device) {
	t.Helper()
	ctx := context.Background()
	clk := &servertest.Clock{}
	c := servertest.Start(t, name, servertest.WithClock(clk.Now))
	first, err := client.Join(ctx, t.TempDir(), c.URL(), c.FounderInvite, prefix+"0", "phone", client.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	phones := []*client.Device{first}
	for i := 1; i < n; i++ {
		inv, err := first.Invite(ctx, false, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		p, err := client.Join(ctx, t.TempDir(), c.URL(), inv.Code, fmt.Sprintf("%s%d", prefix, i), "phone", client.WithClock(clk.Now))
		if err != nil {
			t.Fatal(err)
		}
		phones = append(phones, p)
	}
	for _, p := range phones {
		if _, err := p.Sync(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	return c, clk, phones
}

// A circle of four holds a treasurer; a proposal to hand the role to
// Alice is open, and so is one to change a policy. Three members reset:
// both proposals are cancelled (the role.assign can no longer refill the
// role the reset emptied, even with every vote), and the circle opens the
// charter's ratification by itself.
func TestHardResetCancelsOpenProposals(t *testing.T) {
	c, clk, circle, devs := resetCircle(t, "Alice", "Bob", "Carol", "Dave")
	url := c.URL()
	alice, bob, carol, dave := devs[0], devs[1], devs[2], devs[3]
	role := mustPropose(t, url, alice, "role.create", "A treasurer", treasurer(2))
	for _, d := range devs {
		mustVote(t, url, d, role.ID, "yes")
	}
	assign := mustPropose(t, url, bob, "role.assign", "Alice keeps the cash", map[string]any{"role": "treasurer", "member": alice.Member})
	mustVote(t, url, alice, assign.ID, "yes")
	policy := mustPropose(t, url, carol, "policy.set", "Longer proposals", map[string]any{"name": "proposal.period", "value": "240h"})

	for _, d := range []*servertest.Device{alice, bob, carol} {
		if r := servertest.Call(t, url, "POST", "/v1/resets/signatures", d.Token, resetStatement(t, circle, d, 0, clk.Now())); r.Status != http.StatusAccepted {
			t.Fatalf("sign: %d %s", r.Status, r.Body)
		}
	}
	for _, id := range []string{assign.ID, policy.ID} {
		if p := getProposal(t, url, dave, id); p.Status != "cancelled" {
			t.Errorf("proposal %q after the reset is %s, want cancelled", p.Title, p.Status)
		}
	}
	// The last votes come after the reset: the role stays empty.
	for _, d := range []*servertest.Device{bob, carol, dave} {
		if r := servertest.Call(t, url, "POST", "/v1/proposals/"+assign.ID+"/votes", d.Token, servertest.MustJSON(t, wire.VoteRequest{Choice: "yes"})); r.Status != http.StatusConflict {
			t.Errorf("a vote on the cancelled proposal: %d %s, want 409", r.Status, r.Body)
		}
	}
	if h := roles(t, url, dave)["treasurer"].Holder; h != "" {
		t.Errorf("the treasurer after the reset is %q, want vacant", h)
	}
	r := servertest.Call(t, url, "GET", "/v1/proposals?status=open", dave.Token, nil)
	var open wire.ProposalList
	if err := json.Unmarshal(r.Body, &open); err != nil {
		t.Fatal(err)
	}
	if len(open.Proposals) != 1 || open.Proposals[0].Kind != "charter.ratify" || open.Proposals[0].Author != "circle" {
		t.Fatalf("open proposals after the reset = %+v, want one charter.ratify by the circle", open.Proposals)
	}
	entries := auditKinds(t, url, dave)
	wantAudit(t, entries, crdt.AuditResetExecuted, assign.ID, policy.ID, open.Proposals[0].ID)
	if r := servertest.Call(t, url, "GET", "/v1/proposals?status=cancelled", dave.Token, nil); r.Status != http.StatusOK {
		t.Errorf("GET /v1/proposals?status=cancelled: %d %s", r.Status, r.Body)
	}
}
