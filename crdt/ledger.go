package crdt

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/automerge/automerge-go"
	"github.com/google/uuid"
)

// A member's ledger segment (API.md, "The shape of member documents"):
//
//	{ "member": "<member id>", "segment": <n>,
//	  "entries": { "<entry id>": { "id", "kind", "quantity", "unit"?,
//	                "note", "at", "counterparty"?, "voids"? } },
//	  "credits": { "<transfer id>": { "id", "to", "amount", "note", "at" } } }

// Bounds on ledger values.
const (
	MaxQuantity = 1e6  // largest quantity or credit amount
	MaxNoteLen  = 2000 // characters (Unicode code points) of a note
	MaxUnitLen  = 32   // characters of a unit
)

// The years outside which a time is taken to be a mistake.
const (
	minYear = 2000
	maxYear = 2200
)

// EntryKinds lists the kinds a contribution entry may have.
var EntryKinds = []string{"hours", "lend", "meal", "skill", "other"}

// Entry is one contribution a member logged in their ledger.
type Entry struct {
	ID           string    // a UUID made by the client; also the entry's key
	Kind         string    // one of EntryKinds
	Quantity     float64   // > 0, in Unit
	Unit         string    // optional, e.g. "h", "kg"
	Note         string    // free text, may be empty
	At           time.Time // when it happened (stored as RFC 3339, UTC)
	Counterparty string    // optional member id of whom it benefited
	Voids        string    // optional id of an earlier entry this one corrects
}

// Credit is one mutual-credit transfer: its author gives Amount hours of
// credit to the member To.
type Credit struct {
	ID     string  // a UUID made by the client; also the credit's key
	To     string  // member id of the receiver
	Amount float64 // > 0, in hours
	Note   string
	At     time.Time
}

// Validate checks the entry's values against the ledger schema. It returns
// a *RuleError of rule "schema" naming the first bad field.
func (e Entry) Validate() error {
	if !isUUID(e.ID) {
		return fieldErr("entry", "id", "must be a UUID in canonical lowercase form")
	}
	if !slices.Contains(EntryKinds, e.Kind) {
		return fieldErr("entry", "kind", "must be one of "+strings.Join(EntryKinds, ", "))
	}
	if err := checkAmount("entry", "quantity", e.Quantity); err != nil {
		return err
	}
	if err := checkText("entry", "unit", e.Unit, MaxUnitLen); err != nil {
		return err
	}
	if err := checkText("entry", "note", e.Note, MaxNoteLen); err != nil {
		return err
	}
	if err := checkTime("entry", "at", e.At); err != nil {
		return err
	}
	if e.Counterparty != "" && !isID(e.Counterparty) {
		return fieldErr("entry", "counterparty", "must be a member id")
	}
	if e.Voids != "" {
		if !isID(e.Voids) {
			return fieldErr("entry", "voids", "must be an entry id")
		}
		if e.Voids == e.ID {
			return fieldErr("entry", "voids", "must name another entry")
		}
	}
	return nil
}

// Validate checks the credit's values against the ledger schema. It
// returns a *RuleError of rule "schema" naming the first bad field.
func (c Credit) Validate() error {
	if !isUUID(c.ID) {
		return fieldErr("credit", "id", "must be a UUID in canonical lowercase form")
	}
	if !isID(c.To) {
		return fieldErr("credit", "to", "must be a member id")
	}
	if err := checkAmount("credit", "amount", c.Amount); err != nil {
		return err
	}
	if err := checkText("credit", "note", c.Note, MaxNoteLen); err != nil {
		return err
	}
	return checkTime("credit", "at", c.At)
}

// Same reports whether e and o hold the same values (times compared as
// instants). A client that repeats a write with the same id and the same
// content is retrying; with other content it conflicts.
func (e Entry) Same(o Entry) bool {
	at := e.At.Equal(o.At)
	e.At, o.At = time.Time{}, time.Time{}
	return at && e == o
}

// Same reports whether c and o hold the same values (times compared as
// instants).
func (c Credit) Same(o Credit) bool {
	at := c.At.Equal(o.At)
	c.At, o.At = time.Time{}, time.Time{}
	return at && c == o
}

// InitLedger writes the root of a new ledger segment: empty "entries" and
// "credits" maps and the owning member and segment number. It does not
// commit. Only the document's creator (the server) should call it: two
// replicas that each created "entries" would hide one another's entries.
func InitLedger(doc *automerge.Doc, member string, segment int) error {
	if !isID(member) {
		return fieldErr("ledger", "member", "must be a member id")
	}
	if segment < 0 {
		return fieldErr("ledger", "segment", "must not be negative")
	}
	root := doc.RootMap()
	for _, set := range []struct {
		key string
		val any
	}{
		{"member", member},
		{"segment", int64(segment)},
		{"entries", automerge.NewMap()},
		{"credits", automerge.NewMap()},
	} {
		if err := root.Set(set.key, set.val); err != nil {
			return fmt.Errorf("init ledger %s: %w", set.key, err)
		}
	}
	return nil
}

