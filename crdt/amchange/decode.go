package amchange

import (
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"unicode/utf8"
)

// internalError marks the error Decode returns if it recovers from a panic.
const internalError = "internal error (please report):"

// magic opens every Automerge chunk.
var magic = [4]byte{0x85, 0x6f, 0x4a, 0x83}

// Chunk types.
const (
	chunkDocument   = 0
	chunkChange     = 1
	chunkCompressed = 2
	chunkBundle     = 3
)

// Default caps of a Decoder.
const (
	// DefaultMaxSize caps the body of a change chunk, compressed or not,
	// in bytes.
	DefaultMaxSize = 8 << 20
	// DefaultMaxOps caps the operations of one change.
	DefaultMaxOps = 100_000
	// DefaultMaxPreds caps the pred entries of all the operations of one
	// change together.
	DefaultMaxPreds = 200_000
)

// A Decoder decodes change chunks within caps on their size. The zero
// Decoder uses the defaults; a cap that is zero or negative takes its
// default. A Decoder is safe for concurrent use.
//
// The caps bound the memory a decode can take whatever the input: about
// 2×MaxSize while inflating a compressed chunk, plus about 256 bytes an
// operation and 24 bytes a pred entry (some 30 MB at the defaults), plus
// memory in proportion to the input. Run-length encoding lets a few bytes
// describe very many operations, so MaxOps and MaxPreds, not the input
// size, bound those.
type Decoder struct {
	// MaxSize caps the chunk body in bytes, compressed and inflated.
	MaxSize int
	// MaxOps caps the operations of a change.
	MaxOps int
	// MaxPreds caps the pred entries of all the operations together.
	MaxPreds int
	// AllowNonCanonical, when set, skips the check that the change is
	// encoded exactly as automerge encodes it (see ErrNotCanonical). Leave
	// it unset for changes that will be applied to a document.
	AllowNonCanonical bool
}

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// Decode parses one change chunk with the default caps. See
// [Decoder.Decode].
func Decode(b []byte) (*Change, error) {
	var d Decoder
	return d.Decode(b)
}

// Decode parses b, which must hold exactly one change chunk as produced by
// (*automerge.Change).Save or carried in a sync message: magic bytes,
// checksum, chunk type 1 (change) or 2 (DEFLATE-compressed change), uLEB128
// length and body. It verifies the checksum, the first 4 bytes of the
// SHA-256 over the uncompressed chunk's type, length and body, and returns
// the change with that SHA-256 as its Hash.
//
// Unless d.AllowNonCanonical is set, it also checks that the change is
// encoded exactly as automerge-rs 0.5 would encode it, which a change must
// be for a document holding it to load again after it is saved.
//
// The error wraps ErrNotChange when b is not a change chunk, ErrTruncated
// when it ends early, ErrChecksum when the checksum does not match,
// ErrTooLarge when a cap of d is exceeded, ErrNotCanonical when the change
// is not in canonical form and ErrMalformed for any other breach of the
// format.
func (d *Decoder) Decode(b []byte) (c *Change, err error) {
	// The decoder is written not to panic, and the fuzz tests hold it to
	// that; should a bug slip through anyway, untrusted input must not take
	// the server down with it.
	defer func() {
		if r := recover(); r != nil {
			c, err = nil, fmt.Errorf("%w: %s %v", ErrMalformed, internalError, r)
		}
	}()
	maxSize := orDefault(d.MaxSize, DefaultMaxSize)
	r := reader{b: b}
	m, err := r.bytes(4)
	if err != nil {
		return nil, truncated("magic bytes")
	}
	if !bytes.Equal(m, magic[:]) {
		return nil, fmt.Errorf("%w: wrong magic bytes", ErrNotChange)
	}
	sum, err := r.bytes(4)
	if err != nil {
		return nil, truncated("checksum")
	}
	typ, err := r.bytes(1)
	if err != nil {
		return nil, truncated("chunk type")
	}
	switch typ[0] {
	case chunkChange, chunkCompressed:
	case chunkDocument:
		return nil, fmt.Errorf("%w: document chunk", ErrNotChange)
	case chunkBundle:
		return nil, fmt.Errorf("%w: bundle chunk", ErrNotChange)
	default:
		return nil, fmt.Errorf("%w: unknown chunk type %d", ErrNotChange, typ[0])
	}
	n, err := r.uleb()
	if err != nil {
		return nil, readErr(err, "chunk length")
	}
	if n > uint64(maxSize) {
		return nil, tooLarge("chunk body of %d bytes exceeds %d", n, maxSize)
	}
	body, err := r.bytes(n)
	if err != nil {
		return nil, truncated("chunk body")
	}
	if !r.done() {
		return nil, malformed("%d bytes after the chunk", r.remaining())
	}
	if typ[0] == chunkCompressed {
		if body, err = inflate(body, maxSize); err != nil {
			return nil, err
		}
	}
	hash := chunkHash(body)
	if !bytes.Equal(hash[:4], sum) {
		return nil, ErrChecksum
	}
	if c, err = d.parseBody(body); err != nil {
		return nil, err
	}
	if !d.AllowNonCanonical {
		if err := checkCanonical(c, body); err != nil {
			return nil, err
		}
	}
	c.Hash = hash
	return c, nil
}

