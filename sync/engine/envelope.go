package engine

import (
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// envelope is what the engine stores for every chunk and snapshot: the
// automerge bytes and the policy's records describing what they added, so
// that derived indexes can be rebuilt at start without loading documents.
type envelope struct {
	Automerge []byte   `cbor:"1,keyasint"`
	Records   [][]byte `cbor:"2,keyasint,omitempty"`
}

var cborEnc = func() cbor.EncMode {
	m, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return m
}()

var cborDec = func() cbor.DecMode {
	m, err := cbor.DecOptions{MaxArrayElements: 1 << 20, MaxNestedLevels: 8}.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}()

func encodeEnvelope(am []byte, records [][]byte) []byte {
	b, err := cborEnc.Marshal(envelope{Automerge: am, Records: records})
	if err != nil {
		// Marshalling two byte fields cannot fail.
		panic(fmt.Sprintf("engine: encode envelope: %v", err))
	}
	return b
}

func decodeEnvelope(b []byte) (envelope, error) {
	var env envelope
	if err := cborDec.Unmarshal(b, &env); err != nil {
		return envelope{}, fmt.Errorf("decode stored envelope: %w", err)
	}
	return env, nil
}
