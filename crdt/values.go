package crdt

import (
	"fmt"
	"iter"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/automerge/automerge-go"
)

// This file holds the lenient readers shared by every schema: strings may
// be scalar strings or text objects, numbers int, uint or float, times
// RFC 3339 strings or automerge timestamps. Every accessor checks a value's
// Kind first, because automerge-go's typed accessors panic on a mismatch.

// maxIDLen bounds every id-like string (member ids, entry ids, jtis, ...).
const maxIDLen = 64

// kindName names an automerge kind for error messages.
func kindName(k automerge.Kind) string {
	switch k {
	case automerge.KindVoid:
		return "nothing"
	case automerge.KindNull:
		return "null"
	case automerge.KindBool:
		return "a boolean"
	case automerge.KindBytes:
		return "bytes"
	case automerge.KindCounter:
		return "a counter"
	case automerge.KindFloat64, automerge.KindInt64, automerge.KindUint64:
		return "a number"
	case automerge.KindStr:
		return "a string"
	case automerge.KindText:
		return "text"
	case automerge.KindTime:
		return "a timestamp"
	case automerge.KindMap:
		return "a map"
	case automerge.KindList:
		return "a list"
	}
	return "an unknown value"
}

// valueString reads a scalar string or a text object. Text longer than max
// code points (when max > 0) is refused before its content is copied out.
func valueString(v *automerge.Value, max int) (string, bool, error) {
	if v == nil {
		return "", false, nil
	}
	switch v.Kind() {
	case automerge.KindStr:
		return v.Str(), true, nil
	case automerge.KindText:
		t := v.Text()
		if max > 0 && t.Len() > max {
			return "", true, fmt.Errorf("is longer than %d characters", max)
		}
		s, err := t.Get()
		return s, true, err
	}
	return "", false, nil
}

// valueNumber reads an int, uint or float value as a float64.
func valueNumber(v *automerge.Value) (float64, bool) {
	switch v.Kind() {
	case automerge.KindFloat64:
		return v.Float64(), true
	case automerge.KindInt64:
		return float64(v.Int64()), true
	case automerge.KindUint64:
		return float64(v.Uint64()), true
	}
	return 0, false
}

// valueInt reads an integer value: an int, a uint, or a float with no
// fractional part (what JS writes for a whole number), within ±2^53.
func valueInt(v *automerge.Value) (int64, bool) {
	switch v.Kind() {
	case automerge.KindInt64:
		return v.Int64(), true
	case automerge.KindUint64:
		u := v.Uint64()
		if u > math.MaxInt64 {
			return 0, false
		}
		return int64(u), true
	case automerge.KindFloat64:
		f := v.Float64()
		if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			return 0, false
		}
		return int64(f), true
	}
	return 0, false
}

// formatTime is how every time is written: RFC 3339 in UTC, with as many
// fractional digits as it needs.
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// parseTime parses an RFC 3339 time and returns it in UTC.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

// object reads the fields of one map in a document and remembers the first
// problem, so a schema reader is a list of field reads followed by done.
type object struct {
	where string // how messages name the object, e.g. `entry "…"`
	vals  map[string]*automerge.Value
	err   error
}

// readObject checks that v is a map and loads its fields.
func readObject(v *automerge.Value, where string) (*object, error) {
	if v == nil || v.Kind() != automerge.KindMap {
		k := automerge.KindVoid
		if v != nil {
			k = v.Kind()
		}
		return nil, schemaErr("%s: must be a map, got %s", where, kindName(k))
	}
	vals, err := v.Map().Values()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return &object{where: where, vals: vals}, nil
}

// rootObject loads the root map of doc.
func rootObject(doc *automerge.Doc, where string) (*object, error) {
	return readObject(doc.Root(), where)
}

func (o *object) fail(key, format string, args ...any) {
	if o.err == nil {
		o.err = schemaErr("%s: field %q %s", o.where, key, fmt.Sprintf(format, args...))
	}
}

// has reports whether key is present (and not null).
func (o *object) has(key string) bool {
	v, ok := o.vals[key]
	return ok && v.Kind() != automerge.KindVoid && v.Kind() != automerge.KindNull
}

// value returns the raw value of key, or nil when it is absent or null.
func (o *object) value(key string) *automerge.Value {
	if !o.has(key) {
		return nil
	}
	return o.vals[key]
}

// str reads a string field of at most max characters (code points).
func (o *object) str(key string, required bool, max int) string {
	v := o.value(key)
	if v == nil {
		if required {
			o.fail(key, "is missing")
		}
		return ""
	}
	s, ok, err := valueString(v, max)
	switch {
	case !ok:
		o.fail(key, "must be a string, got %s", kindName(v.Kind()))
	case err != nil:
		o.fail(key, "%v", err)
	case !utf8.ValidString(s):
		o.fail(key, "is not valid UTF-8")
	case max > 0 && utf8.RuneCountInString(s) > max:
		o.fail(key, "is longer than %d characters", max)
	}
	return s
}

