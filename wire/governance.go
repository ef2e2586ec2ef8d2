package wire

import "time"

// ProposalRequest is the body of POST /v1/proposals. Payload values are
// strings, numbers or booleans; what a kind needs is in API.md.
type ProposalRequest struct {
	ID      string         `json:"id"`
	Kind    string         `json:"kind"`
	Title   string         `json:"title"`
	Body    string         `json:"body,omitempty"`
	Payload map[string]any `json:"payload"`
}

// VoteRequest is the body of POST /v1/proposals/{id}/votes.
type VoteRequest struct {
	Choice string `json:"choice"` // yes, no, object or abstain
	Reason string `json:"reason,omitempty"`
}

// ProposalVote is one member's counted vote.
type ProposalVote struct {
	Choice string    `json:"choice"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// Tally counts a proposal's votes among the active members and says how
// many voters its quorum needs.
type Tally struct {
	Yes      int `json:"yes"`
	No       int `json:"no"`
	Object   int `json:"object"`
	Abstain  int `json:"abstain"`
	Eligible int `json:"eligible"`
	Needed   int `json:"needed"`
}

// Proposal is a proposal with its votes and outcome. Status is open,
// passed or rejected; Reason says why it was decided so; Applied is true
// once a passed proposal has taken effect.
type Proposal struct {
	ID        string                  `json:"id"`
	Kind      string                  `json:"kind"`
	Title     string                  `json:"title"`
	Body      string                  `json:"body"`
	Payload   map[string]any          `json:"payload"`
	Author    string                  `json:"author"`
	OpenedAt  time.Time               `json:"opened_at"`
	ClosesAt  time.Time               `json:"closes_at"`
	Status    string                  `json:"status"`
	Votes     map[string]ProposalVote `json:"votes"`
	Tally     Tally                   `json:"tally"`
	DecidedAt *time.Time              `json:"decided_at,omitempty"`
	Reason    string                  `json:"reason,omitempty"`
	Applied   bool                    `json:"applied"`
	// Invite is the one-time member invite a passed member.admit made,
	// shown to the proposal's author only.
	Invite *ProposalInvite `json:"invite,omitempty"`
}

// ProposalInvite is the invite of a passed member.admit proposal: the code
// the newcomer joins with, the name admitted, and whether it was used.
type ProposalInvite struct {
	Code      string     `json:"code"`
	Name      string     `json:"name"`
	ExpiresAt time.Time  `json:"expires_at"`
	UsedAt    *time.Time `json:"used_at,omitempty"`
}

// ProposalList answers GET /v1/proposals.
type ProposalList struct {
	Proposals []Proposal `json:"proposals"`
}

// Role is a rotating role (GET /v1/roles). Term is a Go duration.
// Rotation says what happens when a term ends: "vacate" or "draw".
// PreviousHolder is the member rotated out when the last term ended, while
// the role is vacant.
type Role struct {
	ID             string     `json:"id"`
	Name           string     `json:"name"`
	Purpose        string     `json:"purpose"`
	Term           string     `json:"term"`
	TermLimit      int        `json:"term_limit"`
	Rotation       string     `json:"rotation"`
	Holder         string     `json:"holder"` // member id, "" when vacant
	TermStart      *time.Time `json:"term_start"`
	TermEnd        *time.Time `json:"term_end"`
	TermsServed    int        `json:"terms_served"`
	PreviousHolder string     `json:"previous_holder,omitempty"`
	Status         string     `json:"status"` // active or retired
	RetiredAt      *time.Time `json:"retired_at,omitempty"`
	// PendingDraw is set while a passed role.draw proposal waits for its
	// commit–reveal round to close: the role is assigned then.
	PendingDraw *PendingRoleDraw `json:"pending_draw,omitempty"`
}

// PendingRoleDraw is a role's draw waiting for its round (GET
// /v1/draws/{draw}) to close.
type PendingRoleDraw struct {
	Draw     string `json:"draw"`
	Proposal string `json:"proposal"`
}

// RoleList answers GET /v1/roles.
type RoleList struct {
	Roles []Role `json:"roles"`
}

// Mandate is a delegate's single-issue mandate (GET /v1/mandates). Status
// is active, recalled, revoked (by a hard reset), expired (its deadline
// passed) or done (its delegate marked the task done).
type Mandate struct {
	ID        string    `json:"id"`
	Member    string    `json:"member"`
	Issue     string    `json:"issue"`
	Scope     string    `json:"scope"`
	Deadline  time.Time `json:"deadline"`
	GrantedAt time.Time `json:"granted_at"`
	Status    string    `json:"status"`
}

// MandateList answers GET /v1/mandates.
type MandateList struct {
	Mandates []Mandate `json:"mandates"`
}

// Charter is the circle's charter (GET /v1/charter). Status is draft
// (never ratified), ratified, lapsed (its ratification expired) or
// needs_ratification (a hard reset flagged it); RenewalDue says members
// should ratify it (again): it is not ratified, or expires within
// charter.renewal_notice.
type Charter struct {
	Name       string            `json:"name"`
	Purpose    string            `json:"purpose"`
	Principles []string          `json:"principles"`
	Text       string            `json:"text"`
	Policies   map[string]string `json:"policies"`
	Version    int               `json:"version"`
	RatifiedAt *time.Time        `json:"ratified_at"`
	ExpiresAt  *time.Time        `json:"expires_at"`
	Status     string            `json:"status"`
	RenewalDue bool              `json:"renewal_due"`
}
