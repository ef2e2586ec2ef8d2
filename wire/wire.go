// Package wire holds the JSON shapes of the circle's API v1: what the
// authority answers with, what mobile-api sends over HTTP, what the Go
// client and federation read. It is a leaf: plain data, no behaviour, no
// HTTP. The contract these shapes implement is API.md; field names here
// are that contract and must not change. Error codes are in
// authority/fault.
package wire

import (
	"encoding/json"
	"time"
)

// ErrorBody is the body of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail carries a stable snake_case code (the constants of package
// authority/fault) and a sentence a person can act on.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// EnrollRequest is the body of POST /v1/enroll.
type EnrollRequest struct {
	Invite     string `json:"invite"`
	MemberName string `json:"member_name"`
	DeviceName string `json:"device_name"`
	PublicKey  []byte `json:"public_key"` // raw 32-byte Ed25519 key, standard base64 in JSON
	ActorID    string `json:"actor_id"`   // hex automerge actor id
}

// EnrollResponse answers POST /v1/enroll.
type EnrollResponse struct {
	CircleID    string `json:"circle_id"`
	MemberID    string `json:"member_id"`
	DeviceID    string `json:"device_id"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"` // seconds
}

// TokenRequest is the body of POST /v1/token.
type TokenRequest struct {
	Assertion string `json:"assertion"`
}

// TokenResponse answers POST /v1/token.
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
}

// InviteRequest is the body of POST /v1/invites.
type InviteRequest struct {
	For       string `json:"for"`                  // "member" or "device"
	ExpiresIn string `json:"expires_in,omitempty"` // Go duration, default 72h
}

// InviteResponse answers POST /v1/invites.
type InviteResponse struct {
	Code      string    `json:"code"`
	ExpiresAt time.Time `json:"expires_at"`
	URL       string    `json:"url"`
}

// RevokedDevice answers POST /v1/devices/{id}/revoke.
type RevokedDevice struct {
	DeviceID  string    `json:"device_id"`
	RevokedAt time.Time `json:"revoked_at"`
}

// Circle answers GET /v1/circle.
type Circle struct {
	CircleID string            `json:"circle_id"`
	Name     string            `json:"name"`
	Epoch    int64             `json:"epoch"`
	Docs     map[string]string `json:"docs"`
	Members  []CircleMember    `json:"members"`
	// Archives lists the governance and audit documents that are no
	// longer live (read-only, never changed again), oldest first; absent
	// while the circle has none.
	Archives *Archives `json:"archives,omitempty"`
	// Snapshots names, per ledger segment whose stored snapshot holds all
	// of it (closed segments once compacted), the snapshot's hash: a new
	// device fetches it whole (GET /v1/docs/{doc}/snapshot/{hash}) before
	// syncing.
	Snapshots map[string]string `json:"snapshots,omitempty"`
}

// Archives are the earlier governance documents and audit segments of a
// circle (GET /v1/circle). Devices sync them read-only; the audit log is
// the segments' entries in order, then docs.audit's.
type Archives struct {
	Governance []string       `json:"governance"`
	Audit      []AuditSegment `json:"audit"`
}

// AuditSegment is one document of the audit log and the seq of its first
// entry.
type AuditSegment struct {
	Doc      string `json:"doc"`
	FirstSeq int64  `json:"first_seq"`
}

// CircleMember is one member in GET /v1/circle.
type CircleMember struct {
	MemberID string   `json:"member_id"`
	Name     string   `json:"name"`
	Ledgers  []string `json:"ledgers"`
	Ballots  string   `json:"ballots"`
	// BallotsClosed are the member's earlier ballots documents, oldest
	// first (authority/ballotsegments.go); omitted when there are none.
	BallotsClosed []string `json:"ballots_closed,omitempty"`
}

// SyncRequest is the body of POST /v1/sync, and SyncResponse its answer:
// both are a batch of automerge sync messages, one per document.
type SyncRequest struct {
	Messages []SyncMessage `json:"messages"`
}

// SyncResponse answers POST /v1/sync.
type SyncResponse struct {
	Messages []SyncMessage `json:"messages"`
}

