package crdt

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/automerge/automerge-go"
)

// The charter document, written by the server only:
//
//	{ "name", "purpose", "text"?, "principles": [string],
//	  "policies": {name: value}, "version": int, "ratified_at"?,
//	  "expires_at"?, "status" }
//
// The charter draft, written by any active member's device:
//
//	{ "text": <automerge Text>, "principles": [string or Text] }

// Bounds on charter values.
const (
	MaxNameLen       = 100    // characters of a circle, member, device or role name
	MaxPurposeLen    = 2000   // characters of the charter's purpose
	MaxPrincipleLen  = 2000   // characters of one principle
	MaxPrinciples    = 100    // principles in a charter or draft
	MaxDraftTextLen  = 100000 // characters of the charter draft's text
	maxPolicyEntries = 100
)

// The statuses of a charter.
const (
	CharterDraft             = "draft"              // never ratified
	CharterRatified          = "ratified"           // ratified and not expired
	CharterLapsed            = "lapsed"             // its ratification expired
	CharterNeedsRatification = "needs_ratification" // a hard reset flagged it
)

// Charter is the circle's ratified charter.
type Charter struct {
	Name       string
	Purpose    string
	Text       string // the ratified text, copied from the charter draft
	Principles []string
	Policies   Policies
	Version    int // how many times it has been ratified
	RatifiedAt *time.Time
	ExpiresAt  *time.Time
	Status     string // one of the Charter* status constants
}

// InitCharter writes a new, unratified charter (status "draft", version 0)
// named name, whose policies are the defaults overridden by p. It does not
// commit. It returns a *RuleError for a bad name ("schema") or policy
// ("policy").
func InitCharter(doc *automerge.Doc, name string, p Policies) error {
	pol := DefaultPolicies()
	for k, v := range p {
		if err := pol.Set(k, v); err != nil {
			return err
		}
	}
	return PutCharter(doc, Charter{Name: name, Policies: pol, Status: CharterDraft})
}

// Validate checks the charter's values. It returns a *RuleError of rule
// "schema" or "policy".
func (c Charter) Validate() error {
	if strings.TrimSpace(c.Name) == "" {
		return fieldErr("charter", "name", "is missing")
	}
	if err := checkText("charter", "name", c.Name, MaxNameLen); err != nil {
		return err
	}
	if err := checkText("charter", "purpose", c.Purpose, MaxPurposeLen); err != nil {
		return err
	}
	if err := checkText("charter", "text", c.Text, MaxDraftTextLen); err != nil {
		return err
	}
	if len(c.Principles) > MaxPrinciples {
		return fieldErr("charter", "principles", fmt.Sprintf("must hold at most %d items", MaxPrinciples))
	}
	for _, s := range c.Principles {
		if err := checkText("charter", "principles", s, MaxPrincipleLen); err != nil {
			return err
		}
	}
	if err := c.Policies.Validate(); err != nil {
		return err
	}
	if c.Version < 0 {
		return fieldErr("charter", "version", "must not be negative")
	}
	switch c.Status {
	case CharterDraft, CharterRatified, CharterLapsed, CharterNeedsRatification:
	default:
		return fieldErr("charter", "status", "must be draft, ratified, lapsed or needs_ratification")
	}
	return nil
}

