package amchange

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sync"
)

// Why canonical form matters: automerge applies a change whatever encoding
// its bytes use, but a saved document does not keep change bytes. It keeps
// the operations and, on load, encodes each change again and checks the
// hashes it gets against the document's heads. A change that was not
// encoded exactly as automerge-rs 0.5 encodes it therefore gets another
// hash on reload, and the document no longer loads ("mismatching heads").
// checkCanonical refuses such changes before they are applied.

// checkCanonical reports whether body, the uncompressed body c was decoded
// from, is byte for byte what automerge-rs 0.5 writes when it encodes c's
// operations, and whether c is in the normal form automerge would give it
// (sorted dependencies, an actor table of exactly the actors the operations
// mention, sorted preds, the values automerge keeps for each action).
func checkCanonical(c *Change, body []byte) error {
	for i := 1; i < len(c.Deps); i++ {
		if bytes.Compare(c.Deps[i-1][:], c.Deps[i][:]) >= 0 {
			return notCanonical("dependencies not in ascending order")
		}
	}
	if err := checkActorTable(c); err != nil {
		return err
	}
	for i := range c.Ops {
		if err := checkOpForm(&c.Ops[i]); err != nil {
			return fmt.Errorf("%w (at operation %d)", err, i)
		}
	}
	e := getEncoder()
	defer putEncoder(e)
	e.encode(c)
	if e.equal(body) {
		return nil
	}
	want := e.body()
	at := 0
	for at < len(want) && at < len(body) && want[at] == body[at] {
		at++
	}
	return notCanonical("encoding differs from automerge's at byte %d of the body", at)
}

func notCanonical(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrNotCanonical}, args...)...)
}

// checkActorTable checks that the actor table lists the author, then every
// other actor the operations refer to, once, in ascending order: the table
// automerge builds.
func checkActorTable(c *Change) error {
	if actorTableOK(c) {
		return nil
	}
	// Say what is wrong, or accept a table too long for actorTableOK.
	used := make(map[string]bool, len(c.Actors))
	note := func(id OpID) {
		if !id.IsRoot() && id.Actor != c.Actor {
			used[id.Actor] = true
		}
	}
	for i := range c.Ops {
		op := &c.Ops[i]
		note(op.Obj)
		note(op.Elem)
		for _, p := range op.Pred {
			note(p)
		}
	}
	others := c.Actors[1:]
	if len(others) != len(used) {
		return notCanonical("actor table lists %d other actors, the operations use %d", len(others), len(used))
	}
	for i, a := range others {
		if !used[a] || (i > 0 && others[i-1] >= a) {
			return notCanonical("actor table not the sorted set of actors the operations use")
		}
	}
	return nil
}

// actorTableOK reports true if c's actor table passes checkActorTable,
// without allocating, for tables of up to 64 other actors; false means
// that it may not.
func actorTableOK(c *Change) bool {
	others := c.Actors[1:]
	if len(others) > 64 {
		return false
	}
	// Sorted and apart from the author, the table has one entry per
	// actor the operations use exactly when each entry is used.
	for i, a := range others {
		if a == c.Actor || (i > 0 && others[i-1] >= a) {
			return false
		}
	}
	var used uint64
	note := func(id OpID) bool {
		if id.IsRoot() || id.Actor == c.Actor {
			return true
		}
		for j, a := range others {
			if a == id.Actor {
				used |= 1 << j
				return true
			}
		}
		return false
	}
	for i := range c.Ops {
		op := &c.Ops[i]
		if !note(op.Obj) || !note(op.Elem) {
			return false
		}
		for _, p := range op.Pred {
			if !note(p) {
				return false
			}
		}
	}
	return used == 1<<len(others)-1
}

// checkOpForm checks an operation against the form automerge stores it in.
func checkOpForm(op *Op) error {
	switch {
	case !op.Action.Known():
		return notCanonical("unknown action %v, which automerge refuses", op.Action)
	case op.Action.MakesObject() || op.Action == Delete:
		if op.Value.Kind != Null {
			return notCanonical("%v with a %v value", op.Action, op.Value.Kind)
		}
	case op.Action == Increment:
		if op.Value.Kind != Int {
			return notCanonical("increment by a %v value", op.Value.Kind)
		}
	case op.Action == Mark && !op.HasMarkName:
		if op.Value.Kind != Null {
			return notCanonical("mark end with a %v value", op.Value.Kind)
		}
	}
	if op.Action != Mark && (op.Expand || op.HasMarkName) {
		return notCanonical("%v with mark fields", op.Action)
	}
	for i := 1; i < len(op.Pred); i++ {
		a, b := op.Pred[i-1], op.Pred[i]
		if cmp.Or(cmp.Compare(a.Counter, b.Counter), cmp.Compare(a.Actor, b.Actor)) >= 0 {
			return notCanonical("preds not in ascending order")
		}
	}
	return nil
}

