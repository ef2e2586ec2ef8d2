package crdt

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Policies are a charter's named settings, each kept as the text it was set
// with (e.g. "reset.window" → "72h"). Use Set to change one, so that only
// known names and parseable values get in.
type Policies map[string]string

// PolicyType says how a policy's value is written and read.
type PolicyType string

// The types of policy values.
const (
	PolicyDuration PolicyType = "duration" // a Go duration, e.g. "72h", between 1m and 87600h (ten years)
	PolicyInt      PolicyType = "int"      // a whole number within the policy's bounds
	PolicyFraction PolicyType = "fraction" // a decimal number greater than 0 and at most 1
	PolicyNumber   PolicyType = "number"   // a decimal number within the policy's bounds
)

// PolicySpec documents one known policy.
type PolicySpec struct {
	Name    string
	Type    PolicyType
	Default string
	Min     float64 // bounds for PolicyInt and PolicyNumber
	Max     float64
	Doc     string
}

// policySpecs is the single table of known policies; it is never modified.
var policySpecs = []PolicySpec{
	{Name: "reset.quorum", Type: PolicyInt, Default: "3", Min: 2, Max: 100,
		Doc: "How many distinct active members must sign a hard reset for it to execute."},
	{Name: "reset.window", Type: PolicyDuration, Default: "72h",
		Doc: "How long a reset signature counts: all signatures of a quorum must be younger than this."},
	{Name: "reset.min_membership", Type: PolicyDuration, Default: "168h",
		Doc: "How long a member must have been enrolled before their reset signature counts, so nobody can enrol sock puppets to reach the quorum."},
	{Name: "proposal.period", Type: PolicyDuration, Default: "168h",
		Doc: "How long a proposal stays open for votes unless its outcome is settled earlier."},
	{Name: "proposal.quorum", Type: PolicyFraction, Default: "0.5",
		Doc: "The share of active members who must have voted (any choice) for a closed proposal to be decided; below it the proposal is rejected."},
	{Name: "proposal.threshold", Type: PolicyFraction, Default: "0.5",
		Doc: "A proposal passes when its yes votes are more than this share of its yes and no votes (abstentions do not count)."},
	{Name: "charter.term", Type: PolicyDuration, Default: "8760h",
		Doc: "How long a ratification lasts; the charter lapses this long after it was last ratified."},
	{Name: "charter.renewal_notice", Type: PolicyDuration, Default: "720h",
		Doc: "How long before the charter expires members are told it needs re-ratification."},
	{Name: "role.term_limit", Type: PolicyInt, Default: "2", Min: 1, Max: 100,
		Doc: "How many consecutive terms a member may hold the same role; a role's own term_limit may only be lower."},
	{Name: "ledger.segment_changes", Type: PolicyInt, Default: "2000", Min: 100, Max: 100000,
		Doc: "After about this many changes the server opens a new segment document for a member's ledger, keeping documents cheap to load and sync."},
	{Name: "signals.silent_after", Type: PolicyDuration, Default: "720h",
		Doc: "A member who has logged nothing for this long is listed among the silent members."},
	{Name: "credit.limit", Type: PolicyNumber, Default: "20", Min: 0, Max: MaxQuantity,
		Doc: "How far, in hours, a member's mutual-credit balance may go below zero."},
	{Name: "facilitation.rest", Type: PolicyInt, Default: "2", Min: 0, Max: 100,
		Doc: "A member who facilitated one of the last this many meetings is not drawn to facilitate the next one."},
	{Name: "facilitation.cooldown", Type: PolicyInt, Default: "3", Min: 0, Max: 100,
		Doc: "A member named as dominating by at least half of those who checked in after a meeting rests from facilitation for this many meetings."},
}

