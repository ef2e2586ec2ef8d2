package amchange_test

import (
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
	"testing"

	"github.com/automerge/automerge-go"
	"github.com/circles-coop/circles/crdt/amchange"
	"github.com/google/go-cmp/cmp"
)

// realChunks returns a few real changes of different shapes: small ones,
// one with another actor, and a large one in compressed form.
func realChunks(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, tc := range docCases {
		switch tc.name {
		case "scalar puts", "two actors", "counter":
		case "1200-op list":
			doc, _ := tc.build(t)
			out["compressed "+tc.name] = compressChunk(t, MustChanges(t, doc)[0].Save())
			continue
		default:
			continue
		}
		doc, _ := tc.build(t)
		for _, ch := range MustChanges(t, doc) {
			h := ch.Hash()
			out[tc.name+" "+ch.Message()+" "+hex.EncodeToString(h[:4])] = ch.Save()
		}
	}
	return out
}

func TestDecodeTruncated(t *testing.T) {
	for name, b := range realChunks(t) {
		t.Run(name, func(t *testing.T) {
			for i := range len(b) {
				_, err := amchange.Decode(b[:i])
				if !errors.Is(err, amchange.ErrTruncated) {
					t.Fatalf("Decode(first %d of %d bytes) = %v, want ErrTruncated", i, len(b), err)
				}
			}
		})
	}
}

func TestDecodeCorrupted(t *testing.T) {
	for name, b := range realChunks(t) {
		t.Run(name, func(t *testing.T) {
			orig, err := amchange.Decode(b)
			Must(t, err)
			_, typ, body := splitChunk(t, b)
			bodyStart := len(b) - len(body)
			for i := range len(b) {
				for _, mask := range []byte{0x01, 0x02, 0x80, 0xff} {
					c := bytes.Clone(b)
					c[i] ^= mask
					got, err := amchange.Decode(c)
					var want error
					switch {
					case i < 4, i == 8:
						want = amchange.ErrNotChange
					case i < 8, i >= bodyStart && typ == 1:
						want = amchange.ErrChecksum
					}
					if err == nil && typ == 2 && i >= bodyStart {
						// DEFLATE is not canonical and the checksum covers
						// the inflated body: a flip that inflates to the
						// same body is the same change.
						if diff := cmp.Diff(orig, got); diff != "" {
							t.Fatalf("Decode(byte %d ^ %#x) gives another change (-orig +got):\n%s", i, mask, diff)
						}
						continue
					}
					if err == nil {
						t.Fatalf("Decode(byte %d ^ %#x) succeeded, want an error", i, mask)
					}
					checkErr(t, err)
					if want != nil && !errors.Is(err, want) {
						t.Fatalf("Decode(byte %d ^ %#x) = %v, want %v", i, mask, err, want)
					}
				}
			}
		})
	}
}

// TestDecodeResealed corrupts each byte of real change bodies and fixes the
// checksum, so that the corruption reaches the parser. Whatever the parser
// makes of it must be an error of the package or a change that holds
// together and re-encodes to itself (see checkDecode).
func TestDecodeResealed(t *testing.T) {
	for name, b := range realChunks(t) {
		_, typ, body := splitChunk(t, b)
		if typ != 1 {
			continue
		}
		t.Run(name, func(t *testing.T) {
			for i := range len(body) {
				for _, mask := range []byte{0x01, 0x40, 0x80, 0xff} {
					c := bytes.Clone(body)
					c[i] ^= mask
					checkDecode(t, seal(c))
				}
			}
		})
	}
}

// deflate compresses b with DEFLATE.
func deflate(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.BestCompression)
	Must(t, err)
	_, err = w.Write(b)
	Must(t, err)
	Must(t, w.Close())
	return buf.Bytes()
}

// header returns a change chunk header with a zero checksum and the given
// raw length field.
func header(length []byte) []byte {
	return cat(magic, make([]byte, 4), []byte{1}, length)
}

// prefix encodes the start of a change body by actor A: no deps, the
// actor, seq 1, start op 1, time 0.
func prefix() []byte {
	actor, _ := hex.DecodeString(actorA)
	return cat(uleb(0), uleb(uint64(len(actor))), actor, uleb(1), uleb(1), sleb(0))
}

// huge is a count that no input can satisfy.
const huge = uint64(1) << 62

// runOf returns an RLE column holding n copies of the encoded value v.
func runOf(n uint64, v []byte) []byte {
	return cat(sleb(int64(n)), v)
}

