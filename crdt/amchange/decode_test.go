package amchange_test

import (
	"bytes"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/circles-coop/circles/crdt/amchange"
	"github.com/google/go-cmp/cmp"
)

// Shorthands for expected operations.

func id(counter uint64, actor string) amchange.OpID {
	return amchange.OpID{Counter: counter, Actor: actor}
}

var root = amchange.OpID{}

func mapOp(opID, obj amchange.OpID, key string, action amchange.Action, v amchange.Value, pred ...amchange.OpID) amchange.Op {
	return amchange.Op{ID: opID, Obj: obj, Key: key, Action: action, Value: v, Pred: pred}
}

func seqOp(opID, obj, elem amchange.OpID, insert bool, action amchange.Action, v amchange.Value, pred ...amchange.OpID) amchange.Op {
	return amchange.Op{ID: opID, Obj: obj, ElemKey: true, Elem: elem, Insert: insert, Action: action, Value: v, Pred: pred}
}

var null = amchange.Value{}

func str(s string) amchange.Value  { return amchange.Value{Kind: amchange.Str, Str: s} }
func i64(i int64) amchange.Value   { return amchange.Value{Kind: amchange.Int, Int: i} }
func u64(u uint64) amchange.Value  { return amchange.Value{Kind: amchange.Uint, Uint: u} }
func f64(f float64) amchange.Value { return amchange.Value{Kind: amchange.Float, Float: f} }
func boolean(b bool) amchange.Value {
	return amchange.Value{Kind: amchange.Bool, Bool: b}
}

// wantChange is what a test expects of one change of a document.
type wantChange struct {
	Message string
	Ops     []amchange.Op
}

// docCase builds a document with automerge-go and says what its changes
// hold.
type docCase struct {
	name  string
	build func(t *testing.T) (*automerge.Doc, []wantChange)
}

