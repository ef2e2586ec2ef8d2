package crdt

import (
	"fmt"

	"github.com/automerge/automerge-go"
)

// Ballots segments: a member's ballots document grows with every vote,
// proposal and reset statement the member writes. Once the current one
// holds DefaultBallotsSegmentEntries of them, the server opens the next
// one, names it as the member's "ballots" in the roster and moves the
// old one to the member's "ballots_closed" list (oldest first). Every item
// of a ballots document is counted by the server as it is stored, so the
// old document holds nothing still to be done; devices that wrote into it
// offline may still sync it, and what they wrote there counts as before.

// DefaultBallotsSegmentEntries is how many proposals, votes and reset
// statements a ballots document holds before the next one is opened.
const DefaultBallotsSegmentEntries = 500

// docIDList is ids as a roster list value.
func docIDList(ids []DocID) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = string(id)
	}
	return out
}

// BallotsLen counts the proposals, votes and reset statements a ballots
// document holds, reading only the sizes of its three maps.
func BallotsLen(doc *automerge.Doc) (int, error) {
	n := 0
	for _, key := range []string{"proposals", "votes", "resets"} {
		v, err := doc.RootMap().Get(key)
		if err != nil {
			return 0, fmt.Errorf("ballots %s: %w", key, err)
		}
		if v.Kind() == automerge.KindVoid {
			continue
		}
		if v.Kind() != automerge.KindMap {
			return 0, fmt.Errorf("ballots %s: %w", key, ErrNotInitialized)
		}
		n += v.Map().Len()
	}
	return n, nil
}
