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
// # Untrusted input
//
// The decoder never panics, allocates memory in proportion to its input or
// to the caps of a [Decoder] (never to a length or count read from the
// input), and returns an error wrapping one of [ErrTruncated],
// [ErrChecksum], [ErrNotChange], [ErrTooLarge], [ErrMalformed] or
// [ErrNotCanonical] for input it does not accept. A Decoder holds no state,
// so one may serve many goroutines.
//
// It follows automerge-rs 0.5, the engine inside automerge-go, and is
// stricter where automerge-rs is lax, so that a change it accepts means to
// Automerge exactly what it says here. Two of its checks guard automerge-go
// itself, so every change from a peer should pass Decode before it reaches
// SyncState.ReceiveMessage, Doc.LoadIncremental or Doc.Apply:
//
//   - Every actor index must name an entry of the change's actor table.
//     automerge-rs does not check this when it parses a change, and then
//     indexes out of bounds when it applies it; automerge-go is built to
//     abort on a Rust panic, so such a change of a few dozen bytes kills the
//     whole process.
//   - The change must be encoded exactly as automerge-rs 0.5 encodes it
//     ([ErrNotCanonical]). Automerge applies a change in any valid encoding,
//     but a saved document keeps operations, not change bytes: on load it
//     encodes every change again and checks the hashes against the
//     document's heads. A change encoded any other way (a run of one value
//     instead of a literal, an unsorted actor table, a value automerge would
//     drop) gets another hash, and the saved document no longer loads.
//
// Beyond the encoding, some changes are well formed but still leave a
// document that does not load again, for example an operation on an object
// or a pred on an operation that does not exist. Checking that needs the
// document; it is for the caller's write rules.
//
// Like automerge-rs 0.5 the decoder refuses change chunks whose columns are
// individually DEFLATE-compressed (automerge compresses columns only in
// documents); compression of the whole chunk (type 2) is accepted.
package amchange