var docCases = []docCase{
	{"scalar puts", func(t *testing.T) (*automerge.Doc, []wantChange) {
		doc := MustDoc(t, actorA)
		r := doc.RootMap()
		ts := time.UnixMilli(1700000000123)
		long := strings.Repeat("long ", 60)
		puts := []struct {
			key  string
			val  any
			want amchange.Value
		}{
			{"str", "hello", str("hello")},
			{"unicode", "héllo, 世界 🌍", str("héllo, 世界 🌍")},
			{"empty", "", str("")},
			{"long", long, str(long)},
			{"int", int64(-7), i64(-7)},
			{"intmax", int64(math.MaxInt64), i64(math.MaxInt64)},
			{"intmin", int64(math.MinInt64), i64(math.MinInt64)},
			{"uint", uint64(7), u64(7)},
			{"uintmax", uint64(math.MaxUint64), u64(math.MaxUint64)},
			{"float", 2.5, f64(2.5)},
			{"negfloat", -1e300, f64(-1e300)},
			{"true", true, boolean(true)},
			{"false", false, boolean(false)},
			{"bytes", []byte{0, 1, 2, 0xff}, amchange.Value{Kind: amchange.Bytes, Bytes: []byte{0, 1, 2, 0xff}}},
			{"time", ts, amchange.Value{Kind: amchange.Timestamp, Int: ts.UnixMilli()}},
			{"nil", nil, null},
		}
		var ops []amchange.Op
		for i, p := range puts {
			Must(t, r.Set(p.key, p.val))
			ops = append(ops, mapOp(id(uint64(i+1), actorA), root, p.key, amchange.Put, p.want))
		}
		MustCommit(t, doc, "scalars")
		return doc, []wantChange{{"scalars", ops}}
	}},
	{"nested maps", func(t *testing.T) (*automerge.Doc, []wantChange) {
		doc := MustDoc(t, actorA)
		outer := automerge.NewMap()
		Must(t, doc.RootMap().Set("outer", outer))
		Must(t, outer.Set("name", "o"))
		inner := automerge.NewMap()
		Must(t, outer.Set("inner", inner))
		Must(t, inner.Set("n", int64(1)))
		MustCommit(t, doc, "")
		Must(t, outer.Set("name", "p"))
		MustCommit(t, doc, "rename")
		return doc, []wantChange{
			{"", []amchange.Op{
				mapOp(id(1, actorA), root, "outer", amchange.MakeMap, null),
				mapOp(id(2, actorA), id(1, actorA), "name", amchange.Put, str("o")),
				mapOp(id(3, actorA), id(1, actorA), "inner", amchange.MakeMap, null),
				mapOp(id(4, actorA), id(3, actorA), "n", amchange.Put, i64(1)),
			}},
			{"rename", []amchange.Op{
				mapOp(id(5, actorA), id(1, actorA), "name", amchange.Put, str("p"), id(2, actorA)),
			}},
		}
	}},
	{"list insert set delete", func(t *testing.T) (*automerge.Doc, []wantChange) {
		doc := MustDoc(t, actorA)
		l := automerge.NewList()
		Must(t, doc.RootMap().Set("l", l))
		Must(t, l.Append("a", "b", "c"))
		MustCommit(t, doc, "make")
		Must(t, l.Set(1, "B"))
		Must(t, l.Delete(0))
		Must(t, l.Insert(0, int64(0)))
		MustCommit(t, doc, "edit")
		obj := id(1, actorA)
		return doc, []wantChange{
			{"make", []amchange.Op{
				mapOp(id(1, actorA), root, "l", amchange.MakeList, null),
				seqOp(id(2, actorA), obj, root, true, amchange.Put, str("a")),
				seqOp(id(3, actorA), obj, id(2, actorA), true, amchange.Put, str("b")),
				seqOp(id(4, actorA), obj, id(3, actorA), true, amchange.Put, str("c")),
			}},
			{"edit", []amchange.Op{
				seqOp(id(5, actorA), obj, id(3, actorA), false, amchange.Put, str("B"), id(3, actorA)),
				seqOp(id(6, actorA), obj, id(2, actorA), false, amchange.Delete, null, id(2, actorA)),
				seqOp(id(7, actorA), obj, root, true, amchange.Put, i64(0)),
			}},
		}
	}},
	{"text splice", func(t *testing.T) (*automerge.Doc, []wantChange) {
		doc := MustDoc(t, actorA)
		txt := automerge.NewText("hey")
		Must(t, doc.RootMap().Set("t", txt))
		MustCommit(t, doc, "")
		Must(t, txt.Splice(1, 1, "a"))
		MustCommit(t, doc, "")
		Must(t, txt.Delete(0, 1))
		MustCommit(t, doc, "")
		obj := id(1, actorA)
		return doc, []wantChange{
			{"", []amchange.Op{
				mapOp(id(1, actorA), root, "t", amchange.MakeText, null),
				seqOp(id(2, actorA), obj, root, true, amchange.Put, str("h")),
				seqOp(id(3, actorA), obj, id(2, actorA), true, amchange.Put, str("e")),
				seqOp(id(4, actorA), obj, id(3, actorA), true, amchange.Put, str("y")),
			}},
			{"", []amchange.Op{
				seqOp(id(5, actorA), obj, id(3, actorA), false, amchange.Delete, null, id(3, actorA)),
				seqOp(id(6, actorA), obj, id(2, actorA), true, amchange.Put, str("a")),
			}},
			{"", []amchange.Op{
				seqOp(id(7, actorA), obj, id(2, actorA), false, amchange.Delete, null, id(2, actorA)),
			}},
		}
	}},
	{"counter", func(t *testing.T) (*automerge.Doc, []wantChange) {
		doc := MustDoc(t, actorA)
		c := automerge.NewCounter(5)
		Must(t, doc.RootMap().Set("c", c))
		MustCommit(t, doc, "")
		Must(t, c.Inc(3))
		Must(t, c.Inc(-10))
		MustCommit(t, doc, "")
		return doc, []wantChange{
			{"", []amchange.Op{
				mapOp(id(1, actorA), root, "c", amchange.Put, amchange.Value{Kind: amchange.Counter, Int: 5}),
			}},
			{"", []amchange.Op{
				mapOp(id(2, actorA), root, "c", amchange.Increment, i64(3), id(1, actorA)),
				mapOp(id(3, actorA), root, "c", amchange.Increment, i64(-10), id(1, actorA)),
			}},
		}
	}},
	{"map key delete", func(t *testing.T) (*automerge.Doc, []wantChange) {
		doc := MustDoc(t, actorA)
		r := doc.RootMap()
		Must(t, r.Set("k", "v"))
		Must(t, r.Set("keep", "w"))
		MustCommit(t, doc, "")
		Must(t, r.Delete("k"))
		MustCommit(t, doc, "delete k")
		return doc, []wantChange{
			{"", []amchange.Op{
				mapOp(id(1, actorA), root, "k", amchange.Put, str("v")),
				mapOp(id(2, actorA), root, "keep", amchange.Put, str("w")),
			}},
			{"delete k", []amchange.Op{
				mapOp(id(3, actorA), root, "k", amchange.Delete, null, id(1, actorA)),
			}},
		}
	}},
	{"two actors", func(t *testing.T) (*automerge.Doc, []wantChange) {
		a := MustDoc(t, actorA)
		l := automerge.NewList()
		Must(t, a.RootMap().Set("l", l))
		Must(t, l.Append("x"))
		MustCommit(t, a, "a1")

		b, err := a.Fork()
		Must(t, err)
		Must(t, b.SetActorID(actorB))
		lb, err := b.RootMap().Get("l")
		Must(t, err)
		Must(t, lb.List().Insert(1, "y"))
		Must(t, lb.List().Set(0, "X"))
		MustCommit(t, b, "b1")

		Must(t, a.RootMap().Set("a", "1"))
		MustCommit(t, a, "a2")
		_, err = a.Merge(b)
		Must(t, err)
		Must(t, a.RootMap().Set("z", true))
		MustCommit(t, a, "a3")

		obj := id(1, actorA)
		return a, []wantChange{
			{"a1", []amchange.Op{
				mapOp(id(1, actorA), root, "l", amchange.MakeList, null),
				seqOp(id(2, actorA), obj, root, true, amchange.Put, str("x")),
			}},
			{"a2", []amchange.Op{
				mapOp(id(3, actorA), root, "a", amchange.Put, str("1")),
			}},
			{"b1", []amchange.Op{
				seqOp(id(3, actorB), obj, id(2, actorA), true, amchange.Put, str("y")),
				seqOp(id(4, actorB), obj, id(2, actorA), false, amchange.Put, str("X"), id(2, actorA)),
			}},
			{"a3", []amchange.Op{
				mapOp(id(5, actorA), root, "z", amchange.Put, boolean(true)),
			}},
		}
	}},
	{"empty change", func(t *testing.T) (*automerge.Doc, []wantChange) {
		doc := MustDoc(t, actorA)
		Must(t, doc.RootMap().Set("x", int64(1)))
		MustCommit(t, doc, "")
		if _, err := doc.Commit("nothing", automerge.CommitOptions{AllowEmpty: true}); err != nil {
			t.Fatalf("Commit(AllowEmpty) = %v", err)
		}
		return doc, []wantChange{
			{"", []amchange.Op{mapOp(id(1, actorA), root, "x", amchange.Put, i64(1))}},
			{"nothing", nil},
		}
	}},
	{"bulk text delete", func(t *testing.T) (*automerge.Doc, []wantChange) {
		doc := MustDoc(t, actorA)
		txt := automerge.NewText(strings.Repeat("ab", 150))
		Must(t, doc.RootMap().Set("t", txt))
		MustCommit(t, doc, "")
		Must(t, txt.Delete(10, 200))
		Must(t, txt.Insert(10, "xyz"))
		MustCommit(t, doc, "cut")
		obj := id(1, actorA)
		first := []amchange.Op{mapOp(id(1, actorA), root, "t", amchange.MakeText, null)}
		prev := root
		for i, r := range strings.Repeat("ab", 150) {
			op := seqOp(id(uint64(i+2), actorA), obj, prev, true, amchange.Put, str(string(r)))
			first = append(first, op)
			prev = op.ID
		}
		var cut []amchange.Op
		next := uint64(302)
		for i := range 200 {
			elem := id(uint64(12+i), actorA) // the 11th character is op 12
			cut = append(cut, seqOp(id(next, actorA), obj, elem, false, amchange.Delete, null, elem))
			next++
		}
		prev = id(11, actorA)
		for _, r := range "xyz" {
			op := seqOp(id(next, actorA), obj, prev, true, amchange.Put, str(string(r)))
			cut = append(cut, op)
			prev = op.ID
			next++
		}
		return doc, []wantChange{{"", first}, {"cut", cut}}
	}},
	{"10500-op list", func(t *testing.T) (*automerge.Doc, []wantChange) {
		// Over 10,000 ops automerge encodes a change row by row rather
		// than column by column; the bytes must come out the same.
		doc := MustDoc(t, actorA)
		l := automerge.NewList()
		Must(t, doc.RootMap().Set("l", l))
		ops := []amchange.Op{mapOp(id(1, actorA), root, "l", amchange.MakeList, null)}
		prev := root
		var vals []any
		for i := range 10500 {
			var v any
			var want amchange.Value
			switch i % 3 {
			case 0:
				v, want = int64(i%7), i64(int64(i%7))
			case 1:
				v, want = "s", str("s")
			default:
				v, want = nil, null
			}
			vals = append(vals, v)
			op := seqOp(id(uint64(i+2), actorA), id(1, actorA), prev, true, amchange.Put, want)
			ops = append(ops, op)
			prev = op.ID
		}
		Must(t, l.Append(vals...))
		MustCommit(t, doc, "bulk")
		return doc, []wantChange{{"bulk", ops}}
	}},
	{"1200-op list", func(t *testing.T) (*automerge.Doc, []wantChange) {
		doc := MustDoc(t, actorA)
		l := automerge.NewList()
		Must(t, doc.RootMap().Set("l", l))
		ops := []amchange.Op{mapOp(id(1, actorA), root, "l", amchange.MakeList, null)}
		prev := root
		var vals []any
		for i := range 1200 {
			v := int64(i * i % 1000)
			vals = append(vals, v)
			op := seqOp(id(uint64(i+2), actorA), id(1, actorA), prev, true, amchange.Put, i64(v))
			ops = append(ops, op)
			prev = op.ID
		}
		Must(t, l.Append(vals...))
		MustCommit(t, doc, "bulk")
		return doc, []wantChange{{"bulk", ops}}
	}},
	{"1500-char text", func(t *testing.T) (*automerge.Doc, []wantChange) {
		doc := MustDoc(t, actorA)
		s := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 34)[:1500]
		Must(t, doc.RootMap().Set("t", automerge.NewText(s)))
		MustCommit(t, doc, "paste")
		ops := []amchange.Op{mapOp(id(1, actorA), root, "t", amchange.MakeText, null)}
		prev := root
		for i, r := range s {
			op := seqOp(id(uint64(i+2), actorA), id(1, actorA), prev, true, amchange.Put, str(string(r)))
			ops = append(ops, op)
			prev = op.ID
		}
		return doc, []wantChange{{"paste", ops}}
	}},
}

