package crdt

import (
	"bytes"
	"slices"

	"github.com/automerge/automerge-go"
)

// SameHeads reports whether a and b name the same set of changes, the way
// heads are compared to see whether a document changed (Doc.Heads before
// and after). automerge returns heads sorted, so the usual case is an
// element-wise match; heads in another order compare equal too.
func SameHeads(a, b []automerge.ChangeHash) bool {
	if len(a) != len(b) {
		return false
	}
	if slices.Equal(a, b) {
		return true
	}
	cmpHash := func(x, y automerge.ChangeHash) int { return bytes.Compare(x[:], y[:]) }
	return slices.Equal(slices.SortedFunc(slices.Values(a), cmpHash), slices.SortedFunc(slices.Values(b), cmpHash))
}
