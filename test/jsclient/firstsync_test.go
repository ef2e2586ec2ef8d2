package jsclient_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/mobile-api/client"
	"github.com/circles-coop/circles/server"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// firstSyncReport is what client.mjs prints in firstsync mode.
type firstSyncReport struct {
	Mode     string `json:"mode"`
	MemberID string `json:"member_id"`
	Docs     []struct {
		Doc          string   `json:"doc"`
		Heads        []string `json:"heads"`
		FromSnapshot bool     `json:"from_snapshot"`
	} `json:"docs"`
	SnapshotBytes int `json:"snapshot_bytes"`
	SyncBytes     int `json:"sync_bytes"`
	Rounds        int `json:"rounds"`
}

// TestJSClientFirstSync: a new device of a member, in JavaScript
// (@automerge/automerge), fetches every ledger segment of the circle from
// its snapshot (Automerge.load) and then syncs; it ends with exactly the
// server's heads for each, and the sync after the snapshots carries no
// change.
func TestJSClientFirstSync(t *testing.T) {
	js := mustJS(t)
	ctx := context.Background()
	tc := servertest.Start(t, "JS First Sync", servertest.WithConfig(func(cfg *server.Config) { cfg.SegmentItems = 30 }))
	base := tc.URL()
	dev, err := client.Join(ctx, t.TempDir(), base, tc.FounderInvite, "Ana", "phone")
	if err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 8; round++ {
		for i := 0; i < 12; i++ {
			if _, err := dev.Log(crdt.Entry{ID: uuid.NewString(), Kind: "skill", Quantity: 1, Note: "taught grafting", At: time.Now().UTC()}); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < 2; i++ {
			if _, err := dev.Sync(ctx, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	cl, err := dev.Client()
	if err != nil {
		t.Fatal(err)
	}
	// Closed segments are compacted in the background.
	var circle *wire.Circle
	var closed []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if circle, err = cl.Circle(ctx); err != nil {
			t.Fatal(err)
		}
		closed = closed[:0]
		for _, m := range circle.Members {
			closed = append(closed, m.Ledgers[:len(m.Ledgers)-1]...)
		}
		if len(closed) >= 2 && !slices.ContainsFunc(closed, func(d string) bool { return circle.Snapshots[d] == "" }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("closed segments %v, snapshots %v after 30 s", closed, circle.Snapshots)
		}
	}
	inv, err := dev.Invite(ctx, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got firstSyncReport
	js.run(t, &got, "--server", base, "--invite", inv.Code, "--mode", "firstsync")
	if got.Mode != "firstsync" || got.MemberID != dev.Info().MemberID {
		t.Fatalf("report %+v, want mode firstsync for member %s", got, dev.Info().MemberID)
	}
	var all []string
	for _, m := range circle.Members {
		all = append(all, m.Ledgers...)
	}
	if len(got.Docs) != len(all) {
		t.Fatalf("the JS device synced %d documents, want %d", len(got.Docs), len(all))
	}
	reader := servertest.MustEnroll(t, base, mustInvite(t, cl), "Reader")
	for _, d := range got.Docs {
		if slices.Contains(closed, d.Doc) && !d.FromSnapshot {
			t.Errorf("closed segment %s was not fetched from its snapshot", d.Doc)
		}
		local, _ := servertest.MustPull(t, base, reader, d.Doc, "00ee00ee")
		var want []string
		for _, h := range local.Heads() {
			want = append(want, h.String())
		}
		slices.Sort(want)
		slices.Sort(d.Heads)
		if !slices.Equal(d.Heads, want) {
			t.Errorf("JS heads of %s: %v, the server's: %v", d.Doc, d.Heads, want)
		}
	}
	if got.SnapshotBytes == 0 {
		t.Fatal("no snapshot bytes received")
	}
	// What the sync adds after the snapshots is the in-sync answers: no
	// change crosses the wire again.
	if got.SyncBytes > 200*len(got.Docs) {
		t.Errorf("the sync after the snapshots received %d bytes for %d documents", got.SyncBytes, len(got.Docs))
	}
}

func mustInvite(t *testing.T, cl *client.Client) string {
	t.Helper()
	inv, err := cl.CreateInvite(context.Background(), wire.InviteRequest{For: "member"})
	if err != nil {
		t.Fatal(err)
	}
	return inv.Code
}
