package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/circles-coop/circles/wire"

	"github.com/google/uuid"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/mobile-api/client"
	"github.com/circles-coop/circles/server"
	"github.com/circles-coop/circles/server/servertest"
)

func metric(t *testing.T, url, name string) float64 {
	t.Helper()
	r := servertest.Call(t, url, "GET", "/metrics", "", nil)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` ([0-9.e+]+)$`).FindSubmatch(r.Body)
	if m == nil {
		t.Fatalf("/metrics has no %s", name)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// TestSegmentsAndEviction runs a circle with tiny bounds: ledger segments
// of 40 entries and a memory budget so small that every idle document is
// evicted after each request. Devices keep working across segment
// switches, every entry stays visible, and documents are reloaded from the
// store on demand.
func TestSegmentsAndEviction(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t, "Seed Library", servertest.WithConfig(func(cfg *server.Config) {
		cfg.SegmentItems = 40
		cfg.MemoryBudget = 1
		cfg.CompactEvery = 3
		cfg.MetricsListen = "127.0.0.1:0"
	}))
	dev, err := client.Join(ctx, t.TempDir(), c.URL(), c.FounderInvite, "Ana", "phone")
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	logN := func(n int) {
		for i := 0; i < n; i++ {
			if _, err := dev.Log(crdt.Entry{ID: uuid.NewString(), Kind: "skill", Quantity: 1, Note: "taught grafting", At: time.Now().UTC()}); err != nil {
				t.Fatalf("log: %v", err)
			}
		}
		for i := 0; i < 2; i++ {
			if _, err := dev.Sync(ctx, nil); err != nil {
				t.Fatalf("sync: %v", err)
			}
		}
	}
	cl, err := dev.Client()
	if err != nil {
		t.Fatal(err)
	}
	// A segment opens in a background task after the change that crossed
	// the bound is stored, so the test waits for each (waitFor, bounded).
	var circle *wire.Circle
	var ledgers []string
	segmentsAtLeast := func(n int) func() bool {
		return func() bool {
			if circle, err = cl.Circle(ctx); err != nil {
				t.Fatal(err)
			}
			ledgers = nil
			for _, m := range circle.Members {
				if m.MemberID == dev.Info().MemberID {
					ledgers = m.Ledgers
				}
			}
			return len(ledgers) >= n
		}
	}
	logN(50) // passes the bound: a second segment opens
	waitFor(t, "a second ledger segment after 50 entries with a bound of 40", 10*time.Second, segmentsAtLeast(2))
	if _, err := dev.Sync(ctx, nil); err != nil { // the device learns of it
		t.Fatalf("sync: %v", err)
	}
	logN(10) // written into the new segment once the device has seen it
	logN(35) // and past the bound again
	waitFor(t, "at least 3 ledger segments after 95 entries with a bound of 40", 10*time.Second, segmentsAtLeast(3))
	if circle.Docs["ledger"] != ledgers[len(ledgers)-1] {
		t.Errorf("docs.ledger = %s, want the newest segment %s", circle.Docs["ledger"], ledgers[len(ledgers)-1])
	}
	list, err := cl.ListEntries(ctx, client.ListOptions{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Entries) != 95 {
		t.Errorf("REST lists %d entries, want 95", len(list.Entries))
	}
	if ev := metric(t, "http://"+c.Server.MetricsAddr(), "circles_sync_doc_evictions_total"); ev == 0 {
		t.Errorf("no document was evicted under a 1-byte budget")
	}
	if loads := metric(t, "http://"+c.Server.MetricsAddr(), "circles_sync_doc_loads_total"); loads < 2 {
		t.Errorf("documents loaded %v times, want reloads after eviction", loads)
	}
	if comp := metric(t, "http://"+c.Server.MetricsAddr(), "circles_sync_compactions_total"); comp == 0 {
		t.Errorf("no document was compacted with CompactEvery=3")
	}

	// A restart rebuilds the same view from the store (snapshots + chunks),
	// in the same order, so a cursor from before the restart still holds.
	order := func() []string {
		r := servertest.Call(t, c.URL(), "GET", "/v1/ledger/entries?limit=1000", bearer(t, cl), nil)
		var l wire.EntryList
		if err := json.Unmarshal(r.Body, &l); err != nil || r.Status != http.StatusOK {
			t.Fatalf("list: %d %v", r.Status, err)
		}
		ids := make([]string, len(l.Entries))
		for i, e := range l.Entries {
			ids[i] = e.ID
		}
		return ids
	}
	before := order()
	page, err := cl.ListEntries(ctx, client.ListOptions{Limit: 30})
	if err != nil {
		t.Fatal(err)
	}
	c.Stop()
	c.Start()
	after := order()
	if len(after) != 95 || strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("after restart: %d entries in another order, want the same 95 in the same order", len(after))
	}
	rest, err := cl.ListEntries(ctx, client.ListOptions{Limit: 1000, Cursor: page.NextCursor})
	if err != nil {
		t.Fatal(err)
	}
	if len(rest.Entries) != 65 || rest.Entries[0].ID != before[30] {
		t.Errorf("the cursor from before the restart gives %d entries starting at %v, want 65 starting at %s", len(rest.Entries), rest.Entries[0].ID, before[30])
	}
}

func bearer(t *testing.T, cl *client.Client) string {
	t.Helper()
	tok, _ := cl.AccessToken()
	return tok
}
