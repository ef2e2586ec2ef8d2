package repoclient_test

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/google/uuid"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/server"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

func inSyncAnswers(t *testing.T, base string) float64 {
	t.Helper()
	r := servertest.Call(t, base, "GET", "/metrics", "", nil)
	m := regexp.MustCompile(`(?m)^circles_sync_in_sync_answers_total ([0-9.e+]+)$`).FindSubmatch(r.Body)
	if m == nil {
		t.Fatal("/metrics has no circles_sync_in_sync_answers_total")
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// TestRepoFirstSyncFromSnapshots: an automerge-repo phone starts the
// closed ledger segments of another member from their snapshots
// (repo.import of GET /v1/docs/{doc}/snapshot/{hash}); its sync over the
// WebSocket is then answered without the documents being loaded, it holds
// exactly the server's heads, and a later write into one of those
// segments is still pushed to it.
func TestRepoFirstSyncFromSnapshots(t *testing.T) {
	tc := servertest.Start(t, "Repo First Sync", servertest.WithConfig(func(cfg *server.Config) {
		cfg.SegmentItems = 20
		cfg.MetricsOnAPI = true
	}))
	base := tc.URL()
	founder := mustEnroll(t, base, tc.FounderInvite, "Founder")
	for i := 0; i < 50; i++ {
		founder.logEntry(t, "entry "+strconv.Itoa(i))
		if i%10 == 9 {
			time.Sleep(50 * time.Millisecond) // let the next segment open
		}
	}
	var circle wire.Circle
	var closed []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		founder.call(t, http.MethodGet, "/v1/circle", nil, http.StatusOK, &circle)
		closed = closed[:0]
		for _, m := range circle.Members {
			closed = append(closed, m.Ledgers[:len(m.Ledgers)-1]...)
		}
		if len(closed) >= 1 && !slices.ContainsFunc(closed, func(d string) bool { return circle.Snapshots[d] == "" }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("closed segments %v, snapshots %v after 30 s", closed, circle.Snapshots)
		}
	}
	phone := mustEnroll(t, base, founder.invite(t), "Phone")
	js := startJS(t)
	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/v1/repo?token=" + url.QueryEscape(phone.token)
	js.do(t, map[string]any{"cmd": "init", "url": wsURL, "actor": phone.actor}, nil)
	js.do(t, map[string]any{"cmd": "connect"}, nil)
	before := inSyncAnswers(t, base)
	reader := &servertest.Device{Token: phone.token, Actor: phone.actor, Member: phone.memberID}
	for _, doc := range closed {
		var imp struct {
			Bytes   int      `json:"bytes"`
			Entries []string `json:"entries"`
			Heads   []string `json:"heads"`
		}
		js.do(t, map[string]any{"cmd": "import", "url": "automerge:" + doc, "token": phone.token,
			"snapshot": base + "/v1/docs/" + doc + "/snapshot/" + circle.Snapshots[doc]}, &imp)
		if imp.Bytes == 0 || len(imp.Entries) == 0 {
			t.Fatalf("import of %s: %+v", doc, imp)
		}
		local, _ := servertest.MustPull(t, base, reader, doc, "00dd00dd")
		if want := hexHeads(local.Heads()); !slices.Equal(sorted(imp.Heads), want) {
			t.Fatalf("imported heads of %s: %v, the server's: %v", doc, imp.Heads, want)
		}
	}
	// The repo syncs each imported document with the server, which answers
	// from the snapshot's heads.
	for deadline := time.Now().Add(10 * time.Second); inSyncAnswers(t, base)-before < float64(len(closed)); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the server answered %v of %d imported documents from their snapshot", inSyncAnswers(t, base)-before, len(closed))
		}
	}

	// A late write into the first closed segment (the founder's offline
	// copy) is pushed to the phone, and it ends with the server's heads.
	doc := closed[0]
	id := uuid.NewString()
	fdev := &servertest.Device{Token: founder.token, Actor: founder.actor, Member: founder.memberID}
	msg := servertest.MustChangeMessage(t, base, fdev, doc, founder.actor, func(d *automerge.Doc) error {
		return crdt.PutEntry(d, crdt.Entry{ID: id, Kind: "hours", Quantity: 1, Unit: "h", Note: "late", At: time.Now().UTC().Truncate(time.Second)})
	})
	if r := servertest.Call(t, base, "POST", "/v1/sync", founder.token, servertest.SyncBody(t, wire.SyncMessage{Doc: doc, Data: msg})); r.Status != http.StatusOK {
		t.Fatalf("late write: %d %s", r.Status, r.Body)
	}
	js.do(t, map[string]any{"cmd": "wait-entry", "url": "automerge:" + doc, "id": id}, nil)
	var h struct {
		Heads []string `json:"heads"`
	}
	js.do(t, map[string]any{"cmd": "heads", "url": "automerge:" + doc}, &h)
	local, _ := servertest.MustPull(t, base, reader, doc, "00dd00dd")
	if want := hexHeads(local.Heads()); !slices.Equal(sorted(h.Heads), want) {
		t.Fatalf("after the late write the phone has %v, the server %v", h.Heads, want)
	}
	js.do(t, map[string]any{"cmd": "quit"}, nil)
}

func hexHeads(hs []automerge.ChangeHash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.String()
	}
	return sorted(out)
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
