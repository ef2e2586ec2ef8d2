package wire

import "time"

// MeetingRequest is the body of POST /v1/meetings.
type MeetingRequest struct {
	ID    string    `json:"id"`
	Title string    `json:"title"`
	At    time.Time `json:"at"`
}

// MeetingDraw is how a meeting's facilitator was drawn: everything needed
// to recompute the pick (crdt.DrawPick over the seed and Eligible), and
// who was left out and why.
type MeetingDraw struct {
	ID          string    `json:"id"`
	Commitment  string    `json:"commitment"`
	Seed        string    `json:"seed"`
	Eligible    []string  `json:"eligible"`
	Excluded    []string  `json:"excluded"`
	Rest        []string  `json:"rest"`     // facilitated one of the last facilitation.rest meetings
	Cooldown    []string  `json:"cooldown"` // resting after a temperature check
	Relaxed     string    `json:"relaxed,omitempty"`
	DrawnAt     time.Time `json:"drawn_at"`
	Facilitator string    `json:"facilitator"`
	// Round is the facilitation round whose seed, with the meeting's
	// sequence number, gave Seed; SeedSource is "round", or "server"
	// before the circle's first facilitation round closed.
	Round      string `json:"round,omitempty"`
	SeedSource string `json:"seed_source,omitempty"`
}

// Decision is one decision in a meeting's minutes: Tag is "local" (made by
// the circle alone) or "external" (depending on an outside authority).
type Decision struct {
	Text string `json:"text"`
	Tag  string `json:"tag"`
}

// MinutesRequest is the body of POST /v1/meetings/{id}/minutes.
type MinutesRequest struct {
	Text      string     `json:"text"`
	Decisions []Decision `json:"decisions"`
}

// Minutes are a meeting's minutes as recorded by its facilitator.
type Minutes struct {
	Text      string     `json:"text"`
	Decisions []Decision `json:"decisions"`
	By        string     `json:"by"`
	At        time.Time  `json:"at"`
}

// CheckRequest is the body of POST /v1/meetings/{id}/checks: the moment
// the member felt least heard and, optionally, who dominated.
type CheckRequest struct {
	LeastHeard string   `json:"least_heard"`
	Dominant   []string `json:"dominant"`
}

// CheckReceipt answers POST /v1/meetings/{id}/checks.
type CheckReceipt struct {
	Meeting   string `json:"meeting"`
	CheckedIn int    `json:"checked_in"`
	Status    string `json:"status"` // "open" or "closed"
}

// CheckSummary is a meeting's temperature check: how many checked in and,
// once it is closed, how many times each member was named, the moments
// members felt least heard (sorted) and who rests from facilitation.
// Never who named whom.
type CheckSummary struct {
	Status    string `json:"status"` // "open" or "closed"
	CheckedIn int    `json:"checked_in"`
	// YouCheckedIn tells the caller, while the check is open, whether
	// they checked in (only about themselves).
	YouCheckedIn bool             `json:"you_checked_in"`
	Named        map[string]int64 `json:"named"`
	Moments      []string         `json:"moments"`
	Rests        []string         `json:"rests"`
	ClosedAt     *time.Time       `json:"closed_at,omitempty"`
}

// Meeting is a meeting as POST /v1/meetings and GET /v1/meetings/{id}
// show it.
type Meeting struct {
	ID          string       `json:"id"`
	Title       string       `json:"title"`
	At          time.Time    `json:"at"`
	Facilitator string       `json:"facilitator"`
	Draw        MeetingDraw  `json:"draw"`
	Seq         int64        `json:"seq"`
	Author      string       `json:"author"`
	CreatedAt   time.Time    `json:"created_at"`
	Minutes     *Minutes     `json:"minutes"`
	Summary     CheckSummary `json:"summary"`
}

// MemberPattern is one member's pattern across the closed temperature
// checks: how often they were named, in how many meetings, and how often
// it made them rest.
type MemberPattern struct {
	Member         string `json:"member"`
	Name           string `json:"name,omitempty"`
	Named          int64  `json:"named"`
	MeetingsNamed  int    `json:"meetings_named"`
	Rested         int    `json:"rested"`
	Facilitated    int    `json:"facilitated"`
	RestingNow     bool   `json:"resting_now"`
	CooldownLeft   int    `json:"cooldown_left"` // meetings still to sit out
	LastNamedIn    string `json:"last_named_in,omitempty"`
	ChecksObserved int    `json:"checks"` // closed checks in the circle
}

// MeetingList answers GET /v1/meetings: every meeting, oldest first, and
// each member's pattern over time.
type MeetingList struct {
	Meetings []Meeting       `json:"meetings"`
	Pattern  []MemberPattern `json:"pattern"`
}

// Honour is one handing-on of power: a holder who stepped down, reached
// the term limit, or was rotated out.
type Honour struct {
	Member     string    `json:"member"`
	MemberName string    `json:"member_name,omitempty"`
	Role       string    `json:"role"`
	RoleName   string    `json:"role_name,omitempty"`
	Kind       string    `json:"kind"` // stepped_down, term_ended, rotated
	Terms      int       `json:"terms"`
	At         time.Time `json:"at"`
}

// Honours answers GET /v1/honours, newest first.
type Honours struct {
	Honours []Honour `json:"honours"`
}

// Autonomy is the share of the circle's decisions made locally.
type Autonomy struct {
	Local    int               `json:"local"`
	External int               `json:"external"`
	Share    *float64          `json:"share"` // null with no tagged decisions
	Quarters []AutonomyQuarter `json:"quarters"`
	Trend    string            `json:"trend,omitempty"` // rising, falling, steady
}

// AutonomyQuarter is one calendar quarter's tagged decisions.
type AutonomyQuarter struct {
	Quarter  string   `json:"quarter"`
	Local    int      `json:"local"`
	External int      `json:"external"`
	Share    *float64 `json:"share"`
}

// Sufficiency sets the circle's declared needs against its ledger, and
// says whether anyone holds far more than the rest.
type Sufficiency struct {
	Needs    []NeedMet `json:"needs"`
	AllMet   bool      `json:"all_met"`
	Hoarding Hoarding  `json:"hoarding"`
}

// NeedMet is one declared need (charter policy need.<name>) in its
// current calendar period.
type NeedMet struct {
	Name   string    `json:"name"`
	Words  string    `json:"words,omitempty"`
	Kind   string    `json:"kind"`
	Period string    `json:"period"` // the current period, e.g. "2026-11"
	Target float64   `json:"target"`
	Met    float64   `json:"met"`
	Share  float64   `json:"share"` // met / target, at most 1
	IsMet  bool      `json:"is_met"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
}

// Hoarding looks at mutual-credit balances: the member holding the most
// credit, their share of all credit held, and whether that is far more
// than the rest (over half of all credit held, at least half the credit
// limit, with at least three active members).
type Hoarding struct {
	Member  string  `json:"member,omitempty"`
	Holds   float64 `json:"holds"`
	Share   float64 `json:"share"`
	FarMore bool    `json:"far_more"`
}
