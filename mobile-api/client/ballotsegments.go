package client

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"slices"

	"github.com/automerge/automerge-go"
)

// closedBallotsHeld lists the member's earlier ballots documents
// (GET /v1/circle members[].ballots_closed; the server opens a new ballots
// document once one holds its bound of items) that this device holds with
// changes the server may lack, and that refs does not list: a vote written
// offline into what was then the current ballots document reaches the
// server by syncing it, even when the sync that first saw the switch did
// not finish. A closed document whose local heads are those of its last
// converged sync costs nothing (its save's header is read, not loaded); a
// device that never held one does not fetch it.
func closedBallotsHeld(info DeviceInfo, refs []docRef, s store) []docRef {
	if info.Circle == nil {
		return nil
	}
	var out []docRef
	for _, m := range info.Circle.Members {
		if m.MemberID != info.MemberID {
			continue
		}
		for i, id := range m.BallotsClosed {
			if checkID(id) != nil || !s.has(id) || slices.ContainsFunc(refs, func(r docRef) bool { return r.id == id }) {
				continue
			}
			if s.inSyncWithServer(id) {
				continue
			}
			out = append(out, docRef{id: id, label: fmt.Sprintf("my ballots #%d", i+1), own: true})
		}
	}
	return out
}

// inSyncWithServer reports whether the stored document id has exactly the
// heads of its last converged sync, reading the heads from its save's
// header without loading it. Anything it cannot tell counts as not.
func (s store) inSyncWithServer(id string) bool {
	synced, ok := s.syncedHeads(id)
	if !ok {
		return false
	}
	data, err := os.ReadFile(s.docPath(id))
	if err != nil {
		return false
	}
	heads, ok := saveHeads(data)
	if !ok || len(heads) != len(synced) {
		return false
	}
	for _, h := range heads {
		if !slices.ContainsFunc(synced, func(x automerge.ChangeHash) bool { return x == h }) {
			return false
		}
	}
	return true
}

// saveHeads reads the heads from an automerge save that is exactly one
// document chunk (what Doc.Save writes): magic 85 6f 4a 83, a 4-byte
// checksum, chunk type 0, a LEB128 length, then the actors (a count and
// length-prefixed ids) and the heads (a count and 32-byte hashes). ok is
// false for anything else.
func saveHeads(b []byte) (heads []automerge.ChangeHash, ok bool) {
	if len(b) < 10 || !bytes.Equal(b[:4], []byte{0x85, 0x6f, 0x4a, 0x83}) || b[8] != 0 {
		return nil, false
	}
	p := b[9:]
	n, k := binary.Uvarint(p)
	if k <= 0 || n != uint64(len(p)-k) {
		return nil, false
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
	heads = make([]automerge.ChangeHash, count)
	for i := range heads {
		copy(heads[i][:], p[32*i:])
	}
	return heads, true
}
