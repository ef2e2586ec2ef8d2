package crdt

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Needs: what a circle declares it needs, in its own words and with
// targets, so that the scorecard can say whether its ledger shows them
// met ("sufficiency", issue 10). A need is a charter policy named
// "need.<name>" (set at init with --policy or later by a policy.set
// proposal, like any policy), whose value reads
//
//	<target> <kind>/<period>[: <words>]
//
// e.g. need.food = "12 meal/month: a shared dinner every week or so",
// need.tools = "20 lend/month", need.care = "10 hours/quarter: visits".
// <kind> is a ledger entry kind (hours, lend, meal, skill, other), <period>
// month, quarter or year; the target counts the summed quantities of the
// circle's counted entries of that kind within the calendar period (UTC).
// The value "none" withdraws a need.

// NeedPrefix starts every need policy's name.
const NeedPrefix = "need."

// Need is one declared need.
type Need struct {
	Name   string // after "need."
	Target float64
	Kind   string
	Period string
	Words  string
}

// maxNeedWords bounds a need's description.
const maxNeedWords = 200

// IsNeedPolicy reports whether name is a need policy's name.
func IsNeedPolicy(name string) bool { return strings.HasPrefix(name, NeedPrefix) }

// ParseNeed reads the need policy name = value. "none" gives ok false and
// no error. A bad name or value is a *RuleError of rule "policy".
func ParseNeed(name, value string) (n Need, ok bool, err error) {
	bad := func(msg string) error {
		return &RuleError{Rule: RulePolicy, Message: fmt.Sprintf("policy %s: %s", truncate(name, maxIDLen), msg)}
	}
	short, _ := strings.CutPrefix(name, NeedPrefix)
	if short == "" || len(short) > 32 || strings.ToLower(short) != short || !isID(short) || strings.ContainsAny(short, ".:") {
		return n, false, bad("a need's name is need.<word>, the word 1 to 32 lowercase letters, digits, '_' or '-'")
	}
	value = strings.TrimSpace(value)
	if value == "none" {
		return n, false, nil
	}
	head, words, _ := strings.Cut(value, ":")
	words = strings.TrimSpace(words)
	fields := strings.Fields(head)
	want := "value must read \"<target> <kind>/<period>[: <words>]\", like \"12 meal/month: shared dinners\", or \"none\""
	if len(fields) != 2 {
		return n, false, bad(want)
	}
	target, err := strconv.ParseFloat(fields[0], 64)
	if err != nil || math.IsNaN(target) || target <= 0 || target > MaxQuantity {
		return n, false, bad(fmt.Sprintf("the target must be a number above 0 and at most %g", float64(MaxQuantity)))
	}
	kind, period, found := strings.Cut(fields[1], "/")
	if !found || !slices.Contains(EntryKinds, kind) || !slices.Contains(ScorecardPeriods, period) {
		return n, false, bad(want + "; kinds: " + strings.Join(EntryKinds, ", ") + "; periods: month, quarter, year")
	}
	if len(words) > maxNeedWords || strings.ContainsAny(words, "\n\r") {
		return n, false, bad(fmt.Sprintf("the words must be one line of at most %d bytes", maxNeedWords))
	}
	return Need{Name: short, Target: target, Kind: kind, Period: period, Words: words}, true, nil
}

// Needs returns the needs declared in p, by name.
func (p Policies) Needs() []Need {
	var out []Need
	for name, value := range p {
		if !IsNeedPolicy(name) {
			continue
		}
		if n, ok, err := ParseNeed(name, value); err == nil && ok {
			out = append(out, n)
		}
	}
	slices.SortFunc(out, func(a, b Need) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// NeedMet is a need against the ledger in one period.
type NeedMet struct {
	Need
	PeriodLabel string
	Start, End  time.Time
	Met         float64 // summed quantities of counted entries of the kind
	Share       float64 // Met / Target, at most 1
}

// MeetNeeds sums, for each need, the counted entries (voiding as in
// Balances; an id counted once per author) of its kind in the calendar
// period holding now.
func MeetNeeds(needs []Need, entries map[string][]Entry, now time.Time) []NeedMet {
	out := make([]NeedMet, len(needs))
	for i, n := range needs {
		start, end, label := periodOf(now, n.Period)
		out[i] = NeedMet{Need: n, PeriodLabel: label, Start: start, End: end}
	}
	for _, list := range entries {
		voided := Voided(list)
		seen := make(map[string]bool, len(list))
		for _, e := range list {
			if seen[e.ID] || voided[e.ID] {
				continue
			}
			seen[e.ID] = true
			for i := range out {
				if e.Kind == out[i].Kind && !e.At.Before(out[i].Start) && e.At.Before(out[i].End) {
					out[i].Met += e.Quantity
				}
			}
		}
	}
	for i := range out {
		out[i].Share = min(1, out[i].Met/out[i].Target)
	}
	return out
}
