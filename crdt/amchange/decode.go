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
	"strings"
	"sync"
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
	var hash [32]byte
	if typ[0] == chunkCompressed {
		f := getInflater()
		defer putInflater(f)
		if body, err = f.inflate(body, maxSize); err != nil {
			return nil, err
		}
		hash = f.hash()
	} else {
		// The hash covers the chunk type, the length as the chunk gives
		// it (uLEB128, which the reader accepts only in its shortest form,
		// the one automerge writes) and the body: b[8:], to its end.
		hash = sha256.Sum256(b[8:])
	}
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

// inflater inflates the bodies of compressed change chunks. It keeps the
// DEFLATE reader (some 40 kB of state) and the buffer of the inflated body
// from one chunk to the next, in inflaters; a Change never refers to the
// body it was decoded from.
type inflater struct {
	br  bytes.Reader
	lr  io.LimitedReader
	fr  io.ReadCloser
	buf []byte // headRoom bytes, then the inflated body
}

// headRoom is the room inflate leaves before the body for the chunk type
// and length, which the hash covers.
const headRoom = 1 + binary.MaxVarintLen64

var inflaters = sync.Pool{New: func() any { return new(inflater) }}

func getInflater() *inflater { return inflaters.Get().(*inflater) }

func putInflater(f *inflater) {
	f.br.Reset(nil) // the input is not ours to keep
	if cap(f.buf) > maxPooled {
		f.buf = nil
	}
	inflaters.Put(f)
}

// inflate decompresses the body of a compressed change chunk, refusing to
// produce more than maxSize bytes. The result is valid until f goes back
// to the pool.
func (f *inflater) inflate(body []byte, maxSize int) ([]byte, error) {
	// bytes.Reader is an io.ByteReader, so flate reads no further than the
	// end of the compressed stream and br.Len tells what follows it.
	f.br.Reset(body)
	if f.fr == nil {
		f.fr = flate.NewReader(&f.br)
	} else if err := f.fr.(flate.Resetter).Reset(&f.br, nil); err != nil {
		return nil, malformed("compressed chunk body: %v", err)
	}
	f.lr = io.LimitedReader{R: f.fr, N: int64(maxSize) + 1}
	if cap(f.buf) < headRoom+512 {
		f.buf = make([]byte, headRoom, headRoom+512)
	}
	out, err := readAll(&f.lr, f.buf[:headRoom])
	f.buf = out
	n := len(out) - headRoom
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return nil, truncated("compressed chunk body")
	case err != nil:
		return nil, malformed("compressed chunk body: %v", err)
	case n > maxSize:
		return nil, tooLarge("chunk body inflates to more than %d bytes", maxSize)
	case f.br.Len() != 0:
		return nil, malformed("%d bytes after the compressed chunk body", f.br.Len())
	}
	return out[headRoom:], nil
}

