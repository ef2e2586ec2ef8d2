// Serving stored snapshots to devices: a new device's first sync starts
// from a document's compacted save (fetched over HTTP, cacheable) instead
// of replaying its history change by change through sync messages, and a
// device that holds exactly what the stored snapshot holds is answered
// without loading the document into automerge.

package engine

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/crdt/amchange"
	"github.com/circles-coop/circles/sync/store"
)

// ErrNoSnapshot means the document has no stored snapshot (it was never
// compacted); the device syncs it the ordinary way.
var ErrNoSnapshot = errors.New("no stored snapshot")

// Snapshot is a document's stored compacted save, as served to devices.
type Snapshot struct {
	// Data is the automerge save (what automerge's load takes).
	Data []byte
	// Hash is the hex SHA-256 of Data: it names the bytes, so a URL
	// holding it never changes meaning.
	Hash string
	// Complete reports whether the snapshot holds every stored change of
	// the document; if not, sync brings the rest.
	Complete bool
}

// snapshotStore is what serving snapshots needs of the store beyond the
// Store interface: *store.Store has it; a Store without it serves none.
type snapshotStore interface {
	SnapshotOf(ctx context.Context, doc string) (store.StoredSnapshot, error)
}

// snapCache remembers, per document, the stored snapshot that holds every
// stored change of it: its hash, size and heads. An entry exists only
// while no chunk was stored after that snapshot (persist drops it), so it
// states what the document holds without loading it. Entries are set under
// the document's lock, like writes, so a write can never be overtaken by a
// stale entry. It holds a few hundred bytes a document.
type snapCache struct {
	mu sync.Mutex
	m  map[string]snapInfo
}

type snapInfo struct {
	hash  string
	size  int
	heads []automerge.ChangeHash
}

func (c *snapCache) get(doc string) (snapInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	si, ok := c.m[doc]
	return si, ok
}

func (c *snapCache) set(doc string, si snapInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]snapInfo)
	}
	c.m[doc] = si
}

func (c *snapCache) drop(doc string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, doc)
}

func hashOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// ReadSnapshot returns doc's stored snapshot for peer, checking read rights
// exactly as Sync does, without loading the document: the bytes come from
// the store as they were saved. Errors: ErrUnknownDoc, ErrForbidden,
// ErrNoSnapshot, ErrStore.
func (e *Engine) ReadSnapshot(ctx context.Context, peer Peer, doc string) (Snapshot, error) {
	if err := e.cfg.Policy.CheckRead(peer, doc); err != nil {
		return Snapshot{}, fmt.Errorf("doc %s: %w", doc, err)
	}
	ss, ok := e.cfg.Store.(snapshotStore)
	if !ok {
		return Snapshot{}, fmt.Errorf("doc %s: %w", doc, ErrNoSnapshot)
	}
	xs, release, err := e.acquire([]string{doc})
	if err != nil {
		return Snapshot{}, err
	}
	stored, err := ss.SnapshotOf(ctx, doc)
	var snap Snapshot
	if err == nil {
		snap, err = e.noteStored(doc, stored)
	}
	_ = xs
	release()
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Snapshot{}, fmt.Errorf("doc %s: %w", doc, ErrNoSnapshot)
	case err != nil:
		return Snapshot{}, fmt.Errorf("doc %s: %w: %v", doc, ErrStore, err)
	}
	return snap, nil
}

// ReadLatestSnapshot is ReadSnapshot after making the stored snapshot
// hold everything stored for doc (CompactSnapshot): a device that starts
// from it then only needs the in-sync answer. Compacting loads doc once
// after each write to it, like compaction after CompactEvery chunks.
func (e *Engine) ReadLatestSnapshot(ctx context.Context, peer Peer, doc string) (Snapshot, error) {
	if err := e.cfg.Policy.CheckRead(peer, doc); err != nil {
		return Snapshot{}, fmt.Errorf("doc %s: %w", doc, err)
	}
	if err := e.CompactSnapshot(ctx, doc); err != nil {
		return Snapshot{}, err
	}
	return e.ReadSnapshot(ctx, peer, doc)
}

