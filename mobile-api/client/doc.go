// Package client is the Go SDK of the circle server's HTTP API (v1) and a
// member's device with its own offline store.
//
// [Client] speaks API v1 (API.md): enrolment, token exchange, invites, the
// circle's description, batch sync, ledger entries and balances. Every
// answer outside 2xx becomes an [*APIError] carrying the server's error code
// and message. A Client made with [WithCredentials] signs its own device
// assertions (see [NewAssertion]) and trades them for access tokens when it
// has none, when its token is about to expire, or when the server answers
// 401.
//
// [Device] is a member's device kept in a home directory:
//
//	device.json              server URL, ids, actor id, the circle as last seen
//	device.key               the device's Ed25519 private key, PKCS #8 in a
//	                         PEM block "PRIVATE KEY", mode 0600
//	docs/<docID>.automerge   each automerge document, as saved by Doc.Save
//	sync/<docID>.state       the automerge sync state with the server
//	sync/<docID>.heads       the document's heads when it last converged
//	                         with the server (hex, one per line)
//
// Every file is written atomically (temporary file, fsync, rename, fsync of
// the directory), so a crash leaves either the old or the new version. A
// lock on the home directory (flock on ".lock") keeps two processes from
// interleaving their writes.
//
// A device works without the network: [Device.Log] writes an entry into
// the member's ledger document on disk and [Device.Entries] reads the
// ledgers held locally. [Device.Sync] later exchanges automerge sync
// messages with the server over POST /v1/sync until both sides hold the
// same documents. Every document is loaded with the device's registered
// actor id, so every change it makes is attributed to this device, as the
// server's write rules demand.
//
// [Join] enrols a new device with an invite and syncs once before it
// returns: the server creates each ledger with its root maps, and a device
// that created them too before its first sync would make a concurrent map
// whose contents the merge could hide. For the same reason Log refuses
// with [ErrLedgerNotFetched] until the ledger has come from the server.
package client
