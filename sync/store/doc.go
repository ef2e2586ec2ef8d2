// Package store is the circle server's persistence on NATS JetStream, and
// the embedded nats-server that provides it.
//
// # Embedded server
//
// StartNATS runs nats-server in-process with JetStream keeping its files in
// NATSConfig.Dir and connects to it in-process (no TCP needed; a client
// listener is optional). NATS.Close drains and stops it. An external
// NATS/JetStream cluster works too: Open takes any jetstream.JetStream.
//
// # Documents
//
// The store keeps document data as opaque bytes; the sync engine decides
// what they mean. A document id is 1..64 characters of [A-Za-z0-9]
// (automerge-repo's base58 ids), used directly as a subject token.
//
//   - Stream CIRC_CHUNKS, subjects circ.chunk.<doc>: the document's
//     incremental chunks, appended with AppendChunk or AppendChunks. A
//     chunk's Seq is its stream sequence: increasing per document, shared
//     with other documents, so not contiguous.
//   - Stream CIRC_SNAPS, subjects circ.snap.<doc>, one message per subject:
//     the latest snapshot, with header Circ-Covers naming the highest chunk
//     Seq it includes.
//
// PutSnapshot writes the snapshot first and only then purges the covered
// chunks. If the process dies in between, the covered chunks stay behind;
// Load skips them (it returns only chunks with Seq > covers) and the next
// PutSnapshot purges them. Load reads the chunks before the snapshot, so a
// concurrent compaction can never make it miss a chunk. Reads use batched
// direct gets (one request returns thousands of messages), so loading all
// documents at start (Each) costs a few round trips per document.
//
// # Small state
//
// KV buckets hold what is overwritten rather than appended: SyncStates
// (a state not written for Options.SyncStateTTL, 30 days, expires), Meta,
// Invites (see KV), and the replay guard for token ids (ClaimJTI), whose
// entries expire after Options.JTITTL.
//
// # Durability
//
// A write is acknowledged once JetStream has written it to its files. By
// default JetStream does not fsync each write (it syncs every 2 minutes),
// so an acknowledged write survives the process being killed (kill -9, a
// panic, an OOM kill: the kernel holds the data) but not a power cut or a
// kernel crash, which can lose up to the last sync interval. With
// NATSConfig.SyncAlways every write is fsynced before it is acknowledged,
// which survives power loss at the cost of write throughput: on the
// development VM a sequential acknowledged append took ~24 µs without and
// ~110 µs with SyncAlways (BenchmarkAppendChunk); on an SD card or a cheap
// SSD an fsync costs milliseconds. JetStream fsyncs each message on its
// own, so batching (AppendChunks) saves round trips but not fsyncs. The
// default suits a circle server on a VPS or a laptop; turn SyncAlways on
// for a Raspberry Pi without a reliable power supply, or run an R3 cluster.
package store
