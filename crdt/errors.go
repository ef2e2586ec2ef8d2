package crdt

import (
	"errors"
	"fmt"
)

// RuleError reports a broken rule of the circle: a change or a value that
// does not fit a document's schema, a write by the wrong actor, and so on.
// Rule is a short, stable name ("actor", "permission", "schema",
// "immutable", "policy", ...) that callers may show and count; Message is a
// sentence that names the offending field or object and is safe to show to
// the client.
type RuleError struct {
	Rule    string
	Message string
}

// Error returns "<rule>: <message>".
func (e *RuleError) Error() string { return e.Rule + ": " + e.Message }

// Names of the rules this package reports in a RuleError.
const (
	RuleSchema    = "schema"    // a value does not fit its document's shape or bounds
	RuleImmutable = "immutable" // an accepted value would be rewritten or deleted
	RulePolicy    = "policy"    // an unknown charter policy or a value it cannot take
)

// schemaErr returns a *RuleError of rule "schema".
func schemaErr(format string, args ...any) error {
	return &RuleError{Rule: RuleSchema, Message: fmt.Sprintf(format, args...)}
}

// ErrEntryExists is returned by PutEntry, PutCredit, PutProposal and
// PutResetStatement for an id the document already holds. Accepted entries
// are never rewritten: a correction is a new entry that voids the old one.
// To make a retry safe, look the id up and compare with Same.
var ErrEntryExists = errors.New("an entry with this id already exists")

// ErrNotInitialized is returned by the Put functions when the document lacks
// the root object they write into (the matching Init function was not
// applied to it).
var ErrNotInitialized = errors.New("document is not initialized for this kind")
