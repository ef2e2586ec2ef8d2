package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/circles-coop/circles/sync/store"
)

// TestSyncStatesExpire: a sync state nobody wrote for Options.SyncStateTTL
// is deleted (a device that comes back only costs a round trip); one
// rewritten meanwhile stays. The default TTL is 30 days.
func TestSyncStatesExpire(t *testing.T) {
	n := MustNATS(t, t.TempDir())
	ctx := testCtx(t)
	def := MustStore(t, n, store.Options{})
	kv, err := n.JetStream().KeyValue(ctx, "circ_syncstates")
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.TTL(); got != 30*24*time.Hour {
		t.Errorf("circ_syncstates TTL = %s, want 720h", got)
	}
	if _, err := def.SyncStates().Put(ctx, "old/doc", []byte("s")); err != nil {
		t.Fatal(err)
	}

	s := MustStore(t, n, store.Options{SyncStateTTL: 2 * time.Second})
	if _, err := s.SyncStates().Put(ctx, "kept/doc", []byte("s")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, err := s.SyncStates().Get(ctx, "old/doc")
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("SyncStates().Get(old/doc) = %v, want ErrNotFound within 10 s of a 2 s TTL", err)
		}
		// Keep the other one fresh.
		if _, err := s.SyncStates().Put(ctx, "kept/doc", []byte("s")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, _, err := s.SyncStates().Get(ctx, "kept/doc"); err != nil {
		t.Errorf("SyncStates().Get(kept/doc), rewritten every 200 ms = %v, want it kept", err)
	}
}
