package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/mobile-api/client"
	"github.com/circles-coop/circles/server"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// fsWrite writes n entries for d in batches through POST /v1/sync into
// its current segment, as a phone does; it keeps d's copies of the
// segments it wrote into (old[doc]).
func fsWrite(t *testing.T, h *benchHTTP, d *benchDevice, n, batch int, old map[string]*benchDevice) {
	t.Helper()
	at := time.Date(2025, 1, 1, 8, 0, 0, 0, time.UTC)
	for k := 0; k < n; {
		circle, err := h.circle(d)
		if err != nil {
			t.Fatal(err)
		}
		if seg := circle.Docs["ledger"]; seg != d.ledger {
			if d.ledger != "" {
				old[d.ledger] = &benchDevice{Device: d.Device, ledger: d.ledger, doc: d.doc, ss: d.ss}
			}
			if err := h.pullLedger(d, seg); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < batch && k < n; i, k = i+1, k+1 {
			if _, err := d.writeEntry(k, at.Add(time.Duration(k)*time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := h.syncLedger(d); err != nil {
			t.Fatal(err)
		}
	}
}

// closedOf lists the closed ledger segments of a circle description.
func closedOf(c wire.Circle) []string {
	var out []string
	for _, m := range c.Members {
		if len(m.Ledgers) > 1 {
			out = append(out, m.Ledgers[:len(m.Ledgers)-1]...)
		}
	}
	return out
}

// waitSnapshots polls GET /v1/circle until it names a snapshot for every
// closed segment (they are compacted in the background), and returns it.
func waitSnapshots(t *testing.T, h *benchHTTP, d *benchDevice, except string) wire.Circle {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := h.circle(d)
		if err != nil {
			t.Fatal(err)
		}
		missing := 0
		for _, doc := range closedOf(c) {
			if c.Snapshots[doc] == "" || c.Snapshots[doc] == except {
				missing++
			}
		}
		if missing == 0 {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s, %d closed segments still have no snapshot in GET /v1/circle", missing)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serverHeads pulls doc afresh from the server (ordinary sync from
// nothing) and returns its heads: what the server holds.
func serverHeads(t *testing.T, url string, d *benchDevice, doc string) []automerge.ChangeHash {
	t.Helper()
	local, _ := servertest.MustPull(t, url, d.Device, doc, "00ff00ff")
	return local.Heads()
}

// TestFirstSyncFromSnapshots: closed ledger segments are served whole
// from stored snapshots (content-addressed, cacheable, read-checked); a
// new device starts from them, the server answers its sync of those
// segments without loading them, and after live changes — new entries
// and a late write into a closed segment by a device that was offline —
// the new device ends with exactly the server's heads for every document.
func TestFirstSyncFromSnapshots(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t, "Tool Library", metricsOnAPI, servertest.WithConfig(func(cfg *server.Config) {
		cfg.SegmentItems = 30
	}))
	h := newBenchHTTP(c.URL())
	defer h.close()
	devs, err := h.enrollMembers(c.FounderInvite, 2)
	if err != nil {
		t.Fatal(err)
	}
	old := map[string]*benchDevice{}
	fsWrite(t, h, devs[0], 100, 10, old)
	fsWrite(t, h, devs[1], 60, 10, old)
	circle := waitSnapshots(t, h, devs[0], "")
	closed := closedOf(circle)
	if len(closed) < 3 {
		t.Fatalf("%d closed segments, want at least 3", len(closed))
	}

	// The routes.
	seg := closed[0]
	hash := circle.Snapshots[seg]
	if r := servertest.Call(t, c.URL(), "GET", "/v1/docs/"+seg+"/snapshot", "", nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("without a token: %d, want 401", r.Status)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string, hdr map[string]string) *http.Response {
		req, _ := http.NewRequest("GET", c.URL()+path, nil)
		req.Header.Set("Authorization", "Bearer "+devs[1].Token)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := get("/v1/docs/"+seg+"/snapshot", nil)
	resp.Body.Close()
	if want := "/v1/docs/" + seg + "/snapshot/" + hash; resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != want {
		t.Fatalf("GET snapshot: %d to %q, want 302 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	r := servertest.Call(t, c.URL(), "GET", "/v1/docs/"+seg+"/snapshot/"+hash, devs[1].Token, nil)
	sum := sha256.Sum256(r.Body)
	if r.Status != http.StatusOK || hex.EncodeToString(sum[:]) != hash {
		t.Fatalf("GET snapshot by hash: %d, %d bytes hashing to %x, want 200 and %s", r.Status, len(r.Body), sum, hash)
	}
	resp = get("/v1/docs/"+seg+"/snapshot/"+hash, nil)
	resp.Body.Close()
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") || !strings.Contains(cc, "private") || resp.Header.Get("ETag") != `"`+hash+`"` {
		t.Fatalf("Cache-Control %q, ETag %q", cc, resp.Header.Get("ETag"))
	}
	resp = get("/v1/docs/"+seg+"/snapshot/"+hash, map[string]string{"If-None-Match": `"` + hash + `"`})
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match: %d, want 304", resp.StatusCode)
	}
	snapDoc, err := automerge.Load(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	if want := serverHeads(t, c.URL(), devs[1], seg); !crdt.SameHeads(snapDoc.Heads(), want) {
		t.Fatalf("the snapshot's heads %v are not the server's %v", snapDoc.Heads(), want)
	}
	for path, want := range map[string]int{
		"/v1/docs/" + seg + "/snapshot/" + strings.Repeat("0", 64): http.StatusNotFound,
		"/v1/docs/" + string(crdt.NewDocID()) + "/snapshot":        http.StatusNotFound,
		"/v1/docs/not-a-doc/snapshot":                              http.StatusNotFound,
	} {
		r := servertest.Call(t, c.URL(), "GET", path, devs[1].Token, nil)
		if r.Status != want {
			t.Fatalf("GET %s: %d %s, want %d", path, r.Status, r.Body, want)
		}
		servertest.WantErrorBody(t, r.Body)
	}

	// A new device of the second member starts from the snapshots.
	joinNew := func(name string) *client.Device {
		t.Helper()
		invite, err := h.invite(devs[1], "device")
		if err != nil {
			t.Fatal(err)
		}
		d, err := client.Join(ctx, t.TempDir(), c.URL(), invite, "", name)
		if err != nil {
			t.Fatalf("join: %v", err)
		}
		return d
	}
	inSyncBefore := metric(t, c.URL(), "circles_sync_in_sync_answers_total")
	nd := joinNew("new phone")
	if got := metric(t, c.URL(), "circles_sync_in_sync_answers_total") - inSyncBefore; got < float64(len(closed)) {
		t.Fatalf("the server answered %v closed segments from their snapshot's heads, want %d", got, len(closed))
	}
	checkHeads := func(d *client.Device, docs []string) {
		t.Helper()
		for _, doc := range docs {
			got, err := d.Heads(doc)
			if err != nil {
				t.Fatal(err)
			}
			if want := serverHeads(t, c.URL(), devs[0], doc); !crdt.SameHeads(got, want) {
				t.Fatalf("device heads of %s: %v, server's: %v", doc, got, want)
			}
		}
	}
	allDocs := func() []string {
		c, err := h.circle(devs[0])
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range c.Members {
			out = append(out, m.Ledgers...)
		}
		return out
	}
	checkHeads(nd, allDocs())

	// Live: new entries, and a late write into Ana's first (closed)
	// segment from the copy her phone kept while offline.
	fsWrite(t, h, devs[0], 12, 4, old)
	late := old[closed[0]]
	if late == nil {
		t.Fatalf("no kept copy of %s", closed[0])
	}
	if _, err := late.writeEntry(999, time.Date(2025, 2, 1, 8, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.syncLedger(late); err != nil {
		t.Fatalf("late write into a closed segment: %v", err)
	}
	if _, err := nd.Sync(ctx, nil); err != nil {
		t.Fatal(err)
	}
	checkHeads(nd, allDocs())
	if got, _ := nd.Heads(closed[0]); !crdt.SameHeads(got, late.doc.Heads()) {
		t.Fatalf("the new device lacks the late write: %v, the writer has %v", got, late.doc.Heads())
	}

	// The closed segment is compacted again; a device joining now starts
	// from the new snapshot and has everything too.
	circle = waitSnapshots(t, h, devs[0], hash)
	if circle.Snapshots[closed[0]] == hash {
		t.Fatal("the snapshot was not replaced after the late write")
	}
	if r := servertest.Call(t, c.URL(), "GET", "/v1/docs/"+seg+"/snapshot/"+hash, devs[1].Token, nil); r.Status != http.StatusNotFound {
		t.Fatalf("the replaced snapshot's URL: %d, want 404", r.Status)
	}
	nd2 := joinNew("second new phone")
	checkHeads(nd2, allDocs())
	checkHeads(nd, allDocs())
	entries, err := nd2.Entries()
	if err != nil {
		t.Fatal(err)
	}
	if want := 100 + 60 + 12 + 1; len(entries) != want {
		t.Fatalf("the second new device holds %d entries, want %d", len(entries), want)
	}
}