// sortedHashes returns hashes as [32]byte values in order.
func sortedHashes[H ~[32]byte](hs []H) [][32]byte {
	out := make([][32]byte, len(hs))
	for i, h := range hs {
		out[i] = h
	}
	slices.SortFunc(out, func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) })
	return out
}

// checkChange compares a decoded change with the automerge-go change it
// came from and with what the test expects of it.
func checkChange(t *testing.T, got *amchange.Change, ch *automerge.Change, want wantChange) {
	t.Helper()
	if got.Hash != ch.Hash() {
		t.Errorf("Hash = %x, want %x", got.Hash, ch.Hash())
	}
	if diff := cmp.Diff(sortedHashes(ch.Dependencies()), sortedHashes(got.Deps)); diff != "" {
		t.Errorf("Deps differ (-want +got):\n%s", diff)
	}
	if got.Actor != ch.ActorID() {
		t.Errorf("Actor = %q, want %q", got.Actor, ch.ActorID())
	}
	if got.Seq != ch.ActorSeq() {
		t.Errorf("Seq = %d, want %d", got.Seq, ch.ActorSeq())
	}
	if got.Time != ch.Timestamp().UnixMilli() {
		t.Errorf("Time = %d, want %d", got.Time, ch.Timestamp().UnixMilli())
	}
	if got.Message != ch.Message() || got.Message != want.Message {
		t.Errorf("Message = %q, want %q (automerge-go says %q)", got.Message, want.Message, ch.Message())
	}
	// Automerge lists the author, then the other actors the operations
	// mention in lexicographic order.
	var others []string
	for _, op := range want.Ops {
		for _, ref := range append([]amchange.OpID{op.Obj, op.Elem}, op.Pred...) {
			if !ref.IsRoot() && ref.Actor != ch.ActorID() && !slices.Contains(others, ref.Actor) {
				others = append(others, ref.Actor)
			}
		}
	}
	slices.Sort(others)
	wantActors := append([]string{ch.ActorID()}, others...)
	if !slices.Equal(got.Actors, wantActors) {
		t.Errorf("Actors = %q, want %q", got.Actors, wantActors)
	}
	if len(want.Ops) > 0 && got.StartOp != want.Ops[0].ID.Counter {
		t.Errorf("StartOp = %d, want %d", got.StartOp, want.Ops[0].ID.Counter)
	}
	if diff := cmp.Diff(want.Ops, got.Ops); diff != "" {
		t.Errorf("Ops differ (-want +got):\n%s", diff)
	}
}