// LedgerOwner reads the member and segment number a ledger segment
// belongs to. It returns a *RuleError of rule "schema" if either is
// missing or of the wrong type.
func LedgerOwner(doc *automerge.Doc) (member string, segment int, err error) {
	root, err := rootObject(doc, "ledger")
	if err != nil {
		return "", 0, err
	}
	member = root.str("member", true, maxIDLen)
	segment = int(root.integer("segment", true))
	return member, segment, root.done()
}

// PutEntry validates e and writes it into the ledger's "entries" map as a
// map of scalar strings and float64 numbers, with "at" as an RFC 3339
// string. It does not commit. It returns the *RuleError of Validate,
// ErrEntryExists if the id is taken, or ErrNotInitialized.
func PutEntry(doc *automerge.Doc, e Entry) error {
	if err := e.Validate(); err != nil {
		return err
	}
	m, err := newChild(doc, "entries", e.ID)
	if err != nil {
		return err
	}
	return setAll(m, []kv{
		{"id", e.ID},
		{"kind", e.Kind},
		{"quantity", e.Quantity},
		{"unit", e.Unit},
		{"note", e.Note},
		{"at", formatTime(e.At)},
		{"counterparty", e.Counterparty},
		{"voids", e.Voids},
	}, "note")
}

// PutCredit validates c and writes it into the ledger's "credits" map. It
// does not commit. It returns the *RuleError of Validate, ErrEntryExists if
// the id is taken, or ErrNotInitialized.
func PutCredit(doc *automerge.Doc, c Credit) error {
	if err := c.Validate(); err != nil {
		return err
	}
	m, err := newChild(doc, "credits", c.ID)
	if err != nil {
		return err
	}
	return setAll(m, []kv{
		{"id", c.ID},
		{"to", c.To},
		{"amount", c.Amount},
		{"note", c.Note},
		{"at", formatTime(c.At)},
	}, "note")
}

type kv struct {
	key string
	val any
}

// setAll writes each pair into m, leaving out empty strings except for the
// keys named in always.
func setAll(m *automerge.Map, pairs []kv, always ...string) error {
	for _, p := range pairs {
		if s, ok := p.val.(string); ok && s == "" && !slices.Contains(always, p.key) {
			continue
		}
		if err := m.Set(p.key, p.val); err != nil {
			return fmt.Errorf("write %s: %w", p.key, err)
		}
	}
	return nil
}

// newChild creates root[parent][key] as a new map, refusing a key that is
// already there.
func newChild(doc *automerge.Doc, parent, key string) (*automerge.Map, error) {
	p, err := mapIn(doc, parent)
	if err != nil {
		return nil, err
	}
	old, err := p.Get(key)
	if err != nil {
		return nil, err
	}
	if !old.IsVoid() {
		return nil, fmt.Errorf("%s %q: %w", parent, key, ErrEntryExists)
	}
	m := automerge.NewMap()
	if err := p.Set(key, m); err != nil {
		return nil, err
	}
	return m, nil
}

var entryFields = []string{"id", "kind", "quantity", "unit", "note", "at", "counterparty", "voids"}

// ReadEntry reads one entry map. It accepts scalar strings and text
// objects, numbers stored as int, uint or float64, and "at" as an RFC 3339
// string or an automerge timestamp; a missing note reads as empty. Any
// other shape, an unknown field, or a value that fails Validate yields a
// *RuleError of rule "schema". It never panics on a wrong shape.
func ReadEntry(v *automerge.Value) (Entry, error) {
	o, err := readObject(v, "entry")
	if err != nil {
		return Entry{}, err
	}
	if id, ok, _ := valueString(o.value("id"), maxIDLen); ok && isID(id) {
		o.where = "entry " + strconv.Quote(id) // messages name the entry
	}
	e := Entry{
		ID:           o.str("id", true, maxIDLen),
		Kind:         o.str("kind", true, maxIDLen),
		Quantity:     o.num("quantity", true),
		Unit:         o.str("unit", false, MaxUnitLen),
		Note:         o.str("note", false, MaxNoteLen),
		At:           o.time("at", true),
		Counterparty: o.str("counterparty", false, maxIDLen),
		Voids:        o.str("voids", false, maxIDLen),
	}
	if err := o.done(entryFields...); err != nil {
		return Entry{}, err
	}
	if err := e.Validate(); err != nil {
		return Entry{}, err
	}
	return e, nil
}

var creditFields = []string{"id", "to", "amount", "note", "at"}

// ReadCredit reads one credit map, as leniently and as strictly as
// ReadEntry reads an entry.
func ReadCredit(v *automerge.Value) (Credit, error) {
	o, err := readObject(v, "credit")
	if err != nil {
		return Credit{}, err
	}
	if id, ok, _ := valueString(o.value("id"), maxIDLen); ok && isID(id) {
		o.where = "credit " + strconv.Quote(id) // messages name the credit
	}
	c := Credit{
		ID:     o.str("id", true, maxIDLen),
		To:     o.str("to", true, maxIDLen),
		Amount: o.num("amount", true),
		Note:   o.str("note", false, MaxNoteLen),
		At:     o.time("at", true),
	}
	if err := o.done(creditFields...); err != nil {
		return Credit{}, err
	}
	if err := c.Validate(); err != nil {
		return Credit{}, err
	}
	return c, nil
}

