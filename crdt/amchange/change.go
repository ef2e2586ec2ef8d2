package amchange

import (
	"encoding/hex"
	"strconv"
)

// Change is one decoded Automerge change.
type Change struct {
	// Hash is the SHA-256 of the uncompressed change chunk: Automerge's
	// change hash, equal to (*automerge.Change).Hash.
	Hash [32]byte
	// Deps are the hashes of the changes this one depends on, in ascending
	// byte order (as the chunk lists them, which Decode checks unless
	// Decoder.AllowNonCanonical is set).
	Deps [][32]byte
	// Actor is the hex id of the change's author.
	Actor string
	// Seq is 1 for the author's first change, 2 for the next, and so on.
	Seq uint64
	// StartOp is the counter of the change's first operation; operation i
	// has counter StartOp+i.
	StartOp uint64
	// Time is the author's clock when the change was made, in milliseconds
	// since the Unix epoch (0 when none was recorded).
	Time int64
	// Message is the commit message; empty when there is none.
	Message string
	// Actors is the change's actor table, hex-encoded: Actor first, then
	// every other actor the operations mention, in ascending order.
	// Operation ids reference these strings.
	Actors []string
	// Ops are the change's operations in order.
	Ops []Op
	// Extra holds any bytes after the operation columns: data a later
	// version of the format may define, which automerge keeps (and hashes)
	// but does not interpret. Usually empty.
	Extra []byte
}

// MaxOp returns the counter of the change's last operation, or StartOp-1
// when the change has no operations.
func (c *Change) MaxOp() uint64 {
	return c.StartOp + uint64(len(c.Ops)) - 1
}

// OpID identifies an operation by its Lamport counter and the hex id of the
// actor that made it. The zero OpID stands for the root map when it names an
// object, and for the head of the sequence when it names a list element.
type OpID struct {
	Counter uint64
	Actor   string
}

// IsRoot reports whether id is the zero OpID, that is the document's root
// map (or, as an element, the head of a sequence).
func (id OpID) IsRoot() bool {
	return id == OpID{}
}

// String returns "counter@actor", or "_root" for the zero OpID, the form
// Automerge uses for object ids.
func (id OpID) String() string {
	if id.IsRoot() {
		return "_root"
	}
	return strconv.FormatUint(id.Counter, 10) + "@" + id.Actor
}

// Action is the kind of an operation. The numbers are those of the binary
// format. Decode refuses a number it does not know, as automerge-rs 0.5
// does; with Decoder.AllowNonCanonical it keeps the number, and Known
// reports false.
type Action uint64

// The actions of the Automerge binary format.
const (
	MakeMap   Action = 0 // create a map object
	Put       Action = 1 // set a map key or list element to a scalar
	MakeList  Action = 2 // create a list object
	Delete    Action = 3 // delete a map key or list element
	MakeText  Action = 4 // create a text object
	Increment Action = 5 // add Value (an Int) to a counter
	MakeTable Action = 6 // create a table object
	Mark      Action = 7 // begin (MarkName set) or end a text mark
)

var actionNames = [...]string{
	MakeMap:   "makeMap",
	Put:       "put",
	MakeList:  "makeList",
	Delete:    "delete",
	MakeText:  "makeText",
	Increment: "increment",
	MakeTable: "makeTable",
	Mark:      "mark",
}

// Known reports whether a is one of the actions defined above.
func (a Action) Known() bool {
	return a <= Mark
}

// MakesObject reports whether a creates an object (map, list, text or
// table) whose id is the operation's own id.
func (a Action) MakesObject() bool {
	return a == MakeMap || a == MakeList || a == MakeText || a == MakeTable
}

// String returns the action's name, or "unknown(n)".
func (a Action) String() string {
	if a.Known() {
		return actionNames[a]
	}
	return "unknown(" + strconv.FormatUint(uint64(a), 10) + ")"
}