// bombCraft is a change whose few bytes of run-length encoding describe
// 2^62 operations, each a null put at key "a" of the root.
func bombCraft() craft {
	c := putIntCraft(1)
	c.cols = []column{
		{specKeyStr, runOf(huge, cat(uleb(1), []byte("a")))},
		{specInsert, uleb(huge)},
		{specAction, runOf(huge, uleb(1))},
		{specValueMeta, runOf(huge, uleb(0))},
		{specPredGroup, runOf(huge, uleb(0))},
	}
	return c
}

type craftCase struct {
	name    string
	in      []byte
	decoder amchange.Decoder
	wantErr error                                  // nil: must decode
	check   func(t *testing.T, c *amchange.Change) // for successes
}

// lenient decodes without the canonical-form check.
var lenient = amchange.Decoder{AllowNonCanonical: true}

func craftCases(t testing.TB) []craftCase {
	valid := putIntCraft(1)
	doc := MustDoc(t, actorA)
	Must(t, doc.RootMap().Set("k", "v"))
	MustCommit(t, doc, "")
	realDoc := doc.Save()
	actorBBytes, _ := hex.DecodeString(actorB)

	withActors := func(c craft, others ...[]byte) craft { c.others = others; return c }
	wantOps := func(want ...amchange.Op) func(t *testing.T, c *amchange.Change) {
		return func(t *testing.T, c *amchange.Change) {
			if diff := cmp.Diff(want, c.Ops); diff != "" {
				t.Errorf("Ops differ (-want +got):\n%s", diff)
			}
		}
	}
	putA := mapOp(id(1, actorA), root, "a", amchange.Put, i64(1))
	// The columns of an operation on an element of object 1@B after 1@B,
	// superseding 1@B: actor index 1 everywhere.
	elemCols := func(c craft, actorIdx uint64) craft {
		c.cols = []column{
			{specObjActor, lit(uleb(actorIdx))},
			{specObjCtr, lit(uleb(1))},
			{specKeyActor, lit(uleb(actorIdx))},
			{specKeyCtr, lit(sleb(1))},
			{specInsert, uleb(1)},
			{specAction, lit(uleb(3))},
			{specValueMeta, lit(uleb(0))},
			{specPredGroup, lit(uleb(1))},
			{specPredActor, lit(uleb(actorIdx))},
			{specPredCtr, lit(sleb(1))},
		}
		return c
	}

	return []craftCase{
		// Chunk framing.
		{name: "crafted put", in: seal(valid.encode()), check: wantOps(putA)},
		{name: "empty input", in: nil, wantErr: amchange.ErrTruncated},
		{name: "wrong magic", in: cat([]byte{0x85, 0x6f, 0x4a, 0x84}, seal(valid.encode())[4:]), wantErr: amchange.ErrNotChange},
		{name: "document chunk", in: realDoc, wantErr: amchange.ErrNotChange},
		{name: "chunk length 2^63", in: cat(header(uleb(1<<63)), []byte{0, 0}), wantErr: amchange.ErrTooLarge},
		{name: "chunk length past the input", in: cat(header(uleb(100)), make([]byte, 10)), wantErr: amchange.ErrTruncated},
		{name: "chunk length over 64 bits", in: header(bytes.Repeat([]byte{0xff}, 12)), wantErr: amchange.ErrMalformed},
		{name: "chunk length overlong", in: cat(header([]byte{0x81, 0x00}), []byte{0}), wantErr: amchange.ErrMalformed},
		{name: "bytes after the chunk", in: cat(seal(valid.encode()), []byte{0}), wantErr: amchange.ErrMalformed},
		{name: "chunk over MaxSize", in: seal(valid.encode()), decoder: amchange.Decoder{MaxSize: 10}, wantErr: amchange.ErrTooLarge},

		// Metadata.
		{name: "deps count 2^40", in: seal(cat(uleb(1<<40), make([]byte, 64))), wantErr: amchange.ErrTruncated},
		{name: "actor length 2^62", in: seal(cat(uleb(0), uleb(huge), make([]byte, 20))), wantErr: amchange.ErrTruncated},
		{name: "empty actor", in: seal(func() craft { c := valid; c.actor = nil; return c }().encode()), wantErr: amchange.ErrMalformed},
		{name: "start op 0", in: seal(func() craft { c := valid; c.startOp = 0; return c }().encode()), wantErr: amchange.ErrMalformed},
		{name: "start op 2^32", in: seal(func() craft { c := valid; c.startOp = 1 << 32; return c }().encode()), wantErr: amchange.ErrMalformed},
		{name: "message length 2^60", in: seal(cat(prefix(), uleb(1<<60), []byte("hi"))), wantErr: amchange.ErrTruncated},
		{name: "message not UTF-8", in: seal(func() craft { c := valid; c.message = "\xff"; return c }().encode()), wantErr: amchange.ErrMalformed},
		{name: "actor count 2^50", in: seal(cat(prefix(), uleb(0), uleb(1<<50), uleb(1), []byte{1})), wantErr: amchange.ErrTruncated},
		{name: "column count 2^50", in: seal(cat(prefix(), uleb(0), uleb(0), uleb(1<<50), uleb(0x42), uleb(1))), wantErr: amchange.ErrTruncated},
		{name: "column length 2^60", in: seal(cat(prefix(), uleb(0), uleb(0), uleb(1), uleb(0x42), uleb(1<<60), []byte{1, 1})), wantErr: amchange.ErrTruncated},
		{name: "column spec over 32 bits", in: seal(cat(prefix(), uleb(0), uleb(0), uleb(1), uleb(1<<33), uleb(0))), wantErr: amchange.ErrMalformed},
		{name: "extra bytes after the columns", in: seal(func() craft { c := valid; c.extra = []byte{1, 2, 3}; return c }().encode()), check: wantOps(putA)},

		// Column layout.
		{name: "columns out of order", in: seal(func() craft {
			c := valid
			c.cols = append([]column{c.cols[1], c.cols[0]}, c.cols[2:]...)
			return c
		}().encode()), wantErr: amchange.ErrMalformed},
		{name: "column repeated", in: seal(func() craft {
			c := valid
			c.cols = append([]column{c.cols[0]}, c.cols...)
			return c
		}().encode()), wantErr: amchange.ErrMalformed},
		{name: "deflated column", in: seal(func() craft {
			c := valid
			c.cols = append([]column{}, c.cols...)
			c.cols[2] = column{specAction | 8, deflate(t, c.cols[2].data)}
			return c
		}().encode()), wantErr: amchange.ErrMalformed},
		{name: "known id with another type", in: seal(valid.withCol(0x45, lit(uleb(1))).encode()), wantErr: amchange.ErrMalformed},
		{name: "raw values without metadata", in: seal(func() craft {
			c := valid
			c.cols = append(append([]column{}, c.cols[:3]...), c.cols[4:]...)
			return c
		}().encode()), wantErr: amchange.ErrMalformed},
		{name: "pred actor without its group", in: seal(func() craft {
			c := elemCols(withActors(valid, actorBBytes), 1)
			c.cols = append(append([]column{}, c.cols[:7]...), c.cols[8:]...)
			return c
		}().encode()), wantErr: amchange.ErrMalformed},
		{name: "one object column", in: seal(valid.withCol(specObjActor, lit(uleb(0))).encode()), wantErr: amchange.ErrMalformed},
		{name: "unknown column skipped", in: seal(valid.withCol(0x65, []byte("anything")).encode()), decoder: lenient, check: wantOps(putA)},
		{name: "unknown column not canonical", in: seal(valid.withCol(0x65, []byte("anything")).encode()), wantErr: amchange.ErrNotCanonical},

		// Operations.
		{name: "2^62 operations", in: seal(bombCraft().encode()), wantErr: amchange.ErrTooLarge},
		{name: "operations over MaxOps", in: seal(bombCraft().encode()), decoder: amchange.Decoder{MaxOps: 10}, wantErr: amchange.ErrTooLarge},
		{name: "pred count 2^62", in: seal(func() craft {
			c := elemCols(withActors(valid, actorBBytes), 1)
			c.cols[7] = column{specPredGroup, lit(uleb(huge))}
			c.cols[8] = column{specPredActor, runOf(huge, uleb(1))}
			c.cols[9] = column{specPredCtr, runOf(huge, sleb(1))}
			return c
		}().encode()), wantErr: amchange.ErrTooLarge},
		{name: "preds over MaxPreds", in: seal(func() craft {
			c := elemCols(withActors(valid, actorBBytes), 1)
			c.cols[7] = column{specPredGroup, lit(uleb(5))}
			c.cols[8] = column{specPredActor, runOf(5, uleb(1))}
			c.cols[9] = column{specPredCtr, runOf(5, sleb(1))}
			return c
		}().encode()), decoder: amchange.Decoder{MaxPreds: 3}, wantErr: amchange.ErrTooLarge},
		{name: "element op of another actor", in: seal(elemCols(withActors(valid, actorBBytes), 1).encode()), check: func(t *testing.T, c *amchange.Change) {
			wantOps(seqOp(id(1, actorA), id(1, actorB), id(1, actorB), false, amchange.Delete, null, id(1, actorB)))(t, c)
			if got, want := c.Actors, []string{actorA, actorB}; !cmp.Equal(got, want) {
				t.Errorf("Actors = %q, want %q", got, want)
			}
		}},
		{name: "object actor index out of range", in: seal(func() craft {
			c := elemCols(withActors(valid, actorBBytes), 1)
			c.cols[0] = column{specObjActor, lit(uleb(2))}
			return c
		}().encode()), wantErr: amchange.ErrMalformed},
		{name: "key actor index out of range", in: seal(func() craft {
			c := elemCols(withActors(valid, actorBBytes), 1)
			c.cols[2] = column{specKeyActor, lit(uleb(7))}
			return c
		}().encode()), wantErr: amchange.ErrMalformed},
		{name: "pred actor index out of range", in: seal(func() craft {
			c := elemCols(withActors(valid, actorBBytes), 1)
			c.cols[8] = column{specPredActor, lit(uleb(1 << 40))}
			return c
		}().encode()), wantErr: amchange.ErrMalformed},
		{name: "actor index with no other actors", in: seal(elemCols(valid, 1).encode()), wantErr: amchange.ErrMalformed},
		{name: "object counter 0 with an actor", in: seal(func() craft {
			c := elemCols(withActors(valid, actorBBytes), 1)
			c.cols[1] = column{specObjCtr, lit(uleb(0))}
			return c
		}().encode()), wantErr: amchange.ErrMalformed},
		{name: "negative key counter", in: seal(func() craft {
			c := elemCols(withActors(valid, actorBBytes), 1)
			c.cols[3] = column{specKeyCtr, lit(sleb(-1))}
			return c
		}().encode()), wantErr: amchange.ErrMalformed},
		{name: "key both string and element", in: seal(func() craft {
			c := elemCols(withActors(valid, actorBBytes), 1)
			return c.withCol(specKeyStr, lit(cat(uleb(1), []byte("a"))))
		}().encode()), wantErr: amchange.ErrMalformed},
		{name: "operation without a key", in: seal(valid.withCol(specKeyStr, nil).encode()), wantErr: amchange.ErrMalformed},
		{name: "insert column ends early", in: seal(valid.withCol(specInsert, nil).encode()), wantErr: amchange.ErrMalformed},
		{name: "pred count column ends early", in: seal(valid.withCol(specPredGroup, nil).encode()), wantErr: amchange.ErrMalformed},
		{name: "null action", in: seal(valid.withCol(specAction, cat(sleb(0), uleb(1))).encode()), wantErr: amchange.ErrMalformed},
		{name: "overlong number in a column", in: seal(valid.withCol(specAction, []byte{0x01, 0x81, 0x00}).encode()), wantErr: amchange.ErrMalformed},
		{name: "number over 64 bits in a column", in: seal(valid.withCol(specAction, cat([]byte{0x01}, bytes.Repeat([]byte{0xff}, 10), []byte{0x01})).encode()), wantErr: amchange.ErrMalformed},
		{name: "literal run of -2^63", in: seal(valid.withCol(specAction, sleb(math.MinInt64)).encode()), wantErr: amchange.ErrMalformed},
		{name: "key string not UTF-8", in: seal(valid.withCol(specKeyStr, lit(cat(uleb(1), []byte{0xff}))).encode()), wantErr: amchange.ErrMalformed},
		{name: "unknown action kept", in: seal(valid.withCol(specAction, lit(uleb(9))).encode()), decoder: lenient, check: func(t *testing.T, c *amchange.Change) {
			if got := c.Ops[0].Action; got != 9 || got.Known() {
				t.Errorf("Action = %v (known %t), want unknown(9)", got, got.Known())
			}
		}},
		{name: "unknown action not canonical", in: seal(valid.withCol(specAction, lit(uleb(9))).encode()), wantErr: amchange.ErrNotCanonical},
		{name: "increment by a string", in: seal(valid.
			withCol(specAction, lit(uleb(5))).
			withCol(specValueMeta, lit(uleb(1<<4|6))).
			withCol(specValueRaw, []byte("x")).encode()), wantErr: amchange.ErrMalformed},

		// Values.
		{name: "value length 2^59", in: seal(valid.withCol(specValueMeta, lit(uleb(1<<63|6))).encode()), wantErr: amchange.ErrMalformed},
		{name: "float of 4 bytes", in: seal(valid.withCol(specValueMeta, lit(uleb(4<<4|5))).withCol(specValueRaw, make([]byte, 4)).encode()), wantErr: amchange.ErrMalformed},
		{name: "null with a length", in: seal(valid.withCol(specValueMeta, lit(uleb(1<<4) /* type 0, null */)).encode()), wantErr: amchange.ErrMalformed},
		{name: "int with a trailing byte", in: seal(valid.withCol(specValueMeta, lit(uleb(2<<4|4))).withCol(specValueRaw, []byte{1, 0}).encode()), wantErr: amchange.ErrMalformed},
		{name: "string value not UTF-8", in: seal(valid.withCol(specValueMeta, lit(uleb(1<<4|6))).withCol(specValueRaw, []byte{0xc0}).encode()), wantErr: amchange.ErrMalformed},
		{name: "unknown value type kept", in: seal(valid.withCol(specValueMeta, lit(uleb(2<<4|12))).withCol(specValueRaw, []byte{7, 8}).encode()),
			check: wantOps(mapOp(id(1, actorA), root, "a", amchange.Put, amchange.Value{Kind: amchange.Unknown, TypeCode: 12, Bytes: []byte{7, 8}}))},

		// Canonical form: what automerge would apply but not load again.
		{name: "run of one instead of a literal", in: seal(valid.withCol(specKeyStr, runOf(1, cat(uleb(1), []byte("a")))).encode()), wantErr: amchange.ErrNotCanonical},
		{name: "run of one decoded when allowed", in: seal(valid.withCol(specKeyStr, runOf(1, cat(uleb(1), []byte("a")))).encode()), decoder: lenient, check: wantOps(putA)},
		{name: "empty null run", in: seal(valid.withCol(specAction, cat(sleb(0), uleb(0), lit(uleb(1)))).encode()), wantErr: amchange.ErrNotCanonical},
		{name: "dependencies out of order", in: seal(func() craft { c := valid; c.deps = [][32]byte{{2}, {1}}; return c }().encode()), wantErr: amchange.ErrNotCanonical},
		{name: "dependency repeated", in: seal(func() craft { c := valid; c.deps = [][32]byte{{1}, {1}}; return c }().encode()), wantErr: amchange.ErrNotCanonical},
		{name: "dependencies in order", in: seal(func() craft { c := valid; c.deps = [][32]byte{{1}, {2}}; return c }().encode()), check: wantOps(putA)},
		{name: "unused other actor", in: seal(withActors(valid, actorBBytes).encode()), wantErr: amchange.ErrNotCanonical},
		{name: "other actors out of order", in: seal(func() craft {
			c := elemCols(withActors(valid, []byte{0xcc}, actorBBytes), 2) // "cc" after "bb…"
			c.cols[8] = column{specPredActor, lit(uleb(1))}
			return c
		}().encode()), wantErr: amchange.ErrNotCanonical},
		{name: "preds out of order", in: seal(func() craft {
			c := elemCols(withActors(valid, actorBBytes), 1)
			c.cols[7] = column{specPredGroup, lit(uleb(2))}
			c.cols[8] = column{specPredActor, runOf(2, uleb(1))}
			c.cols[9] = column{specPredCtr, lit(sleb(2), sleb(-1))} // 2@B, 1@B
			return c
		}().encode()), wantErr: amchange.ErrNotCanonical},
		{name: "increment by a uint", in: seal(valid.
			withCol(specAction, lit(uleb(5))).
			withCol(specValueMeta, lit(uleb(1<<4|3))).
			withCol(specValueRaw, uleb(1)).encode()), wantErr: amchange.ErrNotCanonical},
		{name: "delete with a value", in: seal(valid.withCol(specAction, lit(uleb(3))).encode()), wantErr: amchange.ErrNotCanonical},
		{name: "expand on a put", in: seal(valid.withCol(specExpand, cat(uleb(0), uleb(1))).encode()), wantErr: amchange.ErrNotCanonical},

		// Marks, which automerge-go cannot make: a mark "bold" = true that
		// grows at its edges, then its end, on text 1@B.
		{name: "mark begin and end", in: seal(func() craft {
			c := withActors(valid, actorBBytes)
			c.cols = []column{
				{specObjActor, runOf(2, uleb(1))},
				{specObjCtr, runOf(2, uleb(1))},
				{specKeyActor, runOf(2, uleb(1))},
				{specKeyCtr, cat(sleb(-2), sleb(2), sleb(1))}, // literal run: 2, 3
				{specInsert, cat(uleb(0), uleb(2))},           // 0 false, 2 true
				{specAction, runOf(2, uleb(7))},
				{specValueMeta, cat(sleb(-2), uleb(2), uleb(0))}, // true, null
				{specPredGroup, runOf(2, uleb(0))},
				{specExpand, cat(uleb(0), uleb(2))},
				{specMarkName, cat(sleb(-1), uleb(4), []byte("bold"), sleb(0), uleb(1))}, // "bold", null
			}
			return c
		}().encode()), check: func(t *testing.T, c *amchange.Change) {
			text := id(1, actorB)
			begin := seqOp(id(1, actorA), text, id(2, actorB), true, amchange.Mark, boolean(true))
			begin.Expand, begin.MarkName, begin.HasMarkName = true, "bold", true
			end := seqOp(id(2, actorA), text, id(3, actorB), true, amchange.Mark, null)
			end.Expand = true
			wantOps(begin, end)(t, c)
		}},
	}
}

