package engine_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/automerge/automerge-go"
	"github.com/google/go-cmp/cmp"

	"github.com/circles-coop/circles/sync/engine"
	"github.com/circles-coop/circles/sync/store"
)

var errInjected = errors.New("injected write failure")

// partialStore is a real store whose chunk writes to chosen documents
// fail the way the real store reports a partial failure: the other writes
// of the batch are stored, and AppendChunks returns their sequences (0 for
// a failed write) with a *store.BatchError naming the failed ones.
type partialStore struct {
	engine.Store

	mu     sync.Mutex
	fail   map[string]bool // doc → its chunk writes fail
	before func()          // if set, called before each AppendChunks
}

// beforeAppend sets a function called before each AppendChunks.
func (s *partialStore) beforeAppend(fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.before = fn
}

func (s *partialStore) setFail(docs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = map[string]bool{}
	for _, d := range docs {
		s.fail[d] = true
	}
}

func (s *partialStore) AppendChunks(ctx context.Context, batch []store.ChunkWrite) ([]uint64, error) {
	s.mu.Lock()
	if s.before != nil {
		s.before()
	}
	var pass []store.ChunkWrite
	var passAt []int
	var failed []store.WriteFailure
	for i, w := range batch {
		if s.fail[w.Doc] {
			failed = append(failed, store.WriteFailure{Index: i, Doc: w.Doc, Err: errInjected})
			continue
		}
		pass = append(pass, w)
		passAt = append(passAt, i)
	}
	s.mu.Unlock()
	if len(failed) == 0 {
		return s.Store.AppendChunks(ctx, batch)
	}
	seqs := make([]uint64, len(batch))
	if len(pass) > 0 {
		got, err := s.Store.AppendChunks(ctx, pass)
		if err != nil {
			return nil, err
		}
		for j, i := range passAt {
			seqs[i] = got[j]
		}
	}
	return seqs, &store.BatchError{Failures: failed}
}

// committedLog records what the engine's Committed hook was told.
type committedLog struct {
	mu    sync.Mutex
	calls []stored
}

// stored is one chunk's records, as Committed reports them or Replay
// finds them in the store.
type stored struct {
	Doc     string
	Seq     uint64
	Records []string
}

func newStored(doc string, seq uint64, records [][]byte) stored {
	s := stored{Doc: doc, Seq: seq}
	for _, r := range records {
		s.Records = append(s.Records, string(r))
	}
	return s
}

func (l *committedLog) committed(doc string, seq uint64, records [][]byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, newStored(doc, seq, records))
}

func (l *committedLog) get() []stored {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

// mustPartialEngine starts a real embedded JetStream in a temp dir and an
// engine on it behind a partialStore.
func mustPartialEngine(t *testing.T) (*engine.Engine, *partialStore, *store.Store, *committedLog) {
	t.Helper()
	ctx := context.Background()
	n, err := store.StartNATS(ctx, store.NATSConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("NATS Close: %v", err)
		}
	})
	st, err := store.Open(ctx, n.JetStream(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ps := &partialStore{Store: st}
	log := &committedLog{}
	e := engine.New(engine.Config{Store: ps, Policy: openPolicy{}, Actor: "00aa", Committed: log.committed})
	if err := e.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("engine Close: %v", err)
		}
	})
	return e, ps, st, log
}

