package crdt

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/mr-tron/base58"
)

// DocID is an automerge-repo compatible document id: the base58check
// encoding of 16 random bytes (payload followed by the first four bytes of
// a double SHA-256 of the payload).
type DocID string

// ErrBadDocID is returned by ParseDocID for a string that is not a valid id.
var ErrBadDocID = errors.New("not an automerge document id")

// NewDocID returns a fresh random document id.
func NewDocID() DocID {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crdt: reading random bytes: %v", err))
	}
	return DocID(base58.Encode(appendChecksum(b[:])))
}

// ParseDocID checks that s is a base58check encoding of 16 bytes and
// returns it as a DocID. It returns ErrBadDocID otherwise.
func ParseDocID(s string) (DocID, error) {
	if len(s) == 0 || len(s) > 40 {
		return "", ErrBadDocID
	}
	raw, err := base58.Decode(s)
	if err != nil || len(raw) != 20 {
		return "", ErrBadDocID
	}
	want := appendChecksum(raw[:16])
	if string(want[16:]) != string(raw[16:]) {
		return "", ErrBadDocID
	}
	return DocID(s), nil
}

// URL returns the automerge-repo URL of the document, "automerge:<id>".
func (id DocID) URL() string { return "automerge:" + string(id) }

func appendChecksum(payload []byte) []byte {
	first := sha256.Sum256(payload)
	second := sha256.Sum256(first[:])
	out := make([]byte, 0, len(payload)+4)
	out = append(out, payload...)
	return append(out, second[:4]...)
}
