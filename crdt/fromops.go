package crdt

import (
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt/amchange"
)

// NewMap is a map a batch of changes created in an append-only container,
// as the batch's operations describe it.
type NewMap struct {
	// Fields are the values put on its keys (the last put wins; a deleted
	// key is absent): scalars, and the content of a text object when the
	// batch wrote it in one plain run (see NewMaps), as a string.
	Fields Fields
	// Nested is set when a key holds an object whose value the operations
	// do not give plainly (a list, a map, a text edited other than by one
	// run of insertions): then the map must be read from the document.
	Nested bool

	texts map[string]*newText // text objects made on its keys
}

// Fields are the keys of a new map with their values, in the order the
// operations first wrote them. A record has a handful of fields, so a
// slice searched in order is smaller and faster than a map; NewMaps keeps
// at most maxOpFields of them (a map with more is read from the document).
type Fields []Field

// Field is one key of a new map and its value, which points into the
// decoded operation that put it (or, for a text, a value of its own).
type Field struct {
	Key   string
	Value *amchange.Value
}

// maxOpFields bounds the keys NewMaps follows in one new map, so that its
// linear search stays short whatever a change holds. Every record kind
// has fewer fields; a map with more is refused when read from the
// document (an unknown field), with the same message.
const maxOpFields = 32

// Get returns the value of key.
func (f Fields) Get(key string) (amchange.Value, bool) {
	for i := range f {
		if f[i].Key == key {
			return *f[i].Value, true
		}
	}
	return amchange.Value{}, false
}

// Keys yields the keys.
func (f Fields) Keys() iter.Seq[string] {
	return func(yield func(string) bool) {
		for i := range f {
			if !yield(f[i].Key) {
				return
			}
		}
	}
}

// set puts v on key; it reports false, changing nothing, when key is new
// and the map already has maxOpFields keys.
func (f *Fields) set(key string, v *amchange.Value) bool {
	for i := range *f {
		if (*f)[i].Key == key {
			(*f)[i].Value = v
			return true
		}
	}
	if len(*f) >= maxOpFields {
		return false
	}
	*f = append(*f, Field{Key: key, Value: v})
	return true
}

// del removes key.
func (f *Fields) del(key string) {
	for i := range *f {
		if (*f)[i].Key == key {
			*f = slices.Delete(*f, i, i+1)
			return
		}
	}
}

// newText follows a text object a batch made in a new map while its
// operations are one plain run: each inserts one string after the one
// before, starting at the head, and nothing else touches the text.
// That is how automerge writes a string into a new text object (JS
// automerge's default for strings), and then the text reads as the
// concatenation of the inserted strings.
type newText struct {
	last  amchange.OpID // the element inserted last; zero: none yet
	b     strings.Builder
	plain bool
}

// NewMaps returns the maps a batch of changes created directly in the
// containers of roots, by the key CheckAppendOnly reports for them. It
// reads only the operations, so the server need not read the new values
// back from automerge. The batch must have passed CheckAppendOnly.
func NewMaps(roots map[string]amchange.OpID, changes []*amchange.Change) map[Added]*NewMap {
	byObj := make(map[amchange.OpID]string, len(roots))
	for name, id := range roots {
		byObj[id] = name
	}
	out := make(map[Added]*NewMap)
	objs := make(map[amchange.OpID]*NewMap)
	texts := make(map[amchange.OpID]*newText)
	var lastText *newText // the text of the previous operation, if any
	var lastObj amchange.OpID
	for _, ch := range changes {
		for i := range ch.Ops {
			op := &ch.Ops[i]
			if lastText != nil && op.Obj == lastObj {
				lastText.add(op)
				continue
			}
			if t, ok := texts[op.Obj]; ok {
				lastText, lastObj = t, op.Obj
				t.add(op)
				continue
			}
			if name, ok := byObj[op.Obj]; ok {
				if op.Action == amchange.MakeMap {
					m := &NewMap{Fields: make(Fields, 0, 8)}
					out[Added{Container: name, Key: op.Key}] = m
					objs[op.ID] = m
				}
				continue
			}
			m, ok := objs[op.Obj]
			if !ok || op.ElemKey {
				continue
			}
			if _, ok := m.texts[op.Key]; ok {
				// A key written again after its text: read the document.
				m.Nested = true
				continue
			}
			switch {
			case op.Action == amchange.Put:
				if !m.Fields.set(op.Key, &op.Value) {
					m.Nested = true // too many keys: read the document
				}
			case op.Action == amchange.Delete:
				m.Fields.del(op.Key)
			case op.Action == amchange.MakeText:
				if _, ok := m.Fields.Get(op.Key); ok {
					m.Nested = true
					continue
				}
				if m.texts == nil {
					m.texts = make(map[string]*newText)
				}
				t := &newText{plain: true}
				m.texts[op.Key] = t
				texts[op.ID] = t
			case op.Action.MakesObject():
				m.Nested = true
			}
		}
	}
	for _, m := range out {
		for key, t := range m.texts {
			if !t.plain {
				m.Nested = true
				continue
			}
			if !m.Fields.set(key, &amchange.Value{Kind: amchange.Str, Str: t.b.String()}) {
				m.Nested = true
			}
		}
		m.texts = nil
	}
	return out
}

