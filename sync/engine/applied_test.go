package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt/amchange"
	"github.com/circles-coop/circles/sync/store"
)

// appliedFixture is a server document holding one change, a device copy
// of it, and n changes the device made on top, one after the other, each
// as a decoded Change.
func appliedFixture(t *testing.T, n int) (server *automerge.Doc, x *entry, chain []Change, raw []*automerge.Change) {
	t.Helper()
	server = automerge.New()
	if err := server.RootMap().Set("n", int64(0)); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Commit("create"); err != nil {
		t.Fatal(err)
	}
	device, err := server.Fork()
	if err != nil {
		t.Fatal(err)
	}
	base := server.Heads()
	for i := range n {
		if err := device.RootMap().Set("n", int64(i+1)); err != nil {
			t.Fatal(err)
		}
		if _, err := device.Commit("step"); err != nil {
			t.Fatal(err)
		}
	}
	raw, err = device.Changes(base...)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range raw {
		m := syncMessageWith(t, ch.Save())
		got, err := decodeMessage(m)
		if err != nil || len(got) != 1 {
			t.Fatalf("decodeMessage = %d changes, %v; want 1", len(got), err)
		}
		chain = append(chain, got[0])
	}
	x = &entry{id: "doc", doc: server}
	if _, err := x.learnAll(server); err != nil {
		t.Fatal(err)
	}
	return server, x, chain, raw
}

// load hands changes to automerge one by one, from their bytes (Doc.Apply
// takes the whole list a change handle came from).
func load(t *testing.T, d *automerge.Doc, chs ...*automerge.Change) {
	t.Helper()
	for _, ch := range chs {
		if err := d.LoadIncremental(ch.Save()); err != nil {
			t.Fatal(err)
		}
	}
}

// syncMessageWith encodes a sync message with no heads, needs or haves
// carrying the given change chunks.
func syncMessageWith(t *testing.T, chunks ...[]byte) []byte {
	t.Helper()
	m := binary.AppendUvarint([]byte{0x42, 0, 0, 0}, uint64(len(chunks)))
	for _, c := range chunks {
		m = binary.AppendUvarint(m, uint64(len(c)))
		m = append(m, c...)
	}
	return m
}

// TestAppliedOutOfOrder: changes that arrive before their dependencies
// wait, and enter — in dependency order — with the message that brings
// what they lack; the heads agree at each step.
func TestAppliedOutOfOrder(t *testing.T) {
	server, x, chain, raw := appliedFixture(t, 3)
	// The last two first: automerge keeps them waiting.
	before := server.Heads()
	load(t, server, raw[2], raw[1])
	got, err := x.applied(before, []Change{chain[2], chain[1]})
	if err != nil {
		t.Fatalf("applied(waiting changes) = %v", err)
	}
	if len(got) != 0 || len(x.queued) != 2 {
		t.Fatalf("applied = %d changes with %d waiting, want 0 with 2 waiting", len(got), len(x.queued))
	}
	before = server.Heads()
	load(t, server, raw[0])
	got, err = x.applied(before, []Change{chain[0]})
	if err != nil {
		t.Fatalf("applied(the missing change) = %v", err)
	}
	if len(got) != 3 || len(x.queued) != 0 || x.queuedBytes.Load() != 0 {
		t.Fatalf("applied = %d changes with %d (%d bytes) waiting, want 3 with none", len(got), len(x.queued), x.queuedBytes.Load())
	}
	for i, ch := range got {
		if ch.Hash() != chain[i].Hash() {
			t.Errorf("applied[%d] = %s, want %s (dependency order)", i, ch.Hash(), chain[i].Hash())
		}
		if !x.has(ch.Hash()) {
			t.Errorf("applied change %s is not known afterwards", ch.Hash())
		}
	}
}

// TestAppliedRefusesUnexpectedHeads: when the document does not hold what
// the checked changes lead to — automerge applied something else — the
// message is refused.
func TestAppliedRefusesUnexpectedHeads(t *testing.T) {
	t.Run("a checked change did not enter", func(t *testing.T) {
		server, x, chain, _ := appliedFixture(t, 1)
		if _, err := x.applied(server.Heads(), chain); !errors.Is(err, ErrBadMessage) {
			t.Fatalf("applied = %v, want ErrBadMessage", err)
		}
	})
	t.Run("a message with nothing new moved the heads", func(t *testing.T) {
		server, x, _, raw := appliedFixture(t, 1)
		before := server.Heads()
		load(t, server, raw[0])
		if _, err := x.applied(before, nil); !errors.Is(err, ErrBadMessage) {
			t.Fatalf("applied = %v, want ErrBadMessage", err)
		}
	})
	t.Run("a message with nothing new left the heads", func(t *testing.T) {
		server, x, _, _ := appliedFixture(t, 1)
		if got, err := x.applied(server.Heads(), nil); err != nil || len(got) != 0 {
			t.Fatalf("applied = %d changes, %v; want none, nil", len(got), err)
		}
	})
	t.Run("an unchecked change entered", func(t *testing.T) {
		server, x, chain, raw := appliedFixture(t, 2)
		before := server.Heads()
		load(t, server, raw[0], raw[1])
		if _, err := x.applied(before, chain[:1]); !errors.Is(err, ErrBadMessage) {
			t.Fatalf("applied = %v, want ErrBadMessage", err)
		}
	})
}

