// Package amchange decodes Automerge binary change chunks so that a server
// can inspect every operation an incoming change makes before it hands the
// change to automerge-go, which offers no operation-level view of a change.
//
// A change chunk is what (*automerge.Change).Save returns and what an
// Automerge sync message carries: the magic bytes 0x85 0x6f 0x4a 0x83, a
// 4-byte checksum, a chunk type (1 for a change, 2 for a DEFLATE-compressed
// change), a uLEB128 body length and the body. The body holds the change's
// metadata (dependencies, author, sequence number, first operation counter,
// time, message, the table of other actors it mentions) followed by its
// operations, stored column by column.
//
// [Decode] parses one chunk into a [Change]: the metadata plus a list of
// [Op] values, each with its [OpID], the object it acts on, the map key or
// list element it addresses, its [Action], its scalar [Value] and the
// operations it supersedes (Pred). The hash it reports is the SHA-256 of the
// uncompressed chunk, which is the change hash Automerge itself uses.
//
// The input is untrusted. The decoder never panics, allocates memory in
// proportion to its input or to the caps of a [Decoder] (never to a length
// or count read from the input), and returns an error wrapping one of
// [ErrTruncated], [ErrChecksum], [ErrNotChange], [ErrTooLarge] or
// [ErrMalformed] for input it cannot accept. It follows automerge-rs 0.5
// (the engine inside automerge-go) and is stricter where automerge-rs is
// lax, so that a change it accepts means to Automerge exactly what it says
// here: every actor index must name an entry of the actor table, encodings
// must be minimal, columns must be in order and not repeated, and columns
// of a known id must have the expected type. Like automerge-rs 0.5 it
// rejects change chunks whose columns are individually DEFLATE-compressed;
// compression of the whole chunk (type 2) is accepted.
package amchange
