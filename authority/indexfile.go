package authority

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"time"
)

// bodies is where the index keeps what it holds of each entry and credit:
// an unlinked scratch file beside the circle's data, appended to and read
// back with pread. It is derived data, rebuilt from the store
// at every start, so it needs no syncing, no recovery and no name: the
// operating system removes it when the process ends, even by kill -9.
// Its pages live in the page cache, outside the process's memory, which
// is why the index costs a few dozen bytes an entry rather than the
// entry's size (issue 7: the soak's RSS grew with the ledger).
//
// If the file cannot be created or written (a full disk), bodies are kept
// in memory instead and the failure is logged once: the index stays
// correct, only bigger.
type bodies struct {
	dir string

	mu     sync.Mutex // guards f, size, spill, failed on the write side
	f      *os.File
	size   int64
	spill  [][]byte // bodies kept in memory after a failed write
	failed error    // why the file is not used; nil while it is
}

// ref locates one body: its offset in the file and its length, packed in
// one word (length in the low 24 bits); a spilled body has the top bit
// set and its index in spill as offset.
type ref uint64

const (
	refLenBits = 24
	refSpill   = 1 << 63
	maxBody    = 1<<refLenBits - 1
)

func fileRef(off int64, n int) ref { return ref(uint64(off)<<refLenBits | uint64(n)) }
func spillRef(i int) ref           { return ref(refSpill | uint64(i)<<refLenBits) }

func (r ref) len() int      { return int(r & maxBody) }
func (r ref) spilled() bool { return r&refSpill != 0 }
func (r ref) off() int64    { return int64((r &^ refSpill) >> refLenBits) }

// open creates the scratch file on first use.
func (b *bodies) open() {
	if b.f != nil || b.failed != nil {
		return
	}
	dir := b.dir
	if dir == "" {
		dir = os.TempDir()
	}
	f, err := os.CreateTemp(dir, ".ledger-index-*")
	if err != nil {
		b.failed = err
		return
	}
	// Unlinked at once: nothing is left behind, whatever way we stop.
	// Where an open file cannot be removed (not Linux), Close removes it.
	_ = os.Remove(f.Name())
	b.f = f
}

// put appends bodies in one write and returns where each is. It returns
// the error that made it give up the file, once (later calls keep bodies
// in memory without trying), so the caller can log it; the bodies are
// kept either way.
func (b *bodies) put(items [][]byte) ([]ref, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	hadFailed := b.failed != nil
	b.open()
	refs := make([]ref, len(items))
	total := 0
	fits := true
	for _, it := range items {
		total += len(it)
		fits = fits && len(it) <= maxBody
	}
	if b.failed == nil && fits && b.size+int64(total) < 1<<(63-refLenBits) {
		buf := make([]byte, 0, total)
		for i, it := range items {
			refs[i] = fileRef(b.size+int64(len(buf)), len(it))
			buf = append(buf, it...)
		}
		_, err := b.f.WriteAt(buf, b.size)
		if err == nil {
			b.size += int64(total)
			return refs, nil
		}
		b.failed = err
	}
	for i, it := range items {
		b.spill = append(b.spill, it)
		refs[i] = spillRef(len(b.spill) - 1)
	}
	if !hadFailed && b.failed != nil {
		return refs, b.failed
	}
	return refs, nil
}

// get reads one body back. Bodies are strings so that decoding takes its
// fields as substrings, without an allocation each.
func (b *bodies) get(r ref) (string, error) {
	if r.spilled() {
		b.mu.Lock()
		defer b.mu.Unlock()
		return string(b.spill[r.off()]), nil
	}
	buf := make([]byte, r.len())
	if _, err := b.f.ReadAt(buf, r.off()); err != nil {
		return "", fmt.Errorf("ledger index: read: %w", err)
	}
	return string(buf), nil
}

// all reads the whole file at once, for reads of every body; get then
// takes them from it.
func (b *bodies) all() (func(ref) (string, error), error) {
	b.mu.Lock()
	size, f := b.size, b.f
	b.mu.Unlock()
	var whole string
	if size > 0 {
		buf := make([]byte, size)
		if _, err := f.ReadAt(buf, 0); err != nil {
			return nil, fmt.Errorf("ledger index: read: %w", err)
		}
		whole = string(buf)
	}
	return func(r ref) (string, error) {
		if r.spilled() {
			return b.get(r)
		}
		end := r.off() + int64(r.len())
		if end > int64(len(whole)) {
			return "", errors.New("ledger index: body past the end of the file")
		}
		return whole[r.off():end], nil
	}, nil
}

