package server_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/google/uuid"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// TestSyncRetryIsSafe replays every sync request of a device (as a client
// does when a response is lost) and drops some responses entirely: the
// server must neither refuse the repeats nor lose anything, and the two
// sides must still converge.
func TestSyncRetryIsSafe(t *testing.T) {
	c := servertest.Start(t, "Retry Circle")
	url := c.URL()
	alice := servertest.MustEnroll(t, url, c.FounderInvite, "Alice")
	ledger := servertest.MustCircle(t, url, alice).Docs["ledger"]

	// The server has entries the device lacks (written over REST) ...
	for i := 0; i < 5; i++ {
		if r := servertest.Call(t, url, "POST", "/v1/ledger/entries", alice.Token, servertest.MustJSON(t, servertest.ValidEntry(uuid.NewString()))); r.Status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
	}
	// ... and the device has entries the server lacks, on its own copy.
	local, ss := servertest.MustPull(t, url, alice, ledger, alice.Actor)
	for i := 0; i < 5; i++ {
		id := uuid.NewString()
		if err := crdt.PutEntry(local, crdt.Entry{ID: id, Kind: "meal", Quantity: 1, Note: "soup", At: mustTime(t, "2026-11-02T12:00:00Z")}); err != nil {
			t.Fatal(err)
		}
		if _, err := local.Commit("meal"); err != nil {
			t.Fatal(err)
		}
	}
	if r := servertest.Call(t, url, "POST", "/v1/ledger/entries", alice.Token, servertest.MustJSON(t, servertest.ValidEntry(uuid.NewString()))); r.Status != http.StatusCreated {
		t.Fatalf("create: %d", r.Status)
	}

	for round := 0; round < 30; round++ {
		m, ok := ss.GenerateMessage()
		if !ok {
			break
		}
		body := servertest.SyncBody(t, wire.SyncMessage{Doc: ledger, Data: m.Bytes()})
		first := servertest.Call(t, url, "POST", "/v1/sync", alice.Token, body)
		retry := servertest.Call(t, url, "POST", "/v1/sync", alice.Token, body)
		for _, r := range []servertest.Response{first, retry} {
			if r.Status != http.StatusOK {
				t.Fatalf("round %d: %d %s", round, r.Status, r.Body)
			}
		}
		if round%2 == 1 {
			continue // this round's answers are lost
		}
		var resp wire.SyncResponse
		_ = json.Unmarshal(retry.Body, &resp)
		for _, m := range resp.Messages {
			if _, err := ss.ReceiveMessage(m.Data); err != nil {
				t.Fatalf("receive: %v", err)
			}
		}
	}
	// A fresh pull shows what the server holds; both must match.
	server, _ := servertest.MustPull(t, url, alice, ledger, automerge.NewActorID())
	got, _, err := crdt.ReadLedger(local)
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := crdt.ReadLedger(server)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 11 || len(want) != 11 {
		t.Errorf("device has %d entries and server %d, want 11 each", len(got), len(want))
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return at
}