func TestDecodeDocumentChanges(t *testing.T) {
	for _, tc := range docCases {
		t.Run(tc.name, func(t *testing.T) {
			doc, want := tc.build(t)
			chs := MustChanges(t, doc)
			if len(chs) != len(want) {
				t.Fatalf("document has %d changes, want %d", len(chs), len(want))
			}
			// Order the expectations like the document's changes.
			byMsg := map[string][]wantChange{}
			for _, w := range want {
				byMsg[w.Message] = append(byMsg[w.Message], w)
			}
			var compressed []byte
			for i, ch := range chs {
				w := want[i]
				if ch.Message() != "" {
					w = byMsg[ch.Message()][0]
				}
				b := ch.Save()
				got, err := amchange.Decode(b)
				if err != nil {
					t.Fatalf("Decode(change %d) = %v", i, err)
				}
				checkChange(t, got, ch, w)
				checkInvariants(t, b, got, &amchange.Decoder{})

				// The same change as a compressed (type 2) chunk.
				z := compressChunk(t, b)
				gotZ, err := amchange.Decode(z)
				if err != nil {
					t.Fatalf("Decode(compressed change %d) = %v", i, err)
				}
				if diff := cmp.Diff(got, gotZ); diff != "" {
					t.Errorf("compressed change %d decodes differently (-plain +compressed):\n%s", i, diff)
				}
				compressed = append(compressed, z...)
			}
			// automerge-go accepts the compressed chunks: they are real
			// Automerge input, not an invention of the test.
			copyDoc := automerge.New()
			if err := copyDoc.LoadIncremental(compressed); err != nil {
				t.Fatalf("automerge LoadIncremental(compressed changes) = %v", err)
			}
			if got, want := sortedHashes(copyDoc.Heads()), sortedHashes(doc.Heads()); !cmp.Equal(got, want) {
				t.Errorf("heads after loading compressed changes = %x, want %x", got, want)
			}
		})
	}
}

