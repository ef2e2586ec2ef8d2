package engine

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/sync/store"
)

// TestEncodeSyncState: the handmade state is byte for byte what automerge
// saves for a peer that shares exactly those heads, and automerge loads
// it.
func TestEncodeSyncState(t *testing.T) {
	d := automerge.New()
	for i := range 5 {
		if err := d.RootMap().Set(fmt.Sprint("k", i), int64(i)); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Commit("c"); err != nil {
			t.Fatal(err)
		}
	}
	// Two heads: a fork merged in.
	other, err := d.Fork()
	if err != nil {
		t.Fatal(err)
	}
	_ = other.RootMap().Set("x", true)
	if _, err := other.Commit("x"); err != nil {
		t.Fatal(err)
	}
	_ = d.RootMap().Set("y", true)
	if _, err := d.Commit("y"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Merge(other); err != nil {
		t.Fatal(err)
	}
	// A peer that starts empty and syncs to the end with d.
	peer := automerge.New()
	a, b := automerge.NewSyncState(d), automerge.NewSyncState(peer)
	for range 10 {
		m1, ok1 := a.GenerateMessage()
		if ok1 {
			if _, err := b.ReceiveMessage(m1.Bytes()); err != nil {
				t.Fatal(err)
			}
		}
		m2, ok2 := b.GenerateMessage()
		if ok2 {
			if _, err := a.ReceiveMessage(m2.Bytes()); err != nil {
				t.Fatal(err)
			}
		}
		if !ok1 && !ok2 {
			break
		}
	}
	want := a.Save()
	got := encodeSyncState(d.Heads())
	if len(d.Heads()) != 2 || !bytes.Equal(got, want) {
		t.Fatalf("encodeSyncState(%d heads) = %x, automerge saves %x", len(d.Heads()), got, want)
	}
	if _, err := automerge.LoadSyncState(d, got); err != nil {
		t.Fatalf("automerge does not load the state: %v", err)
	}
}

// TestInSyncAnswerSeesRacingWrite: a write stored between the snapshot
// check and the in-sync answer (the race that kept a phone from ever
// getting an update) still notifies the session, and the session's next
// message brings the peer to the server's heads. Watching after the check
// instead would miss that notification.
func TestInSyncAnswerSeesRacingWrite(t *testing.T) {
	ctx := context.Background()
	n, err := store.StartNATS(ctx, store.NATSConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = n.Close() }()
	st, err := store.Open(ctx, n.JetStream(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := New(Config{Store: st, Policy: allowAll{}, Actor: "00aa"})
	if err := e.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Close() }()
	const doc = "4NMNnkMhL8jXrdJ9jamS2b2WYiWd"
	set := func(key string) func(d *automerge.Doc) ([]byte, error) {
		return func(d *automerge.Doc) ([]byte, error) { return nil, d.RootMap().Set(key, true) }
	}
	if err := e.Create(ctx, doc, set("first")); err != nil {
		t.Fatal(err)
	}
	if err := e.CompactSnapshot(ctx, doc); err != nil {
		t.Fatal(err)
	}
	snap, err := e.ReadSnapshot(ctx, Peer{}, doc)
	if err != nil || !snap.Complete {
		t.Fatalf("ReadSnapshot = %+v, %v; want a complete snapshot", snap, err)
	}
	// The peer imported the snapshot.
	peer, err := automerge.Load(snap.Data)
	if err != nil {
		t.Fatal(err)
	}
	pss := automerge.NewSyncState(peer)
	first, ok := pss.GenerateMessage()
	if !ok {
		t.Fatal("the peer has no first message")
	}

	notified := make(chan string, 4)
	s, err := e.NewSession(Peer{Device: "d", Member: "m", Actor: "0b"}, func(d string) { notified <- d })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	afterInSyncCheck = func(string) {
		if err := e.Update(ctx, doc, set("racing")); err != nil {
			t.Error(err)
		}
	}
	ans, err := s.Receive(ctx, doc, first.Bytes())
	afterInSyncCheck = nil
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ans, encodeInSync(peer.Heads())) {
		t.Fatalf("the first message was not answered in sync")
	}
	if _, err := pss.ReceiveMessage(ans); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-notified:
		if d != doc {
			t.Fatalf("notified of %s, want %s", d, doc)
		}
	default:
		t.Fatal("the write stored while the first message was answered did not notify the session")
	}
	// The push (what the transport does on the notification), then the
	// ordinary exchange until neither side has anything to say.
	msg, err := s.Generate(ctx, doc)
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if msg == nil {
			break
		}
		if _, err := pss.ReceiveMessage(msg); err != nil {
			t.Fatal(err)
		}
		m, ok := pss.GenerateMessage()
		if !ok {
			break
		}
		if msg, err = s.Receive(ctx, doc, m.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	want, err := e.Heads(ctx, doc)
	if err != nil {
		t.Fatal(err)
	}
	if got := peer.Heads(); len(got) != 1 || len(want) != 1 || got[0] != want[0] {
		t.Fatalf("the peer ends with heads %v, the server's are %v", got, want)
	}
	if v, err := peer.RootMap().Get("racing"); err != nil || v.IsVoid() {
		t.Fatalf("the peer lacks the racing write: %v %v", v, err)
	}
}
