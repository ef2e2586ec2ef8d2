package engine

import (
	"context"

	"github.com/circles-coop/circles/sync/store"
)

// Store is what the engine needs of its persistence: exactly the methods
// of *store.Store it calls. The server passes a *store.Store; tests wrap
// one to make writes fail halfway.
type Store interface {
	// Load returns a document's latest snapshot and the chunks stored
	// after it; an error wrapping store.ErrNotFound when nothing is stored
	// for the document.
	Load(ctx context.Context, doc string) (store.Doc, error)
	// Each calls fn with what Load would return for every stored document
	// (Engine.Replay).
	Each(ctx context.Context, fn func(doc string, d store.Doc) error) error
	// AppendChunks stores one chunk per write and returns each write's
	// sequence, in batch order. When some writes fail it returns a
	// *store.BatchError naming them, and the sequences of those that
	// succeeded (0 for a failed write): a batch is not atomic.
	AppendChunks(ctx context.Context, batch []store.ChunkWrite) ([]uint64, error)
	// PutSnapshot stores a compacted snapshot of doc covering its chunks up
	// to the sequence covers, then purges them.
	PutSnapshot(ctx context.Context, doc string, data []byte, covers uint64) error
	// SyncStates is the bucket of the per device and document sync states.
	SyncStates() store.KV
}

var _ Store = (*store.Store)(nil)
