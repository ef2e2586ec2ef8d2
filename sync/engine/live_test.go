package engine_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/sync/engine"
)

// TestEvictedDocumentsAreCollected: with a budget so small that every
// document is evicted after each request, documents that were created,
// updated, viewed, synced in batches and in live sessions are all
// collected once evicted; nothing in the engine keeps a reference to an
// evicted automerge document (which would keep its C memory).
func TestEvictedDocumentsAreCollected(t *testing.T) {
	e, _, closeAll := openEngine(t, t.TempDir())
	defer closeAll()
	ctx := context.Background()
	const docs = 6
	ids := make([]string, docs)
	for i := range ids {
		ids[i] = fmt.Sprintf("4NMNnkMhL8jXrdJ9jamS2b2WYi%02d", i)
		if err := e.Create(ctx, ids[i], func(d *automerge.Doc) ([]byte, error) {
			return nil, d.RootMap().Set("items", automerge.NewMap())
		}); err != nil {
			t.Fatal(err)
		}
	}
	n := make(notices, 64)
	s, err := e.NewSession(engine.Peer{Device: "live", Member: "m", Actor: "0c"}, n.notify)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for round := range 3 {
		for i, id := range ids {
			if err := e.Update(ctx, id, func(d *automerge.Doc) ([]byte, error) {
				items, err := d.RootMap().Get("items")
				if err != nil {
					return nil, err
				}
				return nil, items.Map().Set(fmt.Sprintf("r%d", round), int64(i))
			}); err != nil {
				t.Fatal(err)
			}
			if _, err := e.Heads(ctx, id); err != nil {
				t.Fatal(err)
			}
			peer := engine.Peer{Device: fmt.Sprintf("dev%d", i), Member: "m", Actor: fmt.Sprintf("%02x", i+1)}
			local := automerge.New()
			if err := local.SetActorID(peer.Actor); err != nil {
				t.Fatal(err)
			}
			if err := syncPeer(t, e, peer, id, local, automerge.NewSyncState(local)); err != nil {
				t.Fatal(err)
			}
			write(t, local, fmt.Sprintf("from-%d-%d", round, i), "w")
			if err := syncPeer(t, e, peer, id, local, automerge.NewSyncState(local)); err != nil {
				t.Fatal(err)
			}
			live := automerge.New()
			if err := exchange(t, s, id, automerge.NewSyncState(live)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if e.LiveDocs() == 0 {
		t.Fatal("no live documents counted after loading some: the count is not kept")
	}
	// Collected documents' cleanups run after a collection, on their own
	// goroutine: wait for them, bounded.
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		live, loaded := e.LiveDocs(), e.LoadedDocs()
		if live == int64(loaded) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d automerge documents still live, %d loaded: evicted documents are kept alive", live, loaded)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
