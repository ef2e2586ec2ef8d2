package engine_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/sync/engine"
	"github.com/circles-coop/circles/sync/store"
)

// openPolicy lets everybody read and write everything, except changes whose
// commit message is "forbidden" (refused before applying) or "reject-after"
// (refused after applying); it records one record per accepted batch.
type openPolicy struct{}

var errForbidden = errors.New("forbidden change")

func (openPolicy) CheckRead(engine.Peer, string) error { return nil }

func (openPolicy) CheckChanges(_ engine.Peer, _ string, _ *automerge.Doc, changes []engine.Change) error {
	for _, ch := range changes {
		if ch.Message() == "forbidden" {
			return errForbidden
		}
	}
	return nil
}

func (openPolicy) Accept(_ string, _ *automerge.Doc, applied []engine.Change) ([]byte, error) {
	for _, ch := range applied {
		if ch.Message() == "reject-after" {
			return nil, errForbidden
		}
	}
	return []byte(fmt.Sprint(len(applied))), nil
}

func (openPolicy) Snapshot(string, *automerge.Doc) ([]byte, error) { return []byte("snap"), nil }

func openEngine(t *testing.T, dir string, opts ...func(*engine.Config)) (*engine.Engine, *store.Store, func()) {
	t.Helper()
	ctx := context.Background()
	n, err := store.StartNATS(ctx, store.NATSConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, n.JetStream(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := engine.Config{Store: st, Policy: openPolicy{}, Actor: "00aa", CompactEvery: 7, MemoryBudget: 1}
	for _, o := range opts {
		o(&cfg)
	}
	e := engine.New(cfg)
	if err := e.Open(ctx); err != nil {
		t.Fatal(err)
	}
	return e, st, func() {
		if err := e.Close(); err != nil {
			t.Errorf("engine Close: %v", err)
		}
		if err := n.Close(); err != nil {
			t.Errorf("NATS Close: %v", err)
		}
	}
}

// syncPeer runs rounds between a local document and the engine until
// neither side has anything to say.
func syncPeer(t *testing.T, e *engine.Engine, peer engine.Peer, doc string, local *automerge.Doc, ss *automerge.SyncState) error {
	for round := 0; round < 50; round++ {
		m, ok := ss.GenerateMessage()
		if !ok {
			return nil
		}
		out, err := e.Sync(context.Background(), peer, []engine.Message{{Doc: doc, Data: m.Bytes()}})
		if err != nil {
			return err
		}
		for _, o := range out {
			if _, err := ss.ReceiveMessage(o.Data); err != nil {
				return err
			}
		}
	}
	return fmt.Errorf("no convergence in 50 rounds")
}

// changeMessage syncs a fresh device document with the engine, writes to
// it and commits one change, and returns the document, its sync state and
// the device's next message, which carries that change. The protocol may rightly leave the
// change out (its hash can be a false positive in the Bloom filter of what
// the engine has, about once in a hundred), so it tries again, with a new
// document whose change differs, until the message carries it.
func changeMessage(t *testing.T, e *engine.Engine, peer engine.Peer, doc, commit string, write func(*automerge.Doc) error) (*automerge.Doc, *automerge.SyncState, []byte) {
	t.Helper()
	for attempt := 0; attempt < 20; attempt++ {
		local := automerge.New()
		if err := local.SetActorID(peer.Actor); err != nil {
			t.Fatal(err)
		}
		ss := automerge.NewSyncState(local)
		if err := syncPeer(t, e, peer, doc, local, ss); err != nil {
			t.Fatal(err)
		}
		if err := write(local); err != nil {
			t.Fatal(err)
		}
		if err := local.RootMap().Set("attempt", int64(attempt)); err != nil {
			t.Fatal(err)
		}
		if _, err := local.Commit(commit); err != nil {
			t.Fatal(err)
		}
		if m, ok := ss.GenerateMessage(); ok && len(m.Changes()) == 1 {
			return local, ss, m.Bytes()
		}
	}
	t.Fatalf("no message carried the %q change in 20 attempts", commit)
	return nil, nil, nil
}

// TestConcurrentPeersConvergeAndPersist: many peers write into one
// document at once through the engine (with a memory budget so small that
// the document is evicted after every request, and compaction every 7
// chunks); all converge, and a fresh engine on the same store has it all.
func TestConcurrentPeersConvergeAndPersist(t *testing.T) {
	dir := t.TempDir()
	e, _, closeAll := openEngine(t, dir)
	const doc = "4NMNnkMhL8jXrdJ9jamS2b2WYiWd"
	if err := e.Create(context.Background(), doc, func(d *automerge.Doc) ([]byte, error) {
		return nil, d.RootMap().Set("items", automerge.NewMap())
	}); err != nil {
		t.Fatal(err)
	}
	const peers, perPeer = 8, 10
	locals := make([]*automerge.Doc, peers)
	var wg sync.WaitGroup
	errs := make(chan error, peers)
	for p := 0; p < peers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			peer := engine.Peer{Device: fmt.Sprintf("dev%d", p), Member: "m", Actor: fmt.Sprintf("%02x", p+1)}
			local := automerge.New()
			_ = local.SetActorID(peer.Actor)
			ss := automerge.NewSyncState(local)
			if err := syncPeer(t, e, peer, doc, local, ss); err != nil {
				errs <- err
				return
			}
			for i := 0; i < perPeer; i++ {
				if err := local.Path("items", fmt.Sprintf("p%d-%d", p, i)).Set(int64(i)); err != nil {
					errs <- err
					return
				}
				if _, err := local.Commit("item"); err != nil {
					errs <- err
					return
				}
				if err := syncPeer(t, e, peer, doc, local, ss); err != nil {
					errs <- err
					return
				}
			}
			locals[p] = local
		}(p)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("peer: %v", err)
	}
	closeAll()

	e2, _, close2 := openEngine(t, dir)
	defer close2()
	var n int
	if err := e2.View(context.Background(), doc, func(d *automerge.Doc) error {
		n = d.Path("items").Map().Len()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != peers*perPeer {
		t.Errorf("reopened document holds %d items, want %d", n, peers*perPeer)
	}
}

// TestRefusedRequestAppliesNothing: a request whose second message is
// refused — before or after applying — leaves the store unchanged, and the
// engine answers as if the first message never came.
func TestRefusedRequestAppliesNothing(t *testing.T) {
	ctx := context.Background()
	e, st, closeAll := openEngine(t, t.TempDir())
	defer closeAll()
	docs := []string{"4NMNnkMhL8jXrdJ9jamS2b2WYiWd", "2j3ZqxGKJxqMUGRAJk6oZLKqSaqH"}
	for _, id := range docs {
		if err := e.Create(ctx, id, func(d *automerge.Doc) ([]byte, error) { return nil, d.RootMap().Set("n", int64(0)) }); err != nil {
			t.Fatal(err)
		}
	}
	peer := engine.Peer{Device: "dev", Member: "m", Actor: "0b0b"}
	setOne := func(d *automerge.Doc) error { return d.RootMap().Set("n", int64(1)) }
	message := func(t *testing.T, doc, commit string) []byte {
		_, _, m := changeMessage(t, e, peer, doc, commit, setOne)
		return m
	}
	for _, bad := range []string{"forbidden", "reject-after"} {
		t.Run(bad, func(t *testing.T) {
			before := map[string][]byte{}
			for _, id := range docs {
				before[id], _ = st.DocBytes(ctx, id)
			}
			_, err := e.Sync(ctx, peer, []engine.Message{
				{Doc: docs[0], Data: message(t, docs[0], "fine")},
				{Doc: docs[1], Data: message(t, docs[1], bad)},
			})
			if !errors.Is(err, errForbidden) {
				t.Fatalf("Sync = %v, want the policy's error", err)
			}
			for _, id := range docs {
				after, _ := st.DocBytes(ctx, id)
				if string(after) != string(before[id]) {
					t.Errorf("document %s changed in the store", id)
				}
				var n int64
				_ = e.View(ctx, id, func(d *automerge.Doc) error {
					v, err := d.Path("n").Get()
					if err == nil {
						n = v.Int64()
					}
					return err
				})
				if n != 0 {
					t.Errorf("document %s reads n=%d in memory, want 0", id, n)
				}
			}
		})
	}
}

// TestUpdateWithoutChange: an Update whose function writes nothing stores
// nothing and keeps the document usable.
func TestUpdateWithoutChange(t *testing.T) {
	ctx := context.Background()
	e, st, closeAll := openEngine(t, t.TempDir())
	defer closeAll()
	const doc = "4NMNnkMhL8jXrdJ9jamS2b2WYiWd"
	if err := e.Create(ctx, doc, func(d *automerge.Doc) ([]byte, error) { return nil, d.RootMap().Set("n", int64(1)) }); err != nil {
		t.Fatal(err)
	}
	before, _ := st.DocBytes(ctx, doc)
	if err := e.Update(ctx, doc, func(*automerge.Doc) ([]byte, error) { return nil, nil }); err != nil {
		t.Fatalf("Update(no change) = %v, want nil", err)
	}
	after, _ := st.DocBytes(ctx, doc)
	if string(before) != string(after) {
		t.Errorf("an Update without change stored something")
	}
	if err := e.Update(ctx, doc, func(d *automerge.Doc) ([]byte, error) { return nil, d.RootMap().Set("n", int64(2)) }); err != nil {
		t.Fatalf("Update after a no-op = %v", err)
	}
}

// TestUpdateErrorKeepsUntouchedDocument: an Update whose function fails
// without touching the document (a tick with nothing due) leaves it
// loaded, while one that wrote before failing, committed or not, leaves
// nothing of its write in memory or in the store.
func TestUpdateErrorKeepsUntouchedDocument(t *testing.T) {
	ctx := context.Background()
	e, _, closeAll := openEngine(t, t.TempDir(), func(c *engine.Config) { c.MemoryBudget = 64 << 20 })
	defer closeAll()
	const doc = "3tWw8Kv1v9N4r6XnYpQe2bJd7LcA"
	if err := e.Create(ctx, doc, func(d *automerge.Doc) ([]byte, error) { return nil, d.RootMap().Set("n", int64(1)) }); err != nil {
		t.Fatal(err)
	}
	n := func() int64 {
		t.Helper()
		var got int64
		if err := e.View(ctx, doc, func(d *automerge.Doc) error {
			v, err := d.RootMap().Get("n")
			if err == nil {
				got = v.Int64()
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	errNothing := errors.New("nothing due")
	if err := e.Update(ctx, doc, func(*automerge.Doc) ([]byte, error) { return nil, errNothing }); !errors.Is(err, errNothing) {
		t.Fatalf("Update = %v, want %v", err, errNothing)
	}
	if got := e.LoadedDocs(); got != 1 {
		t.Errorf("after an Update that changed nothing and failed, %d documents loaded, want 1 (kept)", got)
	}
	writes := map[string]func(d *automerge.Doc) error{
		"pending": func(d *automerge.Doc) error { return d.RootMap().Set("n", int64(5)) },
		"committed": func(d *automerge.Doc) error {
			err := d.RootMap().Set("n", int64(6))
			d.Heads() // commits the pending operation
			return err
		},
	}
	for name, write := range writes {
		if err := e.Update(ctx, doc, func(d *automerge.Doc) ([]byte, error) {
			if err := write(d); err != nil {
				return nil, err
			}
			return nil, errNothing
		}); !errors.Is(err, errNothing) {
			t.Fatalf("%s: Update = %v, want %v", name, err, errNothing)
		}
		if got := n(); got != 1 {
			t.Errorf("%s: after a failed Update, n = %d, want 1 (the write dropped)", name, got)
		}
	}
}

// TestStoreDownAppliesNothing: when the store cannot acknowledge a write,
// Sync fails with ErrStore, the engine drops the change from memory, and
// a restarted store holds nothing of it; the device's next sync, with the
// store back, delivers it.
func TestStoreDownAppliesNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	const doc = "4NMNnkMhL8jXrdJ9jamS2b2WYiWd"
	peer := engine.Peer{Device: "dev", Member: "m", Actor: "0c0c"}

	n, err := store.StartNATS(ctx, store.NATSConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, n.JetStream(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := engine.New(engine.Config{Store: st, Policy: openPolicy{}, Actor: "00aa"})
	if err := e.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.Create(ctx, doc, func(d *automerge.Doc) ([]byte, error) { return nil, d.RootMap().Set("n", int64(0)) }); err != nil {
		t.Fatal(err)
	}
	local, _, msg := changeMessage(t, e, peer, doc, "seven", func(d *automerge.Doc) error { return d.RootMap().Set("n", int64(7)) })

	n.Server().Shutdown() // the store goes away under the engine
	n.Server().WaitForShutdown()
	ctxShort, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if _, err := e.Sync(ctxShort, peer, []engine.Message{{Doc: doc, Data: msg}}); !errors.Is(err, engine.ErrStore) {
		t.Fatalf("Sync with the store down = %v, want ErrStore", err)
	}
	if err := e.Close(); err == nil {
		t.Errorf("Close with the store down flushed its sync states, want an error")
	}
	_ = n.Close()

	e2, _, close2 := openEngine(t, dir)
	defer close2()
	read := func() int64 {
		var v int64
		if err := e2.View(ctx, doc, func(d *automerge.Doc) error {
			x, err := d.Path("n").Get()
			v = x.Int64()
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if got := read(); got != 0 {
		t.Fatalf("after the failed write the store holds n=%d, want 0", got)
	}
	if err := syncPeer(t, e2, peer, doc, local, automerge.NewSyncState(local)); err != nil {
		t.Fatalf("sync with the store back: %v", err)
	}
	if got := read(); got != 7 {
		t.Errorf("after the device synced again n=%d, want 7", got)
	}
}
