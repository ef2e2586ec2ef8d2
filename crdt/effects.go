package crdt

import (
	"fmt"
	"strings"
	"time"
)

// RuleGovernance names the rule broken by a passed proposal whose effect
// cannot be carried out (a member past a role's term limit, a role that
// does not exist, ...). Such a proposal is rejected with the message as
// its reason.
const RuleGovernance = "governance"

func governanceErr(format string, args ...any) error {
	return &RuleError{Rule: RuleGovernance, Message: fmt.Sprintf(format, args...)}
}

// NewRole returns the vacant role a passed role.create proposal creates.
// Its id is the proposal's id, so the author knows it before the vote
// ends. maxTermLimit is the charter's role.term_limit: a role's own
// term_limit may only be lower. It returns a *RuleError of rule
// "governance" or "schema".
func NewRole(p Proposal, maxTermLimit int) (*Role, error) {
	if p.Kind != ProposalRoleCreate {
		return nil, governanceErr("proposal %s is a %s, not a role.create", p.ID, p.Kind)
	}
	name, _ := p.Payload["name"].(string)
	purpose, _ := p.Payload["purpose"].(string)
	termS, _ := p.Payload["term"].(string)
	term, err := time.ParseDuration(termS)
	if err != nil {
		return nil, fieldErr("proposal", "payload.term", "must be a Go duration, like 2160h")
	}
	limit, ok := wholeNumber(p.Payload["term_limit"])
	if !ok || limit < 1 {
		return nil, fieldErr("proposal", "payload.term_limit", "must be a whole number of at least 1")
	}
	if maxTermLimit > 0 && limit > int64(maxTermLimit) {
		return nil, governanceErr("a term limit of %d is above the charter's role.term_limit of %d", limit, maxTermLimit)
	}
	rotation, _ := p.Payload["rotation"].(string)
	r := &Role{ID: p.ID, Name: strings.TrimSpace(name), Purpose: purpose, Term: term, TermLimit: int(limit), Rotation: rotation}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}

// FindRole finds a role by id or, failing that, by its name (ignoring
// case) if exactly one role that is not retired has it: a retired role's
// name may be taken again.
func FindRole(roles map[string]*Role, ref string) (*Role, bool) {
	if r, ok := roles[ref]; ok {
		return r, true
	}
	var found *Role
	for _, r := range roles {
		if !r.Retired() && strings.EqualFold(r.Name, ref) {
			if found != nil {
				return nil, false
			}
			found = r
		}
	}
	return found, found != nil
}

// ChangeRole returns r changed as a passed role.change proposal p says:
// the payload's name, purpose, term, term_limit and rotation replace the
// role's; the rest is kept. A holder keeps the running term as it is: a
// new term length applies from the next term, and a lower term limit is
// checked at the next assignment. maxTermLimit is the charter's
// role.term_limit, as for NewRole. A retired role cannot change. It
// returns a *RuleError of rule "governance" or "schema".
func ChangeRole(r Role, p Proposal, maxTermLimit int) (Role, error) {
	if p.Kind != ProposalRoleChange {
		return r, governanceErr("proposal %s is a %s, not a role.change", p.ID, p.Kind)
	}
	if r.Retired() {
		return r, governanceErr("role %q is retired", r.Name)
	}
	out := r
	if v, ok := p.Payload["name"].(string); ok {
		out.Name = strings.TrimSpace(v)
	}
	if v, ok := p.Payload["purpose"].(string); ok {
		out.Purpose = v
	}
	if v, ok := p.Payload["term"].(string); ok {
		term, err := time.ParseDuration(v)
		if err != nil {
			return r, fieldErr("proposal", "payload.term", "must be a Go duration, like 2160h")
		}
		out.Term = term
	}
	if v, ok := p.Payload["term_limit"]; ok {
		limit, ok := wholeNumber(v)
		if !ok || limit < 1 {
			return r, fieldErr("proposal", "payload.term_limit", "must be a whole number of at least 1")
		}
		if maxTermLimit > 0 && limit > int64(maxTermLimit) {
			return r, governanceErr("a term limit of %d is above the charter's role.term_limit of %d", limit, maxTermLimit)
		}
		out.TermLimit = int(limit)
	}
	if v, ok := p.Payload["rotation"].(string); ok {
		out.Rotation = v
	}
	if err := out.Validate(); err != nil {
		return r, err
	}
	return out, nil
}

// RetireRole returns r retired at now, as a passed role.retire proposal
// makes it: vacant (VacateRole), with status "retired". It is kept in the
// roster for history.
func RetireRole(r Role, now time.Time) Role {
	r = VacateRole(r)
	at := now.UTC()
	r.Status, r.RetiredAt = RoleRetired, &at
	return r
}

