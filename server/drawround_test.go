package server_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/mobile-api/client"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// drawCircle starts a circle on a test clock (following the wall clock
// plus an offset) with one real member device (client.Device, with its
// own offline store) per name, and returns them.
func drawCircle(t *testing.T, names ...string) (*servertest.Circle, *servertest.Clock, []*client.Device) {
	t.Helper()
	ctx := context.Background()
	clk := &servertest.Clock{}
	c := servertest.Start(t, "Tool Library", servertest.WithClock(clk.Now))
	url := c.URL()
	first, err := client.Join(ctx, t.TempDir(), url, c.FounderInvite, names[0], names[0]+"-laptop", client.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	devs := []*client.Device{first}
	for _, n := range names[1:] {
		cl, err := first.Client()
		if err != nil {
			t.Fatal(err)
		}
		inv, err := cl.CreateInvite(ctx, wire.InviteRequest{For: "member"})
		if err != nil {
			t.Fatal(err)
		}
		d, err := client.Join(ctx, t.TempDir(), url, inv.Code, n, n+"-laptop", client.WithClock(clk.Now))
		if err != nil {
			t.Fatal(err)
		}
		devs = append(devs, d)
	}
	return c, clk, devs
}

// nextQuarterOffset is the clock offset that brings the wall clock to
// just after the start of the next calendar quarter.
func nextQuarterOffset() time.Duration {
	_, start := crdt.QuarterOf(time.Now())
	return time.Until(start.AddDate(0, 3, 0)) + time.Hour
}

// tickAt moves clk to offset, refreshes the REST devices' tokens and runs
// the scheduler once.
func tickAt(t *testing.T, c *servertest.Circle, clk *servertest.Clock, offset time.Duration, rest ...*servertest.Device) {
	t.Helper()
	clk.Set(offset)
	for _, d := range rest {
		servertest.MustRefresh(t, c.URL(), c.CircleID, d, clk.Now())
	}
	if err := c.Server.Tick(context.Background()); err != nil {
		t.Fatalf("Tick: %v", err)
	}
}

// auditEntries reads the whole audit log as d.
func auditEntries(t *testing.T, url string, d *servertest.Device) []crdt.AuditEntry {
	t.Helper()
	var out []crdt.AuditEntry
	for _, e := range auditKinds(t, url, d) {
		out = append(out, crdt.AuditEntry{Seq: e.Seq, At: e.At, Kind: e.Kind, Data: e.Data, PrevHash: e.PrevHash, Hash: e.Hash})
	}
	return out
}

func getDraw(t *testing.T, url string, d *servertest.Device, id string) wire.Draw {
	t.Helper()
	var w wire.Draw
	servertest.MustGetJSON(t, url, d, "/v1/draws/"+id, &w)
	return w
}

// TestCommitRevealDraw: the quarter's pair-link audit opens a draw of its
// two auditors; three members' devices commit and reveal, a fourth
// member commits and withholds her reveal; the draw closes after its
// reveal deadline, and its seed is the one anyone recomputes from the
// audit log — the server's committed value and the three reveals — as
// every device's `audit verify` does. On the way: a reveal that does not
// match its commitment, a commitment replayed from another draw or
// another circle, one signed by someone else, a reveal too early, a
// commitment or reveal too late — each refused, the store unchanged; and
// a restart in the middle keeps the draw open.
func TestCommitRevealDraw(t *testing.T) {
	ctx := context.Background()
	c, clk, devs := drawCircle(t, "Alice", "Bob", "Carol")
	url := c.URL()
	// Mallory is a member whose requests the test crafts by hand.
	mallory := servertest.MustEnroll(t, url, mustDeviceInvite(t, devs[0]), "Mallory")
	q := nextQuarterOffset()
	tickAt(t, c, clk, q, mallory)

	open := draws(t, url, mallory, "open")
	if len(open) != 1 || !strings.HasPrefix(open[0].ID, "pair-audit:") || open[0].Phase != "commit" || open[0].Picks != 2 || len(open[0].Candidates) != 4 {
		t.Fatalf("open draws after the quarter began = %+v, want the pair audit's draw of 2 among 4, in its commit phase", open)
	}
	id := open[0].ID

	// The three devices commit.
	for _, d := range devs {
		acts, err := d.TakePartInDraws(ctx)
		if err != nil || len(acts) != 1 || acts[0].Action != "committed" {
			t.Fatalf("%s TakePartInDraws = %+v, %v; want committed", d.Info().MemberName, acts, err)
		}
	}
	// Taking part again changes nothing.
	if acts, err := devs[0].TakePartInDraws(ctx); err != nil || acts[0].Action != "waiting" {
		t.Fatalf("a second TakePartInDraws = %+v, %v; want waiting", acts, err)
	}

	// Mallory's value, and bad commitments.
	value := make([]byte, 32)
	_, _ = rand.Read(value)
	commitment := crdt.DrawValueCommitment(c.CircleID, id, mallory.Member, value)
	sign := func(circle, draw, kid string) string {
		st, err := crdt.SignDrawCommit(mallory.Key, kid, circle, draw, commitment, clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	aliceStatement, err := devs[0].CommitmentStatement(id)
	if err != nil {
		t.Fatal(err)
	}
	// A device of Mallory's she revoked (a lost phone).
	lost := servertest.MustEnroll(t, url, servertest.MustInvite(t, url, mallory, "device", ""), "Mallory")
	if r := servertest.Call(t, url, "POST", "/v1/devices/"+lost.ID+"/revoke", mallory.Token, nil); r.Status != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	lostStatement, err := crdt.SignDrawCommit(lost.Key, lost.ID, c.CircleID, id, commitment, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	before := servertest.MustStoredDocs(t, c)
	commitPath := "/v1/draws/" + id + "/commitments"
	revealPath := "/v1/draws/" + id + "/reveals"
	bad := []struct {
		name, path string
		body       any
		status     int
		code, says string
	}{
		{"replayed from another draw", commitPath, wire.DrawCommitRequest{Statement: sign(c.CircleID, "pair-audit:2001-Q1", mallory.ID)}, 422, "rule_violation", "not to this one"},
		{"made for another circle", commitPath, wire.DrawCommitRequest{Statement: sign("another-circle", id, mallory.ID)}, 422, "rule_violation", "aud must be this circle"},
		{"signed with Mallory's key in Alice's device's name", commitPath, wire.DrawCommitRequest{Statement: sign(c.CircleID, id, devs[0].Info().DeviceID)}, 422, "rule_violation", "does not verify"},
		{"Alice's statement sent by Mallory", commitPath, wire.DrawCommitRequest{Statement: aliceStatement}, 403, "forbidden", "another member's device"},
		{"signed by a revoked device", commitPath, wire.DrawCommitRequest{Statement: lostStatement}, 422, "rule_violation", "revoked"},
		{"no statement", commitPath, wire.DrawCommitRequest{}, 400, "invalid_request", "statement"},
		{"not a JWT", commitPath, wire.DrawCommitRequest{Statement: "a.b.c"}, 422, "rule_violation", "does not verify"},
		{"an unknown draw", "/v1/draws/pair-audit:1999-Q1/commitments", wire.DrawCommitRequest{Statement: sign(c.CircleID, "pair-audit:1999-Q1", mallory.ID)}, 404, "not_found", "no draw"},
		{"a reveal in the commit phase", revealPath, wire.DrawRevealRequest{Value: hex.EncodeToString(value)}, 409, "conflict", "did not commit"},
		{"a value that is not hex", revealPath, wire.DrawRevealRequest{Value: "zz"}, 400, "invalid_request", "value"},
		{"a body that is not JSON", commitPath, "{", 400, "invalid_request", ""},
	}
	for _, b := range bad {
		raw, ok := b.body.(string)
		body := []byte(raw)
		if !ok {
			body = servertest.MustJSON(t, b.body)
		}
		r := servertest.Call(t, url, "POST", b.path, mallory.Token, body)
		if r.Status != b.status || !strings.Contains(string(r.Body), b.code) || !strings.Contains(string(r.Body), b.says) {
			t.Errorf("%s: %d %s, want %d %s saying %q", b.name, r.Status, r.Body, b.status, b.code, b.says)
		}
		servertest.MustStoreUnchanged(t, c, before)
	}

	// Mallory commits properly; a second, different commitment of hers
	// is refused; her reveal before the reveal phase too.
	if r := servertest.Call(t, url, "POST", commitPath, mallory.Token, servertest.MustJSON(t, wire.DrawCommitRequest{Statement: sign(c.CircleID, id, mallory.ID)})); r.Status != http.StatusOK {
		t.Fatalf("Mallory's commitment: %d %s", r.Status, r.Body)
	}
	other := make([]byte, 32)
	_, _ = rand.Read(other)
	commitment2 := crdt.DrawValueCommitment(c.CircleID, id, mallory.Member, other)
	st2, _ := crdt.SignDrawCommit(mallory.Key, mallory.ID, c.CircleID, id, commitment2, clk.Now())
	if r := servertest.Call(t, url, "POST", commitPath, mallory.Token, servertest.MustJSON(t, wire.DrawCommitRequest{Statement: st2})); r.Status != http.StatusConflict {
		t.Errorf("a second commitment: %d %s, want 409", r.Status, r.Body)
	}
	if r := servertest.Call(t, url, "POST", revealPath, mallory.Token, servertest.MustJSON(t, wire.DrawRevealRequest{Value: hex.EncodeToString(value)})); r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "reveals open after") {
		t.Errorf("a reveal in the commit phase: %d %s, want 409", r.Status, r.Body)
	}
	if w := getDraw(t, url, mallory, id); len(w.Commitments) != 4 || len(w.Reveals) != 0 {
		t.Fatalf("draw after commitments: %d commitments, %d reveals; want 4 and 0", len(w.Commitments), len(w.Reveals))
	}

	// The server restarts in the middle: the draw is still open.
	c.Stop()
	c.Start()
	url = c.URL()

	// The reveal phase: a latecomer's commitment is refused; a reveal that
	// does not match is refused; the three devices reveal.
	tickAt(t, c, clk, q+25*time.Hour, mallory)
	if w := getDraw(t, url, mallory, id); w.Phase != "reveal" || len(w.Commitments) != 4 {
		t.Fatalf("after the restart and the commit deadline: phase %s, %d commitments; want reveal and 4", w.Phase, len(w.Commitments))
	}
	again, err := devs[0].CommitDraw(ctx, id) // Alice already committed: a retry, nothing new
	if err != nil || len(again.Commitments) != 4 {
		t.Fatalf("Alice's commitment again: %v, %+v", err, again)
	}
	dave := servertest.MustEnroll(t, url, servertest.MustInvite(t, url, mallory, "member", ""), "Dave")
	before = servertest.MustStoredDocs(t, c)
	daveValue := make([]byte, 32)
	daveStatement, _ := crdt.SignDrawCommit(dave.Key, dave.ID, c.CircleID, id, crdt.DrawValueCommitment(c.CircleID, id, dave.Member, daveValue), clk.Now())
	if r := servertest.Call(t, url, "POST", commitPath, dave.Token, servertest.MustJSON(t, wire.DrawCommitRequest{Statement: daveStatement})); r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "commit phase of this draw ended") {
		t.Errorf("a commitment after the commit deadline: %d %s, want 409", r.Status, r.Body)
	}
	if r := servertest.Call(t, url, "POST", revealPath, mallory.Token, servertest.MustJSON(t, wire.DrawRevealRequest{Value: hex.EncodeToString(other)})); r.Status != http.StatusUnprocessableEntity || !strings.Contains(string(r.Body), "does not match your commitment") {
		t.Errorf("a reveal not matching its commitment: %d %s, want 422", r.Status, r.Body)
	}
	servertest.MustStoreUnchanged(t, c, before)
	for _, d := range devs {
		acts, err := d.TakePartInDraws(ctx)
		if err != nil || len(acts) != 1 || acts[0].Action != "revealed" {
			t.Fatalf("%s TakePartInDraws = %+v, %v; want revealed", d.Info().MemberName, acts, err)
		}
	}

	// Mallory withholds until the deadline passed: then her reveal is
	// refused, before and after the draw closes, and changes nothing.
	clk.Set(q + 49*time.Hour)
	servertest.MustRefresh(t, url, c.CircleID, mallory, clk.Now())
	before = servertest.MustStoredDocs(t, c)
	lateReveal := servertest.MustJSON(t, wire.DrawRevealRequest{Value: hex.EncodeToString(value)})
	if r := servertest.Call(t, url, "POST", revealPath, mallory.Token, lateReveal); r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "late reveal does not count") {
		t.Errorf("a reveal after the deadline: %d %s, want 409", r.Status, r.Body)
	}
	servertest.MustStoreUnchanged(t, c, before)
	tickAt(t, c, clk, q+49*time.Hour, mallory)
	w := getDraw(t, url, mallory, id)
	if w.Phase != "closed" || w.Result == nil {
		t.Fatalf("draw after the reveal deadline and a tick = %+v, want closed", w)
	}
	res := *w.Result
	if r := servertest.Call(t, url, "POST", revealPath, mallory.Token, lateReveal); r.Status != http.StatusConflict {
		t.Errorf("a reveal after the close: %d %s, want 409", r.Status, r.Body)
	}
	tickAt(t, c, clk, q+50*time.Hour, mallory)
	if again := getDraw(t, url, mallory, id); again.Result == nil || again.Result.Seed != res.Seed || !slices.Equal(again.Result.Picked, res.Picked) {
		t.Errorf("the result changed after a late reveal and another tick: %+v, was %+v", again.Result, res)
	}

	// A browser encodes the ":" of the id (encodeURIComponent): the same draw.
	if enc := getDraw(t, url, mallory, strings.ReplaceAll(id, ":", "%3A")); enc.ID != id || enc.Result == nil || enc.Result.Seed != res.Seed {
		t.Errorf("GET with the id percent-encoded = %+v, want draw %s", enc, id)
	}

	members := []string{devs[0].Info().MemberID, devs[1].Info().MemberID, devs[2].Info().MemberID}
	slices.Sort(members)
	if !slices.Equal(res.Revealed, members) || !slices.Equal(res.Withheld, []string{mallory.Member}) || res.ServerOnly || len(res.Picked) != 2 {
		t.Fatalf("result = %+v, want revealed %v, withheld [%s], two picked", res, members, mallory.Member)
	}

	// Anyone recomputes the seed from the audit log alone.
	entries := auditEntries(t, url, mallory)
	var opened crdt.DrawRoundOpen
	reveals := map[string][]byte{}
	var closed crdt.DrawRoundResult
	for _, e := range entries {
		switch e.Kind {
		case crdt.AuditDrawOpened:
			_ = json.Unmarshal(e.Data, &opened)
		case crdt.AuditDrawReveal:
			var rv crdt.DrawRoundReveal
			_ = json.Unmarshal(e.Data, &rv)
			v, err := crdt.ParseDrawValue(rv.Value)
			if err != nil {
				t.Fatal(err)
			}
			reveals[rv.Member] = v
		case crdt.AuditDrawClosed:
			_ = json.Unmarshal(e.Data, &closed)
		}
	}
	sv, _ := hex.DecodeString(closed.ServerValue)
	if crdt.DrawCommitment(sv) != opened.ServerCommitment {
		t.Fatalf("the server's value does not match the commitment it published at the opening")
	}
	seed := crdt.DrawRoundSeed(c.CircleID, id, sv, reveals)
	if hex.EncodeToString(seed) != res.Seed || !slices.Equal(crdt.DrawPickN(seed, opened.Candidates, 2), res.Picked) {
		t.Fatalf("recomputed seed %x picks %v; the server says %s and %v", seed, crdt.DrawPickN(seed, opened.Candidates, 2), res.Seed, res.Picked)
	}
	// The devices' values count: the server's value alone gives another
	// seed, so the server, committed before them, did not choose it.
	if alone := crdt.DrawRoundSeed(c.CircleID, id, sv, nil); hex.EncodeToString(alone) == res.Seed {
		t.Fatalf("the seed does not depend on the devices' reveals")
	}

	// Every member's device verifies the draw from its own copy.
	for _, d := range devs {
		if _, err := d.Sync(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := d.AuditLog(); err != nil {
			t.Fatalf("%s: AuditLog() = %v, want every draw to verify", d.Info().MemberName, err)
		}
	}

	// The pair audit names the auditors drawn.
	var pa wire.PairAuditList
	servertest.MustGetJSON(t, url, mallory, "/v1/pair-audits", &pa)
	if len(pa.PairAudits) != 1 || !slices.Equal(pa.PairAudits[0].Auditors, res.Picked) || pa.PairAudits[0].Status != "interviewing" {
		t.Fatalf("pair audits = %+v, want the auditors %v interviewing", pa.PairAudits, res.Picked)
	}
}

// TestDrawServerCannotChangeOutcome: once devices committed, the outcome
// is fixed by what the log holds. A server that reveals a value other than
// the one it committed to, or records a seed or picks its values do not
// give, or drops a reveal from the seed, writes a log that no member's
// device verifies — even with the hash chain recomputed to match. The
// tampered copy is the device's own store, as `circlectl audit verify`
// reads it.
func TestDrawServerCannotChangeOutcome(t *testing.T) {
	ctx := context.Background()
	c, clk, devs := drawCircle(t, "Alice", "Bob", "Carol")
	q := nextQuarterOffset()
	clk.Set(q)
	if err := c.Server.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	for _, step := range []time.Duration{0, 25 * time.Hour} {
		clk.Set(q + step)
		for _, d := range devs {
			if _, err := d.TakePartInDraws(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	clk.Set(q + 49*time.Hour)
	if err := c.Server.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	alice := devs[0]
	if _, err := alice.Sync(ctx, nil); err != nil {
		t.Fatal(err)
	}
	entries, err := alice.AuditLog()
	if err != nil {
		t.Fatalf("AuditLog() = %v before tampering", err)
	}
	closedAt := slices.IndexFunc(entries, func(e crdt.AuditEntry) bool { return e.Kind == crdt.AuditDrawClosed })
	if closedAt < 0 {
		t.Fatal("no draw.closed entry")
	}
	var res crdt.DrawRoundResult
	_ = json.Unmarshal(entries[closedAt].Data, &res)
	var opened crdt.DrawRoundOpen
	for _, e := range entries {
		if e.Kind == crdt.AuditDrawOpened {
			_ = json.Unmarshal(e.Data, &opened)
		}
	}
	otherValue := make([]byte, 32)
	_, _ = rand.Read(otherValue)
	if crdt.DrawCommitment(otherValue) == opened.ServerCommitment {
		t.Fatal("another server value matches the commitment")
	}

	forgeries := []struct {
		name   string
		forge  func(r *crdt.DrawRoundResult)
		reason string
	}{
		{"another server value, seed and picks recomputed", func(r *crdt.DrawRoundResult) {
			r.ServerValue = hex.EncodeToString(otherValue)
			seed := crdt.DrawRoundSeed(c.CircleID, r.Draw, otherValue, nil)
			r.Seed, r.Picked = hex.EncodeToString(seed), crdt.DrawPickN(seed, opened.Candidates, opened.Picks)
		}, "not the one it committed to"},
		{"other picks", func(r *crdt.DrawRoundResult) {
			r.Picked = slices.DeleteFunc(slices.Clone(opened.Candidates), func(m string) bool { return slices.Contains(res.Picked, m) })
		}, "but its seed picks"},
		{"a reveal left out of the seed", func(r *crdt.DrawRoundResult) {
			sv, _ := hex.DecodeString(r.ServerValue)
			seed := crdt.DrawRoundSeed(c.CircleID, r.Draw, sv, nil)
			r.Seed, r.Picked = hex.EncodeToString(seed), crdt.DrawPickN(seed, opened.Candidates, opened.Picks)
		}, "the seed is not the one"},
	}
	home := alice.Home()
	path := filepath.Join(home, "docs", alice.Info().Circle.Docs["audit"]+".automerge")
	original, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range forgeries {
		r := res
		f.forge(&r)
		forged := slices.Clone(entries)
		forged[closedAt].Data, _ = json.Marshal(r)
		rechain(t, forged, closedAt)
		if err := crdt.VerifyAudit(forged); err != nil {
			t.Fatalf("%s: the recomputed chain does not hold: %v", f.name, err)
		}
		writeAuditCopy(t, path, original, forged, closedAt)
		_, err := alice.AuditLog()
		if err == nil || !strings.Contains(err.Error(), "(draw.closed)") || !strings.Contains(err.Error(), f.reason) {
			t.Errorf("%s: AuditLog() = %v, want it to name the draw.closed entry: %q", f.name, err, f.reason)
		}
	}
	if err := os.WriteFile(path, original, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.AuditLog(); err != nil {
		t.Fatalf("the untouched copy: %v", err)
	}
}

// rechain recomputes the hashes of entries from i on.
func rechain(t *testing.T, entries []crdt.AuditEntry, i int) {
	t.Helper()
	for j := i; j < len(entries); j++ {
		if j > 0 {
			entries[j].PrevHash = entries[j-1].Hash
		}
		h, err := crdt.AuditHash(entries[j])
		if err != nil {
			t.Fatal(err)
		}
		entries[j].Hash = h
	}
}

// writeAuditCopy writes into the device's copy of the audit document
// (original bytes) the forged entries from i on.
func writeAuditCopy(t *testing.T, path string, original []byte, entries []crdt.AuditEntry, i int) {
	t.Helper()
	doc, err := automerge.Load(original)
	if err != nil {
		t.Fatal(err)
	}
	for j := i; j < len(entries); j++ {
		for k, v := range map[string]any{"data": string(entries[j].Data), "prev_hash": entries[j].PrevHash, "hash": entries[j].Hash} {
			if err := doc.Path("entries", j, k).Set(v); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := doc.Commit("forge"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, doc.Save(), 0o600); err != nil {
		t.Fatal(err)
	}
}

func draws(t *testing.T, url string, d *servertest.Device, status string) []wire.Draw {
	t.Helper()
	var list wire.DrawList
	servertest.MustGetJSON(t, url, d, "/v1/draws?status="+status, &list)
	return list.Draws
}

// mustDeviceInvite makes a member invite with a client device.
func mustDeviceInvite(t *testing.T, d *client.Device) string {
	t.Helper()
	cl, err := d.Client()
	if err != nil {
		t.Fatal(err)
	}
	inv, err := cl.CreateInvite(context.Background(), wire.InviteRequest{For: "member"})
	if err != nil {
		t.Fatal(err)
	}
	return inv.Code
}
