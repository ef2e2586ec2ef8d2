// Per-device sync states of the batched sync: loaded from the store's
// KV bucket on first use, kept with the loaded document, flushed in the
// background every SyncStateFlush and when a document is evicted.

package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/circles-coop/circles/sync/store"
)

// syncState returns the peer's sync state for x, loading it from the store
// or starting a fresh one.
func (e *Engine) syncState(ctx context.Context, x *entry, device string) (*automerge.SyncState, error) {
	if ss, ok := x.peers[device]; ok {
		return ss, nil
	}
	if x.peers == nil {
		x.peers = make(map[string]*automerge.SyncState)
	}
	key := syncKey(device, x.id)
	e.dirtyMu.Lock()
	raw, pending := e.dirty[key]
	e.dirtyMu.Unlock()
	if !pending {
		b, _, err := e.cfg.Store.SyncStates().Get(ctx, key)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return nil, fmt.Errorf("load sync state: %w: %v", ErrStore, err)
		default:
			raw = b
		}
	}
	var ss *automerge.SyncState
	if raw != nil {
		loaded, err := automerge.LoadSyncState(x.doc, raw)
		if err != nil {
			e.log.Warn("discarding unreadable sync state", "doc", x.id, "device", device, "err", err)
		} else {
			ss = loaded
		}
	}
	if ss == nil {
		ss = automerge.NewSyncState(x.doc)
	}
	x.peers[device] = ss
	return ss, nil
}

// resetSyncState replaces the peer's sync state by its persistent form
// (the heads both sides share), dropping in-flight bookkeeping.
func (e *Engine) resetSyncState(x *entry, device string, ss *automerge.SyncState) (*automerge.SyncState, error) {
	fresh, err := automerge.LoadSyncState(x.doc, ss.Save())
	if err != nil {
		return nil, fmt.Errorf("reset sync state: %w", err)
	}
	x.peers[device] = fresh
	return fresh, nil
}

func syncKey(device, doc string) string { return device + "." + doc }

func (e *Engine) markDirty(device, doc string, ss *automerge.SyncState) {
	b := ss.Save()
	e.dirtyMu.Lock()
	e.dirty[syncKey(device, doc)] = b
	e.dirtyMu.Unlock()
}

func (e *Engine) flushLoop() {
	defer close(e.done)
	t := time.NewTicker(e.cfg.SyncStateFlush)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case now := <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := e.flushSyncStates(ctx); err != nil {
				e.log.Warn("flush sync states", "err", err)
			}
			cancel()
			e.evictWhere(now.Add(-e.cfg.IdleEvict))
			e.watchOutside()
			e.releaseWhenQuiet(now)
		case <-e.reclaim:
			// Requests that arrive meanwhile are coalesced into one.
			if !e.reclaimMemory() { // reclaim.go
				return
			}
		}
	}
}

// FlushSyncStates writes the sync states changed since the last flush
// now, instead of at the next tick of the background loop (a backup
// calls it so it holds every device's state up to the moment it starts).
func (e *Engine) FlushSyncStates(ctx context.Context) error { return e.flushSyncStates(ctx) }

func (e *Engine) flushSyncStates(ctx context.Context) error {
	e.dirtyMu.Lock()
	batch := e.dirty
	e.dirty = make(map[string][]byte)
	e.dirtyMu.Unlock()
	for k, v := range batch {
		if _, err := e.cfg.Store.SyncStates().Put(ctx, k, v); err != nil {
			// The store is unwell: stop rather than wait out every key, and
			// keep what is not written for the next flush (unless a newer
			// state came meanwhile). A lost sync state costs a round trip.
			e.dirtyMu.Lock()
			for k, v := range batch {
				if _, newer := e.dirty[k]; !newer {
					e.dirty[k] = v
				}
			}
			e.dirtyMu.Unlock()
			return fmt.Errorf("flush %d sync states: %w", len(batch), err)
		}
		delete(batch, k)
	}
	return nil
}