// AssignRole returns r held by member for a new term starting at now, as
// a passed role.assign proposal (or a draw) makes it. A member who already
// holds the role serves another consecutive term, which starts when the
// current one ends if it is still running. A member whose term ended and
// who was rotated out (Role.PreviousHolder) continues their streak if the
// new term starts within one term of the end of the last: a vacancy
// shorter than a term does not break a run of consecutive terms, so
// leaving a role vacant for a moment cannot get around the term limit.
// Anyone else starts a first term now. The limit on consecutive terms is
// CheckTermLimit's. A member past the limit, or a retired role, gets a
// *RuleError of rule "governance"; r is not changed.
func AssignRole(r Role, member string, now time.Time, maxTermLimit int) (Role, error) {
	if !isID(member) {
		return r, fieldErr("proposal", "payload.member", "must be a member id")
	}
	if r.Retired() {
		return r, governanceErr("role %q is retired", r.Name)
	}
	if err := CheckTermLimit(r, member, now, maxTermLimit); err != nil {
		return r, err
	}
	start, served := now.UTC(), ConsecutiveTerms(r, member, now)+1
	if r.Holder == member && r.TermEnd != nil && r.TermEnd.After(start) {
		start = r.TermEnd.UTC()
	}
	end := start.Add(r.Term)
	r.Holder, r.TermStart, r.TermEnd, r.TermsServed = member, &start, &end, served
	r.PreviousHolder, r.PreviousTerms, r.PreviousTermEnd = "", 0, nil
	return r, nil
}

// TermLimit returns the limit on consecutive terms of r: its own
// term_limit, or the charter's role.term_limit (maxTermLimit) if lower.
func TermLimit(r Role, maxTermLimit int) int {
	if maxTermLimit > 0 && maxTermLimit < r.TermLimit {
		return maxTermLimit
	}
	return r.TermLimit
}

// ConsecutiveTerms returns how many consecutive terms of r member has
// served up to now, as AssignRole counts them: the holder's terms served;
// the previous holder's, if their last term ended less than one term ago;
// otherwise 0.
func ConsecutiveTerms(r Role, member string, now time.Time) int {
	switch {
	case member == "":
		return 0
	case r.Holder == member:
		return r.TermsServed
	case r.Holder == "" && r.PreviousHolder == member && r.PreviousTermEnd != nil && now.Before(r.PreviousTermEnd.Add(r.Term)):
		return r.PreviousTerms
	}
	return 0
}

// CheckTermLimit reports, as a *RuleError of rule "governance", whether
// member may not start another term of r at now because they have served
// its limit of consecutive terms (TermLimit).
func CheckTermLimit(r Role, member string, now time.Time, maxTermLimit int) error {
	limit, served := TermLimit(r, maxTermLimit), ConsecutiveTerms(r, member, now)
	if served >= limit {
		return governanceErr("member %s has served %s of role %q in a row; its term limit is %d", member, countNoun(served, "term", "terms"), r.Name, limit)
	}
	return nil
}

// RotateRole returns r with its holder rotated out, if the holder's term
// has ended at now: the role is vacant and remembers the holder, their
// consecutive terms and when the last ended (so the term limit still
// holds if they take it again soon). ok is false when there is nothing to
// rotate.
func RotateRole(r Role, now time.Time) (out Role, ok bool) {
	if r.Holder == "" || r.TermEnd == nil || now.Before(*r.TermEnd) {
		return r, false
	}
	end := r.TermEnd.UTC()
	r.PreviousHolder, r.PreviousTerms, r.PreviousTermEnd = r.Holder, r.TermsServed, &end
	r.Holder, r.TermStart, r.TermEnd, r.TermsServed = "", nil, nil, 0
	return r, true
}

// VacateRole returns r with no holder and no memory of one, as a hard
// reset or the removal of its holder leaves it.
func VacateRole(r Role) Role {
	r.Holder, r.TermStart, r.TermEnd, r.TermsServed = "", nil, nil, 0
	r.PreviousHolder, r.PreviousTerms, r.PreviousTermEnd = "", 0, nil
	return r
}

// NewMandate returns the active mandate a passed mandate.grant proposal
// grants at now. Its id is the proposal's id. A deadline that has already
// passed is a *RuleError of rule "governance".
func NewMandate(p Proposal, now time.Time) (*Mandate, error) {
	if p.Kind != ProposalMandateGrant {
		return nil, governanceErr("proposal %s is a %s, not a mandate.grant", p.ID, p.Kind)
	}
	member, _ := p.Payload["member"].(string)
	issue, _ := p.Payload["issue"].(string)
	scope, _ := p.Payload["scope"].(string)
	dl, _ := p.Payload["deadline"].(string)
	deadline, err := parseTime(dl)
	if err != nil {
		return nil, fieldErr("proposal", "payload.deadline", "must be an RFC 3339 time")
	}
	if !deadline.After(now) {
		return nil, governanceErr("the mandate's deadline %s has already passed", formatTime(deadline))
	}
	m := &Mandate{ID: p.ID, Member: member, Issue: issue, Scope: scope, Deadline: deadline, GrantedAt: now.UTC(), Status: MandateActive}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// RatifyDraft returns c ratified at now with the draft's text and
// principles, as a passed charter.ratify proposal
// makes it (Charter.Ratified: version + 1, expiring charter.term after
// now). An empty draft is a *RuleError of rule "governance": ratifying it
// would erase the charter.
func RatifyDraft(c Charter, draft CharterDraftText, now time.Time) (Charter, error) {
	if strings.TrimSpace(draft.Text) == "" && len(draft.Principles) == 0 {
		return c, governanceErr("the charter draft is empty; write it before ratifying it")
	}
	out := c.Ratified(now)
	out.Text = draft.Text
	out.Principles = append([]string(nil), draft.Principles...)
	if err := out.Validate(); err != nil {
		return c, governanceErr("the charter draft cannot be ratified: %v", err)
	}
	return out, nil
}
