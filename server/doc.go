// Package server is the circle server's composition root: it starts the
// embedded nats-server with JetStream, opens the store and the sync engine,
// rebuilds the ledger index, and serves the HTTP API (package mobileapi).
//
// It is also the circle's authority, the only writer of the server-written
// documents (roster, charter, governance, audit): it enrols members and
// devices, issues tokens, implements the sync engine's Policy (the write
// rules of DESIGN.md §4, with crdt's pure checks) and opens new ledger
// segments when one grows past its bound.
//
// Init creates a circle in a data directory; Open serves one; Close stops
// it. Everything a client was told is stored is in JetStream before the
// answer leaves, so a killed process loses nothing acknowledged.
package server
