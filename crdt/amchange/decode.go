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
