package store_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/circles-coop/circles/sync/store"
)

// TestFenceRefusesEveryWrite: with Options.Fence refusing, every kind of
// write fails with the fence's error and stores nothing; with it letting
// writes through they succeed again.
func TestFenceRefusesEveryWrite(t *testing.T) {
	n := MustNATS(t, t.TempDir())
	errFenced := errors.New("fenced")
	var closed atomic.Bool
	s := MustStore(t, n, store.Options{Fence: func() error {
		if closed.Load() {
			return errFenced
		}
		return nil
	}})
	ctx := testCtx(t)
	seq, err := s.AppendChunk(ctx, "doc1", []byte("a"))
	if err != nil {
		t.Fatalf("AppendChunk with the fence open: %v", err)
	}
	rev, err := s.Meta().Put(ctx, "k", []byte("v1"))
	if err != nil {
		t.Fatal(err)
	}

	closed.Store(true)
	writes := map[string]func() error{
		"AppendChunk": func() error { _, err := s.AppendChunk(ctx, "doc1", []byte("b")); return err },
		"AppendChunks": func() error {
			_, err := s.AppendChunks(ctx, []store.ChunkWrite{{Doc: "doc1", Data: []byte("c")}, {Doc: "doc2", Data: []byte("d")}})
			return err
		},
		"PutSnapshot": func() error { return s.PutSnapshot(ctx, "doc1", []byte("snap"), seq) },
		"Put":         func() error { _, err := s.Meta().Put(ctx, "k", []byte("v2")); return err },
		"Create":      func() error { _, err := s.Invites().Create(ctx, "new", []byte("x")); return err },
		"Update":      func() error { _, err := s.Meta().Update(ctx, "k", []byte("v3"), rev); return err },
		"Delete":      func() error { return s.Meta().Delete(ctx, "k") },
		"ClaimJTI":    func() error { return s.ClaimJTI(ctx, "jti-1", time.Now().Add(time.Minute)) },
	}
	for name, w := range writes {
		if err := w(); !errors.Is(err, errFenced) {
			t.Errorf("%s with the fence closed: err = %v, want the fence's error", name, err)
		}
	}
	d, err := s.Load(ctx, "doc1")
	if err != nil {
		t.Fatal(err)
	}
	if d.Snapshot != nil || len(d.Chunks) != 1 || string(d.Chunks[0].Data) != "a" {
		t.Errorf("doc1 after fenced writes: snapshot %q, %d chunks", d.Snapshot, len(d.Chunks))
	}
	if _, err := s.Load(ctx, "doc2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("doc2 after a fenced batch: err = %v, want ErrNotFound", err)
	}
	if v, r, err := s.Meta().Get(ctx, "k"); err != nil || string(v) != "v1" || r != rev {
		t.Errorf("meta k after fenced writes: %q rev %d (want %d) err %v", v, r, rev, err)
	}
	if _, _, err := s.Invites().Get(ctx, "new"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("invite created through a closed fence: err = %v", err)
	}

	closed.Store(false)
	if err := s.ClaimJTI(ctx, "jti-1", time.Now().Add(time.Minute)); err != nil {
		t.Errorf("ClaimJTI once the fence opens: %v (the refused claim must not have been stored)", err)
	}
	if _, err := s.AppendChunk(ctx, "doc2", []byte("e")); err != nil {
		t.Errorf("AppendChunk once the fence opens: %v", err)
	}
}
