package engine

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
)

// What a message applies is worked out in Go, from the decoded changes
// and the hashes of the changes the loaded document holds (entry.known),
// rather than by asking automerge for each change: automerge applies a
// change once every change it depends on is in the document, and keeps
// the others waiting (the sync protocol asks for their dependencies with
// "need"). After automerge applied a message, the engine compares the
// document's heads with the heads its own reckoning predicts; the heads
// of a document determine the set of changes it holds, so equal heads
// mean that exactly the expected changes entered it — the ones the policy
// checked. Any difference refuses the message and drops the document from
// memory, so nothing unchecked is ever stored.
//
// Changes that wait for their dependencies are normal in small numbers —
// a Bloom filter false positive makes a peer hold back one change and
// send its successors — but nothing is stored for them, so without a
// bound a device could fill the server's memory with changes that never
// apply while the memory budget sees nothing. The engine therefore counts
// them in the document's memory estimate and refuses a message that
// would take them past maxQueuedChanges or maxQueuedBytes: the request
// fails like any refused one, and the document is dropped from memory,
// queue and all.
const (
	maxQueuedChanges = 512
	maxQueuedBytes   = 1 << 20
	// queuedFactor estimates the memory automerge spends on a queued
	// change per byte of its encoding.
	queuedFactor = 8
)

// RuleDependencies names the refusal of a message whose changes depend on
// too much the server does not have.
const RuleDependencies = "dependencies"

// errUnexpected is the refusal of a message after which the document's
// heads are not those its checked changes lead to.
var errUnexpected = fmt.Errorf("%w: the document does not hold what the message's changes lead to", ErrBadMessage)

// has reports whether the loaded document holds the change. x.mu held.
func (x *entry) has(h automerge.ChangeHash) bool {
	_, ok := x.known[h]
	return ok
}

// unseen returns the changes of a message that the document does not hold
// yet; a retried message carries changes that were checked and applied
// when they first came. x.mu held.
func (x *entry) unseen(changes []Change) []Change {
	out := changes[:0:0]
	for _, ch := range changes {
		if !x.has(ch.Hash()) {
			out = append(out, ch)
		}
	}
	return out
}

// learnAll records every change of a freshly loaded document.
func (x *entry) learnAll(d *automerge.Doc) (int, error) {
	all, err := d.Changes()
	if err != nil {
		return 0, err
	}
	x.known = make(map[automerge.ChangeHash]struct{}, len(all))
	for _, ch := range all {
		x.known[ch.Hash()] = struct{}{}
	}
	return len(all), nil
}

// learnHeads records the change the engine itself just committed: it is
// the document's only head.
func (x *entry) learnHeads() {
	if x.known == nil {
		x.known = make(map[automerge.ChangeHash]struct{})
	}
	for _, h := range x.doc.Heads() {
		x.known[h] = struct{}{}
	}
}

