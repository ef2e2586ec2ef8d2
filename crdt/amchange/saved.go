package amchange

import (
	"bytes"
	"encoding/binary"
)

// SavedHeads reads the heads from the header of an automerge save
// without loading it. A save (what Doc.Save writes) is one document
// chunk: magic 85 6f 4a 83, a 4-byte checksum, chunk type 0, a LEB128
// length, then the actors (a count and length-prefixed ids) and the heads
// (a count and 32-byte hashes). ok is false for anything else, including
// a save followed by change chunks (changes waiting for their
// dependencies), whose heads the header does not state. The checksum is
// not checked: the caller trusts the bytes as much as the save itself.
// H is the caller's hash type (automerge.ChangeHash).
func SavedHeads[H ~[32]byte](b []byte) (heads []H, ok bool) {
	if len(b) < 10 || !bytes.Equal(b[:4], magic[:]) || b[8] != 0 {
		return nil, false
	}
	p := b[9:]
	n, k := binary.Uvarint(p)
	if k <= 0 || n != uint64(len(p)-k) {
		return nil, false // not exactly one chunk
	}
	p = p[k:]
	actors, k := binary.Uvarint(p)
	if k <= 0 || actors > uint64(len(p)) {
		return nil, false
	}
	p = p[k:]
	for range actors {
		l, k := binary.Uvarint(p)
		if k <= 0 || l > uint64(len(p)-k) {
			return nil, false
		}
		p = p[k+int(l):]
	}
	count, k := binary.Uvarint(p)
	if k <= 0 || count > uint64(len(p)-k)/32 {
		return nil, false
	}
	p = p[k:]
	heads = make([]H, count)
	for i := range heads {
		copy(heads[i][:], p[32*i:])
	}
	return heads, true
}
