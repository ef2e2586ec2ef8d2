package amchange_test

import (
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/automerge/automerge-go"
	"github.com/circles-coop/circles/crdt/amchange"
)

// Actor ids of the test documents, so that expected op ids can be written
// down.
const (
	actorA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	actorB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

var magic = []byte{0x85, 0x6f, 0x4a, 0x83}

// MustDoc returns a new document whose actor is actor.
func MustDoc(tb testing.TB, actor string) *automerge.Doc {
	tb.Helper()
	doc := automerge.New()
	if err := doc.SetActorID(actor); err != nil {
		tb.Fatalf("SetActorID(%q) = %v", actor, err)
	}
	return doc
}

// MustCommit commits the document's pending operations.
func MustCommit(tb testing.TB, doc *automerge.Doc, msg string) {
	tb.Helper()
	if _, err := doc.Commit(msg); err != nil {
		tb.Fatalf("Commit(%q) = %v", msg, err)
	}
}

// Must fails the test on a non-nil error.
func Must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// MustChanges returns all of the document's changes.
func MustChanges(tb testing.TB, doc *automerge.Doc) []*automerge.Change {
	tb.Helper()
	chs, err := doc.Changes()
	if err != nil {
		tb.Fatalf("Changes() = %v", err)
	}
	return chs
}

// splitChunk splits a chunk into its checksum, type and body, following the
// format rather than the package under test.
func splitChunk(tb testing.TB, b []byte) (sum []byte, typ byte, body []byte) {
	tb.Helper()
	if len(b) < 10 || !bytes.Equal(b[:4], magic) {
		tb.Fatalf("not a chunk: % x", b)
	}
	n, k := binary.Uvarint(b[9:])
	if k <= 0 || uint64(len(b)-9-k) != n {
		tb.Fatalf("bad chunk length in % x", b[:min(len(b), 16)])
	}
	return b[4:8], b[8], b[9+k:]
}

// chunk assembles a chunk from its parts.
func chunk(sum []byte, typ byte, body []byte) []byte {
	out := append([]byte{}, magic...)
	out = append(out, sum...)
	out = append(out, typ)
	out = binary.AppendUvarint(out, uint64(len(body)))
	return append(out, body...)
}

// seal wraps a change body in a type 1 chunk with the right checksum.
func seal(body []byte) []byte {
	h := sha256.Sum256(chunk(nil, 1, body)[4:])
	return chunk(h[:4], 1, body)
}

// compressChunk turns an uncompressed change chunk into the compressed
// (type 2) form automerge-rs writes: the body DEFLATE-compressed, the
// checksum of the uncompressed chunk kept.
func compressChunk(tb testing.TB, b []byte) []byte {
	tb.Helper()
	sum, typ, body := splitChunk(tb, b)
	if typ != 1 {
		tb.Fatalf("chunk type %d, want 1", typ)
	}
	var buf bytes.Buffer
	if zw == nil {
		var err error
		zw, err = flate.NewWriter(&buf, flate.DefaultCompression)
		Must(tb, err)
	}
	zw.Reset(&buf) // reused: a flate.Writer is costly to make, and fuzzing makes many
	_, err := zw.Write(body)
	Must(tb, err)
	Must(tb, zw.Close())
	return chunk(sum, 2, buf.Bytes())
}

// zw is compressChunk's writer; no test here runs in parallel.
var zw *flate.Writer

// uncompressedBody returns the body of a chunk, inflating it if it is of
// type 2.
func uncompressedBody(b []byte) ([]byte, bool) {
	if len(b) < 10 {
		return nil, false
	}
	n, k := binary.Uvarint(b[9:])
	if k <= 0 || uint64(len(b)-9-k) != n {
		return nil, false
	}
	body := b[9+k:]
	switch b[8] {
	case 1:
		return body, true
	case 2:
		out, err := io.ReadAll(flate.NewReader(bytes.NewReader(body)))
		return out, err == nil
	}
	return nil, false
}

// checkInvariants checks what must hold of any successfully decoded change
// c of the chunk b.
func checkInvariants(tb testing.TB, b []byte, c *amchange.Change, d *amchange.Decoder) {
	tb.Helper()
	body, ok := uncompressedBody(b)
	if !ok {
		tb.Fatalf("decoded a chunk whose body cannot be recovered: % x", b)
	}
	if got, want := c.Hash, sha256.Sum256(chunk(nil, 1, body)[4:]); got != want {
		tb.Fatalf("Hash = %x, want %x", got, want)
	}
	if got, want := b[4:8], c.Hash[:4]; !bytes.Equal(got, want) {
		tb.Fatalf("checksum = % x, want % x", got, want)
	}
	if len(c.Actors) == 0 || c.Actors[0] != c.Actor {
		tb.Fatalf("Actors = %q, want the author %q first", c.Actors, c.Actor)
	}
	actors := map[string]bool{}
	for _, a := range c.Actors {
		if _, err := hex.DecodeString(a); err != nil || a == "" {
			tb.Fatalf("actor %q is not a hex id", a)
		}
		actors[a] = true
	}
	if c.StartOp == 0 {
		tb.Fatalf("StartOp = 0")
	}
	maxOps, maxPreds := d.MaxOps, d.MaxPreds
	if maxOps <= 0 {
		maxOps = amchange.DefaultMaxOps
	}
	if maxPreds <= 0 {
		maxPreds = amchange.DefaultMaxPreds
	}
	if len(c.Ops) > maxOps {
		tb.Fatalf("%d ops, over the cap %d", len(c.Ops), maxOps)
	}
	preds := 0
	for i, op := range c.Ops {
		if got, want := op.ID, (amchange.OpID{Counter: c.StartOp + uint64(i), Actor: c.Actor}); got != want {
			tb.Fatalf("Ops[%d].ID = %v, want %v", i, got, want)
		}
		ids := append([]amchange.OpID{op.Obj, op.Elem}, op.Pred...)
		for _, id := range ids {
			if !id.IsRoot() && (id.Counter == 0 || !actors[id.Actor]) {
				tb.Fatalf("Ops[%d] refers to %v, not an op of the change's actors", i, id)
			}
		}
		if op.Key != "" && op.ElemKey {
			tb.Fatalf("Ops[%d] has both key %q and an element", i, op.Key)
		}
		if op.Action == amchange.Increment && op.Value.Kind != amchange.Int && op.Value.Kind != amchange.Uint {
			tb.Fatalf("Ops[%d] increments by %v", i, op.Value)
		}
		preds += len(op.Pred)
	}
	if preds > maxPreds {
		tb.Fatalf("%d preds, over the cap %d", preds, maxPreds)
	}
}

// checkErr fails unless err wraps one of the package's errors.
func checkErr(tb testing.TB, err error) {
	tb.Helper()
	if err != nil && strings.Contains(err.Error(), "internal error") {
		tb.Fatalf("Decode recovered from a panic: %v", err)
	}
	for _, e := range []error{amchange.ErrTruncated, amchange.ErrChecksum, amchange.ErrNotChange, amchange.ErrTooLarge, amchange.ErrMalformed, amchange.ErrNotCanonical} {
		if errors.Is(err, e) {
			return
		}
	}
	tb.Fatalf("error %v wraps none of the package's errors", err)
}

// Encoders for crafted changes.

func uleb(v uint64) []byte { return binary.AppendUvarint(nil, v) }

func sleb(v int64) []byte {
	var out []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(out, c)
		}
		out = append(out, c|0x80)
	}
}

