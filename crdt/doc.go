// Package crdt holds the circle's Automerge documents: their kinds and ids,
// their schemas, typed access to them, the write rules a change must pass,
// and the views derived from them (balances, signals).
//
// The package is pure: it does no I/O and knows nothing of HTTP or NATS.
// Callers hand it *automerge.Doc values and decoded changes.
package crdt
