package repo

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestOutQueueBound: the send queue holds at most max frames and maxBytes
// (one frame always fits); a push that finds no room within the wait
// fails with errQueueTimeout, and one that finds room once the writer
// takes a frame succeeds.
func TestOutQueueBound(t *testing.T) {
	ctx := context.Background()
	q := outQueue{max: 2, maxBytes: 10, avail: make(chan struct{}, 1), room: make(chan struct{}, 1)}
	big := make([]byte, 50)
	if err := q.push(ctx, big, time.Millisecond); err != nil {
		t.Fatalf("first frame over maxBytes: %v, want it queued (a frame always fits an empty queue)", err)
	}
	if err := q.push(ctx, []byte{1}, 50*time.Millisecond); !errors.Is(err, errQueueTimeout) {
		t.Fatalf("push over maxBytes: err = %v, want errQueueTimeout", err)
	}
	if f, ok := q.pop(ctx); !ok || len(f) != 50 {
		t.Fatalf("pop = %d bytes, %v; want the first frame", len(f), ok)
	}
	for i := range 2 {
		if err := q.push(ctx, []byte{byte(i)}, time.Millisecond); err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
	}
	if err := q.push(ctx, []byte{9}, 50*time.Millisecond); !errors.Is(err, errQueueTimeout) {
		t.Fatalf("push over max: err = %v, want errQueueTimeout", err)
	}
	// A writer taking a frame while a producer waits lets it in.
	done := make(chan error, 1)
	go func() { done <- q.push(ctx, []byte{7}, 10*time.Second) }()
	time.Sleep(20 * time.Millisecond)
	if f, ok := q.pop(ctx); !ok || f[0] != 0 {
		t.Fatalf("pop = %v, %v; want frame 0", f, ok)
	}
	if err := <-done; err != nil {
		t.Fatalf("waiting push: %v", err)
	}
	for _, want := range []byte{1, 7} {
		if f, ok := q.pop(ctx); !ok || f[0] != want {
			t.Fatalf("pop = %v, %v; want frame %d (order kept)", f, ok, want)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, ok := q.pop(cctx); ok {
		t.Fatalf("pop on an empty queue with a cancelled context returned a frame")
	}
}