// TestDecodeLargeChangeCompresses checks that the many-op changes really
// take the compressed path: their type 2 form is a smaller chunk that
// automerge accepts and that decodes to the same change.
func TestDecodeLargeChangeCompresses(t *testing.T) {
	for _, tc := range docCases {
		if !strings.HasPrefix(tc.name, "1") {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			doc, _ := tc.build(t)
			ch := MustChanges(t, doc)[0]
			b := ch.Save()
			z := compressChunk(t, b)
			if _, typ, _ := splitChunk(t, z); typ != 2 {
				t.Fatalf("chunk type = %d, want 2", typ)
			}
			if len(z) >= len(b) {
				t.Errorf("compressed chunk is %d bytes, plain %d; want smaller", len(z), len(b))
			}
			chs, err := automerge.LoadChanges(z)
			if err != nil {
				t.Fatalf("automerge LoadChanges(compressed) = %v", err)
			}
			if len(chs) != 1 || chs[0].Hash() != ch.Hash() {
				t.Fatalf("automerge loads %d changes from the compressed chunk, want 1 with hash %x", len(chs), ch.Hash())
			}
			got, err := amchange.Decode(z)
			if err != nil {
				t.Fatalf("Decode(compressed) = %v", err)
			}
			if got.Hash != ch.Hash() {
				t.Errorf("Hash = %x, want %x", got.Hash, ch.Hash())
			}
			if len(got.Ops) < 1000 {
				t.Errorf("%d ops, want at least 1000", len(got.Ops))
			}
		})
	}
}

