package servertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/wire"
)

// MustPull syncs the document doc from the server over POST /v1/sync into
// a fresh local copy that writes as actor, and returns the copy with its
// sync state, in step with the server.
func MustPull(tb testing.TB, base string, d *Device, doc, actor string) (*automerge.Doc, *automerge.SyncState) {
	tb.Helper()
	local := automerge.New()
	if err := local.SetActorID(actor); err != nil {
		tb.Fatal(err)
	}
	ss := automerge.NewSyncState(local)
	for round := 0; round < 20; round++ {
		var out []wire.SyncMessage
		if m, ok := ss.GenerateMessage(); ok {
			out = append(out, wire.SyncMessage{Doc: doc, Data: m.Bytes()})
		}
		if len(out) == 0 {
			return local, ss
		}
		r := Call(tb, base, "POST", "/v1/sync", d.Token, MustJSON(tb, wire.SyncRequest{Messages: out}))
		if r.Status != http.StatusOK {
			tb.Fatalf("pull %s: %d %s", doc, r.Status, r.Body)
		}
		var resp wire.SyncResponse
		_ = json.Unmarshal(r.Body, &resp)
		for _, m := range resp.Messages {
			if _, err := ss.ReceiveMessage(m.Data); err != nil {
				tb.Fatalf("pull %s: receive: %v", doc, err)
			}
		}
	}
	tb.Fatalf("pull %s: no convergence in 20 rounds", doc)
	return nil, nil
}

// MustChangeMessage makes change on a pulled copy of doc, written as
// actor, and returns the sync message that carries it, unsent: the way a
// test prepares a write (often one the server must refuse).
func MustChangeMessage(tb testing.TB, base string, d *Device, doc, actor string, change func(*automerge.Doc) error) []byte {
	tb.Helper()
	// The sync protocol leaves out a change whose hash is a false positive
	// in the peer's Bloom filter (about 1 in 100) until a later round; the
	// message must carry its change, so try again with another hash.
	for try := 0; try < 10; try++ {
		local, ss := MustPull(tb, base, d, doc, actor)
		if err := change(local); err != nil {
			tb.Fatalf("attack change: %v", err)
		}
		if _, err := local.Commit(fmt.Sprintf("attack %d", try)); err != nil {
			tb.Fatalf("attack commit: %v", err)
		}
		m, ok := ss.GenerateMessage()
		if ok && len(m.Changes()) > 0 {
			return m.Bytes()
		}
	}
	tb.Fatalf("attack: the sync message never carried the change")
	return nil
}

// SyncBody is the JSON body of POST /v1/sync carrying msgs.
func SyncBody(tb testing.TB, msgs ...wire.SyncMessage) []byte {
	tb.Helper()
	return MustJSON(tb, wire.SyncRequest{Messages: msgs})
}

// ValidEntry is a ledger entry with the given id that the server accepts,
// as a map a test can spoil one field of.
func ValidEntry(id string) map[string]any {
	return map[string]any{"id": id, "kind": "hours", "quantity": 2.0, "note": "fixed the bike", "at": "2026-11-01T10:00:00Z"}
}