// readAll appends what r yields to b until r ends, as io.ReadAll does.
func readAll(r io.Reader, b []byte) ([]byte, error) {
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

// hash returns the SHA-256 of the uncompressed change chunk's type, length
// and body, the body that inflate returned last: Automerge's change hash.
func (f *inflater) hash() [32]byte {
	var head [headRoom]byte
	head[0] = chunkChange
	k := 1 + binary.PutUvarint(head[1:], uint64(len(f.buf)-headRoom))
	at := headRoom - k
	copy(f.buf[at:], head[:k])
	return sha256.Sum256(f.buf[at:])
}

// readErr turns a reader error into a package error naming the field.
func readErr(err error, what string) error {
	if errors.Is(err, errEnd) {
		return truncated(what)
	}
	return malformed("%s: %v", what, err)
}

// changeBlock is what parseBody allocates for a change: the Change with
// room for its first actors and dependencies, so that a usual change takes
// one allocation rather than three.
type changeBlock struct {
	c      Change
	actors [2]string
	deps   [2][32]byte
}

// parseBody parses the body of an uncompressed change chunk.
func (d *Decoder) parseBody(body []byte) (*Change, error) {
	r := reader{b: body}
	blk := new(changeBlock)
	c := &blk.c

	nDeps, err := r.uleb()
	if err != nil {
		return nil, readErr(err, "dependency count")
	}
	if nDeps > uint64(r.remaining()/32) {
		return nil, truncated("dependencies")
	}
	if nDeps > 0 {
		if nDeps <= uint64(len(blk.deps)) {
			c.Deps = blk.deps[:nDeps:nDeps]
		} else {
			c.Deps = make([][32]byte, nDeps)
		}
		for i := range c.Deps {
			h, _ := r.bytes(32)
			copy(c.Deps[i][:], h)
		}
	}

	// The actor ids are checked here and hex-encoded once the size of all
	// the change's strings is known (see strArena).
	actorsAt := r.off
	actorBytes, err := skipActor(&r, "actor")
	if err != nil {
		return nil, err
	}
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
	message, err := r.strBytes()
	if err != nil {
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
	othersAt := r.off
	for range nOthers {
		n, err := skipActor(&r, "other actor")
		if err != nil {
			return nil, err
		}
		actorBytes += n
	}

	nCols, err := r.uleb()
	if err != nil {
		return nil, readErr(err, "column count")
	}
	if nCols > uint64(r.remaining()/2) {
		// Every column's metadata takes at least two bytes.
		return nil, truncated("column metadata")
	}
	var metaBuf [20][2]uint64
	metas := metaBuf[:0]
	if nCols > uint64(len(metaBuf)) {
		metas = make([][2]uint64, 0, nCols)
	}
	var total uint64
	for range nCols {
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
		metas = append(metas, [2]uint64{s, n})
	}
	data, err := r.bytes(total)
	if err != nil {
		return nil, truncated("column data")
	}
	if !r.done() {
		c.Extra = bytes.Clone(r.b[r.off:])
	}
	var cols opColumns
	if err := layColumns(&cols, metas, data); err != nil {
		return nil, err
	}

	// Every string of the change comes from the message, the actor ids
	// (hex-encoded, twice their size) or the key, mark name and value
	// columns, and each byte of those columns goes into one string at most.
	var strs strArena
	strs.init(len(message) + 2*actorBytes + len(cols.data[iKeyStr]) + len(cols.data[iMarkName]) + len(cols.data[iValueRaw]))
	c.Message = strs.of(message)
	if 1+nOthers <= uint64(len(blk.actors)) {
		c.Actors = blk.actors[: 1+nOthers : 1+nOthers]
	} else {
		c.Actors = make([]string, 1+nOthers)
	}
	ar := reader{b: body, off: actorsAt}
	c.Actors[0] = strs.hex(nextActor(&ar))
	ar.off = othersAt
	for i := range nOthers {
		c.Actors[1+i] = strs.hex(nextActor(&ar))
	}
	c.Actor = c.Actors[0]

	if c.Ops, err = d.decodeOps(c, &cols, &strs); err != nil {
		return nil, err
	}
	return c, nil
}

// skipActor reads past a length-prefixed actor id and returns its length.
func skipActor(r *reader, what string) (int, error) {
	n, err := r.uleb()
	if err != nil {
		return 0, readErr(err, what)
	}
	if _, err := r.bytes(n); err != nil {
		return 0, truncated(what)
	}
	if n == 0 {
		return 0, malformed("empty %s id", what)
	}
	return int(n), nil
}

// nextActor returns the bytes of a length-prefixed actor id that skipActor
// has accepted.
func nextActor(r *reader) []byte {
	n, _ := r.uleb()
	b, _ := r.bytes(n)
	return b
}

// maxArena caps the strings a strArena puts in one allocation.
const maxArena = 64 << 10

// strArena makes the strings of one change. When they are few enough
// (maxArena bytes at most, by the bound init is given) it copies them into
// one buffer, which they then share, sparing an allocation per string; a
// string of one byte or none needs no allocation and gets none. The buffer
// is written once and never reused, so the strings stay valid for as long
// as the caller keeps them; keeping any of them keeps the buffer. Beyond
// the cap, each string gets an allocation of its own.
type strArena struct {
	b      strings.Builder
	direct bool
}

// init prepares for strings of bound bytes in all.
func (a *strArena) init(bound int) {
	if bound > maxArena {
		a.direct = true
		return
	}
	a.b.Grow(bound)
}

// of returns b as a string.
func (a *strArena) of(b []byte) string {
	if a.direct || len(b) <= 1 {
		return string(b)
	}
	off := a.b.Len()
	a.b.Write(b)
	return a.b.String()[off:]
}

// hex returns b hex-encoded.
func (a *strArena) hex(b []byte) string {
	if a.direct {
		return hex.EncodeToString(b)
	}
	off := a.b.Len()
	var buf [64]byte
	for len(b) > 0 {
		k := min(len(b), len(buf)/2)
		hex.Encode(buf[:], b[:k])
		a.b.Write(buf[:2*k])
		b = b[k:]
	}
	return a.b.String()[off:]
}
