package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/circles-coop/circles/sync/store"
)

// TestSnapshotRestore: a snapshot of every stream, restored on another
// server, gives the same documents (snapshots, covers, chunks with their
// sequences) and the same KV values at the same revisions; the next
// append continues the sequence.
func TestSnapshotRestore(t *testing.T) {
	ctx := testCtx(t)
	s, _ := MustNewStore(t)
	MustAppend(t, s, "docA", "a1", "a2", "a3")
	seqs := MustAppend(t, s, "docB", "b1", "b2")
	if err := s.PutSnapshot(ctx, "docB", []byte("B-compacted"), seqs[1]); err != nil {
		t.Fatal(err)
	}
	MustAppend(t, s, "docB", "b3")
	big := bytes.Repeat([]byte("x"), 300<<10) // several snapshot chunks
	MustAppend(t, s, "docC", string(big))
	if _, err := s.Meta().Put(ctx, "circle", []byte("meta")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SyncStates().Put(ctx, "dev1/docA", []byte("state")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Invites().Put(ctx, "inv", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Invites().Put(ctx, "inv", []byte("2")); err != nil { // revision 2
		t.Fatal(err)
	}

	snaps, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatalf("Snapshot() error = %v", err)
	}
	if len(snaps) != len(store.Streams()) {
		t.Fatalf("Snapshot() = %d streams, want %d", len(snaps), len(store.Streams()))
	}

	n2 := MustNATS(t, t.TempDir())
	if err := store.RestoreStreams(ctx, n2.JetStream(), snaps, 1); err != nil {
		t.Fatalf("RestoreStreams() error = %v", err)
	}
	r := MustStore(t, n2, store.Options{})
	for _, doc := range []string{"docA", "docB", "docC"} {
		want, err := s.DocBytes(ctx, doc)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.DocBytes(ctx, doc)
		if err != nil {
			t.Fatalf("restored DocBytes(%s) error = %v", doc, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("restored %s differs:\n%.200s\nwant\n%.200s", doc, got, want)
		}
	}
	for _, kv := range []struct {
		a, b store.KV
		key  string
	}{{s.Meta(), r.Meta(), "circle"}, {s.SyncStates(), r.SyncStates(), "dev1/docA"}, {s.Invites(), r.Invites(), "inv"}} {
		v1, rev1, _ := kv.a.Get(ctx, kv.key)
		v2, rev2, err := kv.b.Get(ctx, kv.key)
		if err != nil || !bytes.Equal(v1, v2) || rev1 != rev2 {
			t.Fatalf("restored %s = %q rev %d (%v), want %q rev %d", kv.key, v2, rev2, err, v1, rev1)
		}
	}
	// Compare-and-set against a revision read before the backup still works.
	_, rev, _ := r.Invites().Get(ctx, "inv")
	if _, err := r.Invites().Update(ctx, "inv", []byte("3"), rev); err != nil {
		t.Fatalf("Update at the restored revision: %v", err)
	}
	s1, _ := s.AppendChunk(ctx, "docA", []byte("next"))
	s2, err := r.AppendChunk(ctx, "docA", []byte("next"))
	if err != nil || s1 != s2 {
		t.Fatalf("next sequence after restore = %d (%v), want %d as on the original", s2, err, s1)
	}

	// Restoring again onto the same server is refused, not merged.
	if err := store.RestoreStreams(ctx, n2.JetStream(), snaps, 1); !errors.Is(err, store.ErrStreamExists) {
		t.Fatalf("RestoreStreams() on a server with the streams = %v, want ErrStreamExists", err)
	}
}

// TestSnapshotWaitsForWrites: writes that start while a snapshot is taken
// wait for it and land afterwards; every write acknowledged before it is in
// it, none that started after it.
func TestSnapshotWaitsForWrites(t *testing.T) {
	ctx := testCtx(t)
	s, _ := MustNewStore(t)
	const writers, each = 4, 1000
	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; i < each; i++ {
				data := fmt.Sprintf("w%d-%d", w, i)
				if _, err := s.AppendChunk(ctx, "load", []byte(data)); err != nil {
					t.Errorf("AppendChunk: %v", err)
					return
				}
				mu.Lock()
				acked[data] = true
				mu.Unlock()
			}
		}()
	}
	close(start)
	time.Sleep(20 * time.Millisecond)
	mu.Lock()
	before := len(acked)
	ackedBefore := make(map[string]bool, before)
	for k := range acked {
		ackedBefore[k] = true
	}
	mu.Unlock()
	snaps, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if before == 0 || len(acked) != writers*each {
		t.Fatalf("%d writes before the snapshot, %d in all, want some and %d", before, len(acked), writers*each)
	}

	n2 := MustNATS(t, t.TempDir())
	if err := store.RestoreStreams(ctx, n2.JetStream(), snaps, 1); err != nil {
		t.Fatal(err)
	}
	r := MustStore(t, n2, store.Options{})
	d, err := r.Load(ctx, "load")
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]bool{}
	for i, c := range d.Chunks {
		in[string(c.Data)] = true
		if i > 0 && c.Seq != d.Chunks[i-1].Seq+1 {
			t.Fatalf("restored chunks have a gap at seq %d: a write was half in the snapshot", c.Seq)
		}
	}
	for k := range ackedBefore {
		if !in[k] {
			t.Fatalf("chunk %s, acknowledged before the snapshot, is not in it", k)
		}
	}
	if len(in) == writers*each {
		t.Fatalf("every write is in the snapshot: it did not run under load")
	}
}
