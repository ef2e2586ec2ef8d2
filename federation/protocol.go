package federation

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nkeys"
)

// The hub's HTTP API (package hub serves it, package link calls it). Every
// body is JSON; an error is {"error": {"code", "message"}} as on a circle.
const (
	// PathJoin takes a JoinRequest and answers a JoinResponse.
	PathJoin = "/v1/join"
	// PathLeave takes a SignedNotice of type NoticeLeave; answers a
	// StatusResponse.
	PathLeave = "/v1/leave"
	// PathStatus takes a SignedNotice of type NoticeStatus; answers a
	// StatusResponse.
	PathStatus = "/v1/status"
	// PathExpelVote takes a SignedNotice of type NoticeExpelVote; answers
	// a StatusResponse (of the voting circle).
	PathExpelVote = "/v1/council/expel-votes"
)

// Limits on what a hub accepts.
const (
	MaxNameLen    = 100
	MaxInviteLen  = 100
	MaxNoticeAge  = 5 * time.Minute // a signed notice older (or newer) than this is refused
	MaxRequestLen = 16 << 10
)

// Circle is a member circle as the hub knows it.
type Circle struct {
	CircleID string `json:"circle_id"`
	Name     string `json:"name"`
}

// JoinRequest is a circle asking to join with a one-time invite. NKey is
// the circle's nkey public key (a user key, "U..."); its seed never
// leaves the circle.
type JoinRequest struct {
	Invite   string `json:"invite"`
	CircleID string `json:"circle_id"`
	Name     string `json:"name"`
	NKey     string `json:"nkey"`
}

// JoinResponse is what an admitted circle gets: its user JWT (subject:
// its nkey; permissions: UserPermissions; leaf node connections only),
// the hub's leaf node URL and server name, and the member circles.
type JoinResponse struct {
	FederationID   string   `json:"federation_id"`
	FederationName string   `json:"federation_name"`
	UserJWT        string   `json:"user_jwt"`
	LeafnodeURL    string   `json:"leafnode_url"`
	HubServer      string   `json:"hub_server"`
	Circles        []Circle `json:"circles"`
}

// Membership statuses a hub reports for a circle.
const (
	HubMember   = "member"
	HubLeft     = "left"
	HubExpelled = "expelled"
	HubUnknown  = "unknown"
)

// StatusResponse is the hub's view of a circle.
type StatusResponse struct {
	Status  string   `json:"status"`
	Circles []Circle `json:"circles,omitempty"`
}

// Notice types.
const (
	NoticeLeave  = "leave"
	NoticeStatus = "status"
	// NoticeExpelVote: the circle voted yes, as a member of the
	// delegates' council, on the federation.expel proposal Proposal of
	// circle Target, and saw it pass. Each circle speaks only for its own
	// vote; the hub counts the member circles' notices itself and expels
	// once a majority of them voted yes on the same proposal.
	NoticeExpelVote = "expel_vote"
)

// Notice is a statement a circle signs with its nkey: it leaves, asks
// for its status, or tells its vote to expel a circle. IssuedAt is in
// Unix milliseconds.
type Notice struct {
	Type         string `json:"type"`
	FederationID string `json:"federation_id"`
	CircleID     string `json:"circle_id"`
	IssuedAt     int64  `json:"iat"`
	// Proposal and Target, for NoticeExpelVote only.
	Proposal string `json:"proposal,omitempty"`
	Target   string `json:"target,omitempty"`
}

// SignedNotice carries a Notice (base64url JSON) and the circle's nkey
// signature of exactly those bytes (base64url).
type SignedNotice struct {
	Notice    string `json:"notice"`
	Signature string `json:"signature"`
}

// ErrBadSignature is returned by Open for a notice whose signature does
// not verify.
var ErrBadSignature = errors.New("the notice's signature does not verify")

// SignNotice signs n with the circle's nkey kp.
func SignNotice(kp nkeys.KeyPair, n Notice) (SignedNotice, error) {
	raw, err := json.Marshal(n)
	if err != nil {
		return SignedNotice{}, err
	}
	sig, err := kp.Sign(raw)
	if err != nil {
		return SignedNotice{}, fmt.Errorf("sign notice: %w", err)
	}
	return SignedNotice{Notice: base64.RawURLEncoding.EncodeToString(raw), Signature: base64.RawURLEncoding.EncodeToString(sig)}, nil
}

// Decode returns the notice without checking its signature (to find whose
// key to check it with).
func (s SignedNotice) Decode() (Notice, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s.Notice)
	if err != nil || len(raw) > MaxRequestLen {
		return Notice{}, errors.New("the notice is not base64url")
	}
	var n Notice
	if err := json.Unmarshal(raw, &n); err != nil {
		return Notice{}, errors.New("the notice is not a JSON notice")
	}
	return n, nil
}

// Verify checks the signature against the circle's nkey public key pub
// and that the notice was issued within MaxNoticeAge of now; it returns
// the notice.
func (s SignedNotice) Verify(pub string, now time.Time) (Notice, error) {
	n, err := s.Decode()
	if err != nil {
		return Notice{}, err
	}
	raw, _ := base64.RawURLEncoding.DecodeString(s.Notice)
	sig, err := base64.RawURLEncoding.DecodeString(s.Signature)
	if err != nil {
		return Notice{}, ErrBadSignature
	}
	kp, err := nkeys.FromPublicKey(pub)
	if err != nil {
		return Notice{}, fmt.Errorf("circle key: %w", err)
	}
	if err := kp.Verify(raw, sig); err != nil {
		return Notice{}, ErrBadSignature
	}
	at := time.UnixMilli(n.IssuedAt)
	if d := now.Sub(at); d > MaxNoticeAge || d < -MaxNoticeAge {
		return Notice{}, fmt.Errorf("the notice was issued at %s, more than %s from now", at.UTC().Format(time.RFC3339), MaxNoticeAge)
	}
	return n, nil
}

// ErrorBody is the JSON error of the hub's API.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}