// inflate decompresses the body of a compressed change chunk, refusing to
// produce more than maxSize bytes.
func inflate(body []byte, maxSize int) ([]byte, error) {
	// bytes.Reader is an io.ByteReader, so flate reads no further than the
	// end of the compressed stream and br.Len tells what follows it.
	br := bytes.NewReader(body)
	fr := flate.NewReader(br)
	defer fr.Close()
	out, err := io.ReadAll(io.LimitReader(fr, int64(maxSize)+1))
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return nil, truncated("compressed chunk body")
	case err != nil:
		return nil, malformed("compressed chunk body: %v", err)
	case len(out) > maxSize:
		return nil, tooLarge("chunk body inflates to more than %d bytes", maxSize)
	case br.Len() != 0:
		return nil, malformed("%d bytes after the compressed chunk body", br.Len())
	}
	return out, nil
}

// chunkHash returns the SHA-256 of an uncompressed change chunk's type,
// length and body: Automerge's change hash.
func chunkHash(body []byte) [32]byte {
	h := sha256.New()
	var head [1 + binary.MaxVarintLen64]byte
	head[0] = chunkChange
	k := 1 + binary.PutUvarint(head[1:], uint64(len(body)))
	h.Write(head[:k])
	h.Write(body)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// readErr turns a reader error into a package error naming the field.
func readErr(err error, what string) error {
	if errors.Is(err, errEnd) {
		return truncated(what)
	}
	return malformed("%s: %v", what, err)
}

// parseBody parses the body of an uncompressed change chunk.
func (d *Decoder) parseBody(body []byte) (*Change, error) {
	r := reader{b: body}
	c := new(Change)

	nDeps, err := r.uleb()
	if err != nil {
		return nil, readErr(err, "dependency count")
	}
	if nDeps > uint64(r.remaining()/32) {
		return nil, truncated("dependencies")
	}
	if nDeps > 0 {
		c.Deps = make([][32]byte, nDeps)
		for i := range c.Deps {
			h, _ := r.bytes(32)
			copy(c.Deps[i][:], h)
		}
	}

	actor, err := readActor(&r, "actor")
	if err != nil {
		return nil, err
	}
	c.Actor = actor
	if c.Seq, err = r.uleb(); err != nil {
		return nil, readErr(err, "seq")
	}
	if c.StartOp, err = r.uleb(); err != nil {
		return nil, readErr(err, "start op")
	}
	if c.StartOp == 0 || c.StartOp > math.MaxUint32 {
		// automerge-rs refuses a zero start op, and one above 2^32-1.
		return nil, malformed("start op %d out of range", c.StartOp)
	}
	if c.Time, err = r.sleb(); err != nil {
		return nil, readErr(err, "time")
	}
	if c.Message, err = r.str(); err != nil {
		return nil, readErr(err, "message")
	}
	nOthers, err := r.uleb()
	if err != nil {
		return nil, readErr(err, "actor count")
	}
	if nOthers > uint64(r.remaining()) {
		// Every actor takes at least one byte.
		return nil, truncated("actors")
	}
	c.Actors = make([]string, 1, 1+nOthers)
	c.Actors[0] = c.Actor
	for range nOthers {
		a, err := readActor(&r, "other actor")
		if err != nil {
			return nil, err
		}
		c.Actors = append(c.Actors, a)
	}

	nCols, err := r.uleb()
	if err != nil {
		return nil, readErr(err, "column count")
	}
	if nCols > uint64(r.remaining()/2) {
		// Every column's metadata takes at least two bytes.
		return nil, truncated("column metadata")
	}
	metas := make([][2]uint64, nCols)
	var total uint64
	for i := range metas {
		s, err := r.uleb()
		if err != nil {
			return nil, readErr(err, "column spec")
		}
		if s > math.MaxUint32 {
			return nil, malformed("column spec %d exceeds 32 bits", s)
		}
		n, err := r.uleb()
		if err != nil {
			return nil, readErr(err, "column length")
		}
		if n > uint64(len(body)) {
			return nil, truncated("column data")
		}
		total += n // cannot overflow: each n is at most len(body)
		metas[i] = [2]uint64{s, n}
	}
	data, err := r.bytes(total)
	if err != nil {
		return nil, truncated("column data")
	}
	if !r.done() {
		c.Extra = bytes.Clone(r.b[r.off:])
	}
	cols, err := layColumns(metas, data)
	if err != nil {
		return nil, err
	}
	if c.Ops, err = d.decodeOps(c, cols); err != nil {
		return nil, err
	}
	return c, nil
}

// readActor reads a length-prefixed actor id and returns it hex-encoded.
func readActor(r *reader, what string) (string, error) {
	n, err := r.uleb()
	if err != nil {
		return "", readErr(err, what)
	}
	b, err := r.bytes(n)
	if err != nil {
		return "", truncated(what)
	}
	if n == 0 {
		return "", malformed("empty %s id", what)
	}
	return hex.EncodeToString(b), nil
}

// opsDecoder reads operations from the columns of a change, one value from
// each column per operation.
type opsDecoder struct {
	actors []string

	hasObj    bool
	objActor  rle[uint64]
	objCtr    rle[uint64]
	keyActor  rle[uint64]
	keyCtr    delta
	keyStr    rle[string]
	insert    boolean
	action    rle[uint64]
	valMeta   rle[uint64]
	valRaw    reader
	predNum   rle[uint64]
	predActor rle[uint64]
	predCtr   delta
	hasExpand bool
	expand    boolean
	markName  rle[string]

	// predBuf is the unused tail of a block that Pred lists are cut from,
	// to spare an allocation per operation; each list is capped at its
	// length so that appending to it cannot reach into the next.
	predBuf []OpID
}

// decodeOps decodes every operation of c. The action column sets the
// number of operations, as in automerge-rs; every other column is read as
// far as it is needed and may hold unread data after.
func (d *Decoder) decodeOps(c *Change, cols *opColumns) ([]Op, error) {
	maxOps := orDefault(d.MaxOps, DefaultMaxOps)
	maxPreds := orDefault(d.MaxPreds, DefaultMaxPreds)
	col := &cols.data
	od := opsDecoder{
		actors:    c.Actors,
		hasObj:    len(col[iObjActor]) > 0,
		objActor:  newRLE(col[iObjActor], readUint),
		objCtr:    newRLE(col[iObjCtr], readUint),
		keyActor:  newRLE(col[iKeyActor], readUint),
		keyCtr:    newDelta(col[iKeyCtr]),
		keyStr:    newRLE(col[iKeyStr], readStr),
		insert:    newBoolean(col[iInsert]),
		action:    newRLE(col[iAction], readUint),
		valMeta:   newRLE(col[iValueMeta], readUint),
		valRaw:    reader{b: col[iValueRaw]},
		predNum:   newRLE(col[iPredGroup], readUint),
		predActor: newRLE(col[iPredActor], readUint),
		predCtr:   newDelta(col[iPredCtr]),
		hasExpand: len(col[iExpand]) > 0,
		expand:    newBoolean(col[iExpand]),
		markName:  newRLE(col[iMarkName], readStr),
	}
	// Count the operations first, so that a change with too many fails
	// before any work and the list is allocated once.
	count := newRLE(col[iAction], readUint)
	n := 0
	for ; !count.done(); n++ {
		if n >= maxOps {
			return nil, tooLarge("more than %d operations", maxOps)
		}
		if _, _, err := count.next(); err != nil {
			return nil, colErr(iAction, err)
		}
	}
	if n == 0 {
		return nil, nil
	}
	ops := make([]Op, n)
	preds := 0
	for i := range ops {
		op := &ops[i]
		op.ID = OpID{Counter: c.StartOp + uint64(i), Actor: c.Actor}
		if err := od.next(op, maxPreds-preds); err != nil {
			return nil, fmt.Errorf("%w (at operation %d)", err, i)
		}
		preds += len(op.Pred)
	}
	return ops, nil
}

// colErr describes an error in a column.
func colErr(ci int, err error) error {
	if errors.Is(err, errEnd) {
		return malformed("%s column ends early", columnName(specs[ci]))
	}
	return malformed("%s column: %v", columnName(specs[ci]), err)
}

// actorAt returns the hex id of the actor at index i of the change's actor
// table.
func (od *opsDecoder) actorAt(i uint64, ci int) (string, error) {
	if i >= uint64(len(od.actors)) {
		return "", malformed("%s column: actor index %d out of range (%d actors)", columnName(specs[ci]), i, len(od.actors))
	}
	return od.actors[i], nil
}

// next decodes the next operation into op, allowing it at most predBudget
// pred entries.
func (od *opsDecoder) next(op *Op, predBudget int) error {
	if err := od.obj(op); err != nil {
		return err
	}
	if err := od.key(op); err != nil {
		return err
	}

	ins, present, err := od.insert.next()
	if err != nil {
		return colErr(iInsert, err)
	}
	if !present {
		return malformed("insert column ends early")
	}
	op.Insert = ins

	a, ok, err := od.action.next()
	if err != nil {
		return colErr(iAction, err)
	}
	if !ok {
		return malformed("action column: null action")
	}
	op.Action = Action(a)

	if op.Value, err = od.value(); err != nil {
		return err
	}
	if op.Action == Increment && op.Value.Kind != Int && op.Value.Kind != Uint {
		return malformed("increment by a %s value", op.Value.Kind)
	}

	if op.Pred, err = od.pred(predBudget); err != nil {
		return err
	}

	if od.hasExpand {
		x, _, err := od.expand.next()
		if err != nil {
			return colErr(iExpand, err)
		}
		op.Expand = x
	}
	name, ok, err := od.markName.next()
	if err != nil {
		return colErr(iMarkName, err)
	}
	op.MarkName, op.HasMarkName = name, ok
	return nil
}

// obj decodes the object an operation acts on.
func (od *opsDecoder) obj(op *Op) error {
	if !od.hasObj {
		return nil // all operations act on the root
	}
	a, aok, err := od.objActor.next()
	if err != nil {
		return colErr(iObjActor, err)
	}
	c, cok, err := od.objCtr.next()
	if err != nil {
		return colErr(iObjCtr, err)
	}
	switch {
	case !aok && (!cok || c == 0):
		return nil // the root
	case !aok:
		return malformed("object %d without an actor", c)
	case !cok:
		return malformed("object without a counter")
	case c == 0:
		return malformed("object with counter 0 and an actor")
	}
	actor, err := od.actorAt(a, iObjActor)
	if err != nil {
		return err
	}
	op.Obj = OpID{Counter: c, Actor: actor}
	return nil
}

// key decodes the map key or sequence element an operation addresses.
func (od *opsDecoder) key(op *Op) error {
	a, aok, err := od.keyActor.next()
	if err != nil {
		return colErr(iKeyActor, err)
	}
	c, cok, err := od.keyCtr.next()
	if err != nil {
		return colErr(iKeyCtr, err)
	}
	s, sok, err := od.keyStr.next()
	if err != nil {
		return colErr(iKeyStr, err)
	}
	switch {
	case sok && (aok || cok):
		return malformed("key is both a string and an element")
	case sok:
		op.Key = s
		return nil
	case !aok && !cok:
		return malformed("operation without a key")
	case !aok && c == 0:
		op.ElemKey = true // the head of the sequence
		return nil
	case !aok:
		return malformed("key element %d without an actor", c)
	case !cok:
		return malformed("key element without a counter")
	case c <= 0:
		return malformed("key element with counter %d", c)
	}
	actor, err := od.actorAt(a, iKeyActor)
	if err != nil {
		return err
	}
	op.ElemKey = true
	op.Elem = OpID{Counter: uint64(c), Actor: actor}
	return nil
}

// value decodes an operation's scalar value from the value metadata and
// raw value columns.
func (od *opsDecoder) value() (Value, error) {
	meta, ok, err := od.valMeta.next()
	if err != nil {
		return Value{}, colErr(iValueMeta, err)
	}
	if !ok {
		return Value{}, malformed("value metadata column: missing value")
	}
	code, n := uint8(meta&0xf), meta>>4
	switch code {
	case 0, 1, 2:
		if n != 0 {
			return Value{}, malformed("value of type %d with length %d", code, n)
		}
		switch code {
		case 0:
			return Value{Kind: Null}, nil
		case 1:
			return Value{Kind: Bool}, nil
		default:
			return Value{Kind: Bool, Bool: true}, nil
		}
	}
	raw, err := od.valRaw.bytes(n)
	if err != nil {
		return Value{}, malformed("value column ends early")
	}
	switch code {
	case 3:
		v, err := exactUint(raw)
		return Value{Kind: Uint, Uint: v}, err
	case 4:
		v, err := exactInt(raw)
		return Value{Kind: Int, Int: v}, err
	case 8:
		v, err := exactInt(raw)
		return Value{Kind: Counter, Int: v}, err
	case 9:
		v, err := exactInt(raw)
		return Value{Kind: Timestamp, Int: v}, err
	case 5:
		if n != 8 {
			return Value{}, malformed("float value of length %d", n)
		}
		return Value{Kind: Float, Float: math.Float64frombits(binary.LittleEndian.Uint64(raw))}, nil
	case 6:
		if !utf8.Valid(raw) {
			return Value{}, malformed("string value is not UTF-8")
		}
		return Value{Kind: Str, Str: string(raw)}, nil
	case 7:
		return Value{Kind: Bytes, Bytes: bytes.Clone(raw)}, nil
	default:
		return Value{Kind: Unknown, TypeCode: code, Bytes: bytes.Clone(raw)}, nil
	}
}

// exactUint reads an unsigned LEB128 number that must fill raw exactly.
func exactUint(raw []byte) (uint64, error) {
	r := reader{b: raw}
	v, err := r.uleb()
	return v, exactErr(&r, err)
}

// exactInt reads a signed LEB128 number that must fill raw exactly.
func exactInt(raw []byte) (int64, error) {
	r := reader{b: raw}
	v, err := r.sleb()
	return v, exactErr(&r, err)
}

func exactErr(r *reader, err error) error {
	switch {
	case err != nil:
		return malformed("value: %v", err)
	case !r.done():
		return malformed("value: %d bytes after the number", r.remaining())
	}
	return nil
}

// pred decodes the list of operations an operation supersedes.
func (od *opsDecoder) pred(budget int) ([]OpID, error) {
	n, ok, err := od.predNum.next()
	if err != nil {
		return nil, colErr(iPredGroup, err)
	}
	if !ok {
		return nil, malformed("pred count column: missing count")
	}
	if n == 0 {
		return nil, nil
	}
	if n > uint64(budget) {
		return nil, tooLarge("more pred entries than the cap allows")
	}
	if uint64(len(od.predBuf)) < n {
		od.predBuf = make([]OpID, max(n, 256))
	}
	preds := od.predBuf[:0:n]
	for range n {
		a, aok, err := od.predActor.next()
		if err != nil {
			return nil, colErr(iPredActor, err)
		}
		c, cok, err := od.predCtr.next()
		if err != nil {
			return nil, colErr(iPredCtr, err)
		}
		if !aok || !cok {
			return nil, malformed("pred entry without an actor or counter")
		}
		if c <= 0 {
			return nil, malformed("pred entry with counter %d", c)
		}
		actor, err := od.actorAt(a, iPredActor)
		if err != nil {
			return nil, err
		}
		preds = append(preds, OpID{Counter: uint64(c), Actor: actor})
	}
	od.predBuf = od.predBuf[n:]
	return preds, nil
}
