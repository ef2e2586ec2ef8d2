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
	// errInvalidUTF8 is a string that is not UTF-8.
	errInvalidUTF8 = errors.New("invalid UTF-8")
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
	if r.off < len(r.b) && r.b[r.off] < 0x80 {
		// One byte, the usual case.
		r.off++
		return uint64(r.b[r.off-1]), nil
	}
	return r.ulebLong()
}

// ulebLong is uleb for the general case.
func (r *reader) ulebLong() (uint64, error) {
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
	if r.off < len(r.b) && r.b[r.off] < 0x80 {
		// One byte, the usual case: bit 6 is the sign.
		c := int64(r.b[r.off])
		r.off++
		return c - (c&0x40)<<1, nil
	}
	return r.slebLong()
}

// slebLong is sleb for the general case.
func (r *reader) slebLong() (int64, error) {
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

// strBytes reads a uLEB128 length and that many bytes, which must be
// UTF-8, and returns them without copying them.
func (r *reader) strBytes() ([]byte, error) {
	n, err := r.uleb()
	if err != nil {
		return nil, err
	}
	b, err := r.bytes(n)
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(b) {
		return nil, errInvalidUTF8
	}
	return b, nil
}

// runs walks the run headers of a run-length encoded column. The column is
// a sequence of runs, each headed by a signed LEB128 count: n > 0 is a run
// of n copies of the one value that follows, n < 0 is a literal run of -n
// values that follow, and 0 is a run of nulls whose length, an unsigned
// LEB128, follows. Counts are only ever compared, never used to allocate.
// uintRLE and strRLE add the values.
type runs struct {
	r       reader
	count   uint64 // values left in the current run
	literal bool
	null    bool
}

// done reports whether the column has no values left.
func (d *runs) done() bool {
	return d.count == 0 && d.r.done()
}

// head makes sure the current run has values left, reading run headers as
// needed. fresh is true when it has just begun a run of one repeated value,
// which the caller must read next; end is true when the column has run out,
// which yields nulls, as automerge-rs treats it.
func (d *runs) head() (fresh, end bool, err error) {
	for d.count == 0 {
		if d.r.done() {
			return false, true, nil
		}
		n, err := d.r.sleb()
		if err != nil {
			return false, false, err
		}
		switch {
		case n > 0:
			d.count, d.literal, d.null = uint64(n), false, false
			return true, false, nil
		case n < 0:
			if n == math.MinInt64 {
				return false, false, errors.New("literal run too long")
			}
			d.count, d.literal, d.null = uint64(-n), true, false
		default:
			// A null run of length 0 is skipped, as automerge-rs does.
			if d.count, err = d.r.uleb(); err != nil {
				return false, false, err
			}
			d.literal, d.null = false, true
		}
	}
	return false, false, nil
}

// skip passes over up to n values of the current run without reading them,
// as long as the run repeats one value or is null, and returns how many it
// passed over.
func (d *runs) skip(n uint64) uint64 {
	if d.literal {
		return 0
	}
	k := min(d.count, n)
	d.count -= k
	return k
}

// uintRLE decodes a run-length encoded column of LEB128 numbers: unsigned,
// or signed when signed is set (then each value is the int64's bits; delta
// reads them so).
type uintRLE struct {
	runs
	val    uint64
	signed bool
}

func newUintRLE(b []byte) uintRLE { return uintRLE{runs: runs{r: reader{b: b}}} }

// next returns the next value; ok is false for a null. A column that has
// run out yields nulls.
func (d *uintRLE) next() (v uint64, ok bool, err error) {
	if d.count > 0 && !d.literal && !d.null {
		// A run of repeats, the usual case.
		d.count--
		return d.val, true, nil
	}
	return d.nextSlow()
}

// nextSlow is next for the general case.
func (d *uintRLE) nextSlow() (v uint64, ok bool, err error) {
	if d.count == 0 {
		fresh, end, err := d.head()
		if err != nil || end {
			return 0, false, err
		}
		if fresh {
			if d.val, err = d.read(); err != nil {
				return 0, false, err
			}
		}
	}
	d.count--
	switch {
	case d.null:
		return 0, false, nil
	case d.literal:
		if v, err = d.read(); err != nil {
			return 0, false, err
		}
		return v, true, nil
	}
	return d.val, true, nil
}

// read reads one value of the column.
func (d *uintRLE) read() (uint64, error) {
	if d.signed {
		v, err := d.r.sleb()
		return uint64(v), err
	}
	return d.r.uleb()
}

// strRLE decodes a run-length encoded column of length-prefixed UTF-8
// strings, making each string that it reads (once for a run of repeats)
// with a strArena.
type strRLE struct {
	runs
	val string
}

func newStrRLE(b []byte) strRLE { return strRLE{runs: runs{r: reader{b: b}}} }

// next is uintRLE.next for strings.
func (d *strRLE) next(s *strArena) (v string, ok bool, err error) {
	if d.count == 0 {
		fresh, end, err := d.head()
		if err != nil || end {
			return "", false, err
		}
		if fresh {
			b, err := d.r.strBytes()
			if err != nil {
				return "", false, err
			}
			d.val = s.of(b)
		}
	}
	d.count--
	switch {
	case d.null:
		return "", false, nil
	case d.literal:
		b, err := d.r.strBytes()
		if err != nil {
			return "", false, err
		}
		return s.of(b), true, nil
	}
	return d.val, true, nil
}

// delta decodes a delta-encoded column: an RLE column of signed differences
// from the previous non-null value, starting at 0. Like automerge-rs it
// saturates instead of overflowing.
type delta struct {
	rle uintRLE // signed
	abs int64
}

func newDelta(b []byte) delta {
	return delta{rle: uintRLE{runs: runs{r: reader{b: b}}, signed: true}}
}

func (d *delta) next() (int64, bool, error) {
	bits, ok, err := d.rle.next()
	if err != nil || !ok {
		return 0, false, err
	}
	v := int64(bits)
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
