// Package inprocess is the ceiling the ingest benchmarks compare with:
// devices' ledgers synced to the server's copies by automerge-go alone,
// passing sync messages in memory. No HTTP, no JSON, no write rules, no
// storage. BenchmarkInProcessBacklog (sync/engine) reports it on its own;
// BenchmarkBacklog (server) runs it after each HTTP pass, so the two
// figures come from the same minutes of a shared machine.
package inprocess

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/google/uuid"

	"github.com/circles-coop/circles/crdt"
)

// maxRounds bounds the message exchanges of one document's sync.
const maxRounds = 50

// pair is one device's ledger and the server's copy of it, each with its
// sync state for the other, as they stand after the device first pulled
// the ledger from the server.
type pair struct {
	server, device     *automerge.Doc
	serverSS, deviceSS *automerge.SyncState
}

// exchange passes sync messages between the device and the server the way
// a device drives POST /v1/sync: the device sends its message, the server
// receives it and answers, until the device has nothing more to send.
func (p *pair) exchange() error {
	for range maxRounds {
		m, ok := p.deviceSS.GenerateMessage()
		if !ok {
			return nil
		}
		if _, err := p.serverSS.ReceiveMessage(m.Bytes()); err != nil {
			return fmt.Errorf("server receive: %w", err)
		}
		if r, ok := p.serverSS.GenerateMessage(); ok {
			if _, err := p.deviceSS.ReceiveMessage(r.Bytes()); err != nil {
				return fmt.Errorf("device receive: %w", err)
			}
		}
	}
	return errors.New("sync: not in step after the round bound")
}

// newPair makes a server-created ledger segment for member and a device
// copy of it, synced in memory.
func newPair(serverActor, member string) (*pair, error) {
	srv := automerge.New()
	if err := srv.SetActorID(serverActor); err != nil {
		return nil, err
	}
	if err := crdt.InitLedger(srv, member, 0); err != nil {
		return nil, err
	}
	if _, err := srv.Commit("create"); err != nil {
		return nil, err
	}
	dev := automerge.New()
	if err := dev.SetActorID(automerge.NewActorID()); err != nil {
		return nil, err
	}
	p := &pair{server: srv, device: dev, serverSS: automerge.NewSyncState(srv), deviceSS: automerge.NewSyncState(dev)}
	if err := p.exchange(); err != nil {
		return nil, fmt.Errorf("first pull: %w", err)
	}
	return p, nil
}

// Backlog is docs ledgers, each with perDoc entries its device made
// offline, one change each, not yet synced to the server's copy.
type Backlog struct {
	pairs  []*pair
	perDoc int
}

// NewBacklog builds a backlog like BenchmarkBacklog's: docs devices, each
// with perDoc offline entries, written with scalar strings as API.md asks.
func NewBacklog(docs, perDoc int) (*Backlog, error) { return newBacklog(docs, perDoc, false) }

// NewTextBacklog builds the backlog of make bench-sync's JavaScript
// clients with JS automerge's default strings: every string field an
// automerge text object (id, kind, note "entry N by <member>", at).
func NewTextBacklog(docs, perDoc int) (*Backlog, error) { return newBacklog(docs, perDoc, true) }

func newBacklog(docs, perDoc int, text bool) (*Backlog, error) {
	serverActor := automerge.NewActorID()
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	b := &Backlog{pairs: make([]*pair, docs), perDoc: perDoc}
	for i := range b.pairs {
		p, err := newPair(serverActor, fmt.Sprintf("m_bench%02d", i))
		if err != nil {
			return nil, err
		}
		for n := range perDoc {
			var err error
			if text {
				err = putTextEntry(p.device, n, fmt.Sprintf("m_bench%02d", i), at.Add(time.Duration(n)*time.Hour))
			} else {
				err = crdt.PutEntry(p.device, crdt.Entry{ID: uuid.NewString(), Kind: "hours", Quantity: float64(n%8 + 1), Unit: "h",
					Note: fmt.Sprintf("contribution %d", n), At: at.Add(time.Duration(n) * time.Hour)})
			}
			if err != nil {
				return nil, err
			}
			if _, err := p.device.Commit("log entry"); err != nil {
				return nil, err
			}
		}
		b.pairs[i] = p
	}
	return b, nil
}

// putTextEntry writes an entry the way tools/js/bench/loadgen.mjs does
// without SCALAR=1: its strings as text objects.
func putTextEntry(d *automerge.Doc, n int, member string, at time.Time) error {
	id := uuid.NewString()
	entry := automerge.NewMap()
	if err := d.Path("entries").Map().Set(id, entry); err != nil {
		return err
	}
	for _, kv := range []struct {
		k string
		v any
	}{
		{"id", automerge.NewText(id)},
		{"kind", automerge.NewText("hours")},
		{"quantity", 1.0},
		{"note", automerge.NewText(fmt.Sprintf("entry %d by %s", n, member))},
		{"at", automerge.NewText(at.UTC().Format(time.RFC3339))},
	} {
		if err := entry.Set(kv.k, kv.v); err != nil {
			return err
		}
	}
	return nil
}

// Changes is the number of changes Sync brings to the server's copies.
func (b *Backlog) Changes() int { return len(b.pairs) * b.perDoc }

// Sync syncs every ledger at once, each in its own goroutine, and returns
// the wall time until the last is in step. It then checks, outside that
// time, that every server copy holds its device's entries.
func (b *Backlog) Sync() (time.Duration, error) {
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(b.pairs))
	for i, p := range b.pairs {
		wg.Go(func() { errs[i] = p.exchange() })
	}
	wg.Wait()
	wall := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return wall, err
	}
	for i, p := range b.pairs {
		if n := p.server.Path("entries").Map().Len(); n != b.perDoc {
			return wall, fmt.Errorf("server copy of ledger %d has %d entries, want %d", i, n, b.perDoc)
		}
	}
	return wall, nil
}