func (b *bodies) close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.f == nil {
		return nil
	}
	err := b.f.Close()
	_ = os.Remove(b.f.Name()) // already gone where unlinking an open file works
	b.f = nil
	return err
}

// The encoding of a body: the item's fields in a fixed order, strings and
// integers as varints, quantities as IEEE 754 bits, times as seconds and
// nanoseconds (read back in UTC).

type enc struct{ b []byte }

func (e *enc) str(s string) {
	e.b = binary.AppendUvarint(e.b, uint64(len(s)))
	e.b = append(e.b, s...)
}
func (e *enc) uint(v uint64)   { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) float(v float64) { e.b = binary.LittleEndian.AppendUint64(e.b, math.Float64bits(v)) }
func (e *enc) time(t time.Time) {
	e.b = binary.AppendVarint(e.b, t.Unix())
	e.b = binary.AppendUvarint(e.b, uint64(t.Nanosecond()))
}

// dec reads a body; its strings are substrings of the body.
type dec struct {
	s   string
	err error
}

var errBadBody = errors.New("ledger index: damaged body")

func (d *dec) fail() {
	d.err, d.s = errBadBody, ""
}

// uint reads an unsigned varint (encoding/binary's format).
func (d *dec) uint() uint64 {
	var x uint64
	for i := 0; i < len(d.s) && i < binary.MaxVarintLen64; i++ {
		c := d.s[i]
		if c < 0x80 {
			d.s = d.s[i+1:]
			return x | uint64(c)<<(7*i)
		}
		x |= uint64(c&0x7f) << (7 * i)
	}
	d.fail()
	return 0
}

// int reads a signed (zig-zag) varint.
func (d *dec) int() int64 {
	u := d.uint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

func (d *dec) str() string {
	n := d.uint()
	if n > uint64(len(d.s)) {
		d.fail()
		return ""
	}
	v := d.s[:n]
	d.s = d.s[n:]
	return v
}

func (d *dec) float() float64 {
	if len(d.s) < 8 {
		d.fail()
		return 0
	}
	var u uint64
	for i := 7; i >= 0; i-- {
		u = u<<8 | uint64(d.s[i])
	}
	d.s = d.s[8:]
	return math.Float64frombits(u)
}

func (d *dec) time() time.Time {
	sec := d.int()
	ns := d.uint()
	return time.Unix(sec, int64(ns)).UTC()
}

func encodeEntry(it *Indexed) []byte {
	e := enc{b: make([]byte, 0, 64+len(it.Member)+len(it.Doc)+len(it.Entry.ID)+len(it.Entry.Note))}
	e.uint(it.Seq)
	e.str(it.Member)
	e.str(it.Doc)
	x := it.Entry
	e.str(x.ID)
	e.str(x.Kind)
	e.float(x.Quantity)
	e.str(x.Unit)
	e.str(x.Note)
	e.time(x.At)
	e.str(x.Counterparty)
	e.str(x.Voids)
	return e.b
}

func decodeEntry(b string) (Indexed, error) {
	d := dec{s: b}
	var it Indexed
	it.Seq = d.uint()
	it.Member = d.str()
	it.Doc = d.str()
	x := &it.Entry
	x.ID = d.str()
	x.Kind = d.str()
	x.Quantity = d.float()
	x.Unit = d.str()
	x.Note = d.str()
	x.At = d.time()
	x.Counterparty = d.str()
	x.Voids = d.str()
	return it, d.err
}

func encodeCredit(it *IndexedCredit) []byte {
	e := enc{b: make([]byte, 0, 64+len(it.Member)+len(it.Doc)+len(it.Credit.ID)+len(it.Credit.Note))}
	e.uint(it.Seq)
	e.str(it.Member)
	e.str(it.Doc)
	x := it.Credit
	e.str(x.ID)
	e.str(x.To)
	e.float(x.Amount)
	e.str(x.Note)
	e.time(x.At)
	return e.b
}

func decodeCredit(b string) (IndexedCredit, error) {
	d := dec{s: b}
	var it IndexedCredit
	it.Seq = d.uint()
	it.Member = d.str()
	it.Doc = d.str()
	x := &it.Credit
	x.ID = d.str()
	x.To = d.str()
	x.Amount = d.float()
	x.Note = d.str()
	x.At = d.time()
	return it, d.err
}
