package amchangetest

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt/amchange"
)

// Options change how Encode writes a change. The zero Options write it as
// automerge does.
type Options struct {
	// RunsOfOne writes every value that stands alone in a column as a run
	// of length one instead of a literal run. Automerge reads such a
	// column but never writes one, so the change is not canonical: the
	// document that applies it gets another hash for it when it is loaded
	// again.
	RunsOfOne bool
}

// Column specifications (column id << 4 | type) of a change's operations.
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

// Magic is the start of every Automerge chunk.
var Magic = []byte{0x85, 0x6f, 0x4a, 0x83}

// Encode returns c as an uncompressed change chunk and its hash.
//
// The actor table is c.Actors when it is set, used as given: an operation
// that names an actor missing from it is written with an index past the
// end of the table (the first missing actor, in sorted order, gets
// len(c.Actors), the next one more). When c.Actors is nil, Encode builds
// the table automerge builds: c.Actor, then every other actor the
// operations name, sorted. The operations' own ids are not written; they
// follow from c.StartOp.
func Encode(c *amchange.Change, o Options) (chunk []byte, hash [32]byte) {
	body := encodeBody(c, o)
	hashed := append([]byte{1}, binary.AppendUvarint(nil, uint64(len(body)))...)
	hashed = append(hashed, body...)
	hash = sha256.Sum256(hashed)
	chunk = append(slices.Clone(Magic), hash[:4]...)
	return append(chunk, hashed...), hash
}

func encodeBody(c *amchange.Change, o Options) []byte {
	table := c.Actors
	if table == nil {
		table = []string{c.Actor}
		for _, a := range mentioned(c) {
			if a != c.Actor {
				table = append(table, a)
			}
		}
	}
	index := make(map[string]uint64)
	for i, a := range table {
		index[a] = uint64(i)
	}
	for _, a := range mentioned(c) {
		if _, ok := index[a]; !ok {
			index[a] = uint64(len(index))
		}
	}

	var (
		objActor, objCtr, keyActor, action, valMeta = col[uint64]{}, col[uint64]{}, col[uint64]{}, col[uint64]{}, col[uint64]{}
		predNum, predActor                          = col[uint64]{}, col[uint64]{}
		keyCtr, predCtr                             = col[int64]{}, col[int64]{}
		keyStr, markName                            = col[string]{}, col[string]{}
		insert, expand                              []bool
		valRaw                                      []byte
		lastKeyCtr, lastPredCtr                     int64
	)
	for i := range c.Ops {
		op := &c.Ops[i]
		if op.Obj.IsRoot() {
			objActor.add(nil)
			objCtr.add(nil)
		} else {
			objActor.add(ptr(index[op.Obj.Actor]))
			objCtr.add(ptr(op.Obj.Counter))
		}
		switch {
		case !op.ElemKey:
			keyStr.add(&op.Key)
			keyActor.add(nil)
			keyCtr.add(nil)
		case op.Elem.IsRoot():
			keyStr.add(nil)
			keyActor.add(nil)
			keyCtr.add(ptr(0 - lastKeyCtr))
			lastKeyCtr = 0
		default:
			keyStr.add(nil)
			keyActor.add(ptr(index[op.Elem.Actor]))
			keyCtr.add(ptr(int64(op.Elem.Counter) - lastKeyCtr))
			lastKeyCtr = int64(op.Elem.Counter)
		}
		insert = append(insert, op.Insert)
		action.add(ptr(uint64(op.Action)))
		var meta uint64
		valRaw, meta = appendValue(valRaw, op.Value)
		valMeta.add(&meta)
		predNum.add(ptr(uint64(len(op.Pred))))
		for _, p := range op.Pred {
			predActor.add(ptr(index[p.Actor]))
			predCtr.add(ptr(int64(p.Counter) - lastPredCtr))
			lastPredCtr = int64(p.Counter)
		}
		expand = append(expand, op.Expand)
		if op.HasMarkName {
			markName.add(&op.MarkName)
		} else {
			markName.add(nil)
		}
	}

	type column struct {
		spec uint64
		data []byte
	}
	cols := []column{
		{specObjActor, objActor.encode(appendUint, o)},
		{specObjCtr, objCtr.encode(appendUint, o)},
		{specKeyActor, keyActor.encode(appendUint, o)},
		{specKeyCtr, keyCtr.encode(appendInt, o)},
		{specKeyStr, keyStr.encode(appendStr, o)},
		{specInsert, encodeBools(insert)},
		{specAction, action.encode(appendUint, o)},
		{specValueMeta, valMeta.encode(appendUint, o)},
		{specValueRaw, valRaw},
		{specPredGroup, predNum.encode(appendUint, o)},
		{specPredActor, predActor.encode(appendUint, o)},
		{specPredCtr, predCtr.encode(appendInt, o)},
		{specMarkName, markName.encode(appendStr, o)},
	}
	if slices.Contains(expand, true) {
		cols = append(cols, column{specExpand, encodeBools(expand)})
	}
	cols = slices.DeleteFunc(cols, func(c column) bool { return len(c.data) == 0 })
	slices.SortFunc(cols, func(a, b column) int { return cmp.Compare(a.spec, b.spec) })

	out := appendUint(nil, uint64(len(c.Deps)))
	for _, d := range c.Deps {
		out = append(out, d[:]...)
	}
	out = appendActor(out, c.Actor)
	out = appendUint(out, c.Seq)
	out = appendUint(out, c.StartOp)
	out = appendInt(out, c.Time)
	out = appendStr(out, c.Message)
	out = appendUint(out, uint64(len(table)-1))
	for _, a := range table[1:] {
		out = appendActor(out, a)
	}
	out = appendUint(out, uint64(len(cols)))
	for _, col := range cols {
		out = appendUint(out, col.spec)
		out = appendUint(out, uint64(len(col.data)))
	}
	for _, col := range cols {
		out = append(out, col.data...)
	}
	return append(out, c.Extra...)
}