// syncChanges runs the sync protocol from doc to an empty peer and returns
// the changes the messages carried, taken out with LoadSyncMessage.
func syncChanges(t *testing.T, doc *automerge.Doc) []*automerge.Change {
	t.Helper()
	peer := automerge.New()
	from, to := automerge.NewSyncState(doc), automerge.NewSyncState(peer)
	var got []*automerge.Change
	for range 10 {
		progress := false
		if m, ok := from.GenerateMessage(); ok {
			progress = true
			msg, err := automerge.LoadSyncMessage(m.Bytes())
			Must(t, err)
			got = append(got, msg.Changes()...)
			_, err = to.ReceiveMessage(m.Bytes())
			Must(t, err)
		}
		if m, ok := to.GenerateMessage(); ok {
			progress = true
			_, err := from.ReceiveMessage(m.Bytes())
			Must(t, err)
		}
		if !progress {
			break
		}
	}
	return got
}

func TestDecodeSyncMessageChanges(t *testing.T) {
	for _, tc := range docCases {
		t.Run(tc.name, func(t *testing.T) {
			doc, _ := tc.build(t)
			want := map[automerge.ChangeHash]*amchange.Change{}
			for _, ch := range MustChanges(t, doc) {
				c, err := amchange.Decode(ch.Save())
				Must(t, err)
				want[ch.Hash()] = c
			}
			chs := syncChanges(t, doc)
			if len(chs) != len(want) {
				t.Fatalf("sync carried %d changes, want %d", len(chs), len(want))
			}
			for _, ch := range chs {
				got, err := amchange.Decode(ch.Save())
				if err != nil {
					t.Fatalf("Decode(synced change) = %v", err)
				}
				if got.Hash != ch.Hash() {
					t.Errorf("Hash = %x, want %x", got.Hash, ch.Hash())
				}
				if diff := cmp.Diff(want[ch.Hash()], got); diff != "" {
					t.Errorf("synced change decodes differently (-doc +sync):\n%s", diff)
				}
			}
		})
	}
}
