package server_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/mobile-api/client"
	"github.com/circles-coop/circles/server/servertest"
)

// TestOfflineDevicesConverge is the product's everyday story: two members
// log contributions while the circle server is down, the server comes
// back, both phones sync, and everyone — both devices and the server's
// REST view — sees every entry.
func TestOfflineDevicesConverge(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t, "Bike Kitchen")

	alice, err := client.Join(ctx, t.TempDir(), c.URL(), c.FounderInvite, "Alice", "alice-phone")
	if err != nil {
		t.Fatalf("alice joins: %v", err)
	}
	inv, err := alice.Invite(ctx, false, time.Hour)
	if err != nil {
		t.Fatalf("alice invites: %v", err)
	}
	bob, err := client.Join(ctx, t.TempDir(), c.URL(), inv.Code, "Bob", "bob-phone")
	if err != nil {
		t.Fatalf("bob joins: %v", err)
	}

	c.Stop() // the server is down; the phones keep working

	const perDevice = 7
	want := map[string]string{} // entry id → author member id
	for i := 0; i < perDevice; i++ {
		for _, d := range []*client.Device{alice, bob} {
			e, err := d.Log(crdt.Entry{ID: uuid.NewString(), Kind: "hours", Quantity: float64(i + 1), Note: fmt.Sprintf("shift %d", i), At: time.Now().UTC().Add(-time.Hour)})
			if err != nil {
				t.Fatalf("Log offline: %v", err)
			}
			want[e.ID] = d.Info().MemberID
		}
	}
	if _, err := alice.Sync(ctx, nil); err == nil {
		t.Fatalf("Sync with the server down succeeded, want an error")
	}

	c.Start()
	for round := 0; round < 2; round++ { // the second pass brings each the other's entries
		for _, d := range []*client.Device{alice, bob} {
			if _, err := d.Sync(ctx, nil); err != nil {
				t.Fatalf("Sync: %v", err)
			}
		}
	}

	for _, d := range []*client.Device{alice, bob} {
		got := map[string]string{}
		entries, err := d.Entries()
		if err != nil {
			t.Fatalf("Entries: %v", err)
		}
		for _, e := range entries {
			got[e.ID] = e.Member
		}
		if len(got) != len(want) {
			t.Errorf("%s sees %d entries, want %d", d.Info().MemberName, len(got), len(want))
		}
		for id, m := range want {
			if got[id] != m {
				t.Errorf("%s: entry %s by %q, want by %q", d.Info().MemberName, id, got[id], m)
			}
		}
	}

	cl, err := alice.Client()
	if err != nil {
		t.Fatal(err)
	}
	var rest []string
	cursor := ""
	for page := 0; page < 10; page++ {
		list, err := cl.ListEntries(ctx, client.ListOptions{Limit: 5, Cursor: cursor})
		if err != nil {
			t.Fatalf("ListEntries: %v", err)
		}
		for _, e := range list.Entries {
			rest = append(rest, e.ID)
			if want[e.ID] != e.Member {
				t.Errorf("REST entry %s by %q, want by %q", e.ID, e.Member, want[e.ID])
			}
		}
		if cursor = list.NextCursor; cursor == "" {
			break
		}
	}
	if len(rest) != len(want) {
		t.Errorf("REST lists %d entries, want %d", len(rest), len(want))
	}
	sort.Strings(rest)
	for i := 1; i < len(rest); i++ {
		if rest[i] == rest[i-1] {
			t.Errorf("REST lists entry %s twice", rest[i])
		}
	}

	bal, err := cl.Balances(ctx)
	if err != nil {
		t.Fatalf("Balances: %v", err)
	}
	wantGiven := float64(perDevice * (perDevice + 1) / 2)
	for _, b := range bal.Members {
		if b.Given != wantGiven {
			t.Errorf("Balances: %s given %v, want %v", b.MemberID, b.Given, wantGiven)
		}
	}
	if len(bal.Members) != 2 {
		t.Errorf("Balances lists %d members, want 2", len(bal.Members))
	}
}