// mentioned returns the actors c's operations refer to, sorted, once each.
func mentioned(c *amchange.Change) []string {
	var out []string
	for _, op := range c.Ops {
		for _, id := range append([]amchange.OpID{op.Obj, op.Elem}, op.Pred...) {
			if !id.IsRoot() {
				out = append(out, id.Actor)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func ptr[T any](v T) *T { return &v }

// col collects the values of a run-length encoded column; nil is a null.
type col[T comparable] struct{ vals []*T }

func (c *col[T]) add(v *T) { c.vals = append(c.vals, v) }

// encode writes the column as automerge-rs's RleEncoder does: equal
// neighbours as a run (count, value), nulls as a null run (0, count),
// values that stand alone gathered into literal runs (-count, values...).
// A column of nulls only is left empty.
func (c *col[T]) encode(write func([]byte, T) []byte, o Options) []byte {
	if !slices.ContainsFunc(c.vals, func(v *T) bool { return v != nil }) {
		return nil
	}
	var out []byte
	var lone []T
	flush := func() {
		if len(lone) == 0 {
			return
		}
		if o.RunsOfOne {
			for _, v := range lone {
				out = write(appendInt(out, 1), v)
			}
		} else {
			out = appendInt(out, -int64(len(lone)))
			for _, v := range lone {
				out = write(out, v)
			}
		}
		lone = lone[:0]
	}
	for i := 0; i < len(c.vals); {
		j := i + 1
		if c.vals[i] == nil {
			for j < len(c.vals) && c.vals[j] == nil {
				j++
			}
			flush()
			out = appendUint(appendInt(out, 0), uint64(j-i))
		} else {
			for j < len(c.vals) && c.vals[j] != nil && *c.vals[j] == *c.vals[i] {
				j++
			}
			if j-i == 1 {
				lone = append(lone, *c.vals[i])
			} else {
				flush()
				out = write(appendInt(out, int64(j-i)), *c.vals[i])
			}
		}
		i = j
	}
	flush()
	return out
}

// encodeBools writes booleans as the lengths of alternating runs, the
// first of false values.
func encodeBools(vs []bool) []byte {
	var out []byte
	cur, n := false, uint64(0)
	for _, v := range vs {
		if v != cur {
			out = appendUint(out, n)
			cur, n = v, 0
		}
		n++
	}
	if n > 0 {
		out = appendUint(out, n)
	}
	return out
}

func appendUint(out []byte, v uint64) []byte { return binary.AppendUvarint(out, v) }

// appendInt writes a signed LEB128 number.
func appendInt(out []byte, v int64) []byte {
	for {
		b := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && b&0x40 == 0) || (v == -1 && b&0x40 != 0) {
			return append(out, b)
		}
		out = append(out, b|0x80)
	}
}

func appendStr(out []byte, s string) []byte {
	return append(appendUint(out, uint64(len(s))), s...)
}

func appendActor(out []byte, a string) []byte {
	b, err := hex.DecodeString(a)
	if err != nil {
		panic(fmt.Sprintf("amchangetest: actor %q is not hex", a))
	}
	return append(appendUint(out, uint64(len(b))), b...)
}

// appendValue writes v's raw bytes and returns its metadata, the length
// of those bytes << 4 | the type code.
func appendValue(out []byte, v amchange.Value) ([]byte, uint64) {
	n := len(out)
	var code uint64
	switch v.Kind {
	case amchange.Null:
	case amchange.Bool:
		code = 1
		if v.Bool {
			code = 2
		}
	case amchange.Uint:
		out, code = appendUint(out, v.Uint), 3
	case amchange.Int:
		out, code = appendInt(out, v.Int), 4
	case amchange.Float:
		out, code = binary.LittleEndian.AppendUint64(out, math.Float64bits(v.Float)), 5
	case amchange.Str:
		out, code = append(out, v.Str...), 6
	case amchange.Bytes:
		out, code = append(out, v.Bytes...), 7
	case amchange.Counter:
		out, code = appendInt(out, v.Int), 8
	case amchange.Timestamp:
		out, code = appendInt(out, v.Int), 9
	default:
		out, code = append(out, v.Bytes...), uint64(v.TypeCode)
	}
	return out, uint64(len(out)-n)<<4 | code
}

// Str is a string value.
func Str(s string) amchange.Value { return amchange.Value{Kind: amchange.Str, Str: s} }

// F64 is a float value.
func F64(f float64) amchange.Value { return amchange.Value{Kind: amchange.Float, Float: f} }

// Builder builds a change on top of a document: its dependencies are the
// document's heads, its sequence number and first operation counter the
// next ones, and Add numbers the operations.
type Builder struct {
	c amchange.Change
}

// NewBuilder starts a change by actor on top of doc. It returns an error
// if one of doc's changes cannot be decoded.
func NewBuilder(doc *automerge.Doc, actor string) (*Builder, error) {
	chs, err := doc.Changes()
	if err != nil {
		return nil, err
	}
	b := &Builder{c: amchange.Change{Actor: actor, Seq: 1, StartOp: 1, Time: 1_767_225_600_000}}
	for _, ch := range chs {
		dc, err := amchange.Decode(ch.Save())
		if err != nil {
			return nil, fmt.Errorf("decode change %x: %w", ch.Hash(), err)
		}
		if dc.Actor == actor {
			b.c.Seq = max(b.c.Seq, dc.Seq+1)
		}
		b.c.StartOp = max(b.c.StartOp, dc.MaxOp()+1)
	}
	for _, h := range doc.Heads() {
		b.c.Deps = append(b.c.Deps, [32]byte(h))
	}
	slices.SortFunc(b.c.Deps, func(x, y [32]byte) int { return bytes.Compare(x[:], y[:]) })
	return b, nil
}

// Next returns the id the next added operation will get.
func (b *Builder) Next() amchange.OpID {
	return amchange.OpID{Counter: b.c.StartOp + uint64(len(b.c.Ops)), Actor: b.c.Actor}
}

// Add appends op, with its id set, and returns the id.
func (b *Builder) Add(op amchange.Op) amchange.OpID {
	op.ID = b.Next()
	b.c.Ops = append(b.c.Ops, op)
	return op.ID
}

// Change returns a copy of the change built so far.
func (b *Builder) Change() *amchange.Change {
	c := b.c
	c.Deps = slices.Clone(c.Deps)
	c.Ops = slices.Clone(c.Ops)
	return &c
}

// RootObjects returns the ids of the objects doc's root map holds, by key,
// as its changes created them (a later creation at the same key wins).
func RootObjects(doc *automerge.Doc) (map[string]amchange.OpID, error) {
	chs, err := doc.Changes()
	if err != nil {
		return nil, err
	}
	out := make(map[string]amchange.OpID)
	for _, ch := range chs {
		dc, err := amchange.Decode(ch.Save())
		if err != nil {
			return nil, fmt.Errorf("decode change %x: %w", ch.Hash(), err)
		}
		for _, op := range dc.Ops {
			if op.Obj.IsRoot() && !op.ElemKey && op.Action.MakesObject() {
				out[op.Key] = op.ID
			}
		}
	}
	return out, nil
}

// SyncMessage is an Automerge sync message as automerge-rs 0.5 encodes it
// (rust/automerge/src/sync.rs): the type byte 0x42, then the sender's
// heads, the hashes it needs, its summaries of what it has, and the
// changes, each a length-prefixed change chunk. Lists are prefixed with
// their uLEB128 length; hashes are 32 bytes.
type SyncMessage struct {
	Heads   [][32]byte
	Need    [][32]byte
	Have    []Have
	Changes [][]byte
}

// Have is a sync message's summary of the changes its sender has: the
// heads of the last sync and a Bloom filter of the changes since.
type Have struct {
	LastSync [][32]byte
	Bloom    []byte // encoded filter; empty for none
}

// SyncMessageType is the first byte of a sync message.
const SyncMessageType = 0x42

// Encode returns the message's bytes. The hashes are written in the order
// given (automerge sorts them).
func (m SyncMessage) Encode() []byte {
	hashes := func(out []byte, hs [][32]byte) []byte {
		out = appendUint(out, uint64(len(hs)))
		for _, h := range hs {
			out = append(out, h[:]...)
		}
		return out
	}
	out := hashes([]byte{SyncMessageType}, m.Heads)
	out = hashes(out, m.Need)
	out = appendUint(out, uint64(len(m.Have)))
	for _, h := range m.Have {
		out = hashes(out, h.LastSync)
		out = appendUint(out, uint64(len(h.Bloom)))
		out = append(out, h.Bloom...)
	}
	out = appendUint(out, uint64(len(m.Changes)))
	for _, c := range m.Changes {
		out = appendUint(out, uint64(len(c)))
		out = append(out, c...)
	}
	return out
}

// ErrSyncMessage is returned by ParseSyncMessage for bytes that are not a
// sync message.
var ErrSyncMessage = errors.New("amchangetest: not a sync message")

// ParseSyncMessage splits a sync message into its parts, without looking
// into the change chunks or Bloom filters.
func ParseSyncMessage(b []byte) (SyncMessage, error) {
	var m SyncMessage
	if len(b) == 0 || b[0] != SyncMessageType {
		return m, fmt.Errorf("%w: first byte", ErrSyncMessage)
	}
	r := b[1:]
	var bad error
	count := func() int {
		n, k := binary.Uvarint(r)
		if k <= 0 || n > uint64(len(r)) {
			bad = ErrSyncMessage
			return 0
		}
		r = r[k:]
		return int(n)
	}
	take := func(n int) []byte {
		if bad != nil || n > len(r) {
			bad = ErrSyncMessage
			return nil
		}
		out := r[:n:n]
		r = r[n:]
		return out
	}
	hashes := func() [][32]byte {
		n := count()
		var out [][32]byte
		for range n {
			if h := take(32); h != nil {
				out = append(out, [32]byte(h))
			}
		}
		return out
	}
	m.Heads = hashes()
	m.Need = hashes()
	for range count() {
		h := Have{LastSync: hashes()}
		h.Bloom = take(count())
		m.Have = append(m.Have, h)
	}
	for range count() {
		m.Changes = append(m.Changes, take(count()))
	}
	if bad == nil && len(r) != 0 {
		bad = ErrSyncMessage
	}
	if bad != nil {
		return SyncMessage{}, fmt.Errorf("%w: %d bytes left unread", bad, len(r))
	}
	return m, nil
}
