// Package server is the circle server's composition root, and only that:
// it reads the configuration, starts the embedded nats-server with
// JetStream, opens the store (sync/store) and the sync engine
// (sync/engine), builds the circle's authority (package authority) on
// them, serves the HTTP API (package mobileapi) with the authority's
// features, runs the scheduler that ticks the authority's clock, and
// shuts all of it down in order.
//
// Init creates a circle in a data directory (its key, its store and, via
// authority.Found, its documents); Open serves one; Close stops it.
// Everything a client was told is stored is in JetStream before the answer
// leaves, so a killed process loses nothing acknowledged.
package server