// Op is one operation of a change. Its fields are ordered so that the
// flags share one word: a change's operations are decoded into one slice,
// the largest allocation of an incoming sync message.
type Op struct {
	// ID is the operation's id: {StartOp + index, change author}.
	ID OpID
	// Obj is the object the operation acts on; the zero OpID is the root map.
	Obj OpID
	// Key is the map key when ElemKey is false. It may be empty.
	Key string
	// Elem is the list or text element when ElemKey is true. The zero OpID
	// is the head of the sequence (insertion at the start).
	Elem OpID
	// Action is what the operation does.
	Action Action
	// Value is the scalar the operation carries: the value a Put stores, the
	// amount an Increment adds, the value of a mark; Null for the others.
	Value Value
	// Pred lists the operations this one supersedes (overwrites, deletes or
	// increments), in ascending order of counter, then actor.
	Pred []OpID
	// MarkName is the mark's name when HasMarkName is set (a Mark operation
	// that begins a mark).
	MarkName string
	// ElemKey tells which of Key and Elem addresses the operation's target:
	// false for a map key (Key), true for a list or text element (Elem).
	ElemKey bool
	// Insert is true when the operation inserts a new element after Elem
	// rather than acting on Elem itself.
	Insert bool
	// Expand is set on Mark operations whose mark grows when text is
	// inserted at its boundary.
	Expand bool
	// HasMarkName distinguishes an empty mark name from none.
	HasMarkName bool
}

// AtHead reports whether the operation addresses the head of a sequence,
// as an insertion at the start of a list or text does.
func (op *Op) AtHead() bool {
	return op.ElemKey && op.Elem.IsRoot()
}

// ValueKind is the type of a scalar Value, following the type codes of the
// Automerge binary format.
type ValueKind int

// The kinds of scalar values.
const (
	Null      ValueKind = iota // no value
	Bool                       // Value.Bool
	Uint                       // Value.Uint
	Int                        // Value.Int
	Float                      // Value.Float (64-bit)
	Str                        // Value.Str (UTF-8)
	Bytes                      // Value.Bytes
	Counter                    // Value.Int: a counter's initial value
	Timestamp                  // Value.Int: milliseconds since the Unix epoch
	Unknown                    // Value.TypeCode and the raw Value.Bytes
)

var kindNames = [...]string{
	Null:      "null",
	Bool:      "bool",
	Uint:      "uint",
	Int:       "int",
	Float:     "float",
	Str:       "str",
	Bytes:     "bytes",
	Counter:   "counter",
	Timestamp: "timestamp",
	Unknown:   "unknown",
}

// String returns the kind's name.
func (k ValueKind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "ValueKind(" + strconv.Itoa(int(k)) + ")"
}

// Value is a scalar value carried by an operation. Only the field that
// Kind names is set.
type Value struct {
	Kind  ValueKind
	Uint  uint64
	Int   int64 // Int, Counter and Timestamp
	Float float64
	Str   string
	Bytes []byte // Bytes and Unknown
	Bool  bool
	// TypeCode is the format's type code (10 to 15) of an Unknown value.
	TypeCode uint8
}

// String returns a short description such as `str "x"` or `int 5`.
func (v Value) String() string {
	switch v.Kind {
	case Null:
		return "null"
	case Bool:
		return "bool " + strconv.FormatBool(v.Bool)
	case Uint:
		return "uint " + strconv.FormatUint(v.Uint, 10)
	case Int, Counter, Timestamp:
		return v.Kind.String() + " " + strconv.FormatInt(v.Int, 10)
	case Float:
		return "float " + strconv.FormatFloat(v.Float, 'g', -1, 64)
	case Str:
		return "str " + strconv.Quote(v.Str)
	case Bytes:
		return "bytes " + hex.EncodeToString(v.Bytes)
	default:
		return "unknown(" + strconv.Itoa(int(v.TypeCode)) + ") " + hex.EncodeToString(v.Bytes)
	}
}
