package client

import (
	"fmt"
	"os"
	"slices"

	"github.com/automerge/automerge-go"
	"github.com/circles-coop/circles/crdt/amchange"
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
	heads, ok := amchange.SavedHeads[automerge.ChangeHash](data)
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