// noteStored decodes a stored snapshot and, when it is complete and its
// heads can be read from the save, remembers it; doc's lock is held.
func (e *Engine) noteStored(doc string, stored store.StoredSnapshot) (Snapshot, error) {
	env, err := decodeEnvelope(stored.Data)
	if err != nil {
		return Snapshot{}, err
	}
	snap := Snapshot{Data: env.Automerge, Hash: hashOf(env.Automerge), Complete: stored.Complete()}
	if snap.Complete {
		if heads, ok := amchange.SavedHeads[automerge.ChangeHash](env.Automerge); ok {
			e.snaps.set(doc, snapInfo{hash: snap.Hash, size: len(snap.Data), heads: heads})
		}
	}
	return snap, nil
}

// noteComplete remembers a stored snapshot known to hold all of doc (at
// start, from Replay, before any write can come).
func (e *Engine) noteComplete(doc string, saved []byte) {
	if heads, ok := amchange.SavedHeads[automerge.ChangeHash](saved); ok {
		e.snaps.set(doc, snapInfo{hash: hashOf(saved), size: len(saved), heads: heads})
	}
}

// SnapshotHash returns the hash of doc's stored snapshot if it is known
// to hold everything stored for doc (after CompactSnapshot or a
// ReadSnapshot since the last write), without reading the store.
func (e *Engine) SnapshotHash(doc string) (hash string, size int, ok bool) {
	si, ok := e.snaps.get(doc)
	return si.hash, si.size, ok
}

// CompactSnapshot makes doc's stored snapshot hold everything stored for
// it: when chunks were stored after the snapshot (or there is none), the
// document is loaded, saved and stored as its snapshot, as compaction
// does; otherwise only the stored snapshot is read. It is meant for
// documents that no longer change much (closed ledger segments), so that
// devices fetch them whole. One document at a time is loaded.
func (e *Engine) CompactSnapshot(ctx context.Context, doc string) error {
	ss, ok := e.cfg.Store.(snapshotStore)
	if !ok {
		return nil
	}
	if _, ok := e.snaps.get(doc); ok {
		return nil
	}
	xs, release, err := e.acquire([]string{doc})
	if err != nil {
		return err
	}
	defer release()
	x := xs[0]
	stored, err := ss.SnapshotOf(ctx, doc)
	if err == nil && stored.Complete() {
		_, err = e.noteStored(doc, stored)
		if err == nil {
			if _, ok := e.snaps.get(doc); ok {
				return nil
			}
		}
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("compact %s: %w: %v", doc, ErrStore, err)
	}
	// A document loaded only to be compacted is unloaded right after:
	// devices start from the snapshot and are answered without it, so
	// keeping it until it is idle would only hold memory.
	wasLoaded := x.doc != nil
	if err := e.ensureLoaded(ctx, x); err != nil {
		return err
	}
	if !wasLoaded {
		defer e.unloadCompacted(x)
	}
	rec, err := e.cfg.Policy.Snapshot(x.id, x.doc)
	if err != nil {
		return fmt.Errorf("compact %s: snapshot record: %w", doc, err)
	}
	saved := x.doc.Save()
	if err := e.cfg.Store.PutSnapshot(ctx, x.id, encodeEnvelope(saved, nonNil(rec)), x.lastSeq); err != nil {
		return fmt.Errorf("compact %s: %w: %v", doc, ErrStore, err)
	}
	x.chunks = 0
	x.size.Store(max(int64(len(saved))*snapshotFactor, int64(x.changes)*bytesPerChange))
	e.m.compactions.Inc()
	e.noteSaved(x, saved)
	return nil
}

// noteSaved remembers the snapshot just stored for x, which holds all of
// x; x is locked and loaded. Changes waiting for their dependencies are
// saved with the document but are not part of its heads: then the
// snapshot is not remembered.
func (e *Engine) noteSaved(x *entry, saved []byte) {
	if len(x.queued) > 0 {
		e.snaps.drop(x.id)
		return
	}
	e.snaps.set(x.id, snapInfo{hash: hashOf(saved), size: len(saved), heads: x.doc.Heads()})
}

