package main

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/mobile-api/client"
)

// logAndSync logs n entries in dev's offline store, then syncs them, and
// returns their ids: entries acknowledged by sync.
func logAndSync(t *testing.T, ctx context.Context, dev *client.Device, n int) []string {
	t.Helper()
	var ids []string
	for range n {
		e, err := dev.Log(crdt.Entry{ID: uuid.NewString(), Kind: "hours", Quantity: 1, Note: "offline", At: time.Now().UTC()})
		if err != nil {
			t.Fatalf("log: %v", err)
		}
		ids = append(ids, e.ID)
	}
	if _, err := dev.Sync(ctx, nil); err != nil {
		t.Fatalf("sync: %v", err)
	}
	return ids
}