// PolicySpecs returns the documentation of every known policy, sorted by
// name. The slice is a copy the caller may keep.
func PolicySpecs() []PolicySpec {
	out := slices.Clone(policySpecs)
	slices.SortFunc(out, func(a, b PolicySpec) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// LookupPolicy returns the spec of a known policy.
func LookupPolicy(name string) (PolicySpec, bool) {
	for _, s := range policySpecs {
		if s.Name == name {
			return s, true
		}
	}
	return PolicySpec{}, false
}

// DefaultPolicies returns a new map holding every known policy at its
// default value (see PolicySpecs for each one's meaning):
//
//	reset.quorum=3  reset.window=72h  reset.min_membership=168h
//	proposal.period=168h  proposal.quorum=0.5  proposal.threshold=0.5
//	charter.term=8760h  charter.renewal_notice=720h  role.term_limit=2
//	ledger.segment_changes=2000  signals.silent_after=720h  credit.limit=20
//	facilitation.rest=2  facilitation.cooldown=3
func DefaultPolicies() Policies {
	p := make(Policies, len(policySpecs))
	for _, s := range policySpecs {
		p[s.Name] = s.Default
	}
	return p
}

// Set checks that name is a known policy and that value parses as its type
// within its bounds, then stores value (trimmed of spaces). Otherwise it
// returns a *RuleError of rule "policy" naming the policy and leaves p
// unchanged.
func (p Policies) Set(name, value string) error {
	value = strings.TrimSpace(value)
	if err := CheckPolicy(name, value); err != nil {
		return err
	}
	if p == nil {
		return &RuleError{Rule: RulePolicy, Message: "cannot set " + name + " in a nil Policies map"}
	}
	p[name] = value
	return nil
}

// CheckPolicy reports whether value is acceptable for the policy name, as
// a *RuleError of rule "policy".
func CheckPolicy(name, value string) error {
	if IsNeedPolicy(name) { // the circle's declared needs (needs.go)
		_, _, err := ParseNeed(name, value)
		return err
	}
	spec, ok := LookupPolicy(name)
	if !ok {
		return &RuleError{Rule: RulePolicy, Message: fmt.Sprintf("unknown policy %q", truncate(name, maxIDLen))}
	}
	bad := func(want string) error {
		return &RuleError{Rule: RulePolicy, Message: fmt.Sprintf("policy %s: value %q is not %s", name, truncate(value, maxIDLen), want)}
	}
	switch spec.Type {
	case PolicyDuration:
		d, err := time.ParseDuration(value)
		if err != nil || d < time.Minute || d > 87600*time.Hour {
			return bad("a duration between 1m and 87600h, like 72h")
		}
	case PolicyInt:
		n, err := strconv.Atoi(value)
		if err != nil || float64(n) < spec.Min || float64(n) > spec.Max {
			return bad(fmt.Sprintf("a whole number from %g to %g", spec.Min, spec.Max))
		}
	case PolicyFraction:
		f, err := strconv.ParseFloat(value, 64)
		if err != nil || math.IsNaN(f) || f <= 0 || f > 1 {
			return bad("a number greater than 0 and at most 1, like 0.5")
		}
	case PolicyNumber:
		f, err := strconv.ParseFloat(value, 64)
		if err != nil || math.IsNaN(f) || f < spec.Min || f > spec.Max {
			return bad(fmt.Sprintf("a number from %g to %g", spec.Min, spec.Max))
		}
	}
	return nil
}

// Validate checks every policy in p with CheckPolicy, in name order, and
// returns the first error.
func (p Policies) Validate() error {
	names := make([]string, 0, len(p))
	for name := range p {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := CheckPolicy(name, p[name]); err != nil {
			return err
		}
	}
	return nil
}

// value returns the stored value of name if it is valid, else its default.
// Unknown names give "".
func (p Policies) value(name string) string {
	spec, ok := LookupPolicy(name)
	if !ok {
		return ""
	}
	if v, ok := p[name]; ok && CheckPolicy(name, v) == nil {
		return v
	}
	return spec.Default
}

// Duration returns a duration policy. A policy missing from p, or holding
// a value that does not parse, gives its default; an unknown name gives 0.
func (p Policies) Duration(name string) time.Duration {
	d, _ := time.ParseDuration(p.value(name))
	return d
}

// Int returns a whole-number policy, with the same fallbacks as Duration.
func (p Policies) Int(name string) int {
	n, _ := strconv.Atoi(p.value(name))
	return n
}

// Float returns a fraction or number policy, with the same fallbacks as
// Duration.
func (p Policies) Float(name string) float64 {
	f, _ := strconv.ParseFloat(p.value(name), 64)
	return f
}

// Clone returns a copy of p.
func (p Policies) Clone() Policies {
	out := make(Policies, len(p))
	for k, v := range p {
		out[k] = v
	}
	return out
}
