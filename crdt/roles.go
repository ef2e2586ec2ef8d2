// Roles and mandates, as the roster document keeps them: their types,
// checks, writers and readers. The roster's members and devices are in
// roster.go.

package crdt

import (
	"strings"
	"time"

	"github.com/automerge/automerge-go"
)

// Validate checks the role's fields. It returns a *RuleError of rule
// "schema" naming the field.
func (r *Role) Validate() error {
	if !isID(r.ID) {
		return fieldErr("role", "id", "must be an id")
	}
	if err := checkName("role", r.Name); err != nil {
		return err
	}
	if err := checkText("role", "purpose", r.Purpose, MaxPurposeLen); err != nil {
		return err
	}
	if r.Term < time.Hour {
		return fieldErr("role", "term", "must be at least 1h")
	}
	if r.TermLimit < 1 {
		return fieldErr("role", "term_limit", "must be at least 1")
	}
	if r.Holder != "" && !isID(r.Holder) {
		return fieldErr("role", "holder", "must be a member id")
	}
	if r.TermsServed < 0 {
		return fieldErr("role", "terms_served", "must not be negative")
	}
	switch r.Rotation {
	case "", RotationVacate, RotationDraw:
	default:
		return fieldErr("role", "rotation", "must be vacate or draw")
	}
	switch r.Status {
	case "", RoleActive, RoleRetired:
	default:
		return fieldErr("role", "status", "must be active or retired")
	}
	if (r.Status == RoleRetired) != (r.RetiredAt != nil) {
		return fieldErr("role", "retired_at", "is set exactly when the role is retired")
	}
	if r.PreviousHolder != "" && !isID(r.PreviousHolder) {
		return fieldErr("role", "previous_holder", "must be a member id")
	}
	if r.PreviousTerms < 0 {
		return fieldErr("role", "previous_terms", "must not be negative")
	}
	for name, t := range map[string]*time.Time{"term_start": r.TermStart, "term_end": r.TermEnd, "previous_term_end": r.PreviousTermEnd, "retired_at": r.RetiredAt} {
		if t != nil {
			if err := checkTime("role", name, *t); err != nil {
				return err
			}
		}
	}
	return nil
}

// PutRole validates r and writes it as roles[r.ID], replacing what was
// stored. It does not commit.
func PutRole(doc *automerge.Doc, r *Role) error {
	if err := r.Validate(); err != nil {
		return err
	}
	roles, err := mapIn(doc, "roles")
	if err != nil {
		return err
	}
	m := automerge.NewMap()
	if err := roles.Set(r.ID, m); err != nil {
		return err
	}
	if err := setAll(m, []kv{
		{"id", r.ID},
		{"name", r.Name},
		{"purpose", r.Purpose},
		{"term", r.Term.String()},
		{"term_limit", int64(r.TermLimit)},
		{"rotation", r.Rotation},
		{"holder", r.Holder},
		{"term_start", optTimeString(r.TermStart)},
		{"term_end", optTimeString(r.TermEnd)},
		{"terms_served", int64(r.TermsServed)},
		{"previous_holder", r.PreviousHolder},
		{"previous_term_end", optTimeString(r.PreviousTermEnd)},
		{"status", r.Status},
		{"retired_at", optTimeString(r.RetiredAt)},
	}, "purpose"); err != nil {
		return err
	}
	if r.PreviousHolder == "" {
		return nil
	}
	return m.Set("previous_terms", int64(r.PreviousTerms))
}

// Validate checks the mandate's fields. It returns a *RuleError of rule
// "schema" naming the field.
func (m *Mandate) Validate() error {
	if !isID(m.ID) {
		return fieldErr("mandate", "id", "must be an id")
	}
	if !isID(m.Member) {
		return fieldErr("mandate", "member", "must be a member id")
	}
	if strings.TrimSpace(m.Issue) == "" {
		return fieldErr("mandate", "issue", "is missing")
	}
	if err := checkText("mandate", "issue", m.Issue, maxIssueLen); err != nil {
		return err
	}
	if err := checkText("mandate", "scope", m.Scope, maxScopeLen); err != nil {
		return err
	}
	if err := checkTime("mandate", "deadline", m.Deadline); err != nil {
		return err
	}
	if err := checkTime("mandate", "granted_at", m.GrantedAt); err != nil {
		return err
	}
	switch m.Status {
	case MandateActive, MandateRecalled, MandateRevoked, MandateExpired, MandateDone:
		return nil
	}
	return fieldErr("mandate", "status", "must be active, recalled, revoked, expired or done")
}