// SyncMessage is one automerge sync message for one document.
type SyncMessage struct {
	Doc  string `json:"doc"`
	Data []byte `json:"data"` // standard base64 in JSON
}

// Entry is a ledger entry as the REST API shows it. Member is the author;
// it is filled in by the server and ignored on input.
type Entry struct {
	ID           string    `json:"id"`
	Member       string    `json:"member,omitempty"`
	Kind         string    `json:"kind"`
	Quantity     float64   `json:"quantity"`
	Unit         string    `json:"unit,omitempty"`
	Note         string    `json:"note"`
	At           time.Time `json:"at"`
	Counterparty string    `json:"counterparty,omitempty"`
	Voids        string    `json:"voids,omitempty"`
}

// EntryList answers GET /v1/ledger/entries.
type EntryList struct {
	Entries    []Entry `json:"entries"`
	NextCursor string  `json:"next_cursor,omitempty"`
}

// Balance is one member's line in GET /v1/balances.
type Balance struct {
	MemberID   string     `json:"member_id"`
	Name       string     `json:"name,omitempty"`
	Given      float64    `json:"given"`
	Received   float64    `json:"received"`
	Balance    float64    `json:"balance"`
	LastActive *time.Time `json:"last_active"`
	// Mutual credit (hours): received - given over counted transfers; all
	// members' credit balances sum to zero. CreditLimit is how far it may
	// go below zero; CreditOverLimit is set when it is below -CreditLimit.
	CreditBalance   float64 `json:"credit_balance"`
	CreditLimit     float64 `json:"credit_limit"`
	CreditOverLimit bool    `json:"credit_over_limit"`
}

// Signals are the early warnings of informal hierarchy or disengagement.
type Signals struct {
	TopShare      float64  `json:"top_share"`
	Gini          float64  `json:"gini"`
	SilentMembers []string `json:"silent_members"`
}

// Balances answers GET /v1/balances.
type Balances struct {
	Members []Balance `json:"members"`
	Signals Signals   `json:"signals"`
}

// AuditEntry is one entry of the hash-chained audit log: Hash is the hex
// SHA-256 of PrevHash followed by the RFC 8785 canonical JSON of the entry
// without "hash"; the first PrevHash is 64 zeros.
type AuditEntry struct {
	Seq      int64           `json:"seq"`
	At       time.Time       `json:"at"`
	Kind     string          `json:"kind"`
	Data     json.RawMessage `json:"data"`
	PrevHash string          `json:"prev_hash"`
	Hash     string          `json:"hash"`
}

// AuditPage answers GET /v1/audit. Next, when not zero, is the after= of
// the next page.
type AuditPage struct {
	Entries []AuditEntry `json:"entries"`
	Next    int64        `json:"next_after,omitempty"`
}

// ResetRequest is the body of POST /v1/resets/signatures.
type ResetRequest struct {
	Statement string `json:"statement"`
}

// ResetStatus answers POST /v1/resets/signatures.
type ResetStatus struct {
	Epoch      int64 `json:"epoch"`
	Signatures int   `json:"signatures"`
	Needed     int   `json:"needed"`
	Executed   bool  `json:"executed"`
}

// ResetSignature is one reset statement as GET /v1/resets shows it.
type ResetSignature struct {
	JTI       string    `json:"jti"`
	Member    string    `json:"member"`
	Device    string    `json:"device"`
	Reason    string    `json:"reason,omitempty"`
	IssuedAt  time.Time `json:"iat"`
	Counts    bool      `json:"counts"`
	Problem   string    `json:"problem,omitempty"`
	Statement string    `json:"statement,omitempty"`
}

// PastReset is an executed reset: the epoch it ended and its signatures.
type PastReset struct {
	Epoch      int64            `json:"epoch"`
	At         time.Time        `json:"at"`
	Signatures []ResetSignature `json:"signatures"`
}

// Resets answers GET /v1/resets.
type Resets struct {
	Epoch      int64            `json:"epoch"`
	Needed     int              `json:"needed"`
	Window     string           `json:"window"`
	Signatures int              `json:"signatures"` // pending ones that count now
	Pending    []ResetSignature `json:"pending"`
	Past       []PastReset      `json:"past"`
}
