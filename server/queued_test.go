package server_test

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/circles-coop/circles/crdt/amchange/amchangetest"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// A device sends changes that depend on changes nobody has: automerge
// keeps them unapplied in the loaded document, waiting. Once more of them
// wait than the engine allows, the message is refused (422, rule
// "dependencies") and the document is dropped from memory, waiting
// changes and all; the device's ordinary changes go on being accepted.
func TestChangesWaitingForMissingDependenciesAreBounded(t *testing.T) {
	c := servertest.Start(t, "Queue Circle")
	url := c.URL()
	alice := servertest.MustEnroll(t, url, c.FounderInvite, "Alice")
	doc := servertest.MustCircle(t, url, alice).Docs["ledger"]
	craft := startCraft(t, url, alice, doc)
	craft.addEntry(uuid.NewString())

	const most = 600 // more than the engine lets wait (512)
	refusedAt := -1
	for i := range most {
		ch := craft.Change()
		var missing [32]byte
		rand.Read(missing[:])
		ch.Deps = [][32]byte{missing}
		ch.Seq += uint64(i)
		chunk, hash := amchangetest.Encode(ch, craft.opts)
		msg := amchangetest.SyncMessage{Heads: [][32]byte{hash}, Changes: [][]byte{chunk}}.Encode()
		r := servertest.Call(t, url, "POST", "/v1/sync", alice.Token, servertest.SyncBody(t, wire.SyncMessage{Doc: doc, Data: msg}))
		if r.Status == http.StatusOK {
			continue
		}
		if r.Status != http.StatusUnprocessableEntity || r.Code != "rule_violation" || !strings.Contains(string(r.Body), "dependencies") {
			t.Fatalf("message %d: %d %s, want 200 or 422 naming the dependencies rule", i, r.Status, r.Body)
		}
		refusedAt = i
		break
	}
	if refusedAt < 0 {
		t.Fatalf("%d changes waiting for missing dependencies were all accepted; want a refusal past the bound", most)
	}
	if refusedAt < 16 {
		t.Errorf("refused at the %dth waiting change; a few must be allowed (a Bloom filter false positive makes some wait)", refusedAt)
	}

	// The device is not stranded: an ordinary change still goes in.
	fresh := startCraft(t, url, alice, doc)
	id := uuid.NewString()
	fresh.addEntry(id)
	if r := servertest.Call(t, url, "POST", "/v1/sync", alice.Token, servertest.SyncBody(t, wire.SyncMessage{Doc: doc, Data: fresh.message()})); r.Status != http.StatusOK {
		t.Fatalf("an ordinary change after the refusal: %d %s", r.Status, r.Body)
	}
	if _, ok := ledgerEntries(t, url, alice)[id]; !ok {
		t.Errorf("the ordinary change is not in the ledger: %v", fmt.Sprint(ledgerEntries(t, url, alice)))
	}
}
