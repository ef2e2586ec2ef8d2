package mobileapi_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/circles-coop/circles/authority/fault"

	"github.com/automerge/automerge-go"

	mobileapi "github.com/circles-coop/circles/mobile-api"
	"github.com/circles-coop/circles/sync/engine"
	"github.com/circles-coop/circles/wire"
)

// realSyncBody returns a POST /v1/sync body carrying a real automerge sync
// message with a few changes, as a device would send it.
func realSyncBody(tb testing.TB) []byte {
	tb.Helper()
	d := automerge.New()
	for i, k := range []string{"a", "b", "c"} {
		if err := d.Path("entries", k).Set(map[string]any{"id": k, "quantity": float64(i + 1)}); err != nil {
			tb.Fatal(err)
		}
		if _, err := d.Commit("x"); err != nil {
			tb.Fatal(err)
		}
	}
	peer := automerge.New()
	ours, theirs := automerge.NewSyncState(d), automerge.NewSyncState(peer)
	m1, _ := theirs.GenerateMessage()
	if _, err := ours.ReceiveMessage(m1.Bytes()); err != nil {
		tb.Fatal(err)
	}
	m2, _ := ours.GenerateMessage()
	b, _ := json.Marshal(wire.SyncRequest{Messages: []wire.SyncMessage{
		{Doc: "4NMNnkMhL8jXrdJ9jamS2b2WYiWd", Data: m1.Bytes()},
		{Doc: "4NMNnkMhL8jXrdJ9jamS2b2WYiWd", Data: m2.Bytes()},
	}})
	return b
}

// FuzzDecodeSyncRequest feeds arbitrary bodies through the decoding path of
// POST /v1/sync: the body's JSON as bind decodes it, the request checks,
// and the automerge sync message decoder. It must never panic, and every
// refusal must be a client error.
func FuzzDecodeSyncRequest(f *testing.F) {
	f.Add(realSyncBody(f))
	f.Add([]byte(`{"messages":[]}`))
	f.Add([]byte(`{"messages":[{"doc":"x","data":"QgA="}]}`))
	f.Add([]byte(`{"messages":[{"doc":"x","data":"Qv////8="}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var req wire.SyncRequest
		if err := mobileapi.DecodeJSON(body, 1<<20, &req); err != nil {
			var ae *fault.Error
			if !errors.As(err, &ae) || ae.Code != fault.InvalidRequest {
				t.Fatalf("DecodeJSON error %v is not invalid_request", err)
			}
			return
		}
		msgs, err := mobileapi.SyncMessages(req, 256)
		if err != nil {
			var ae *fault.Error
			if !errors.As(err, &ae) || (ae.Code != fault.InvalidRequest && ae.Code != fault.TooLarge) {
				t.Fatalf("SyncMessages error %v is not a client error", err)
			}
			return
		}
		for _, m := range msgs {
			changes, err := engine.DecodeMessage(m.Data)
			if err != nil {
				if !errors.Is(err, engine.ErrBadMessage) {
					t.Fatalf("DecodeMessage error %v does not wrap ErrBadMessage", err)
				}
				continue
			}
			for _, ch := range changes {
				_ = ch.ActorID()
				_ = ch.Hash()
			}
		}
	})
}