// replayed returns every record the store holds, as Replay finds them.
func replayed(t *testing.T, e *engine.Engine) []stored {
	t.Helper()
	var out []stored
	if err := e.Replay(context.Background(), func(doc string, seq uint64, records [][]byte) error {
		out = append(out, newStored(doc, seq, records))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// mustDeviceChange makes a device's copy of doc, in step with the engine,
// and one change on it setting n; it returns the copy, its sync state and
// the sync message carrying the change (changeMessage).
func mustDeviceChange(t *testing.T, e *engine.Engine, peer engine.Peer, doc string, n int64) (*automerge.Doc, *automerge.SyncState, []byte) {
	t.Helper()
	return changeMessage(t, e, peer, doc, fmt.Sprintf("n=%d", n), func(d *automerge.Doc) error { return d.RootMap().Set("n", n) })
}

// TestPartialStoreFailure: a sync request writes two documents and the
// store stores the first document's chunk but fails the second's. The
// answer is ErrStore; the second document is unchanged in the store and
// in memory; the Committed hook (the server's index) is told exactly what
// the store holds — never about the failed write, and not left ignorant
// of the stored one, which it would otherwise learn only at the next
// restart's Replay; and the device's next sync converges, reporting
// every record once.
func TestPartialStoreFailure(t *testing.T) {
	ctx := context.Background()
	e, ps, st, log := mustPartialEngine(t)
	docs := []string{"4NMNnkMhL8jXrdJ9jamS2b2WYiWd", "2j3ZqxGKJxqMUGRAJk6oZLKqSaqH"}
	peer := engine.Peer{Device: "dev", Member: "m", Actor: "0d0d"}
	locals := make([]*automerge.Doc, len(docs))
	states := make([]*automerge.SyncState, len(docs))
	var msgs []engine.Message // one request carrying a change to each document
	for i, id := range docs {
		if err := e.Create(ctx, id, func(d *automerge.Doc) ([]byte, error) { return nil, d.RootMap().Set("n", int64(0)) }); err != nil {
			t.Fatal(err)
		}
		var data []byte
		locals[i], states[i], data = mustDeviceChange(t, e, peer, id, int64(i+1))
		msgs = append(msgs, engine.Message{Doc: id, Data: data})
	}
	secondBefore, err := st.DocBytes(ctx, docs[1])
	if err != nil {
		t.Fatal(err)
	}

	ps.setFail(docs[1])
	out, err := e.Sync(ctx, peer, msgs)
	if !errors.Is(err, engine.ErrStore) {
		t.Fatalf("Sync with the second write failing = %v, want ErrStore", err)
	}
	if out != nil {
		t.Errorf("Sync answered %d messages with its error, want none", len(out))
	}
	if after, _ := st.DocBytes(ctx, docs[1]); string(after) != string(secondBefore) {
		t.Errorf("the failed document %s changed in the store", docs[1])
	}
	read := func(doc string) int64 {
		t.Helper()
		var n int64
		if err := e.View(ctx, doc, func(d *automerge.Doc) error {
			v, err := d.Path("n").Get()
			n = v.Int64()
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got := read(docs[1]); got != 0 {
		t.Errorf("after the failed request %s reads n=%d in memory, want 0", docs[1], got)
	}
	got := log.get()
	for _, c := range got {
		if c.Doc == docs[1] {
			t.Errorf("Committed was told of %s's records %v, whose write failed", c.Doc, c.Records)
		}
	}
	if diff := cmp.Diff(replayed(t, e), got); diff != "" {
		t.Errorf("after the partial failure, what Committed was told differs from what the store holds (-store +committed):\n%s", diff)
	}
	// The first document's write was stored: dropped from memory with the
	// rest of the request, it reloads as the store has it.
	if got := read(docs[0]); got != 1 {
		t.Errorf("after the failed request %s, whose write was stored, reads n=%d, want 1", docs[0], got)
	}

	// The store recovers; the device resumes from the persisted form of
	// its sync states, as a device does after a failed round.
	ps.setFail()
	for i, id := range docs {
		ss, err := automerge.LoadSyncState(locals[i], states[i].Save())
		if err != nil {
			t.Fatal(err)
		}
		if err := syncPeer(t, e, peer, id, locals[i], ss); err != nil {
			t.Fatalf("the device's next sync of %s: %v", id, err)
		}
		if got := read(id); got != int64(i+1) {
			t.Errorf("after the next sync %s reads n=%d, want %d", id, got, i+1)
		}
	}
	final := replayed(t, e)
	if diff := cmp.Diff(final, log.get()); diff != "" {
		t.Errorf("after the next sync, what Committed was told differs from what the store holds (-store +committed):\n%s", diff)
	}
	for _, id := range docs {
		if n := len(slices.DeleteFunc(slices.Clone(final), func(s stored) bool { return s.Doc != id })); n != 1 {
			t.Errorf("the store holds %d records of %s, want its one change's", n, id)
		}
	}
}

// TestCancelledRequestStoreWrites: a client that goes away while its
// request's writes are being stored (its context is cancelled between
// publishing and the acknowledgements) must not leave chunks in the store
// that Committed never hears of. The engine waits for the store's answer
// whatever the caller's cancellation, so the request is stored and
// reported, and the device finds it there on its next sync.
func TestCancelledRequestStoreWrites(t *testing.T) {
	e, ps, _, log := mustPartialEngine(t)
	docs := []string{"4NMNnkMhL8jXrdJ9jamS2b2WYiWd", "2j3ZqxGKJxqMUGRAJk6oZLKqSaqH"}
	peer := engine.Peer{Device: "dev", Member: "m", Actor: "0e0e"}
	var msgs []engine.Message
	locals := make([]*automerge.Doc, len(docs))
	states := make([]*automerge.SyncState, len(docs))
	for i, id := range docs {
		if err := e.Create(context.Background(), id, func(d *automerge.Doc) ([]byte, error) { return nil, d.RootMap().Set("n", int64(0)) }); err != nil {
			t.Fatal(err)
		}
		var data []byte
		locals[i], states[i], data = mustDeviceChange(t, e, peer, id, int64(i+1))
		msgs = append(msgs, engine.Message{Doc: id, Data: data})
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ps.beforeAppend(cancel) // the client disconnects as the engine stores
	_, err := e.Sync(ctx, peer, msgs)
	ps.beforeAppend(nil)
	t.Logf("Sync with the client gone = %v", err)
	if diff := cmp.Diff(replayed(t, e), log.get()); diff != "" {
		t.Errorf("after the cancelled request, what Committed was told differs from what the store holds (-store +committed):\n%s", diff)
	}
	for i, id := range docs {
		ss, err := automerge.LoadSyncState(locals[i], states[i].Save())
		if err != nil {
			t.Fatal(err)
		}
		if err := syncPeer(t, e, peer, id, locals[i], ss); err != nil {
			t.Fatalf("the device's next sync of %s: %v", id, err)
		}
	}
	final := replayed(t, e)
	if diff := cmp.Diff(final, log.get()); diff != "" {
		t.Errorf("after the next sync, what Committed was told differs from what the store holds (-store +committed):\n%s", diff)
	}
	if len(final) != len(docs) {
		t.Errorf("the store holds %d records, want one per document", len(final))
	}
}
