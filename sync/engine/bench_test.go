package engine_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/google/uuid"

	"github.com/circles-coop/circles/crdt"
)

// benchMaxRounds bounds the message exchanges of one document's sync.
const benchMaxRounds = 50

// benchPair is one device's ledger and the server's copy of it, each with
// its sync state for the other, as they stand after the device first
// pulled the ledger from the server.
type benchPair struct {
	server, device     *automerge.Doc
	serverSS, deviceSS *automerge.SyncState
}

// exchange passes sync messages between the device and the server the way
// a device drives POST /v1/sync: the device sends its message, the server
// receives it and answers, until the device has nothing more to send.
func (p *benchPair) exchange() error {
	for range benchMaxRounds {
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

// newBenchPair makes a server-created ledger segment for member and a
// device copy of it, synced in memory.
func newBenchPair(serverActor, member string) (*benchPair, error) {
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
	p := &benchPair{server: srv, device: dev, serverSS: automerge.NewSyncState(srv), deviceSS: automerge.NewSyncState(dev)}
	if err := p.exchange(); err != nil {
		return nil, fmt.Errorf("first pull: %w", err)
	}
	return p, nil
}

// BenchmarkInProcessBacklog is BenchmarkBacklog of package server with
// automerge-go alone: 50 ledgers, each with 100 single-entry changes made
// offline on the device, synced to a server-side automerge.Doc by passing
// sync messages in memory, all 50 at once in their own goroutines. No
// HTTP, no JSON, no write rules, no storage. It reports changes per second,
// the ceiling the HTTP figure can be compared with.
func BenchmarkInProcessBacklog(b *testing.B) {
	const docs, perDoc = 50, 100
	serverActor := automerge.NewActorID()
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	var (
		changes int
		wall    time.Duration
	)
	for b.Loop() {
		b.StopTimer()
		pairs := make([]*benchPair, docs)
		for i := range pairs {
			p, err := newBenchPair(serverActor, fmt.Sprintf("m_bench%02d", i))
			if err != nil {
				b.Fatal(err)
			}
			for n := range perDoc {
				e := crdt.Entry{ID: uuid.NewString(), Kind: "hours", Quantity: float64(n%8 + 1), Unit: "h",
					Note: fmt.Sprintf("contribution %d", n), At: at.Add(time.Duration(n) * time.Hour)}
				if err := crdt.PutEntry(p.device, e); err != nil {
					b.Fatal(err)
				}
				if _, err := p.device.Commit("log entry"); err != nil {
					b.Fatal(err)
				}
			}
			pairs[i] = p
		}

		b.StartTimer()
		start := time.Now()
		var wg sync.WaitGroup
		errs := make([]error, docs)
		for i, p := range pairs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = p.exchange()
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		b.StopTimer()

		if err := errors.Join(errs...); err != nil {
			b.Fatal(err)
		}
		for i, p := range pairs {
			entries, _, err := crdt.ReadLedger(p.server)
			if err != nil {
				b.Fatal(err)
			}
			if len(entries) != perDoc {
				b.Fatalf("server copy of ledger %d has %d entries, want %d", i, len(entries), perDoc)
			}
		}
		changes += docs * perDoc
		wall += elapsed
		b.StartTimer()
	}
	b.ReportMetric(float64(changes)/wall.Seconds(), "changes/s")
	b.Logf("in-process backlog: %d changes in %.3fs (%.0f changes/s)", changes, wall.Seconds(), float64(changes)/wall.Seconds())
}