func TestDecodeCrafted(t *testing.T) {
	for _, tc := range craftCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.decoder.Decode(tc.in)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Decode() = %v, want %v", err, tc.wantErr)
				}
				checkErr(t, err)
				return
			}
			if err != nil {
				t.Fatalf("Decode() = %v, want success", err)
			}
			checkInvariants(t, tc.in, got, &tc.decoder)
			if tc.check != nil {
				tc.check(t, got)
			}
		})
	}
}

// TestCraftedAgreesWithAutomerge feeds some crafted changes to automerge-go
// too. The crafted put is a real change that survives a save and load, so
// the crafting is sound; automerge refuses what this package refuses as
// malformed; and what this package refuses as not canonical, automerge
// applies but then cannot load from the saved document.
func TestCraftedAgreesWithAutomerge(t *testing.T) {
	type outcome struct{ applies, reloads bool }
	cases := map[string]outcome{
		"crafted put":                     {true, true},
		"extra bytes after the columns":   {true, true},
		"run of one instead of a literal": {true, false},
		"empty null run":                  {true, false},
		"unknown column not canonical":    {true, false},
		"columns out of order":            {false, false},
		"deflated column":                 {false, false},
		"raw values without metadata":     {false, false},
		"increment by a string":           {false, false},
		"unknown action not canonical":    {false, false},
	}
	for _, tc := range craftCases(t) {
		want, ok := cases[tc.name]
		if !ok {
			continue
		}
		delete(cases, tc.name)
		t.Run(tc.name, func(t *testing.T) {
			_, decodeErr := tc.decoder.Decode(tc.in)
			if got := decodeErr == nil; got != want.reloads {
				t.Errorf("Decode() = %v, want accepted = %t", decodeErr, want.reloads)
			}
			doc := automerge.New()
			err := doc.LoadIncremental(tc.in)
			if got := err == nil; got != want.applies {
				t.Fatalf("automerge LoadIncremental() = %v, want accepted = %t", err, want.applies)
			}
			if !want.applies {
				return
			}
			v, err := doc.RootMap().Get("a")
			Must(t, err)
			if got := v.Int64(); got != 1 {
				t.Errorf("automerge reads a = %d, want 1", got)
			}
			_, err = automerge.Load(doc.Save())
			if got := err == nil; got != want.reloads {
				t.Errorf("automerge Load(Save()) = %v, want loaded = %t", err, want.reloads)
			}
		})
	}
	for name := range cases {
		t.Errorf("no crafted case %q", name)
	}
}

// TestDecodeCompressedBomb checks that a compressed chunk that inflates
// past MaxSize is refused without inflating it all.
func TestDecodeCompressedBomb(t *testing.T) {
	body := make([]byte, 4<<20)
	sum := sha256.Sum256(chunk(nil, 1, body)[4:])
	in := chunk(sum[:4], 2, deflate(t, body))
	for _, tc := range []struct {
		name    string
		maxSize int
		wantErr error
	}{
		{"over the cap", 1 << 20, amchange.ErrTooLarge},
		{"within the cap", 8 << 20, amchange.ErrMalformed}, // zeros are not a valid change
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := amchange.Decoder{MaxSize: tc.maxSize}
			if _, err := d.Decode(in); !errors.Is(err, tc.wantErr) {
				t.Fatalf("Decode(%d-byte bomb) = %v, want %v", len(in), err, tc.wantErr)
			}
		})
	}
}