// TestSplitSyncMessageAgreesWithAutomerge: the Go parser finds exactly the
// changes automerge finds in real sync messages, and refuses truncated
// ones.
func TestSplitSyncMessageAgreesWithAutomerge(t *testing.T) {
	for i, m := range fuzzSeedMessages(t) {
		assertSameChanges(t, m)
		for cut := 1; cut < len(m); cut += max(1, len(m)/20) {
			if _, err := amchange.SplitSyncMessage(m[:cut]); err == nil {
				if sm, err := automerge.LoadSyncMessage(m[:cut]); err == nil && len(sm.Changes()) > 0 {
					t.Errorf("message %d cut at %d: automerge finds changes, the Go parser none and no error", i, cut)
				}
			}
		}
	}
}

// assertSameChanges fails unless the Go parser and automerge find the same
// changes in data (when both accept it).
func assertSameChanges(t testing.TB, data []byte) {
	t.Helper()
	ours, err := decodeMessage(data)
	if err != nil {
		return
	}
	sm, err := automerge.LoadSyncMessage(data)
	if err != nil {
		return
	}
	theirs := sm.Changes()
	seen := map[automerge.ChangeHash]bool{}
	var want []automerge.ChangeHash
	for _, ch := range theirs {
		if !seen[ch.Hash()] {
			seen[ch.Hash()] = true
			want = append(want, ch.Hash())
		}
	}
	if len(ours) != len(want) {
		t.Fatalf("Go parser finds %d changes, automerge %d", len(ours), len(want))
	}
	for i := range ours {
		if ours[i].Hash() != want[i] {
			t.Fatalf("change %d: Go parser %s, automerge %s", i, ours[i].Hash(), want[i])
		}
	}
}

// TestWaitingChangesSurviveEviction: changes that wait for their
// dependencies keep their document in memory, however small the memory
// budget; a peer does not send them twice, so evicting them would leave
// its sync stuck. When the missing change comes, all enter.
func TestWaitingChangesSurviveEviction(t *testing.T) {
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
	e := New(Config{Store: st, Policy: allowAll{}, Actor: "00aa", MemoryBudget: 1})
	if err := e.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Close() }()
	const doc = "4NMNnkMhL8jXrdJ9jamS2b2WYiWd"
	if err := e.Create(ctx, doc, func(d *automerge.Doc) ([]byte, error) {
		return nil, d.RootMap().Set("items", automerge.NewMap())
	}); err != nil {
		t.Fatal(err)
	}
	var saved []byte
	if err := e.View(ctx, doc, func(d *automerge.Doc) error { saved = d.Save(); return nil }); err != nil {
		t.Fatal(err)
	}
	local, err := automerge.Load(saved)
	if err != nil {
		t.Fatal(err)
	}
	if err := local.SetActorID("0b"); err != nil {
		t.Fatal(err)
	}
	base := local.Heads()
	for _, k := range []string{"one", "two"} {
		if err := local.Path("items", k).Set(k); err != nil {
			t.Fatal(err)
		}
		if _, err := local.Commit(k); err != nil {
			t.Fatal(err)
		}
	}
	chs, err := local.Changes(base...)
	if err != nil || len(chs) != 2 {
		t.Fatalf("local changes = %d, %v", len(chs), err)
	}
	s, err := e.NewSession(Peer{Device: "d", Member: "m", Actor: "0b"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// The second change first: it waits.
	if _, err := s.Receive(ctx, doc, syncMessageWith(t, chs[1].Save())); err != nil {
		t.Fatalf("Receive(second change) = %v", err)
	}
	if _, err := s.Receive(ctx, doc, syncMessageWith(t, chs[0].Save())); err != nil {
		t.Fatalf("Receive(first change) = %v", err)
	}
	if err := e.View(ctx, doc, func(d *automerge.Doc) error {
		for _, k := range []string{"one", "two"} {
			v, err := d.Path("items", k).Get()
			if err != nil {
				return err
			}
			if v.IsVoid() {
				t.Errorf("items.%s is missing: the waiting change was lost", k)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// allowAll lets every peer read and write everything.
type allowAll struct{}

func (allowAll) CheckRead(Peer, string) error                              { return nil }
func (allowAll) CheckChanges(Peer, string, *automerge.Doc, []Change) error { return nil }
func (allowAll) Accept(string, *automerge.Doc, []Change) ([]byte, error)   { return nil, nil }
func (allowAll) Snapshot(string, *automerge.Doc) ([]byte, error)           { return nil, nil }

// TestAppliedChainOnceEach: a message whose changes are a chain enters in
// its order; one that names a change twice, next to each other or not,
// yields it once.
func TestAppliedChainOnceEach(t *testing.T) {
	for _, tc := range []struct {
		name string
		pick []int // indexes into the chain, as the message carries them
		want []int
	}{
		{"a chain", []int{0, 1, 2}, []int{0, 1, 2}},
		{"the same change twice", []int{0, 0}, []int{0}},
		{"a change again after another", []int{0, 1, 0}, []int{0, 1}},
		{"the chain, then its start again", []int{0, 1, 2, 1}, []int{0, 1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			server, x, chain, raw := appliedFixture(t, 3)
			before := server.Heads()
			var msg []Change
			seen := map[int]bool{}
			for _, i := range tc.pick {
				msg = append(msg, chain[i])
				if !seen[i] {
					load(t, server, raw[i])
					seen[i] = true
				}
			}
			got, err := x.applied(before, msg)
			if err != nil {
				t.Fatalf("applied = %v", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("applied = %d changes, want %d", len(got), len(tc.want))
			}
			for k, i := range tc.want {
				if got[k].Hash() != chain[i].Hash() {
					t.Errorf("applied[%d] = %s, want chain[%d] %s", k, got[k].Hash(), i, chain[i].Hash())
				}
			}
			if len(x.queued) != 0 {
				t.Errorf("%d changes wait, want none", len(x.queued))
			}
		})
	}
}
