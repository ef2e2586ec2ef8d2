package server_test

import (
	"slices"
	"testing"
	"time"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/server"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// wantHonoursFromLog computes GET /v1/honours as it was computed before
// the index: every handing-on in the whole audit log (read through GET
// /v1/audit), newest first.
func wantHonoursFromLog(t *testing.T, url string, d *servertest.Device) ([]wire.Honour, int64) {
	t.Helper()
	log := auditKinds(t, url, d)
	entries := make([]crdt.AuditEntry, len(log))
	for i, e := range log {
		entries[i] = crdt.AuditEntry{Seq: e.Seq, At: e.At, Kind: e.Kind, Data: e.Data, PrevHash: e.PrevHash, Hash: e.Hash}
	}
	var out []wire.Honour
	for _, h := range slices.Backward(crdt.HonoursFromAudit(entries, nil)) {
		out = append(out, wire.Honour{Member: h.Member, Role: h.Role, RoleName: h.Name, Kind: h.Kind, Terms: h.Terms, At: h.At})
	}
	var last int64
	if len(log) > 0 {
		last = log[len(log)-1].Seq
	}
	return out, last
}

// TestHonoursIndex: GET /v1/honours answers exactly what reading the
// whole audit log gives, across audit segments, as handings-on are added
// and after a restart, while each request reads only the audit entries
// appended since the one before (its cost does not grow with history).
func TestHonoursIndex(t *testing.T) {
	clk := servertest.FixedClock(time.Date(2026, 3, 3, 19, 0, 0, 0, time.UTC))
	c := servertest.Init(t, "Honours", crdt.DefaultPolicies(), servertest.WithClock(clk.Now),
		servertest.WithConfig(func(cfg *server.Config) { cfg.AuditSegmentEntries = 10 }))
	c.Start()
	url := c.URL()
	devs := []*servertest.Device{servertest.MustEnroll(t, url, c.FounderInvite, "Ana")}
	for _, n := range []string{"Ben", "Cleo"} {
		devs = append(devs, servertest.MustEnroll(t, url, servertest.MustInvite(t, url, devs[0], "member", ""), n))
	}
	ana, ben, cleo := devs[0], devs[1], devs[2]
	pass := passer(t, url, devs)
	role := func(name, term string, limit int, holder *servertest.Device) string {
		t.Helper()
		p := pass("role.create", "Create "+name, map[string]any{"name": name, "purpose": "keeps the " + name, "term": term, "term_limit": limit})
		if p.Status != "passed" {
			t.Fatalf("role.create %s: %s %s", name, p.Status, p.Reason)
		}
		if a := pass("role.assign", "Assign "+name, map[string]any{"role": p.ID, "member": holder.Member}); a.Status != "passed" {
			t.Fatalf("role.assign %s: %s %s", name, a.Status, a.Reason)
		}
		return p.ID
	}
	stepDown := func(d *servertest.Device, id string) {
		t.Helper()
		if r := servertest.Call(t, url, "POST", "/v1/roles/"+id+"/step-down", d.Token, nil); r.Status != 200 {
			t.Fatalf("step down: %d %s", r.Status, r.Body)
		}
	}
	check := func(stage string, wantN int) int64 {
		t.Helper()
		var got wire.Honours
		servertest.MustGetJSON(t, url, cleo, "/v1/honours", &got)
		want, last := wantHonoursFromLog(t, url, cleo)
		if len(got.Honours) != wantN || len(want) != wantN {
			t.Fatalf("%s: %d honours, the log gives %d, want %d: %+v", stage, len(got.Honours), len(want), wantN, got.Honours)
		}
		for i := range want {
			g := got.Honours[i]
			g.MemberName = ""
			if g != want[i] {
				t.Errorf("%s: honour %d = %+v, the whole log gives %+v", stage, i, got.Honours[i], want[i])
			}
		}
		return last
	}
	read := func() int64 { return c.Server.Authority().Honours.AuditEntriesRead() }

	keys := role("keyholder", "2160h", 2, ana)
	role("treasurer", "720h", 1, ben)    // its term ends in a month
	role("rota keeper", "720h", 2, cleo) // rotated out in a month
	stepDown(ana, keys)
	waitArchives(t, url, ana, 0, 2) // the log spans segments

	last := check("first", 1)
	before := read()
	if before != last {
		t.Errorf("first request read %d audit entries, want the whole log (%d)", before, last)
	}

	// More history, then a handing-on: the next request reads only what
	// was appended since.
	for i := range 4 {
		mustPropose(t, url, ana, "member.admit", "padding "+string(rune('a'+i)), map[string]any{"name": "Guest"})
	}
	again := role("gardener", "720h", 1, ana)
	stepDown(ana, again)
	last2 := check("after more history", 2)
	if got := read() - before; got != last2-last {
		t.Errorf("second request read %d audit entries, want only the %d appended since", got, last2-last)
	}
	before = read()
	check("unchanged", 2)
	if got := read() - before; got != 0 {
		t.Errorf("a request with nothing appended read %d audit entries", got)
	}

	// A month on, the treasurer (limit 1) and the rota keeper rotate out.
	moveTo(t, c, clk, 31*day, devs)
	saved := check("after rotations", 4)

	// A restart takes the stored index and reads only what was appended
	// since.
	c.Stop()
	c.Start()
	url = c.URL()
	now := check("after a restart", 4)
	if got := read(); got != now-saved {
		t.Errorf("after a restart the first request read %d audit entries, want the %d appended since the stored index", got, now-saved)
	}

	// A stored index that does not match the log (another log's) is
	// ignored: the log is read again, and the answer is still the log's.
	c.Stop()
	c.Start()
	url = c.URL()
	bogus := `{"seq":3,"hash":"not the hash of entry 3","entries":[]}`
	if _, err := c.Server.Store().Meta().Put(t.Context(), "honours.index", []byte(bogus)); err != nil {
		t.Fatal(err)
	}
	now = check("with a stored index of another log", 4)
	if got := read(); got != now {
		t.Errorf("with a mismatched stored index the first request read %d audit entries, want the whole log (%d)", got, now)
	}
}
