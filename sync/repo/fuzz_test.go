package repo

import (
	"errors"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// FuzzDecode: any frame decodes to a message with a type and a sender, or
// to errMalformed; never a panic.
func FuzzDecode(f *testing.F) {
	for _, v := range []any{
		map[string]any{"type": "join", "senderId": "p", "peerMetadata": map[string]any{"isEphemeral": true}, "supportedProtocolVersions": []string{"1"}},
		map[string]any{"type": "sync", "senderId": "p", "targetId": "s", "documentId": "4NMNnkMhL8jXrdJ9jamS2b2WYiWd", "data": []byte{0x42, 0}},
		map[string]any{"type": "remote-heads-changed", "senderId": "p", "newHeads": map[string]any{"s": map[string]any{"heads": []string{"ab"}, "timestamp": 1.5}}},
		map[string]any{"type": 1},
		[]any{1, 2},
	} {
		b, err := cbor.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0xa1, 0x64, 't', 'y', 'p', 'e', 0xf7})
	f.Fuzz(func(t *testing.T, frame []byte) {
		m, err := decode(frame)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("decode error %v is not errMalformed", err)
			}
			return
		}
		if m.Type == "" || m.SenderID == "" {
			t.Fatalf("decode accepted %+v without a type or sender", m)
		}
	})
}