// num reads a number field.
func (o *object) num(key string, required bool) float64 {
	v := o.value(key)
	if v == nil {
		if required {
			o.fail(key, "is missing")
		}
		return 0
	}
	f, ok := valueNumber(v)
	if !ok {
		o.fail(key, "must be a number, got %s", kindName(v.Kind()))
	}
	return f
}

// integer reads a whole-number field.
func (o *object) integer(key string, required bool) int64 {
	v := o.value(key)
	if v == nil {
		if required {
			o.fail(key, "is missing")
		}
		return 0
	}
	n, ok := valueInt(v)
	if !ok {
		o.fail(key, "must be a whole number, got %s", kindName(v.Kind()))
	}
	return n
}

// time reads a time field: an RFC 3339 string or an automerge timestamp.
func (o *object) time(key string, required bool) time.Time {
	v := o.value(key)
	if v == nil {
		if required {
			o.fail(key, "is missing")
		}
		return time.Time{}
	}
	if v.Kind() == automerge.KindTime {
		return v.Time().UTC()
	}
	s, ok, err := valueString(v, 64)
	if !ok || err != nil {
		o.fail(key, "must be an RFC 3339 time, got %s", kindName(v.Kind()))
		return time.Time{}
	}
	t, err := parseTime(s)
	if err != nil {
		o.fail(key, "is not an RFC 3339 time: %q", s)
	}
	return t
}

// optTime reads an optional time field; nil when absent or null.
func (o *object) optTime(key string) *time.Time {
	if !o.has(key) {
		return nil
	}
	t := o.time(key, true)
	if o.err != nil {
		return nil
	}
	return &t
}

// child reads a field that must be a map.
func (o *object) child(key string, required bool) *object {
	v := o.value(key)
	if v == nil {
		if required {
			o.fail(key, "is missing")
		}
		return nil
	}
	if v.Kind() != automerge.KindMap {
		o.fail(key, "must be a map, got %s", kindName(v.Kind()))
		return nil
	}
	c, err := readObject(v, o.where+"."+key)
	if err != nil {
		if o.err == nil {
			o.err = err
		}
		return nil
	}
	return c
}

// list reads a field that must be a list and returns its items.
func (o *object) list(key string, required bool, max int) []*automerge.Value {
	v := o.value(key)
	if v == nil {
		if required {
			o.fail(key, "is missing")
		}
		return nil
	}
	if v.Kind() != automerge.KindList {
		o.fail(key, "must be a list, got %s", kindName(v.Kind()))
		return nil
	}
	l := v.List()
	if max > 0 && l.Len() > max {
		o.fail(key, "has more than %d items", max)
		return nil
	}
	items, err := l.Values()
	if err != nil && o.err == nil {
		o.err = fmt.Errorf("%s.%s: %w", o.where, key, err)
	}
	return items
}

// strings reads a list of strings, each at most maxLen characters.
func (o *object) strings(key string, required bool, maxItems, maxLen int) []string {
	items := o.list(key, required, maxItems)
	if items == nil {
		return nil
	}
	out := make([]string, 0, len(items))
	for i, v := range items {
		s, ok, err := valueString(v, maxLen)
		if !ok || err != nil || !utf8.ValidString(s) || (maxLen > 0 && utf8.RuneCountInString(s) > maxLen) {
			o.fail(key+"["+strconv.Itoa(i)+"]", "must be a string of at most %d characters, got %s", maxLen, kindName(v.Kind()))
			return nil
		}
		out = append(out, s)
	}
	return out
}

// done reports the first problem, or an unknown field when allowed is not
// empty and the object holds a key outside it.
func (o *object) done(allowed ...string) error {
	if o.err != nil || len(allowed) == 0 {
		return o.err
	}
	return unknownField(o.where, maps.Keys(o.vals), allowed)
}

// unknownField returns a schema error for the first key not in allowed.
func unknownField(where string, keys iter.Seq[string], allowed []string) error {
	for k := range keys {
		if !slices.Contains(allowed, k) {
			return schemaErr("%s: unknown field %q", where, truncate(k, maxIDLen))
		}
	}
	return nil
}

// truncate shortens s for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// mapIn returns the map under key in the root of doc, or ErrNotInitialized.
func mapIn(doc *automerge.Doc, key string) (*automerge.Map, error) {
	v, err := doc.RootMap().Get(key)
	if err != nil {
		return nil, err
	}
	if v.Kind() != automerge.KindMap {
		return nil, fmt.Errorf("root %q: %w", key, ErrNotInitialized)
	}
	return v.Map(), nil
}