// PutCharter validates c and writes all of it over the charter document's
// root. It does not commit.
func PutCharter(doc *automerge.Doc, c Charter) error {
	if err := c.Validate(); err != nil {
		return err
	}
	root := doc.RootMap()
	principles := make([]any, len(c.Principles))
	for i, s := range c.Principles {
		principles[i] = s
	}
	policies := automerge.NewMap()
	for _, p := range []kv{
		{"name", c.Name},
		{"purpose", c.Purpose},
		{"principles", principles},
		{"policies", policies},
		{"version", int64(c.Version)},
		{"status", c.Status},
	} {
		if err := root.Set(p.key, p.val); err != nil {
			return fmt.Errorf("write charter %s: %w", p.key, err)
		}
	}
	for _, k := range sortedKeys(c.Policies) {
		if err := policies.Set(k, c.Policies[k]); err != nil {
			return fmt.Errorf("write charter policy %s: %w", k, err)
		}
	}
	if c.Text != "" {
		if err := root.Set("text", c.Text); err != nil {
			return fmt.Errorf("write charter text: %w", err)
		}
	} else if err := root.Delete("text"); err != nil {
		return fmt.Errorf("write charter text: %w", err)
	}
	for key, t := range map[string]*time.Time{"ratified_at": c.RatifiedAt, "expires_at": c.ExpiresAt} {
		var err error
		if t == nil {
			err = root.Delete(key)
		} else {
			err = root.Set(key, formatTime(*t))
		}
		if err != nil {
			return fmt.Errorf("write charter %s: %w", key, err)
		}
	}
	return nil
}

// ReadCharter reads the charter document. It returns a *RuleError of rule
// "schema" when a field is missing or has the wrong shape. Policies the
// document does not name read as their defaults; unknown ones are kept.
func ReadCharter(doc *automerge.Doc) (Charter, error) {
	o, err := rootObject(doc, "charter")
	if err != nil {
		return Charter{}, err
	}
	c := Charter{
		Name:       o.str("name", true, MaxNameLen),
		Purpose:    o.str("purpose", false, MaxPurposeLen),
		Text:       o.str("text", false, MaxDraftTextLen),
		Principles: o.strings("principles", false, MaxPrinciples, MaxPrincipleLen),
		Version:    int(o.integer("version", true)),
		RatifiedAt: o.optTime("ratified_at"),
		ExpiresAt:  o.optTime("expires_at"),
		Status:     o.str("status", true, maxIDLen),
		Policies:   DefaultPolicies(),
	}
	if pm := o.child("policies", false); pm != nil {
		if len(pm.vals) > maxPolicyEntries {
			return Charter{}, fieldErr("charter", "policies", fmt.Sprintf("must hold at most %d items", maxPolicyEntries))
		}
		for k := range pm.vals {
			c.Policies[k] = pm.str(k, true, maxIDLen)
		}
		if pm.err != nil {
			return Charter{}, pm.err
		}
	}
	if err := o.done(); err != nil {
		return Charter{}, err
	}
	return c, nil
}

// StatusAt returns the charter's status at now: a ratified charter whose
// expiry has come is "lapsed"; otherwise the stored status.
func (c Charter) StatusAt(now time.Time) string {
	if c.Status == CharterRatified && c.ExpiresAt != nil && !now.Before(*c.ExpiresAt) {
		return CharterLapsed
	}
	return c.Status
}

// RenewalDue reports whether members should be asked to (re-)ratify the
// charter at now: it is not ratified (draft, lapsed, or flagged by a
// reset), or its expiry is within its "charter.renewal_notice" period or
// already past.
func (c Charter) RenewalDue(now time.Time) bool {
	if c.Status != CharterRatified || c.ExpiresAt == nil {
		return c.Status != CharterRatified
	}
	return !now.Before(c.ExpiresAt.Add(-c.Policies.Duration("charter.renewal_notice")))
}

// Ratified returns c ratified at now: version incremented, status
// "ratified", expiring "charter.term" after now.
func (c Charter) Ratified(now time.Time) Charter {
	now = now.UTC()
	exp := now.Add(c.Policies.Duration("charter.term"))
	c.Version++
	c.RatifiedAt, c.ExpiresAt = &now, &exp
	c.Status = CharterRatified
	c.Principles = slices.Clone(c.Principles)
	c.Policies = c.Policies.Clone()
	return c
}

// CharterDraftText is the content of the charter draft document.
type CharterDraftText struct {
	Text       string
	Principles []string
}

