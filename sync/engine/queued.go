package engine

import (
	"fmt"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
)

// A sync message may carry changes whose dependencies the document does
// not hold yet; automerge keeps them in the loaded document, unapplied,
// until those arrive (the sync protocol asks for them with "need"). That
// is normal in small numbers — a Bloom filter false positive makes a peer
// hold back one change and send its successors — but nothing is stored
// for them, so without a bound a device could fill the server's memory
// with changes that never apply while the memory budget sees nothing.
//
// The engine therefore remembers, per loaded document, the changes it
// handed to automerge that have not entered the document, counts them in
// the document's memory estimate, and refuses a message that would take
// them past maxQueuedChanges or maxQueuedBytes: the request fails like any
// refused one, and the document is dropped from memory, queue and all.
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

// trackQueued updates x's queue after a message with changes was received
// and refuses it if the queue is now over its bounds. x.mu is held.
func (x *entry) trackQueued(changes []Change) error {
	for h := range x.queued {
		if _, err := x.doc.Change(h); err == nil {
			x.queuedBytes.Add(-x.queued[h])
			delete(x.queued, h)
		}
	}
	for _, ch := range changes {
		h := ch.Hash()
		if _, ok := x.queued[h]; ok {
			continue
		}
		if _, err := x.doc.Change(h); err == nil {
			continue
		}
		if x.queued == nil {
			x.queued = make(map[automerge.ChangeHash]int64)
		}
		n := int64(len(ch.Save()))
		x.queued[h] = n
		x.queuedBytes.Add(n)
	}
	if n := x.queuedBytes.Load(); len(x.queued) > maxQueuedChanges || n > maxQueuedBytes {
		return &crdt.RuleError{Rule: RuleDependencies, Message: fmt.Sprintf(
			"%d changes (%d bytes) wait for changes this document does not have; send the changes they depend on first (at most %d changes or %d bytes may wait)",
			len(x.queued), n, maxQueuedChanges, maxQueuedBytes)}
	}
	return nil
}