// StatusAt returns the mandate's status at now: an active mandate whose
// deadline has come is "expired".
func (m *Mandate) StatusAt(now time.Time) string {
	if m.Status == MandateActive && !now.Before(m.Deadline) {
		return MandateExpired
	}
	return m.Status
}

// PutMandate validates m and writes it as mandates[m.ID], replacing what
// was stored. It does not commit.
func PutMandate(doc *automerge.Doc, m *Mandate) error {
	if err := m.Validate(); err != nil {
		return err
	}
	mandates, err := mapIn(doc, "mandates")
	if err != nil {
		return err
	}
	mm := automerge.NewMap()
	if err := mandates.Set(m.ID, mm); err != nil {
		return err
	}
	return setAll(mm, []kv{
		{"id", m.ID},
		{"member", m.Member},
		{"issue", m.Issue},
		{"scope", m.Scope},
		{"deadline", formatTime(m.Deadline)},
		{"granted_at", formatTime(m.GrantedAt)},
		{"status", m.Status},
	}, "scope")
}

func readRole(o *object) (*Role, error) {
	r := &Role{
		ID:          o.str("id", true, maxIDLen),
		Name:        o.str("name", true, MaxNameLen),
		Purpose:     o.str("purpose", false, MaxPurposeLen),
		TermLimit:   int(o.integer("term_limit", true)),
		Holder:      o.str("holder", false, maxIDLen),
		TermStart:   o.optTime("term_start"),
		TermEnd:     o.optTime("term_end"),
		TermsServed: int(o.integer("terms_served", false)),
		Rotation:    o.str("rotation", false, maxIDLen),

		PreviousHolder:  o.str("previous_holder", false, maxIDLen),
		PreviousTerms:   int(o.integer("previous_terms", false)),
		PreviousTermEnd: o.optTime("previous_term_end"),
		Status:          o.str("status", false, maxIDLen),
		RetiredAt:       o.optTime("retired_at"),
	}
	term := o.str("term", true, 32)
	if err := o.done(); err != nil {
		return nil, err
	}
	d, err := time.ParseDuration(term)
	if err != nil {
		return nil, fieldErr("role", "term", "must be a Go duration")
	}
	r.Term = d
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}

func readMandate(o *object) (*Mandate, error) {
	m := &Mandate{
		ID:        o.str("id", true, maxIDLen),
		Member:    o.str("member", true, maxIDLen),
		Issue:     o.str("issue", true, maxIssueLen),
		Scope:     o.str("scope", false, maxScopeLen),
		Deadline:  o.time("deadline", true),
		GrantedAt: o.time("granted_at", true),
		Status:    o.str("status", true, maxIDLen),
	}
	if err := o.done(); err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// Role is a rotating role of the circle.
type Role struct {
	ID          string
	Name        string
	Purpose     string
	Term        time.Duration // length of one term
	TermLimit   int           // consecutive terms one member may serve
	Rotation    string        // RotationVacate ("" reads as it) or RotationDraw
	Holder      string        // member id; "" when vacant
	TermStart   *time.Time
	TermEnd     *time.Time
	TermsServed int // consecutive terms served by the holder
	// The holder rotated out when the last term ended, with the
	// consecutive terms they had served and when the last one ended: if
	// they take the role again within one term of that end, the new term
	// continues their streak (see AssignRole). Cleared when anyone holds
	// the role.
	PreviousHolder  string
	PreviousTerms   int
	PreviousTermEnd *time.Time
	Status          string // RoleActive ("" reads as it) or RoleRetired
	RetiredAt       *time.Time
}

// Retired reports whether a role.retire proposal retired the role.
func (r *Role) Retired() bool { return r.Status == RoleRetired }

// Mandate is a single-issue mandate held by a delegate.
type Mandate struct {
	ID        string
	Member    string
	Issue     string
	Scope     string
	Deadline  time.Time
	GrantedAt time.Time
	Status    string // one of the Mandate* status constants
}
