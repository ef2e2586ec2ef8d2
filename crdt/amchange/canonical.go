package amchange

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
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
	want := encodeBody(c)
	if !bytes.Equal(want, body) {
		at := 0
		for at < len(want) && at < len(body) && want[at] == body[at] {
			at++
		}
		return notCanonical("encoding differs from automerge's at byte %d of the body", at)
	}
	return nil
}

func notCanonical(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrNotCanonical}, args...)...)
}

// checkActorTable checks that the actor table lists the author, then every
// other actor the operations refer to, once, in ascending order: the table
// automerge builds.
func checkActorTable(c *Change) error {
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
	index := newActorIndex(c.Actors)
	var (
		objActor, objCtr   = newRLEEnc(appendUint), newRLEEnc(appendUint)
		keyActor, keyStr   = newRLEEnc(appendUint), newRLEEnc(appendStr)
		keyCtr             = deltaEnc{rle: newRLEEnc(appendInt)}
		insert, expand     boolEnc
		action, valMeta    = newRLEEnc(appendUint), newRLEEnc(appendUint)
		valRaw             []byte
		predNum, predActor = newRLEEnc(appendUint), newRLEEnc(appendUint)
		predCtr            = deltaEnc{rle: newRLEEnc(appendInt)}
		markName           = newRLEEnc(appendStr)
		anyObj, anyExpand  bool
	)
	for i := range c.Ops {
		op := &c.Ops[i]
		if op.Obj.IsRoot() {
			objActor.null()
			objCtr.null()
		} else {
			anyObj = true
			objActor.value(index.of(op.Obj.Actor))
			objCtr.value(op.Obj.Counter)
		}
		switch {
		case !op.ElemKey:
			keyStr.value(op.Key)
			keyActor.null()
			keyCtr.null()
		case op.Elem.IsRoot():
			keyStr.null()
			keyActor.null()
			keyCtr.value(0)
		default:
			keyStr.null()
			keyActor.value(index.of(op.Elem.Actor))
			keyCtr.value(int64(op.Elem.Counter))
		}
		insert.append(op.Insert)
		action.value(uint64(op.Action))
		var meta uint64
		valRaw, meta = appendValue(valRaw, op.Value)
		valMeta.value(meta)
		predNum.value(uint64(len(op.Pred)))
		for _, p := range op.Pred {
			predActor.value(index.of(p.Actor))
			predCtr.value(int64(p.Counter))
		}
		expand.append(op.Expand)
		anyExpand = anyExpand || op.Expand
		if op.HasMarkName {
			markName.value(op.MarkName)
		} else {
			markName.null()
		}
	}

	type column struct {
		spec uint32
		data []byte
	}
	cols := []column{
		{specKeyActor, keyActor.finish()},
		{specKeyCtr, keyCtr.rle.finish()},
		{specKeyStr, keyStr.finish()},
		{specInsert, insert.finish()},
		{specAction, action.finish()},
		{specValueMeta, valMeta.finish()},
		{specValueRaw, valRaw},
		{specPredGroup, predNum.finish()},
		{specPredActor, predActor.finish()},
		{specPredCtr, predCtr.rle.finish()},
		{specMarkName, markName.finish()},
	}
	if anyObj {
		cols = append(cols, column{specObjActor, objActor.finish()}, column{specObjCtr, objCtr.finish()})
	}
	if anyExpand {
		cols = append(cols, column{specExpand, expand.finish()})
	}
	cols = slices.DeleteFunc(cols, func(c column) bool { return len(c.data) == 0 })
	slices.SortFunc(cols, func(a, b column) int { return cmp.Compare(a.spec, b.spec) })

	out := binary.AppendUvarint(nil, uint64(len(c.Deps)))
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
	out = binary.AppendUvarint(out, uint64(len(cols)))
	for _, col := range cols {
		out = binary.AppendUvarint(out, uint64(col.spec))
		out = binary.AppendUvarint(out, uint64(len(col.data)))
	}
	for _, col := range cols {
		out = append(out, col.data...)
	}
	return append(out, c.Extra...)
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
	b, _ := hex.DecodeString(a) // the decoder made it: valid hex
	out = binary.AppendUvarint(out, uint64(len(b)))
	return append(out, b...)
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

// rleEnc run-length encodes a column the way automerge-rs's RleEncoder
// does: a lone value becomes a literal run of one, two or more equal values
// a run, other values literal runs, and nulls null runs, except that a
// column of nulls only is left empty.
type rleEnc[T comparable] struct {
	out   []byte
	write func([]byte, T) []byte

	state   rleState
	n       uint64 // length of a null run or a run
	val     T      // the value of a lone value or a run; the last of a literal run
	literal []T    // the values of a literal run before val
}

type rleState int

const (
	rleEmpty rleState = iota
	rleInitialNulls
	rleNulls
	rleLone
	rleRun
	rleLiteral
)

func newRLEEnc[T comparable](write func([]byte, T) []byte) *rleEnc[T] {
	return &rleEnc[T]{write: write}
}

func (e *rleEnc[T]) flushRun() {
	e.out = appendInt(e.out, int64(e.n))
	e.out = e.write(e.out, e.val)
}

func (e *rleEnc[T]) flushNulls() {
	e.out = appendInt(e.out, 0)
	e.out = appendUint(e.out, e.n)
}

func (e *rleEnc[T]) flushLiteral(vals []T) {
	e.out = appendInt(e.out, -int64(len(vals)))
	for _, v := range vals {
		e.out = e.write(e.out, v)
	}
}

func (e *rleEnc[T]) null() {
	switch e.state {
	case rleEmpty:
		e.state, e.n = rleInitialNulls, 1
		return
	case rleInitialNulls, rleNulls:
		e.n++
		return
	case rleLone:
		e.flushLiteral([]T{e.val})
	case rleRun:
		e.flushRun()
	case rleLiteral:
		e.flushLiteral(append(e.literal, e.val))
		e.literal = e.literal[:0]
	}
	e.state, e.n = rleNulls, 1
}

func (e *rleEnc[T]) value(v T) {
	switch e.state {
	case rleEmpty:
		e.state, e.val = rleLone, v
	case rleLone:
		if v == e.val {
			e.state, e.n = rleRun, 2
		} else {
			e.literal = append(e.literal[:0], e.val)
			e.state, e.val = rleLiteral, v
		}
	case rleRun:
		if v == e.val {
			e.n++
		} else {
			e.flushRun()
			e.state, e.val = rleLone, v
		}
	case rleLiteral:
		if v == e.val {
			e.flushLiteral(e.literal)
			e.literal = e.literal[:0]
			e.state, e.n = rleRun, 2
		} else {
			e.literal = append(e.literal, e.val)
			e.val = v
		}
	case rleInitialNulls, rleNulls:
		e.flushNulls()
		e.state, e.val = rleLone, v
	}
}

func (e *rleEnc[T]) finish() []byte {
	switch e.state {
	case rleNulls:
		e.flushNulls()
	case rleLone:
		e.flushLiteral([]T{e.val})
	case rleRun:
		e.flushRun()
	case rleLiteral:
		e.flushLiteral(append(e.literal, e.val))
	}
	e.state = rleEmpty
	return e.out
}

// deltaEnc encodes integers as differences from the previous non-null one,
// run-length encoded, saturating like automerge-rs.
type deltaEnc struct {
	rle *rleEnc[int64]
	abs int64
}

func (e *deltaEnc) null() { e.rle.null() }

func (e *deltaEnc) value(v int64) {
	d := v - e.abs
	switch {
	case e.abs < 0 && v > math.MaxInt64+e.abs:
		d = math.MaxInt64
	case e.abs > 0 && v < math.MinInt64+e.abs:
		d = math.MinInt64
	}
	e.rle.value(d)
	e.abs = v
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