// applied works out which changes entered the document when automerge
// received a message carrying changes (fresh: those the document did not
// hold before), in an order in which each comes after its dependencies,
// checks that the document's heads agree, and keeps the rest waiting.
// before are the heads before the message. On error the caller must drop
// the document (x.unload): the message is refused. x.mu held.
//
// It is called after every message, with or without changes: the Go
// parser and automerge's must agree on what a message carries, and a
// message in which the engine found nothing new must leave the heads as
// they were.
func (x *entry) applied(before []automerge.ChangeHash, fresh []Change) ([]Change, error) {
	if len(fresh) == 0 {
		if !crdt.SameHeads(before, x.doc.Heads()) {
			return nil, errUnexpected
		}
		return nil, nil
	}
	if len(x.queued) == 0 && inOrder(x, fresh) {
		// The usual message: nothing waits, and its changes are one
		// author's chain on what the document holds. All of them
		// entered, in the message's order.
		for _, ch := range fresh {
			x.known[ch.Hash()] = struct{}{}
		}
		if !sameSet(expectedHeads(before, fresh), x.doc.Heads()) {
			return nil, errUnexpected
		}
		return fresh, nil
	}
	if x.queued == nil {
		x.queued = make(map[automerge.ChangeHash]Change)
	}
	for _, ch := range fresh {
		h := ch.Hash()
		if _, ok := x.queued[h]; !ok {
			x.queued[h] = ch
			x.queuedBytes.Add(int64(len(ch.raw)))
		}
	}
	// Kahn's algorithm over the waiting changes: one is ready once each
	// of its dependencies is in the document or applied before it.
	missing := make(map[automerge.ChangeHash]int, len(x.queued))
	waiters := make(map[automerge.ChangeHash][]automerge.ChangeHash)
	var ready []automerge.ChangeHash
	for h, ch := range x.queued {
		if x.has(h) {
			delete(x.queued, h)
			x.queuedBytes.Add(-int64(len(ch.raw)))
			continue
		}
		n := 0
		for _, d := range ch.Decoded.Deps {
			dh := automerge.ChangeHash(d)
			if x.has(dh) {
				continue
			}
			n++
			waiters[dh] = append(waiters[dh], h)
		}
		missing[h] = n
		if n == 0 {
			ready = append(ready, h)
		}
	}
	// Start in the message's order, so the usual chain of one author's
	// changes comes out as it was sent.
	order := make(map[automerge.ChangeHash]int, len(fresh))
	for i, ch := range fresh {
		order[ch.Hash()] = i + 1
	}
	sortByOrder(ready, order)
	var out []Change
	for len(ready) > 0 {
		h := ready[0]
		ready = ready[1:]
		ch := x.queued[h]
		out = append(out, ch)
		x.known[h] = struct{}{}
		delete(x.queued, h)
		x.queuedBytes.Add(-int64(len(ch.raw)))
		var next []automerge.ChangeHash
		for _, w := range waiters[h] {
			if missing[w]--; missing[w] == 0 {
				next = append(next, w)
			}
		}
		sortByOrder(next, order)
		ready = append(ready, next...)
	}
	if !sameSet(expectedHeads(before, out), x.doc.Heads()) {
		return nil, errUnexpected
	}
	if n := x.queuedBytes.Load(); len(x.queued) > maxQueuedChanges || n > maxQueuedBytes {
		return nil, &crdt.RuleError{Rule: RuleDependencies, Message: fmt.Sprintf(
			"%d changes (%d bytes) wait for changes this document does not have; send the changes they depend on first (at most %d changes or %d bytes may wait)",
			len(x.queued), n, maxQueuedChanges, maxQueuedBytes)}
	}
	return out, nil
}

// inOrder reports whether changes are a chain on x: each one after the
// first depends on the one before it, and every other dependency is in x.
// (A chain holds no change twice: none is its own ancestor.)
func inOrder(x *entry, changes []Change) bool {
	for i, ch := range changes {
		onPrev := i == 0
		for _, d := range ch.Decoded.Deps {
			dh := automerge.ChangeHash(d)
			switch {
			case i > 0 && dh == changes[i-1].Hash():
				onPrev = true
			case !x.has(dh):
				return false
			}
		}
		if !onPrev {
			return false
		}
	}
	return true
}

// sortByOrder sorts hashes by their position in order; those not in it
// (changes of earlier messages) come first, in byte order.
func sortByOrder(hs []automerge.ChangeHash, order map[automerge.ChangeHash]int) {
	if len(hs) < 2 {
		return
	}
	slices.SortFunc(hs, func(a, b automerge.ChangeHash) int {
		if c := cmp.Compare(order[a], order[b]); c != 0 {
			return c
		}
		return slices.Compare(a[:], b[:])
	})
}

// expectedHeads returns the heads of a document with heads before after
// applied entered it: the old heads and the new changes, less every
// change one of the new changes depends on.
func expectedHeads(before []automerge.ChangeHash, applied []Change) map[automerge.ChangeHash]bool {
	heads := make(map[automerge.ChangeHash]bool, len(before)+1)
	for _, h := range before {
		heads[h] = true
	}
	for _, ch := range applied {
		heads[ch.Hash()] = true
	}
	for _, ch := range applied {
		for _, d := range ch.Decoded.Deps {
			delete(heads, automerge.ChangeHash(d))
		}
	}
	return heads
}

func sameSet(want map[automerge.ChangeHash]bool, got []automerge.ChangeHash) bool {
	if len(want) != len(got) {
		return false
	}
	for _, h := range got {
		if !want[h] {
			return false
		}
	}
	return true
}