// add takes the next operation on the text.
func (t *newText) add(op *amchange.Op) {
	if !t.plain {
		return
	}
	if op.Action != amchange.Put || !op.Insert || !op.ElemKey || op.Elem != t.last ||
		len(op.Pred) > 0 || op.Value.Kind != amchange.Str {
		t.plain = false
		return
	}
	t.b.WriteString(op.Value.Str)
	t.last = op.ID
}

// EntryFromFields builds an entry from the scalar fields of a new map and
// checks it exactly as ReadEntry checks one read from a document.
func EntryFromFields(fields Fields) (Entry, error) {
	r := fieldReader{fields: fields, where: "entry"}
	if id, ok := fields.Get("id"); ok && id.Kind == amchange.Str && isID(id.Str) {
		r.where = "entry \"" + id.Str + "\""
	}
	e := Entry{
		ID:           r.str("id", true, maxIDLen),
		Kind:         r.str("kind", true, maxIDLen),
		Quantity:     r.num("quantity", true),
		Unit:         r.str("unit", false, MaxUnitLen),
		Note:         r.str("note", false, MaxNoteLen),
		At:           r.time("at", true),
		Counterparty: r.str("counterparty", false, maxIDLen),
		Voids:        r.str("voids", false, maxIDLen),
	}
	if err := r.done(entryFields); err != nil {
		return Entry{}, err
	}
	if err := e.Validate(); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// CreditFromFields builds a credit from the scalar fields of a new map and
// checks it exactly as ReadCredit does.
func CreditFromFields(fields Fields) (Credit, error) {
	r := fieldReader{fields: fields, where: "credit"}
	if id, ok := fields.Get("id"); ok && id.Kind == amchange.Str && isID(id.Str) {
		r.where = "credit \"" + id.Str + "\""
	}
	c := Credit{
		ID:     r.str("id", true, maxIDLen),
		To:     r.str("to", true, maxIDLen),
		Amount: r.num("amount", true),
		Note:   r.str("note", false, MaxNoteLen),
		At:     r.time("at", true),
	}
	if err := r.done(creditFields); err != nil {
		return Credit{}, err
	}
	if err := c.Validate(); err != nil {
		return Credit{}, err
	}
	return c, nil
}

// fieldReader reads typed fields from decoded scalar values, remembering
// the first problem, with the same messages as the document readers.
type fieldReader struct {
	fields Fields
	where  string
	err    error
}

func (r *fieldReader) fail(key, format string, args ...any) {
	if r.err == nil {
		r.err = fieldErr(r.where, key, fmt.Sprintf(format, args...))
	}
}

func (r *fieldReader) str(key string, required bool, max int) string {
	v, ok := r.fields.Get(key)
	if !ok {
		if required {
			r.fail(key, "is missing")
		}
		return ""
	}
	switch {
	case v.Kind != amchange.Str:
		r.fail(key, "must be a string, got %s", opKindName(v.Kind))
	case !utf8.ValidString(v.Str):
		r.fail(key, "is not valid UTF-8")
	case max > 0 && utf8.RuneCountInString(v.Str) > max:
		r.fail(key, "is longer than %d characters", max)
	}
	return v.Str
}

func (r *fieldReader) num(key string, required bool) float64 {
	v, ok := r.fields.Get(key)
	if !ok {
		if required {
			r.fail(key, "is missing")
		}
		return 0
	}
	switch v.Kind {
	case amchange.Float:
		return v.Float
	case amchange.Int:
		return float64(v.Int)
	case amchange.Uint:
		return float64(v.Uint)
	}
	r.fail(key, "must be a number, got %s", opKindName(v.Kind))
	return 0
}

func (r *fieldReader) time(key string, required bool) time.Time {
	v, ok := r.fields.Get(key)
	if !ok {
		if required {
			r.fail(key, "is missing")
		}
		return time.Time{}
	}
	switch v.Kind {
	case amchange.Timestamp:
		return time.UnixMilli(v.Int).UTC()
	case amchange.Str:
		t, err := parseTime(v.Str)
		if err != nil {
			r.fail(key, "is not an RFC 3339 time: %q", truncate(v.Str, 64))
		}
		return t
	}
	r.fail(key, "must be an RFC 3339 time, got %s", opKindName(v.Kind))
	return time.Time{}
}

func (r *fieldReader) done(allowed []string) error {
	if r.err != nil {
		return r.err
	}
	return unknownField(r.where, r.fields.Keys(), allowed)
}

// opKindName names a decoded value's kind as kindName names a document's.
func opKindName(k amchange.ValueKind) string {
	switch k {
	case amchange.Null:
		return kindName(automerge.KindNull)
	case amchange.Bool:
		return kindName(automerge.KindBool)
	case amchange.Bytes:
		return kindName(automerge.KindBytes)
	case amchange.Counter:
		return kindName(automerge.KindCounter)
	case amchange.Float, amchange.Int, amchange.Uint:
		return kindName(automerge.KindFloat64)
	case amchange.Str:
		return kindName(automerge.KindStr)
	case amchange.Timestamp:
		return kindName(automerge.KindTime)
	}
	return "an unknown value"
}
