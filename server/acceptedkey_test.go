package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/automerge/automerge-go"
	"github.com/google/uuid"

	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// TestNewValueUnderAcceptedKeyRefused: a device that never saw an accepted
// entry writes its own value under the entry's key (no predecessor, so
// only the server's knowledge of the document's keys can refuse it). The
// server must refuse it however the entry was accepted — through REST (a
// write the policy did not see), through another device's sync, or before
// a restart — and still accept new keys afterwards.
func TestNewValueUnderAcceptedKeyRefused(t *testing.T) {
	c := servertest.Start(t, "Tool Library")
	url := c.URL()
	alice := servertest.MustEnroll(t, url, c.FounderInvite, "Alice")
	device := func() *servertest.Device {
		return servertest.MustEnroll(t, url, servertest.MustInvite(t, url, alice, "device", ""), "Alice")
	}
	// phone writes what is accepted; the late devices each prepare one
	// write offline (each its own actor, so their changes do not collide
	// in sequence numbers with one another's).
	phone, late1, late2, late3 := device(), device(), device(), device()
	ledger := servertest.MustCircle(t, url, alice).Docs["ledger"]

	putAt := func(d *servertest.Device, key string) []byte {
		return servertest.MustChangeMessage(t, url, d, ledger, d.Actor, func(doc *automerge.Doc) error {
			e := servertest.ValidEntry(key)
			e["note"] = "written by " + d.ID
			return doc.Path("entries", key).Set(e)
		})
	}
	send := func(d *servertest.Device, msg []byte) servertest.Response {
		return servertest.Call(t, url, "POST", "/v1/sync", d.Token, servertest.SyncBody(t, wire.SyncMessage{Doc: ledger, Data: msg}))
	}
	wantRefused := func(what string, r servertest.Response) {
		t.Helper()
		if r.Status != http.StatusUnprocessableEntity || !strings.Contains(string(r.Body), "already exists") {
			t.Errorf("%s: %d %s, want 422 naming the existing entry", what, r.Status, r.Body)
		}
	}
	wantAccepted := func(what string, r servertest.Response) {
		t.Helper()
		if r.Status != http.StatusOK {
			t.Fatalf("%s: %d %s, want 200", what, r.Status, r.Body)
		}
	}

	byREST, bySync, beforeRestart := uuid.NewString(), uuid.NewString(), uuid.NewString()
	// The late devices prepare their writes before any of the keys exists.
	lateREST, lateSync, lateRestart := putAt(late1, byREST), putAt(late2, bySync), putAt(late3, beforeRestart)

	// A first accepted write, so the server has looked at this ledger's
	// keys before the entries below appear.
	wantAccepted("a new entry", send(phone, putAt(phone, uuid.NewString())))

	if r := servertest.Call(t, url, "POST", "/v1/ledger/entries", alice.Token, servertest.MustJSON(t, servertest.ValidEntry(byREST))); r.Status != http.StatusCreated {
		t.Fatalf("create entry through REST: %d %s", r.Status, r.Body)
	}
	wantRefused("a value under a key written through REST", send(late1, lateREST))

	wantAccepted("the phone's entry", send(phone, putAt(phone, bySync)))
	wantRefused("a value under a key another device synced", send(late2, lateSync))

	wantAccepted("the phone's second entry", send(phone, putAt(phone, beforeRestart)))
	c.Stop()
	c.Start()
	url = c.URL()
	wantRefused("a value under a key accepted before a restart", send(late3, lateRestart))

	// The refusals left the ledger as it was, and new keys still pass.
	wantAccepted("another new entry", send(late1, putAt(late1, uuid.NewString())))
	var list wire.EntryList
	servertest.MustGetJSON(t, url, alice, "/v1/ledger/entries?limit=100", &list)
	notes := map[string]string{}
	for _, e := range list.Entries {
		notes[e.ID] = e.Note
	}
	if len(list.Entries) != 5 {
		t.Errorf("the ledger lists %d entries, want 5", len(list.Entries))
	}
	for _, id := range []string{bySync, beforeRestart} {
		if want := "written by " + phone.ID; notes[id] != want {
			t.Errorf("entry %s has note %q, want the phone's %q", id, notes[id], want)
		}
	}
}
