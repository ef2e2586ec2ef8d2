// Package repo serves the automerge-repo network protocol (version "1")
// over WebSocket, so that any automerge-repo client — the JavaScript
// packages with their WebSocket client adapter, or a port — syncs with the
// circle server unchanged.
//
// A Server takes upgrade requests whose device the caller has already
// authenticated (Serve). Each connection runs on an engine.Session: the
// same write rules and the same store-then-acknowledge path as the HTTP
// batch sync, with sync states kept in memory per connection and document
// and started fresh at connect, as the client's own are.
//
// The protocol, as the server speaks it:
//
//   - Frames are binary, one CBOR map each. A text frame, or one that is
//     not a CBOR map with a type and a senderId, gets an error message and
//     the connection is closed (1003, 1007); a frame over MaxFrame closes
//     it (1009).
//   - The client's join (peerMetadata or the legacy metadata, both
//     accepted; a missing supportedProtocolVersions means "1") is answered
//     with peer; a join that does not offer "1" gets an error message and
//     the connection is closed (1008). A later join with the same senderId
//     from the same device replaces the earlier connection.
//   - Messages whose senderId is not the joined peer's are dropped.
//   - request and sync: the message is checked and applied, and the
//     server answers with its sync message at once (no debounce). A
//     document the member may not read, or that does not exist, is
//     answered with doc-unavailable. A message refused by a write rule
//     changes nothing and is answered with an ephemeral message for that
//     document whose data is a CBOR Notice; the connection and its other
//     documents go on.
//   - When another writer stores a change to a document the connection
//     synced, the server sends what is new at once (a push).
//   - ephemeral, doc-unavailable, remote-subscription-change and
//     remote-heads-changed from a client are accepted and ignored: the
//     server stores no presence, relays nothing between members and
//     gossips no heads.
//
// Every connection is bounded: keep-alive pings (a client that stops
// answering is dropped), a read limit, bounded queues of incoming messages
// and outgoing frames (a client that floods or does not read is closed
// with a reason), a bounded number of documents processed at once, and a
// periodic re-check of its credentials.
package repo
