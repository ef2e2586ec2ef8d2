package engine_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/sync/engine"
)

// exchange runs a live session with a local document until neither side
// has anything to say.
func exchange(t *testing.T, s *engine.Session, doc string, ss *automerge.SyncState) error {
	t.Helper()
	for round := 0; round < 50; round++ {
		m, ok := ss.GenerateMessage()
		if !ok {
			return nil
		}
		reply, err := s.Receive(context.Background(), doc, m.Bytes())
		if err != nil {
			return err
		}
		if reply != nil {
			if _, err := ss.ReceiveMessage(reply); err != nil {
				return err
			}
		}
	}
	return fmt.Errorf("no convergence in 50 rounds")
}

// notices collects the documents a session is told about.
type notices chan string

func (n notices) notify(doc string) {
	select {
	case n <- doc:
	default:
	}
}

func (n notices) wait(t *testing.T, doc string) {
	t.Helper()
	select {
	case got := <-n:
		if got != doc {
			t.Fatalf("notified about %s, want %s", got, doc)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no notification for %s within 5 s", doc)
	}
}

func (n notices) none(t *testing.T) {
	t.Helper()
	select {
	case got := <-n:
		t.Fatalf("notified about %s, want no notification", got)
	default:
	}
}

func write(t *testing.T, d *automerge.Doc, key, msg string) {
	t.Helper()
	items, err := d.RootMap().Get("items")
	if err != nil {
		t.Fatal(err)
	}
	if err := items.Map().Set(key, "v"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Commit(msg); err != nil {
		t.Fatal(err)
	}
}

func has(t *testing.T, d *automerge.Doc, key string) bool {
	t.Helper()
	v, err := d.Path("items", key).Get()
	if err != nil {
		t.Fatal(err)
	}
	return v.Kind() != automerge.KindVoid
}

// TestSessionSyncPushAndEviction: two live sessions on one document (with
// a memory budget so small that the document is evicted after every call,
// so the sessions' states are rebuilt each time). A change by one reaches
// the other by a push: the other is notified and Generate gives the
// message; so does a change by the server (Update). The writer itself is
// not notified.
func TestSessionSyncPushAndEviction(t *testing.T) {
	e, _, closeAll := openEngine(t, t.TempDir())
	defer closeAll()
	ctx := context.Background()
	const doc = "4NMNnkMhL8jXrdJ9jamS2b2WYiWd"
	if err := e.Create(ctx, doc, func(d *automerge.Doc) ([]byte, error) {
		return nil, d.RootMap().Set("items", automerge.NewMap())
	}); err != nil {
		t.Fatal(err)
	}
	type side struct {
		s     *engine.Session
		n     notices
		local *automerge.Doc
		ss    *automerge.SyncState
	}
	open := func(dev, actor string) side {
		n := make(notices, 16)
		s, err := e.NewSession(engine.Peer{Device: dev, Member: "m", Actor: actor}, n.notify)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		local := automerge.New()
		if err := local.SetActorID(actor); err != nil {
			t.Fatal(err)
		}
		return side{s, n, local, automerge.NewSyncState(local)}
	}
	a, b := open("a", "0a"), open("b", "0b")
	for _, x := range []side{a, b} {
		if err := exchange(t, x.s, doc, x.ss); err != nil {
			t.Fatalf("first sync: %v", err)
		}
	}

	write(t, a.local, "from-a", "a1")
	if err := exchange(t, a.s, doc, a.ss); err != nil {
		t.Fatalf("sync a's change: %v", err)
	}
	a.n.none(t)
	b.n.wait(t, doc)
	// The push, then the rest of the exchange as b's repo would run it.
	msg, err := b.s.Generate(ctx, doc)
	if err != nil || msg == nil {
		t.Fatalf("Generate after a's change = %v, %v; want a message", msg, err)
	}
	if _, err := b.ss.ReceiveMessage(msg); err != nil {
		t.Fatal(err)
	}
	if err := exchange(t, b.s, doc, b.ss); err != nil {
		t.Fatal(err)
	}
	if !has(t, b.local, "from-a") {
		t.Fatalf("b's copy lacks a's change after the push")
	}

	if err := e.Update(ctx, doc, func(d *automerge.Doc) ([]byte, error) {
		items, err := d.RootMap().Get("items")
		if err != nil {
			return nil, err
		}
		return nil, items.Map().Set("from-server", "v")
	}); err != nil {
		t.Fatal(err)
	}
	a.n.wait(t, doc)
	b.n.wait(t, doc)
	msg, err = a.s.Generate(ctx, doc)
	if err != nil || msg == nil {
		t.Fatalf("Generate after the server's change = %v, %v; want a message", msg, err)
	}
	if _, err := a.ss.ReceiveMessage(msg); err != nil {
		t.Fatal(err)
	}
	if err := exchange(t, a.s, doc, a.ss); err != nil {
		t.Fatal(err)
	}
	if !has(t, a.local, "from-server") {
		t.Fatalf("a's copy lacks the server's change after the push")
	}

	// A change by HTTP batch sync (Sync) is pushed too.
	httpPeer := engine.Peer{Device: "h", Member: "m", Actor: "0c"}
	local := automerge.New()
	_ = local.SetActorID(httpPeer.Actor)
	lss := automerge.NewSyncState(local)
	if err := syncPeer(t, e, httpPeer, doc, local, lss); err != nil {
		t.Fatal(err)
	}
	write(t, local, "from-http", "h1")
	if err := syncPeer(t, e, httpPeer, doc, local, lss); err != nil {
		t.Fatal(err)
	}
	for _, x := range []side{a, b} {
		x.n.wait(t, doc)
		msg, err := x.s.Generate(ctx, doc)
		if err != nil || msg == nil {
			t.Fatalf("Generate after the HTTP change = %v, %v; want a message", msg, err)
		}
		if _, err := x.ss.ReceiveMessage(msg); err != nil {
			t.Fatal(err)
		}
		if err := exchange(t, x.s, doc, x.ss); err != nil {
			t.Fatal(err)
		}
		if !has(t, x.local, "from-http") {
			t.Fatalf("a session's copy lacks the HTTP change after the push")
		}
	}
}

// TestSessionRefusal: a refused message (before or after applying) is a
// *RefusedError naming its changes, changes nothing stored, and the
// session goes on with its other documents and later messages.
func TestSessionRefusal(t *testing.T) {
	e, _, closeAll := openEngine(t, t.TempDir())
	defer closeAll()
	ctx := context.Background()
	docs := []string{"4NMNnkMhL8jXrdJ9jamS2b2WYiWd", "2YnfbnYBmHMf3Gp1nA8HpPMHFq5d"}
	for _, doc := range docs {
		if err := e.Create(ctx, doc, func(d *automerge.Doc) ([]byte, error) {
			return nil, d.RootMap().Set("items", automerge.NewMap())
		}); err != nil {
			t.Fatal(err)
		}
	}
	s, err := e.NewSession(engine.Peer{Device: "a", Member: "m", Actor: "0a"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	locals := make([]*automerge.Doc, 2)
	states := make([]*automerge.SyncState, 2)
	for i, doc := range docs {
		locals[i] = automerge.New()
		_ = locals[i].SetActorID("0a")
		states[i] = automerge.NewSyncState(locals[i])
		if err := exchange(t, s, doc, states[i]); err != nil {
			t.Fatal(err)
		}
	}
	for _, msg := range []string{"forbidden", "reject-after"} {
		t.Run(msg, func(t *testing.T) {
			before, err := e.Heads(ctx, docs[0])
			if err != nil {
				t.Fatal(err)
			}
			// A local fork, so the refused change stays out of the local
			// copy used afterwards.
			fork, err := locals[0].Fork()
			if err != nil {
				t.Fatal(err)
			}
			_ = fork.SetActorID("0a")
			write(t, fork, "bad-"+msg, msg)
			ch, err := fork.Changes(locals[0].Heads()...)
			if err != nil || len(ch) != 1 {
				t.Fatalf("fork changes = %d, %v", len(ch), err)
			}
			fss, err := automerge.LoadSyncState(fork, states[0].Save())
			if err != nil {
				t.Fatal(err)
			}
			err = exchange(t, s, docs[0], fss)
			var ref *engine.RefusedError
			if !errors.As(err, &ref) || !errors.Is(err, errForbidden) {
				t.Fatalf("refused message: err = %v, want a *RefusedError wrapping the policy's error", err)
			}
			if ref.Doc != docs[0] || len(ref.Changes) != 1 || ref.Changes[0] != ch[0].Hash() {
				t.Errorf("RefusedError = %+v, want doc %s and change %s", ref, docs[0], ch[0].Hash())
			}
			after, err := e.Heads(ctx, docs[0])
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("heads after a refused message = %v, want %v", after, before)
			}
			// The other document, and the same one, still sync.
			write(t, locals[1], "ok-"+msg, "fine")
			if err := exchange(t, s, docs[1], states[1]); err != nil {
				t.Fatalf("other document after a refusal: %v", err)
			}
			write(t, locals[0], "ok-"+msg, "fine")
			if err := exchange(t, s, docs[0], states[0]); err != nil {
				t.Fatalf("same document after a refusal: %v", err)
			}
			for i, doc := range docs {
				if err := e.View(ctx, doc, func(d *automerge.Doc) error {
					if !has(t, d, "ok-"+msg) {
						t.Errorf("doc %d lacks the change made after the refusal", i)
					}
					if has(t, d, "bad-"+msg) {
						t.Errorf("doc %d holds the refused change", i)
					}
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestSessionEndsWithEngine: closing the engine closes every session's
// Done, and a closed session refuses further calls.
func TestSessionEndsWithEngine(t *testing.T) {
	e, _, closeAll := openEngine(t, t.TempDir())
	s, err := e.NewSession(engine.Peer{Device: "a", Member: "m", Actor: "0a"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	closeAll()
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("session Done not closed after the engine closed")
	}
	if _, err := s.Generate(context.Background(), "4NMNnkMhL8jXrdJ9jamS2b2WYiWd"); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Generate after Close: err = %v, want ErrClosed", err)
	}
	if _, err := e.NewSession(engine.Peer{Device: "b"}, nil); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("NewSession after Close: err = %v, want ErrClosed", err)
	}
	s.Close()
}