// inSyncAnswer answers, without loading doc, a peer whose messages for it
// carry no change and state exactly the heads of doc's remembered
// snapshot: the peer holds all of doc, and the answer says so. ok is false
// when the ordinary sync must run.
func (e *Engine) inSyncAnswer(doc string, msgs [][]byte) (answer []byte, ok bool) {
	heads, ok := e.inSyncHeads(doc, msgs)
	if !ok {
		return nil, false
	}
	return encodeInSync(heads), true
}

// inSyncHeads is inSyncAnswer's test: the heads of doc's remembered
// snapshot when msgs carry no change and state exactly them (counted as
// an in-sync answer).
func (e *Engine) inSyncHeads(doc string, msgs [][]byte) ([]automerge.ChangeHash, bool) {
	si, known := e.snaps.get(doc)
	if !known || len(msgs) == 0 {
		return nil, false
	}
	for _, m := range msgs {
		heads, changes, ok := messageHeads(m)
		if !ok || changes > 0 || !crdt.SameHeads(heads, si.heads) {
			return nil, false
		}
	}
	e.m.inSync.Inc()
	return si.heads, true
}

// messageHeads reads the heads and the number of changes of a sync
// message already accepted by decodeMessage.
func messageHeads(data []byte) (heads []automerge.ChangeHash, changes int, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			ok = false
		}
	}()
	sm, err := automerge.LoadSyncMessage(data)
	if err != nil {
		return nil, 0, false
	}
	return sm.Heads(), len(sm.Changes()), true
}

// encodeInSync builds the automerge sync message (format 0x42) of a peer
// whose document has exactly heads: its heads, nothing needed, and one
// "have" whose last sync is those heads with an empty Bloom filter (it
// has everything up to them), and no changes. Layout, as automerge-rs
// encodes it: 0x42, heads, need, haves (each: last-sync hashes, Bloom
// bytes), changes; hash lists are a LEB128 count and 32-byte hashes,
// byte strings a LEB128 length and the bytes.
func encodeInSync(heads []automerge.ChangeHash) []byte {
	b := make([]byte, 0, 8+2*32*len(heads))
	hashes := func(hs []automerge.ChangeHash) {
		b = binary.AppendUvarint(b, uint64(len(hs)))
		for _, h := range hs {
			b = append(b, h[:]...)
		}
	}
	b = append(b, 0x42)
	hashes(heads)
	hashes(nil)                    // need
	b = binary.AppendUvarint(b, 1) // one have
	hashes(heads)                  // its last sync
	b = binary.AppendUvarint(b, 0) // an empty Bloom filter
	b = binary.AppendUvarint(b, 0) // no changes
	return b
}

func messageData(ds []decoded) [][]byte {
	out := make([][]byte, len(ds))
	for i, d := range ds {
		out[i] = d.msg.Data
	}
	return out
}

// releaseAtRest hands the Go heap's free pages back to the operating
// system once no document is loaded any more (all evicted: the server is
// at rest). runtime.GC alone leaves them to the background scavenger,
// which returns them slowly, so a server that served a burst of first
// syncs would stay at its peak for minutes. While documents are loaded
// (under load) nothing is done: the heap would only grow again.
func (e *Engine) releaseAtRest() {
	e.mu.Lock()
	idle := e.loaded == 0
	e.mu.Unlock()
	if idle {
		// JetStream gives a block's buffer back to its pool in a
		// cleanup, which runs after the collection that found the cache
		// holding it unreachable, and a sync.Pool drops what it holds
		// over two more collections: without these the buffers (4 and
		// 8 MiB each) stay at rest.
		for range 3 {
			runtime.GC()
			time.Sleep(10 * time.Millisecond) // cleanups run
		}
		debug.FreeOSMemory()
	}
}

// unloadCompacted drops a document CompactSnapshot loaded (x locked),
// keeping the sync states of its peers as eviction does, and asks the
// engine's loop to free its automerge memory.
func (e *Engine) unloadCompacted(x *entry) {
	if len(x.queued) > 0 || len(x.sessions) > 0 {
		return // in use by a live session or waiting changes: eviction decides
	}
	for dev, ss := range x.peers {
		e.markDirty(dev, x.id, ss)
	}
	e.unload(x)
	e.account()
	e.requestReclaim()
}
