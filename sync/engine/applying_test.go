package engine_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/sync/engine"
	"github.com/circles-coop/circles/sync/store"
)

// countingPolicy is openPolicy that records how many CheckChanges calls
// run at once, each holding on for a moment.
type countingPolicy struct {
	openPolicy
	now, peak atomic.Int32
}

func (p *countingPolicy) CheckChanges(peer engine.Peer, doc string, d *automerge.Doc, changes []engine.Change) error {
	n := p.now.Add(1)
	defer p.now.Add(-1)
	for {
		old := p.peak.Load()
		if n <= old || p.peak.CompareAndSwap(old, n) {
			break
		}
	}
	time.Sleep(20 * time.Millisecond)
	return p.openPolicy.CheckChanges(peer, doc, d, changes)
}

// TestMaxApplyingBoundsConcurrentApplies: however many devices send
// changes at once, at most MaxApplying messages are checked and applied
// at the same time, and every change is still accepted.
func TestMaxApplyingBoundsConcurrentApplies(t *testing.T) {
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
	const devices, limit = 8, 2
	pol := &countingPolicy{}
	e := engine.New(engine.Config{Store: st, Policy: pol, Actor: "00aa", MaxApplying: limit})
	if err := e.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Close() }()

	docs := make([]string, devices)
	for i := range docs {
		docs[i] = fmt.Sprintf("4NMNnkMhL8jXrdJ9jamS2b2WYi%02d", i)
		if err := e.Create(ctx, docs[i], func(d *automerge.Doc) ([]byte, error) {
			return nil, d.RootMap().Set("items", automerge.NewMap())
		}); err != nil {
			t.Fatal(err)
		}
	}
	// Each device pulls its document, then writes offline.
	type device struct {
		s     *engine.Session
		local *automerge.Doc
		ss    *automerge.SyncState
	}
	devs := make([]device, devices)
	for i := range devs {
		actor := fmt.Sprintf("%02x", 0xb0+i)
		s, err := e.NewSession(engine.Peer{Device: fmt.Sprint("d", i), Member: "m", Actor: actor}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		local := automerge.New()
		if err := local.SetActorID(actor); err != nil {
			t.Fatal(err)
		}
		devs[i] = device{s, local, automerge.NewSyncState(local)}
		if err := exchange(t, s, docs[i], devs[i].ss); err != nil {
			t.Fatalf("first sync: %v", err)
		}
		write(t, local, "k", "offline")
	}
	var wg sync.WaitGroup
	errs := make([]error, devices)
	for i, d := range devs {
		wg.Go(func() { errs[i] = exchange(t, d.s, docs[i], d.ss) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("device %d: %v", i, err)
		}
	}
	if got := pol.peak.Load(); got > limit {
		t.Errorf("%d messages were checked at once, want at most MaxApplying = %d", got, limit)
	}
	for i, id := range docs {
		if err := e.View(ctx, id, func(d *automerge.Doc) error {
			if !has(t, d, "k") {
				t.Errorf("document %d lacks the device's change", i)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
}
