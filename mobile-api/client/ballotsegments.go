package client

import (
	"fmt"
	"slices"
)

// closedBallotsHeld lists the member's earlier ballots documents
// (GET /v1/circle members[].ballots_closed; the server opens a new ballots
// document once one holds its bound of items) that this device holds and
// refs does not list: a vote written offline into what was then the
// current ballots document reaches the server by syncing it, whenever the
// sync that first saw the switch did not finish. A device that never held
// one does not fetch it.
func closedBallotsHeld(info DeviceInfo, refs []docRef, held func(id string) bool) []docRef {
	if info.Circle == nil {
		return nil
	}
	var out []docRef
	for _, m := range info.Circle.Members {
		if m.MemberID != info.MemberID {
			continue
		}
		for i, id := range m.BallotsClosed {
			if checkID(id) != nil || !held(id) || slices.ContainsFunc(refs, func(r docRef) bool { return r.id == id }) {
				continue
			}
			out = append(out, docRef{id: id, label: fmt.Sprintf("my ballots #%d", i+1), own: true})
		}
	}
	return out
}