// cat concatenates byte slices.
func cat(parts ...[]byte) []byte {
	return bytes.Join(parts, nil)
}

// column is one column of a crafted change.
type column struct {
	spec uint64
	data []byte
}

// craft is a change body to be encoded field by field; raw fields, when
// set, replace the encoding of the field they follow.
type craft struct {
	deps    [][32]byte
	actor   []byte
	seq     uint64
	startOp uint64
	time    int64
	message string
	others  [][]byte
	cols    []column
	extra   []byte
}

// encode writes the change body.
func (c craft) encode() []byte {
	out := uleb(uint64(len(c.deps)))
	for _, d := range c.deps {
		out = append(out, d[:]...)
	}
	out = append(out, uleb(uint64(len(c.actor)))...)
	out = append(out, c.actor...)
	out = append(out, uleb(c.seq)...)
	out = append(out, uleb(c.startOp)...)
	out = append(out, sleb(c.time)...)
	out = append(out, uleb(uint64(len(c.message)))...)
	out = append(out, c.message...)
	out = append(out, uleb(uint64(len(c.others)))...)
	for _, a := range c.others {
		out = append(out, uleb(uint64(len(a)))...)
		out = append(out, a...)
	}
	out = append(out, uleb(uint64(len(c.cols)))...)
	for _, col := range c.cols {
		out = append(out, uleb(col.spec)...)
		out = append(out, uleb(uint64(len(col.data)))...)
	}
	for _, col := range c.cols {
		out = append(out, col.data...)
	}
	return append(out, c.extra...)
}

// Column specifications: id<<4 | type.
const (
	specObjActor  = 0x01
	specObjCtr    = 0x02
	specKeyActor  = 0x11
	specKeyCtr    = 0x13
	specKeyStr    = 0x15
	specInsert    = 0x34
	specAction    = 0x42
	specValueMeta = 0x56
	specValueRaw  = 0x57
	specPredGroup = 0x70
	specPredActor = 0x71
	specPredCtr   = 0x73
	specExpand    = 0x94
	specMarkName  = 0xa5
)

// lit returns an RLE literal run of the encoded values: how automerge
// encodes a value that differs from its neighbours.
func lit(vals ...[]byte) []byte {
	return cat(sleb(-int64(len(vals))), cat(vals...))
}

// putIntCraft is a change by actor A that puts the int v at key "a" of the
// root map: the smallest useful change, encoded as automerge encodes it.
func putIntCraft(v int64) craft {
	actor, _ := hex.DecodeString(actorA)
	return craft{
		actor: actor, seq: 1, startOp: 1, time: 1700000000000,
		cols: []column{
			{specKeyStr, lit(cat(uleb(1), []byte("a")))},            // "a"
			{specInsert, uleb(1)},                                   // 1 false
			{specAction, lit(uleb(1))},                              // put
			{specValueMeta, lit(uleb(uint64(len(sleb(v)))<<4 | 4))}, // int
			{specValueRaw, sleb(v)},
			{specPredGroup, lit(uleb(0))}, // no preds
		},
	}
}

// withCol returns a copy of c with the column of the given spec replaced,
// or added in order if c has none.
func (c craft) withCol(spec uint64, data []byte) craft {
	cols := make([]column, 0, len(c.cols)+1)
	added := false
	for _, col := range c.cols {
		switch {
		case col.spec == spec:
			cols = append(cols, column{spec, data})
			added = true
		case col.spec > spec && !added:
			cols = append(cols, column{spec, data}, col)
			added = true
		default:
			cols = append(cols, col)
		}
	}
	if !added {
		cols = append(cols, column{spec, data})
	}
	c.cols = cols
	return c
}
