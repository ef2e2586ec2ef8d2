package amchange

import (
	"errors"
	"math"
	"unicode/utf8"
)

// errOverlong and errOverflow describe bad LEB128 numbers; callers wrap them
// in ErrMalformed.
var (
	errOverlong = errors.New("LEB128 number not minimally encoded")
	errOverflow = errors.New("LEB128 number exceeds 64 bits")
	errEnd      = errors.New("end of data")
)

// reader reads the primitive encodings of the format from a byte slice.
// It never reads past the slice and never allocates.
type reader struct {
	b   []byte
	off int
}

func (r *reader) done() bool { return r.off >= len(r.b) }

func (r *reader) remaining() int { return len(r.b) - r.off }

// uleb reads an unsigned LEB128 number of at most 64 bits, rejecting
// encodings longer than needed as automerge-rs does.
func (r *reader) uleb() (uint64, error) {
	var v uint64
	for i := 0; i < 10; i++ {
		if r.off >= len(r.b) {
			return 0, errEnd
		}
		c := r.b[r.off]
		r.off++
		if i == 9 && c > 1 {
			return 0, errOverflow
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			if i > 0 && c == 0 {
				return 0, errOverlong
			}
			return v, nil
		}
	}
	return 0, errOverflow
}

// sleb reads a signed LEB128 number of at most 64 bits, rejecting encodings
// longer than needed as automerge-rs does.
func (r *reader) sleb() (int64, error) {
	var v int64
	var prev byte
	for i := 0; i < 10; i++ {
		if r.off >= len(r.b) {
			return 0, errEnd
		}
		c := r.b[r.off]
		r.off++
		if i == 9 && c&0x80 == 0 && c != 0 && c != 0x7f {
			return 0, errOverflow
		}
		v |= int64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			if i > 0 && ((c == 0 && prev&0x40 == 0) || (c == 0x7f && prev&0x40 != 0)) {
				return 0, errOverlong
			}
			if shift := 7 * (i + 1); shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			return v, nil
		}
		prev = c
	}
	return 0, errOverflow
}

// bytes returns the next n bytes without copying them.
func (r *reader) bytes(n uint64) ([]byte, error) {
	if n > uint64(r.remaining()) {
		return nil, errEnd
	}
	b := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return b, nil
}

// str reads a uLEB128 length and that many bytes of UTF-8.
func (r *reader) str() (string, error) {
	n, err := r.uleb()
	if err != nil {
		return "", err
	}
	b, err := r.bytes(n)
	if err != nil {
		return "", err
	}
	if !utf8.Valid(b) {
		return "", errors.New("invalid UTF-8")
	}
	return string(b), nil
}

// rle decodes a run-length encoded column. The column is a sequence of
// runs, each headed by a signed LEB128 count: n > 0 is a run of n copies of
// the one value that follows, n < 0 is a literal run of -n values that
// follow, and 0 is a run of nulls whose length, an unsigned LEB128, follows.
// Counts are only ever compared, never used to allocate.
type rle[T any] struct {
	r       reader
	read    func(*reader) (T, error)
	count   uint64 // values left in the current run
	literal bool
	null    bool
	val     T
}

func newRLE[T any](b []byte, read func(*reader) (T, error)) rle[T] {
	return rle[T]{r: reader{b: b}, read: read}
}

// done reports whether the column has no values left.
func (d *rle[T]) done() bool {
	return d.count == 0 && d.r.done()
}

// next returns the next value; ok is false for a null. A column that has
// run out yields nulls, as automerge-rs treats it.
func (d *rle[T]) next() (v T, ok bool, err error) {
	for d.count == 0 {
		if d.r.done() {
			return v, false, nil
		}
		n, err := d.r.sleb()
		if err != nil {
			return v, false, err
		}
		switch {
		case n > 0:
			d.count, d.literal, d.null = uint64(n), false, false
			if d.val, err = d.read(&d.r); err != nil {
				return v, false, err
			}
		case n < 0:
			if n == math.MinInt64 {
				return v, false, errors.New("literal run too long")
			}
			d.count, d.literal, d.null = uint64(-n), true, false
		default:
			// A null run of length 0 is skipped, as automerge-rs does.
			if d.count, err = d.r.uleb(); err != nil {
				return v, false, err
			}
			d.literal, d.null = false, true
		}
	}
	d.count--
	switch {
	case d.null:
		return v, false, nil
	case d.literal:
		v, err = d.read(&d.r)
		if err != nil {
			return v, false, err
		}
		return v, true, nil
	default:
		return d.val, true, nil
	}
}

func readUint(r *reader) (uint64, error) { return r.uleb() }
func readInt(r *reader) (int64, error)   { return r.sleb() }
func readStr(r *reader) (string, error)  { return r.str() }

// delta decodes a delta-encoded column: an RLE column of signed differences
// from the previous non-null value, starting at 0. Like automerge-rs it
// saturates instead of overflowing.
type delta struct {
	rle rle[int64]
	abs int64
}

func newDelta(b []byte) delta {
	return delta{rle: newRLE(b, readInt)}
}

func (d *delta) next() (int64, bool, error) {
	v, ok, err := d.rle.next()
	if err != nil || !ok {
		return 0, false, err
	}
	switch {
	case v > 0 && d.abs > math.MaxInt64-v:
		d.abs = math.MaxInt64
	case v < 0 && d.abs < math.MinInt64-v:
		d.abs = math.MinInt64
	default:
		d.abs += v
	}
	return d.abs, true, nil
}

// boolean decodes a boolean column: unsigned LEB128 run lengths that
// alternate between false and true, starting with false.
type boolean struct {
	r     reader
	count uint64
	val   bool
}

func newBoolean(b []byte) boolean {
	// The first run is of false values; val is flipped before each run.
	return boolean{r: reader{b: b}, val: true}
}

// next returns the next value; present is false once the column has run
// out.
func (d *boolean) next() (v, present bool, err error) {
	for d.count == 0 {
		if d.r.done() {
			return false, false, nil
		}
		if d.count, err = d.r.uleb(); err != nil {
			return false, false, err
		}
		d.val = !d.val
	}
	d.count--
	return d.val, true, nil
}
