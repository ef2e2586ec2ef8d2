// Package amchangetest builds Automerge change chunks and sync messages byte
// by byte, for tests that feed crafted input to code that must refuse it.
//
// [Encode] writes an [amchange.Change] as an uncompressed change chunk,
// exactly as automerge-rs 0.5 writes it, so that a change built here is
// indistinguishable from one automerge made; its [Options] break that
// encoding in controlled ways (a lone value written as a run of one, an
// actor table given verbatim so an operation can name an actor past its
// end). [Builder] numbers the operations of a new change on top of a
// document. [SyncMessage] is the sync message automerge-rs exchanges
// (first byte 0x42), with an encoder and a parser, so arbitrary change
// bytes can be put where a device would put its changes.
//
// The package is for tests only: it trusts its input and does not check
// that a change makes sense.
package amchangetest