// InitCharterDraft writes the root of a new charter draft: "text" as an
// empty automerge Text object, so members can edit it together character
// by character, and an empty "principles" list. It does not commit.
func InitCharterDraft(doc *automerge.Doc) error {
	root := doc.RootMap()
	if err := root.Set("text", automerge.NewText("")); err != nil {
		return fmt.Errorf("init charter draft text: %w", err)
	}
	if err := root.Set("principles", automerge.NewList()); err != nil {
		return fmt.Errorf("init charter draft principles: %w", err)
	}
	return nil
}

// ReadCharterDraft reads the charter draft. Its text and principles may be
// text objects or scalar strings. It returns a *RuleError of rule "schema"
// for a wrong shape or a text over its bounds.
func ReadCharterDraft(doc *automerge.Doc) (CharterDraftText, error) {
	o, err := rootObject(doc, "charter draft")
	if err != nil {
		return CharterDraftText{}, err
	}
	d := CharterDraftText{
		Text:       o.str("text", false, MaxDraftTextLen),
		Principles: o.strings("principles", false, MaxPrinciples, MaxPrincipleLen),
	}
	return d, o.done()
}

// SetDraftText makes the charter draft's text say text, as one splice of
// its automerge Text: the part that differs between the two, found by
// their common beginning and end, is replaced and the rest is kept, so
// edits members make to other parts of the text at the same time merge
// with it. It reports whether anything changed. It does not commit. A
// text over MaxDraftTextLen characters or not UTF-8 is a *RuleError of
// rule "schema"; a draft whose text is not a Text object gives
// ErrNotInitialized.
func SetDraftText(doc *automerge.Doc, text string) (bool, error) {
	if err := checkText("charter draft", "text", text, MaxDraftTextLen); err != nil {
		return false, err
	}
	v, err := doc.Path("text").Get()
	if err != nil {
		return false, err
	}
	if v.Kind() != automerge.KindText {
		return false, fmt.Errorf("charter draft text: %w", ErrNotInitialized)
	}
	t := v.Text()
	old, err := t.Get()
	if err != nil {
		return false, err
	}
	pos, del, ins := spliceOf([]rune(old), []rune(text))
	if del == 0 && ins == "" {
		return false, nil
	}
	return true, t.Splice(pos, del, ins)
}

// spliceOf returns the one splice that turns a into b: at position pos
// (in code points), delete del and insert ins.
func spliceOf(a, b []rune) (pos, del int, ins string) {
	for pos < len(a) && pos < len(b) && a[pos] == b[pos] {
		pos++
	}
	ea, eb := len(a), len(b)
	for ea > pos && eb > pos && a[ea-1] == b[eb-1] {
		ea--
		eb--
	}
	return pos, ea - pos, string(b[pos:eb])
}

// InitGovernance writes the root of a new governance document: an empty
// "proposals" map, "epoch" 0 and an empty "resets" list. It does not
// commit.
func InitGovernance(doc *automerge.Doc) error {
	root := doc.RootMap()
	for _, p := range []kv{
		{"proposals", automerge.NewMap()},
		{"epoch", int64(0)},
		{"resets", automerge.NewList()},
	} {
		if err := root.Set(p.key, p.val); err != nil {
			return fmt.Errorf("init governance %s: %w", p.key, err)
		}
	}
	return nil
}

// ReadEpoch reads the governance document's reset epoch. It returns a
// *RuleError of rule "schema" if it is missing or not a whole number.
func ReadEpoch(doc *automerge.Doc) (int, error) {
	o, err := rootObject(doc, "governance")
	if err != nil {
		return 0, err
	}
	n := o.integer("epoch", true)
	if o.err == nil && n < 0 {
		o.fail("epoch", "must not be negative")
	}
	return int(n), o.done()
}

// InitAudit writes the root of a new audit document: an empty "entries"
// list. It does not commit.
func InitAudit(doc *automerge.Doc) error {
	if err := doc.RootMap().Set("entries", automerge.NewList()); err != nil {
		return fmt.Errorf("init audit: %w", err)
	}
	return nil
}
