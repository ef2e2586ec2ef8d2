package wire

import "time"

// Credit is a mutual-credit transfer as the REST API shows it: From gives
// Amount hours of credit to To. On input (POST /v1/credits) only id, to,
// amount, note and at are read; the server fills in the rest from the
// circle's mutual-credit view.
type Credit struct {
	ID     string    `json:"id"`
	From   string    `json:"from,omitempty"`
	To     string    `json:"to"`
	Amount float64   `json:"amount"`
	Note   string    `json:"note"`
	At     time.Time `json:"at"`
	// Counted is false for a transfer kept in the ledger that moves no
	// balance; Problem then says why ("self", "unknown_member").
	Counted bool   `json:"counted"`
	Problem string `json:"problem,omitempty"`
	// OverLimit flags a counted transfer that left its author's credit
	// balance below minus the circle's credit.limit.
	OverLimit bool `json:"over_limit"`
	// FromBalance is the author's credit balance right after the transfer.
	FromBalance float64 `json:"from_balance"`
}

// CreditList answers GET /v1/credits.
type CreditList struct {
	Credits    []Credit `json:"credits"`
	NextCursor string   `json:"next_cursor,omitempty"`
	// Limit is the charter's credit.limit in hours: how far a member's
	// credit balance may go below zero.
	Limit float64 `json:"limit"`
}

// Scorecard answers GET /v1/scorecard: counts of the dependencies the
// circle reversed, by kind and calendar period (UTC).
type Scorecard struct {
	Period       string            `json:"period"` // "month", "quarter" or "year"
	Dependencies []Dependency      `json:"dependencies"`
	Periods      []ScorecardPeriod `json:"periods"` // oldest first; only periods with counted entries
	Totals       ScorecardCounts   `json:"totals"`
	// Autonomy and Sufficiency are the rituals' part (wire/rituals.go).
	Autonomy    Autonomy    `json:"autonomy"`
	Sufficiency Sufficiency `json:"sufficiency"`
}

// Dependency says which ledger entry kind counts as which dependency
// reversed.
type Dependency struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"`
	Description string `json:"description"`
}

// ScorecardCounts are the dependencies reversed in a period or overall:
// Counts and Quantities are keyed by dependency name, every name present.
type ScorecardCounts struct {
	Total      int                `json:"total"`
	Counts     map[string]int     `json:"counts"`
	Quantities map[string]float64 `json:"quantities"`
}

// ScorecardPeriod is one calendar period of the scorecard: [Start, End).
type ScorecardPeriod struct {
	Period string    `json:"period"` // "2026-03", "2026-Q1" or "2026"
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	ScorecardCounts
}
