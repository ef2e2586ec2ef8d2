package amchangetest_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt/amchange"
	"github.com/circles-coop/circles/crdt/amchange/amchangetest"
)

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// realDoc makes a document whose changes use every column: nested maps,
// lists with inserts, overwrites and deletes, text, counters, every scalar
// kind, and two actors.
func realDoc(t *testing.T) *automerge.Doc {
	t.Helper()
	a := automerge.New()
	must(t, a.SetActorID("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"))
	root := a.RootMap()
	must(t, root.Set("s", "x"))
	must(t, root.Set("i", int64(-7)))
	must(t, root.Set("u", uint64(7)))
	must(t, root.Set("f", 2.5))
	must(t, root.Set("b", true))
	must(t, root.Set("n", nil))
	must(t, root.Set("bytes", []byte{1, 2}))
	must(t, root.Set("c", automerge.NewCounter(3)))
	must(t, root.Set("m", map[string]any{"k": "v", "l": []any{"a", "b", "c"}}))
	must(t, root.Set("t", automerge.NewText("hello")))
	_, err := a.Commit("first")
	must(t, err)

	b, err := a.Fork()
	must(t, err)
	must(t, b.SetActorID("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"))
	must(t, b.RootMap().Set("s", "y"))
	get := func(path ...any) *automerge.Value {
		v, err := b.Path(path...).Get()
		must(t, err)
		return v
	}
	must(t, get("m", "l").List().Delete(1))
	must(t, get("m", "l").List().Insert(0, "z", "z", "w"))
	must(t, get("t").Text().Splice(1, 2, "EY"))
	must(t, get("c").Counter().Inc(2))
	must(t, b.RootMap().Delete("n"))
	_, err = b.Commit("")
	must(t, err)
	_, err = a.Merge(b)
	must(t, err)
	must(t, a.RootMap().Set("s", "merged"))
	_, err = a.Commit("third")
	must(t, err)
	return a
}

// TestEncodeMatchesAutomerge re-encodes automerge's own changes from their
// decoded form: Encode must give back the very bytes automerge wrote.
func TestEncodeMatchesAutomerge(t *testing.T) {
	chs, err := realDoc(t).Changes()
	must(t, err)
	for i, ch := range chs {
		dc, err := amchange.Decode(ch.Save())
		must(t, err)
		got, hash := amchangetest.Encode(dc, amchangetest.Options{})
		if !bytes.Equal(got, ch.Save()) {
			t.Errorf("change %d: Encode() =\n% x\nwant\n% x", i, got, ch.Save())
		}
		if hash != [32]byte(ch.Hash()) {
			t.Errorf("change %d: hash %x, want %x", i, hash, ch.Hash())
		}
		// The same with the actor table built by Encode.
		dc.Actors = nil
		if got, _ := amchangetest.Encode(dc, amchangetest.Options{}); !bytes.Equal(got, ch.Save()) {
			t.Errorf("change %d: Encode() with a built actor table differs from automerge's", i)
		}
		// Runs of one are not canonical, but mean the same.
		odd, _ := amchangetest.Encode(dc, amchangetest.Options{RunsOfOne: true})
		if _, err := amchange.Decode(odd); !errors.Is(err, amchange.ErrNotCanonical) {
			t.Errorf("change %d with runs of one: Decode() = %v, want ErrNotCanonical", i, err)
		}
		lenient := amchange.Decoder{AllowNonCanonical: true}
		back, err := lenient.Decode(odd)
		must(t, err)
		if len(back.Ops) != len(dc.Ops) {
			t.Errorf("change %d with runs of one: %d ops, want %d", i, len(back.Ops), len(dc.Ops))
		}
	}
}

// TestBuilderChangeApplies builds a change on top of a document and
// checks that automerge applies it and still loads the saved document.
func TestBuilderChangeApplies(t *testing.T) {
	doc := realDoc(t)
	roots, err := amchangetest.RootObjects(doc)
	must(t, err)
	b, err := amchangetest.NewBuilder(doc, "cccccccccccccccccccccccccccccccc")
	must(t, err)
	m := b.Add(amchange.Op{Obj: roots["m"], Key: "new", Action: amchange.MakeMap})
	b.Add(amchange.Op{Obj: m, Key: "q", Action: amchange.Put, Value: amchangetest.F64(2)})
	l := b.Add(amchange.Op{Obj: m, Key: "l", Action: amchange.MakeList})
	e := b.Add(amchange.Op{Obj: l, ElemKey: true, Insert: true, Action: amchange.Put, Value: amchangetest.Str("one")})
	b.Add(amchange.Op{Obj: l, ElemKey: true, Elem: e, Insert: true, Action: amchange.Put, Value: amchangetest.Str("two")})
	chunk, hash := amchangetest.Encode(b.Change(), amchangetest.Options{})
	if _, err := amchange.Decode(chunk); err != nil {
		t.Fatalf("Decode(built change) = %v", err)
	}
	must(t, doc.LoadIncremental(chunk))
	if got := doc.Heads(); len(got) != 1 || got[0] != automerge.ChangeHash(hash) {
		t.Fatalf("heads %v, want the built change %x", got, hash)
	}
	v, err := doc.Path("m", "new", "l", 1).Get()
	must(t, err)
	if v.Str() != "two" {
		t.Fatalf("m.new.l[1] = %v, want two", v)
	}
	if _, err := automerge.Load(doc.Save()); err != nil {
		t.Fatalf("Load(Save()) after the built change = %v", err)
	}
}

// TestSyncMessageRoundTrip parses real sync messages, with and without
// changes, and encodes them again byte for byte.
func TestSyncMessageRoundTrip(t *testing.T) {
	a, b := realDoc(t), automerge.New()
	sa, sb := automerge.NewSyncState(a), automerge.NewSyncState(b)
	seen, withChanges := 0, 0
	for range 10 {
		progress := false
		for _, p := range []struct{ from, to *automerge.SyncState }{{sa, sb}, {sb, sa}} {
			m, ok := p.from.GenerateMessage()
			if !ok {
				continue
			}
			progress = true
			raw := m.Bytes()
			pm, err := amchangetest.ParseSyncMessage(raw)
			if err != nil {
				t.Fatalf("ParseSyncMessage() = %v", err)
			}
			if got := pm.Encode(); !bytes.Equal(got, raw) {
				t.Fatalf("Encode() =\n% x\nwant\n% x", got, raw)
			}
			if len(pm.Changes) != len(m.Changes()) {
				t.Fatalf("%d changes, automerge says %d", len(pm.Changes), len(m.Changes()))
			}
			for i, ch := range m.Changes() {
				if !bytes.Equal(pm.Changes[i], ch.Save()) {
					t.Fatalf("change %d differs from automerge's", i)
				}
			}
			seen++
			if len(pm.Changes) > 0 {
				withChanges++
			}
			_, err = p.to.ReceiveMessage(raw)
			must(t, err)
		}
		if !progress {
			break
		}
	}
	if seen < 2 || withChanges == 0 {
		t.Fatalf("%d messages, %d with changes: the round trip proves little", seen, withChanges)
	}
	if _, err := amchangetest.ParseSyncMessage([]byte{0x42, 5}); !errors.Is(err, amchangetest.ErrSyncMessage) {
		t.Fatalf("ParseSyncMessage(truncated) = %v, want ErrSyncMessage", err)
	}
}