// encodeBody encodes c's body as automerge-rs 0.5 does (ChangeBuilder and
// ChangeOpsColumns::encode): the metadata, the non-empty operation columns
// in order of specification, then the extra bytes.
func encodeBody(c *Change) []byte {
	e := getEncoder()
	defer putEncoder(e)
	e.encode(c)
	return e.body()
}

// encoder encodes a change body in buffers that it keeps from one change
// to the next (see encoderPool): the metadata in head, the operation
// columns in data, one after the other.
type encoder struct {
	head []byte
	data []byte
	ends [numColumns]int // where each column ends in data
	c    *Change

	// Scratch space for one column at a time.
	uints []uint64
	ints  []int64
	strs  []string
	nulls []bool
	raw   []byte
}

var encoderPool = sync.Pool{New: func() any { return new(encoder) }}

func getEncoder() *encoder { return encoderPool.Get().(*encoder) }

// maxPooled caps the buffers an encoder keeps in the pool, in bytes, so
// that one large change does not hold on to memory for good.
const maxPooled = 1 << 20

func putEncoder(e *encoder) {
	clear(e.strs) // the change's strings are not ours to keep
	e.c = nil
	if cap(e.data) > maxPooled || cap(e.raw) > maxPooled || 8*cap(e.uints) > maxPooled || 8*cap(e.ints) > maxPooled {
		return
	}
	encoderPool.Put(e)
}

// equal reports whether the encoding is body.
func (e *encoder) equal(body []byte) bool {
	extra := e.c.Extra
	return len(body) == len(e.head)+len(e.data)+len(extra) &&
		bytes.Equal(body[:len(e.head)], e.head) &&
		bytes.Equal(body[len(e.head):len(e.head)+len(e.data)], e.data) &&
		bytes.Equal(body[len(e.head)+len(e.data):], extra)
}

// body returns the encoding in a new slice.
func (e *encoder) body() []byte {
	out := make([]byte, 0, len(e.head)+len(e.data)+len(e.c.Extra))
	out = append(out, e.head...)
	out = append(out, e.data...)
	return append(out, e.c.Extra...)
}

// encode encodes c into e.head and e.data.
func (e *encoder) encode(c *Change) {
	e.c = c
	e.data = e.data[:0]
	e.columns(c)

	out := binary.AppendUvarint(e.head[:0], uint64(len(c.Deps)))
	for _, d := range c.Deps {
		out = append(out, d[:]...)
	}
	out = appendActor(out, c.Actor)
	out = binary.AppendUvarint(out, c.Seq)
	out = binary.AppendUvarint(out, c.StartOp)
	out = appendInt(out, c.Time)
	out = appendStr(out, c.Message)
	out = binary.AppendUvarint(out, uint64(len(c.Actors)-1))
	for _, a := range c.Actors[1:] {
		out = appendActor(out, a)
	}
	n := 0
	for ci := range e.ends {
		if e.length(ci) > 0 {
			n++
		}
	}
	out = binary.AppendUvarint(out, uint64(n))
	for ci := range e.ends {
		if k := e.length(ci); k > 0 {
			out = binary.AppendUvarint(out, uint64(specs[ci]))
			out = binary.AppendUvarint(out, uint64(k))
		}
	}
	e.head = out
}

// length returns the length of column ci in e.data.
func (e *encoder) length(ci int) int {
	if ci == 0 {
		return e.ends[0]
	}
	return e.ends[ci] - e.ends[ci-1]
}