// ReadLedger reads every entry and credit of a ledger segment, each sorted
// by time and then id. A missing "entries" or "credits" map reads as empty.
// A value of the wrong shape, or one stored under a key other than its id,
// yields a *RuleError of rule "schema".
func ReadLedger(doc *automerge.Doc) (entries []Entry, credits []Credit, err error) {
	root, err := rootObject(doc, "ledger")
	if err != nil {
		return nil, nil, err
	}
	if em := root.child("entries", false); em != nil {
		entries = make([]Entry, 0, len(em.vals))
		for key, v := range em.vals {
			e, err := ReadEntry(v)
			if err != nil {
				return nil, nil, err
			}
			if e.ID != key {
				return nil, nil, schemaErr("entries[%q]: id %q differs from its key", truncate(key, maxIDLen), e.ID)
			}
			entries = append(entries, e)
		}
	}
	if cm := root.child("credits", false); cm != nil {
		credits = make([]Credit, 0, len(cm.vals))
		for key, v := range cm.vals {
			c, err := ReadCredit(v)
			if err != nil {
				return nil, nil, err
			}
			if c.ID != key {
				return nil, nil, schemaErr("credits[%q]: id %q differs from its key", truncate(key, maxIDLen), c.ID)
			}
			credits = append(credits, c)
		}
	}
	if root.err != nil {
		return nil, nil, root.err
	}
	slices.SortFunc(entries, func(a, b Entry) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	slices.SortFunc(credits, func(a, b Credit) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return entries, credits, nil
}

// LookupEntry reads the entry stored under id. It reports false, and no
// error, when there is none; it returns a *RuleError of rule "schema" when
// the stored value has the wrong shape.
func LookupEntry(doc *automerge.Doc, id string) (Entry, bool, error) {
	v, err := doc.Path("entries", id).Get()
	if err != nil {
		return Entry{}, false, err
	}
	if v.IsVoid() {
		return Entry{}, false, nil
	}
	e, err := ReadEntry(v)
	if err != nil {
		return Entry{}, true, err
	}
	if e.ID != id {
		return Entry{}, true, schemaErr("entries[%q]: id %q differs from its key", truncate(id, maxIDLen), e.ID)
	}
	return e, true, nil
}

// LookupCredit reads the credit stored under id, like LookupEntry.
func LookupCredit(doc *automerge.Doc, id string) (Credit, bool, error) {
	v, err := doc.Path("credits", id).Get()
	if err != nil {
		return Credit{}, false, err
	}
	if v.IsVoid() {
		return Credit{}, false, nil
	}
	c, err := ReadCredit(v)
	if err != nil {
		return Credit{}, true, err
	}
	if c.ID != id {
		return Credit{}, true, schemaErr("credits[%q]: id %q differs from its key", truncate(id, maxIDLen), c.ID)
	}
	return c, true, nil
}

// fieldErr returns a *RuleError of rule "schema" naming a field.
func fieldErr(object, field, msg string) error {
	return schemaErr("%s: field %q %s", object, field, msg)
}

// isUUID reports whether s is a UUID (any version) in canonical form:
// 36 characters, lowercase hex, hyphens at the usual places.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	u, err := uuid.Parse(s)
	return err == nil && u.String() == s
}

// isID reports whether s looks like an id of this system: 1 to 64
// characters from [A-Za-z0-9._:-]. UUIDs, base58 document ids and hex
// actor ids all fit.
func isID(s string) bool {
	if s == "" || len(s) > maxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

func checkAmount(object, field string, q float64) error {
	switch {
	case math.IsNaN(q) || math.IsInf(q, 0):
		return fieldErr(object, field, "must be a finite number")
	case q <= 0:
		return fieldErr(object, field, "must be greater than 0")
	case q > MaxQuantity:
		return fieldErr(object, field, fmt.Sprintf("must be at most %g", float64(MaxQuantity)))
	}
	return nil
}

func checkText(object, field, s string, max int) error {
	if !utf8.ValidString(s) {
		return fieldErr(object, field, "must be valid UTF-8")
	}
	if utf8.RuneCountInString(s) > max {
		return fieldErr(object, field, fmt.Sprintf("must be at most %d characters", max))
	}
	return nil
}

func checkTime(object, field string, t time.Time) error {
	if t.IsZero() {
		return fieldErr(object, field, "is missing")
	}
	if y := t.UTC().Year(); y < minYear || y > maxYear {
		return fieldErr(object, field, fmt.Sprintf("must be between the years %d and %d", minYear, maxYear))
	}
	return nil
}
