package repo_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/sync/engine"
	"github.com/circles-coop/circles/sync/repo"
)

// counter reads a counter of the engine's metrics.
func (h *harness) counter(t testing.TB, name string) float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var sum float64
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			return sum
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// serverWrite sets items[key] in doc as the server (another writer than
// the session).
func (h *harness) serverWrite(t testing.TB, doc, key string) {
	t.Helper()
	if err := h.e.Update(context.Background(), doc, func(d *automerge.Doc) ([]byte, error) {
		items, err := d.RootMap().Get("items")
		if err != nil {
			return nil, err
		}
		return nil, items.Map().Set(key, "v")
	}); err != nil {
		t.Fatal(err)
	}
}

// importSnapshot gives the client doc from the server's stored snapshot,
// as repo.import does, and sends its first sync message: no change, the
// snapshot's heads.
func (c *client) importSnapshot(h *harness, doc string) {
	c.t.Helper()
	snap, err := h.e.ReadSnapshot(context.Background(), engine.Peer{Device: "dev2"}, doc)
	if err != nil {
		c.t.Fatal(err)
	}
	d, err := automerge.Load(snap.Data)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := d.SetActorID(c.actor); err != nil {
		c.t.Fatal(err)
	}
	r := &replica{d: d, ss: automerge.NewSyncState(d)}
	c.mu.Lock()
	c.docs[doc] = r
	c.mu.Unlock()
	c.flush(doc)
}

func (c *client) heads(doc string) []automerge.ChangeHash {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.docs[doc].d.Heads()
}

// TestInSyncAnswerOverWebSocket: a device that imported a document's
// stored snapshot is answered "you have everything" without the ordinary
// sync (counted), and changes stored afterwards by another writer still
// reach it, also when they are stored while its first message is being
// answered; it ends with exactly the server's heads.
func TestInSyncAnswerOverWebSocket(t *testing.T) {
	h := startHarness(t, repo.Options{})
	const answers = "circles_sync_in_sync_answers_total"
	ctx := context.Background()
	h.serverWrite(t, docA, "before")
	if err := h.e.CompactSnapshot(ctx, docA); err != nil {
		t.Fatal(err)
	}

	c := h.dial(t, "dev2", "phone")
	c.join()
	before := h.counter(t, answers)
	c.importSnapshot(h, docA)
	c.waitFor("the in-sync answer", func() bool { return h.counter(t, answers) == before+1 })
	c.waitFor("the answer itself", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.syncs) == 1
	})

	// A change stored later is pushed to the phone.
	h.serverWrite(t, docA, "after")
	c.waitFor("the later change", func() bool { return c.has(docA, "after") })
	c.waitFor("the server's heads", func() bool { return crdt.SameHeads(c.heads(docA), mustHeads(t, h, docA)) })
	if got := h.counter(t, answers); got != before+1 {
		t.Errorf("in-sync answers = %v, want %v: later messages take the ordinary sync", got, before+1)
	}

	// Writes racing the first message: whatever the order, the phone
	// ends with every change (20 rounds, each a new connection). In even
	// rounds the write waits until the first message was answered in sync,
	// so that path is taken for certain; in odd rounds it races the answer,
	// landing before, during or after it as the scheduler has it.
	for i := range 20 {
		if err := h.e.CompactSnapshot(ctx, docB); err != nil {
			t.Fatal(err)
		}
		p := h.dial(t, fmt.Sprint("race", i), fmt.Sprint("racer", i))
		p.join()
		key := fmt.Sprint("race", i)
		was := h.counter(t, answers)
		p.importSnapshot(h, docB)
		if i%2 == 0 {
			p.waitFor("the in-sync answer", func() bool { return h.counter(t, answers) == was+1 })
		}
		h.serverWrite(t, docB, key)
		p.waitFor("the racing change "+key, func() bool { return p.has(docB, key) })
		p.waitFor("the server's heads", func() bool { return crdt.SameHeads(p.heads(docB), mustHeads(t, h, docB)) })
		p.ws.CloseNow()
	}
	if got, want := h.counter(t, answers), before+1+10; got < want {
		t.Errorf("in-sync answers = %v, want at least %v (one per round that waited for it)", got, want)
	}
}

func mustHeads(t testing.TB, h *harness, doc string) []automerge.ChangeHash {
	t.Helper()
	hs, err := h.e.Heads(context.Background(), doc)
	if err != nil {
		t.Fatal(err)
	}
	return hs
}