// columns encodes the operation columns of c into e.data, in the order of
// their specifications, one column at a time, and notes where each ends. A
// column with nothing to say is left empty, and then left out.
func (e *encoder) columns(c *Change) {
	index := newActorIndex(c.Actors)
	ops := c.Ops

	// obj actor, obj counter
	uints, nulls := e.uintCol(len(ops))
	for i := range ops {
		if obj := &ops[i].Obj; obj.IsRoot() {
			nulls[i] = true
		} else {
			uints[i] = index.of(obj.Actor)
		}
	}
	e.end(iObjActor, appendRLE(e.data, uints, nulls, appendUint))
	for i := range ops {
		uints[i] = ops[i].Obj.Counter // only where not null
	}
	e.end(iObjCtr, appendRLE(e.data, uints, nulls, appendUint))

	// key actor, key counter
	for i := range ops {
		op := &ops[i]
		nulls[i] = !op.ElemKey || op.Elem.IsRoot()
		uints[i] = 0
		if !nulls[i] {
			uints[i] = index.of(op.Elem.Actor)
		}
	}
	e.end(iKeyActor, appendRLE(e.data, uints, nulls, appendUint))
	ints := e.intCol(len(ops))
	var abs int64
	for i := range ops {
		op := &ops[i]
		nulls[i] = !op.ElemKey
		if op.ElemKey {
			v := int64(0)
			if !op.Elem.IsRoot() {
				v = int64(op.Elem.Counter)
			}
			ints[i], abs = deltaOf(abs, v), v
		}
	}
	e.end(iKeyCtr, appendRLE(e.data, ints, nulls, appendInt))

	// key string
	strs := e.strCol(len(ops))
	for i := range ops {
		op := &ops[i]
		nulls[i] = op.ElemKey
		if !op.ElemKey {
			strs[i] = op.Key
		}
	}
	e.end(iKeyStr, appendRLE(e.data, strs, nulls, appendStr))

	// insert
	var b boolEnc
	b.out = e.data
	for i := range ops {
		b.append(ops[i].Insert)
	}
	e.end(iInsert, b.finish())

	// action
	for i := range ops {
		uints[i] = uint64(ops[i].Action)
	}
	e.end(iAction, appendRLE(e.data, uints, nil, appendUint))

	// value metadata, value
	raw := e.raw[:0]
	for i := range ops {
		raw, uints[i] = appendValue(raw, ops[i].Value)
	}
	e.raw = raw
	e.end(iValueMeta, appendRLE(e.data, uints, nil, appendUint))
	e.end(iValueRaw, append(e.data, raw...))

	// pred count, pred actor, pred counter
	np := 0
	for i := range ops {
		uints[i] = uint64(len(ops[i].Pred))
		np += len(ops[i].Pred)
	}
	e.end(iPredGroup, appendRLE(e.data, uints, nil, appendUint))
	uints, _ = e.uintCol(np)
	ints = e.intCol(np)
	abs, np = 0, 0
	for i := range ops {
		for _, p := range ops[i].Pred {
			uints[np] = index.of(p.Actor)
			v := int64(p.Counter)
			ints[np], abs = deltaOf(abs, v), v
			np++
		}
	}
	e.end(iPredActor, appendRLE(e.data, uints, nil, appendUint))
	e.end(iPredCtr, appendRLE(e.data, ints, nil, appendInt))

	// expand, only if some operation expands
	b = boolEnc{out: e.data}
	anyExpand := false
	for i := range ops {
		b.append(ops[i].Expand)
		anyExpand = anyExpand || ops[i].Expand
	}
	if anyExpand {
		e.end(iExpand, b.finish())
	} else {
		e.end(iExpand, e.data)
	}

	// mark name
	nulls = e.nulls[:len(ops)]
	for i := range ops {
		op := &ops[i]
		nulls[i] = !op.HasMarkName
		strs[i] = op.MarkName
	}
	e.end(iMarkName, appendRLE(e.data, strs, nulls, appendStr))
}

// end takes data, e.data with column ci appended, as e.data.
func (e *encoder) end(ci int, data []byte) {
	e.data = data
	e.ends[ci] = len(data)
}

// uintCol returns scratch space for n numbers and n null flags, the flags
// false.
func (e *encoder) uintCol(n int) ([]uint64, []bool) {
	if cap(e.uints) < n {
		e.uints = make([]uint64, n)
	}
	if cap(e.nulls) < n {
		e.nulls = make([]bool, n)
	}
	nulls := e.nulls[:n]
	clear(nulls)
	return e.uints[:n], nulls
}

// intCol returns scratch space for n signed numbers.
func (e *encoder) intCol(n int) []int64 {
	if cap(e.ints) < n {
		e.ints = make([]int64, n)
	}
	return e.ints[:n]
}

// strCol returns scratch space for n strings.
func (e *encoder) strCol(n int) []string {
	if cap(e.strs) < n {
		e.strs = make([]string, n)
	}
	return e.strs[:n]
}

// deltaOf returns v as a difference from the previous value abs,
// saturating like automerge-rs.
func deltaOf(abs, v int64) int64 {
	switch {
	case abs < 0 && v > math.MaxInt64+abs:
		return math.MaxInt64
	case abs > 0 && v < math.MinInt64+abs:
		return math.MinInt64
	}
	return v - abs
}

// actorIndex finds an actor's position in a change's actor table: by a
// scan while the table is short (a change usually names one or two
// actors, and a scan beats hashing the 32-character ids), by a map
// otherwise. An actor not in the table is at 0, as in a map.
type actorIndex struct {
	actors []string
	m      map[string]uint64
}

