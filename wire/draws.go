package wire

import "time"

// DrawCommitRequest is the body of POST /v1/draws/{id}/commitments: a
// commitment statement signed by the device key (crdt.SignDrawCommit).
type DrawCommitRequest struct {
	Statement string `json:"statement"`
}

// DrawRevealRequest is the body of POST /v1/draws/{id}/reveals: the
// value committed to, 32 bytes as 64 lowercase hex digits.
type DrawRevealRequest struct {
	Value string `json:"value"`
}

// DrawCommitment is one member's accepted commitment.
type DrawCommitment struct {
	Member     string    `json:"member"`
	Device     string    `json:"device"`
	Commitment string    `json:"commitment"`
	Statement  string    `json:"statement"`
	At         time.Time `json:"at"`
}

// DrawReveal is one member's accepted reveal.
type DrawReveal struct {
	Member string    `json:"member"`
	Value  string    `json:"value"`
	At     time.Time `json:"at"`
}

// DrawResult is a closed draw's outcome.
type DrawResult struct {
	ServerValue string    `json:"server_value"`
	Seed        string    `json:"seed"`
	Revealed    []string  `json:"revealed"`
	Withheld    []string  `json:"withheld"`
	ServerOnly  bool      `json:"server_only"`
	Picked      []string  `json:"picked"`
	ClosedAt    time.Time `json:"closed_at"`
}

// Draw is a commit–reveal draw (GET /v1/draws/{id}). Phase is commit,
// reveal, closing or closed.
type Draw struct {
	ID               string           `json:"id"`
	Purpose          string           `json:"purpose"`
	Candidates       []string         `json:"candidates"`
	Picks            int              `json:"picks"`
	ServerCommitment string           `json:"server_commitment"`
	OpenedAt         time.Time        `json:"opened_at"`
	CommitBy         time.Time        `json:"commit_by"`
	RevealBy         time.Time        `json:"reveal_by"`
	Phase            string           `json:"phase"`
	Commitments      []DrawCommitment `json:"commitments"`
	Reveals          []DrawReveal     `json:"reveals"`
	Result           *DrawResult      `json:"result,omitempty"`
}

// DrawList is GET /v1/draws.
type DrawList struct {
	Draws []Draw `json:"draws"`
}

// PairInterview is an interview an auditor recorded.
type PairInterview struct {
	Auditor string    `json:"auditor"`
	Member  string    `json:"member"`
	Note    string    `json:"note,omitempty"`
	At      time.Time `json:"at"`
}

// PairAudit is a pair-link audit (GET /v1/pair-audits). Status is
// drawing (auditors being drawn), interviewing, or held (findings
// published at the listening session).
type PairAudit struct {
	ID         string              `json:"id"`
	Quarter    string              `json:"quarter"`
	Draw       string              `json:"draw"`
	OpenedAt   time.Time           `json:"opened_at"`
	Status     string              `json:"status"`
	Auditors   []string            `json:"auditors"`
	Remaining  map[string][]string `json:"remaining"`
	Interviews []PairInterview     `json:"interviews"`
	SessionAt  *time.Time          `json:"session_at,omitempty"`
	Findings   string              `json:"findings,omitempty"`
	HeldAt     *time.Time          `json:"held_at,omitempty"`
}

// PairAuditList is GET /v1/pair-audits, newest first.
type PairAuditList struct {
	PairAudits []PairAudit `json:"pair_audits"`
}

// PairInterviewRequest is POST /v1/pair-audits/{id}/interviews.
type PairInterviewRequest struct {
	Member string `json:"member"`
	Note   string `json:"note,omitempty"`
}

// PairSessionRequest is POST /v1/pair-audits/{id}/session.
type PairSessionRequest struct {
	At time.Time `json:"at"`
}

// PairFindingsRequest is POST /v1/pair-audits/{id}/findings.
type PairFindingsRequest struct {
	Text string `json:"text"`
}

// MentorshipPair is one pair: the mentor among the newest members, the
// apprentice among the most senior.
type MentorshipPair struct {
	Mentor           string    `json:"mentor"`
	Apprentice       string    `json:"apprentice"`
	MentorJoined     time.Time `json:"mentor_joined"`
	ApprenticeJoined time.Time `json:"apprentice_joined"`
}

// MentorshipRound is one year's pairs.
type MentorshipRound struct {
	Year     string           `json:"year"`
	At       time.Time        `json:"at"`
	Pairs    []MentorshipPair `json:"pairs"`
	Unpaired []string         `json:"unpaired"`
}

// Mentorships is GET /v1/mentorships, newest year first.
type Mentorships struct {
	Rounds []MentorshipRound `json:"rounds"`
}
