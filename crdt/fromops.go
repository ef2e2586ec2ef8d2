package crdt

import (
	"fmt"
	"maps"
	"time"
	"unicode/utf8"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt/amchange"
)

// NewMap is a map a batch of changes created in an append-only container,
// as the batch's operations describe it.
type NewMap struct {
	// Fields are the scalar values put on its keys (the last put wins; a
	// deleted key is absent).
	Fields map[string]amchange.Value
	// Nested is set when a key holds an object (automerge text, which JS
	// writes for strings by default, or anything else): then the map must
	// be read from the document instead.
	Nested bool
}

// NewMaps returns the maps a batch of changes created directly in the
// containers of roots, by the key CheckAppendOnly reports for them. It
// reads only the operations, so the server need not read the new values
// back from automerge.
func NewMaps(roots map[string]amchange.OpID, changes []*amchange.Change) map[Added]*NewMap {
	byObj := make(map[amchange.OpID]string, len(roots))
	for name, id := range roots {
		byObj[id] = name
	}
	out := make(map[Added]*NewMap)
	objs := make(map[amchange.OpID]*NewMap)
	for _, ch := range changes {
		for i := range ch.Ops {
			op := &ch.Ops[i]
			if name, ok := byObj[op.Obj]; ok {
				if op.Action == amchange.MakeMap {
					m := &NewMap{Fields: make(map[string]amchange.Value)}
					out[Added{Container: name, Key: op.Key}] = m
					objs[op.ID] = m
				}
				continue
			}
			m, ok := objs[op.Obj]
			if !ok || op.ElemKey {
				continue
			}
			switch {
			case op.Action == amchange.Put:
				m.Fields[op.Key] = op.Value
			case op.Action == amchange.Delete:
				delete(m.Fields, op.Key)
			case op.Action.MakesObject():
				m.Nested = true
			}
		}
	}
	return out
}

// EntryFromFields builds an entry from the scalar fields of a new map and
// checks it exactly as ReadEntry checks one read from a document.
func EntryFromFields(fields map[string]amchange.Value) (Entry, error) {
	r := fieldReader{fields: fields, where: "entry"}
	if id, ok := fields["id"]; ok && id.Kind == amchange.Str && isID(id.Str) {
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
func CreditFromFields(fields map[string]amchange.Value) (Credit, error) {
	r := fieldReader{fields: fields, where: "credit"}
	if id, ok := fields["id"]; ok && id.Kind == amchange.Str && isID(id.Str) {
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
	fields map[string]amchange.Value
	where  string
	err    error
}

func (r *fieldReader) fail(key, format string, args ...any) {
	if r.err == nil {
		r.err = fieldErr(r.where, key, fmt.Sprintf(format, args...))
	}
}

func (r *fieldReader) str(key string, required bool, max int) string {
	v, ok := r.fields[key]
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
	v, ok := r.fields[key]
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
	v, ok := r.fields[key]
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
	return unknownField(r.where, maps.Keys(r.fields), allowed)
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
