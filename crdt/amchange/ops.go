// Decoding a change's operations, column by column (the op columns of the
// change format): one opsDecoder walks the columns in step.

package amchange

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// opsDecoder reads operations from the columns of a change, one value from
// each column per operation.
type opsDecoder struct {
	actors []string
	strs   *strArena

	hasObj    bool
	objActor  uintRLE
	objCtr    uintRLE
	keyActor  uintRLE
	keyCtr    delta
	keyStr    strRLE
	insert    boolean
	action    uintRLE
	valMeta   uintRLE
	valRaw    reader
	predNum   uintRLE
	predActor uintRLE
	predCtr   delta
	hasExpand bool
	expand    boolean
	markName  strRLE

	// predBuf is the unused tail of a block that Pred lists are cut from,
	// to spare an allocation per operation; each list is capped at its
	// length so that appending to it cannot reach into the next.
	predBuf []OpID
}

// decodeOps decodes every operation of c, making its strings with strs.
// The action column sets the number of operations, as in automerge-rs;
// every other column is read as far as it is needed and may hold unread
// data after.
func (d *Decoder) decodeOps(c *Change, cols *opColumns, strs *strArena) ([]Op, error) {
	maxOps := orDefault(d.MaxOps, DefaultMaxOps)
	maxPreds := orDefault(d.MaxPreds, DefaultMaxPreds)
	col := &cols.data
	// Count the operations first, so that a change with too many fails
	// before any work and the list is allocated once.
	count := newUintRLE(col[iAction])
	n := 0
	for !count.done() {
		if n >= maxOps {
			return nil, tooLarge("more than %d operations", maxOps)
		}
		if k := count.skip(uint64(maxOps - n)); k > 0 {
			// The rest of a run of repeats or nulls, passed over as
			// next would, one value at a time.
			n += int(k)
			continue
		}
		if _, _, err := count.next(); err != nil {
			return nil, colErr(iAction, err)
		}
		n++
	}
	if n == 0 {
		return nil, nil
	}
	od := opsDecoder{
		actors:    c.Actors,
		strs:      strs,
		hasObj:    len(col[iObjActor]) > 0,
		objActor:  newUintRLE(col[iObjActor]),
		objCtr:    newUintRLE(col[iObjCtr]),
		keyActor:  newUintRLE(col[iKeyActor]),
		keyCtr:    newDelta(col[iKeyCtr]),
		keyStr:    newStrRLE(col[iKeyStr]),
		insert:    newBoolean(col[iInsert]),
		action:    newUintRLE(col[iAction]),
		valMeta:   newUintRLE(col[iValueMeta]),
		valRaw:    reader{b: col[iValueRaw]},
		predNum:   newUintRLE(col[iPredGroup]),
		predActor: newUintRLE(col[iPredActor]),
		predCtr:   newDelta(col[iPredCtr]),
		hasExpand: len(col[iExpand]) > 0,
		expand:    newBoolean(col[iExpand]),
		markName:  newStrRLE(col[iMarkName]),
	}
	if total := countPreds(col[iPredGroup], n); total > 0 && total <= uint64(maxPreds) {
		// One block for every Pred list, unless the counts break the cap
		// (and the decoding below fails on it).
		od.predBuf = make([]OpID, total)
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

// countPreds returns the sum of the first n values of the pred count column
// b, as far as they can be read, or 0 if it exceeds 64 bits.
func countPreds(b []byte, n int) uint64 {
	d := newUintRLE(b)
	var total uint64
	for left := uint64(n); left > 0; {
		if d.count == 0 {
			fresh, end, err := d.head()
			if err != nil || end {
				break
			}
			if fresh {
				if d.val, err = d.r.uleb(); err != nil {
					break
				}
			}
		}
		var v, k uint64
		switch {
		case d.null:
			k = min(d.count, left)
		case d.literal:
			k = 1
			var err error
			if v, err = d.r.uleb(); err != nil {
				return total
			}
		default:
			k = min(d.count, left)
			v = d.val
		}
		d.count -= k
		left -= k
		if v != 0 && k > (math.MaxUint64-total)/v {
			return 0
		}
		total += k * v
	}
	return total
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
	name, ok, err := od.markName.next(od.strs)
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
	s, sok, err := od.keyStr.next(od.strs)
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
		return Value{Kind: Str, Str: od.strs.of(raw)}, nil
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
		// countPreds sized the block for all the operations; this is for
		// counts over the cap, which make the decoding fail further on.
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
