package server

import (
	"context"
	"fmt"
	"time"

	"github.com/circles-coop/circles/sync/engine"
	"github.com/circles-coop/circles/sync/store"
)

// FailWrites makes every write of the engine into a document for which
// fail says true fail, as a store that dies would: nothing of that batch
// is stored. It is how the tests stop the server between two steps of
// work that spans several documents.
func FailWrites(cfg *Config, fail func(doc string) bool) {
	cfg.wrapStore = func(s engine.Store) engine.Store { return failingStore{Store: s, fail: fail} }
}

// SlowSyncStateFlush makes the engine write devices' sync states only
// every d, so a test can tell a flush it asked for from the periodic one.
func SlowSyncStateFlush(cfg *Config, d time.Duration) { cfg.syncStateFlush = d }

type failingStore struct {
	engine.Store
	fail func(doc string) bool
}

func (f failingStore) AppendChunks(ctx context.Context, batch []store.ChunkWrite) ([]uint64, error) {
	for _, w := range batch {
		if f.fail(w.Doc) {
			return nil, fmt.Errorf("write of %s failed on purpose", w.Doc)
		}
	}
	return f.Store.AppendChunks(ctx, batch)
}