func newActorIndex(actors []string) actorIndex {
	x := actorIndex{actors: actors}
	if len(actors) > 8 {
		x.m = make(map[string]uint64, len(actors))
		for i, a := range actors {
			x.m[a] = uint64(i)
		}
	}
	return x
}

func (x actorIndex) of(a string) uint64 {
	if x.m != nil {
		return x.m[a]
	}
	for i, b := range x.actors {
		if a == b {
			return uint64(i)
		}
	}
	return 0
}

// appendActor appends a hex actor id as length-prefixed bytes.
func appendActor(out []byte, a string) []byte {
	// The decoder made the id: valid hex, of an even length.
	out = binary.AppendUvarint(out, uint64(len(a)/2))
	for i := 0; i+1 < len(a); i += 2 {
		out = append(out, unhex(a[i])<<4|unhex(a[i+1]))
	}
	return out
}

// unhex returns the value of a lower-case hex digit.
func unhex(c byte) byte {
	if c >= 'a' {
		return c - 'a' + 10
	}
	return c - '0'
}

// appendUint appends an unsigned LEB128 number (Go's uvarint is the same
// encoding).
func appendUint(out []byte, v uint64) []byte { return binary.AppendUvarint(out, v) }

// appendInt appends a signed LEB128 number in as few bytes as it takes.
func appendInt(out []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(out, c)
		}
		out = append(out, c|0x80)
	}
}

// appendStr appends a length-prefixed string.
func appendStr(out []byte, s string) []byte {
	out = binary.AppendUvarint(out, uint64(len(s)))
	return append(out, s...)
}

// appendValue appends v's raw bytes to out and returns its metadata:
// length<<4 | type code.
func appendValue(out []byte, v Value) ([]byte, uint64) {
	n := len(out)
	var code uint64
	switch v.Kind {
	case Null:
		code = 0
	case Bool:
		code = 1
		if v.Bool {
			code = 2
		}
	case Uint:
		out, code = appendUint(out, v.Uint), 3
	case Int:
		out, code = appendInt(out, v.Int), 4
	case Float:
		out, code = binary.LittleEndian.AppendUint64(out, math.Float64bits(v.Float)), 5
	case Str:
		out, code = append(out, v.Str...), 6
	case Bytes:
		out, code = append(out, v.Bytes...), 7
	case Counter:
		out, code = appendInt(out, v.Int), 8
	case Timestamp:
		out, code = appendInt(out, v.Int), 9
	default:
		out, code = append(out, v.Bytes...), uint64(v.TypeCode)
	}
	return out, uint64(len(out)-n)<<4 | code
}

// appendRLE appends the column of vals, null where nulls says so (nil for
// none), run-length encoded the way automerge-rs's RleEncoder writes it: a
// value unlike its neighbours goes into a literal run (one of a single
// value if need be), two or more equal values into a run, nulls into a
// null run, except that a column of nulls only is left empty. put appends
// one value.
func appendRLE[T comparable](out []byte, vals []T, nulls []bool, put func([]byte, T) []byte) []byte {
	n := len(vals)
	isVal := func(i int) bool { return nulls == nil || !nulls[i] }
	if nulls != nil && !slices.Contains(nulls, false) {
		return out
	}
	for i := 0; i < n; {
		if !isVal(i) {
			j := i + 1
			for j < n && !isVal(j) {
				j++
			}
			out = appendInt(out, 0)
			out = appendUint(out, uint64(j-i))
			i = j
			continue
		}
		if i+1 < n && isVal(i+1) && vals[i+1] == vals[i] {
			j := i + 2
			for j < n && isVal(j) && vals[j] == vals[i] {
				j++
			}
			out = appendInt(out, int64(j-i))
			out = put(out, vals[i])
			i = j
			continue
		}
		// A literal run ends at a null, at the end, or where a run of
		// equal values begins.
		j := i + 1
		for j < n && isVal(j) && (j+1 >= n || !isVal(j+1) || vals[j+1] != vals[j]) {
			j++
		}
		out = appendInt(out, -int64(j-i))
		for _, v := range vals[i:j] {
			out = put(out, v)
		}
		i = j
	}
	return out
}

// boolEnc encodes booleans as alternating run lengths, starting with false.
type boolEnc struct {
	out   []byte
	last  bool
	count uint64
}

func (e *boolEnc) append(v bool) {
	if v == e.last {
		e.count++
		return
	}
	e.out = appendUint(e.out, e.count)
	e.last, e.count = v, 1
}

func (e *boolEnc) finish() []byte {
	if e.count > 0 {
		e.out = appendUint(e.out, e.count)
	}
	return e.out
}
