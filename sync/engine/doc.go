// Package engine is the circle server's transport-neutral sync engine.
//
// It owns the in-memory copies of the circle's Automerge documents (loaded
// lazily from the store, evicted under a memory budget), one automerge sync
// state per (device, document), and the path every change takes into the
// circle:
//
//  1. decode the incoming sync messages and ask the Policy whether the
//     device may read each document and make each change (before anything
//     is applied);
//  2. apply the changes under the documents' locks and ask the Policy to
//     validate what was actually applied and describe it as a record;
//  3. store the new changes (and the record) as one chunk per document in
//     the store, waiting for the store's acknowledgement;
//  4. only then hand the records to the Committed callback (the server's
//     index) and answer with the engine's own sync messages.
//
// If any step fails for any message of a request, every document the
// request touched is reloaded from the store, so nothing of the request is
// applied. HTTP batch sync calls Sync; the WebSocket transport opens a
// Session per connection (session.go: in-memory sync states, one message
// at a time, pushes of what others stored); the server's own writes go
// through Update and Create.
package engine
