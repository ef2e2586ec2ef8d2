package crdt

import (
	"encoding/json"
	"slices"
	"time"
)

// Honours: the circle celebrates those who hand power on (issue 10). They
// are read from the audit log, where every handing-on is already
// recorded: role.stepped_down (a holder stepped down) and role.rotated (a
// holder's term ended; "term_ended" when it was their last consecutive
// term allowed, "rotated" otherwise). A rotation by draw that drew the same
// holder again hands nothing on and is no honour.

// AuditRoleSteppedDown is the audit kind of a holder stepping down.
const AuditRoleSteppedDown = "role.stepped_down"

// Honour kinds.
const (
	HonourSteppedDown = "stepped_down"
	HonourTermEnded   = "term_ended"
	HonourRotated     = "rotated"
)

// Honour is one handing-on of power.
type Honour struct {
	Member string
	Role   string
	Name   string // the role's name then
	Kind   string
	Terms  int // consecutive terms served
	At     time.Time
}

// StepDown returns r with its holder member stepped down at now: vacant,
// remembering the holder and their terms as a rotation does, so the
// term limit still holds if they take the role again soon. ok is false if
// member does not hold r.
func StepDown(r Role, member string, now time.Time) (Role, bool) {
	if r.Holder == "" || r.Holder != member {
		return r, false
	}
	end := now.UTC()
	r.PreviousHolder, r.PreviousTerms, r.PreviousTermEnd = r.Holder, r.TermsServed, &end
	r.Holder, r.TermStart, r.TermEnd, r.TermsServed = "", nil, nil, 0
	return r, true
}

// HonoursFromAudit reads the honours out of the audit log, oldest first.
// limitOf gives a role's term limit for entries that do not record it
// (written before they did); it may return 0 for unknown.
func HonoursFromAudit(entries []AuditEntry, limitOf func(role string) int) []Honour {
	var out []Honour
	for _, e := range entries {
		switch e.Kind {
		case AuditRoleSteppedDown:
			var d struct {
				Role, Name, Member string
				Terms              int `json:"terms_served"`
			}
			if json.Unmarshal(e.Data, &d) == nil && d.Member != "" {
				out = append(out, Honour{Member: d.Member, Role: d.Role, Name: d.Name, Kind: HonourSteppedDown, Terms: d.Terms, At: e.At})
			}
		case AuditRoleRotated:
			var d struct {
				Role, Name string
				Previous   string `json:"previous_holder"`
				Holder     string `json:"holder"`
				Terms      int    `json:"terms_served"`
				Limit      int    `json:"term_limit"`
			}
			if json.Unmarshal(e.Data, &d) != nil || d.Previous == "" || d.Previous == d.Holder {
				continue
			}
			limit := d.Limit
			if limit == 0 && limitOf != nil {
				limit = limitOf(d.Role)
			}
			kind := HonourRotated
			if limit > 0 && d.Terms >= limit {
				kind = HonourTermEnded
			}
			out = append(out, Honour{Member: d.Previous, Role: d.Role, Name: d.Name, Kind: kind, Terms: d.Terms, At: e.At})
		}
	}
	slices.SortStableFunc(out, func(a, b Honour) int { return a.At.Compare(b.At) })
	return out
}
