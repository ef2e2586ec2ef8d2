package crdt

import (
	"fmt"
	"net/url"
	"strings"
)

// Audit entries of federation membership.
const (
	AuditFederationJoined = "federation.joined"
	AuditFederationLeft   = "federation.left"
)

// Bounds of a federation proposal's payload.
const (
	MaxHubURLLen       = 200
	MaxFederationIDLen = 64
	MaxFedInviteLen    = 100
)

// IsFederationID reports whether s is a federation id: 1 to
// MaxFederationIDLen characters of A-Z a-z 0-9 - _ (one NATS subject
// token).
func IsFederationID(s string) bool {
	if s == "" || len(s) > MaxFederationIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// checkFederationPayload checks a federation.join or federation.leave
// payload.
func checkFederationPayload(kind string, p map[string]any) error {
	if kind == ProposalFederationLeave {
		s, _ := p["federation"].(string)
		if !IsFederationID(s) {
			return fieldErr("proposal", "payload.federation", fmt.Sprintf("must be a federation id (1 to %d characters of A-Z a-z 0-9 - _)", MaxFederationIDLen))
		}
		return nil
	}
	hub, _ := p["hub"].(string)
	u, err := url.Parse(hub)
	if hub == "" || len(hub) > MaxHubURLLen || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fieldErr("proposal", "payload.hub", fmt.Sprintf("must be the hub's address, like http://hub.example.org:7480 (at most %d characters)", MaxHubURLLen))
	}
	inv, _ := p["invite"].(string)
	if strings.TrimSpace(inv) == "" || len(inv) > MaxFedInviteLen {
		return fieldErr("proposal", "payload.invite", fmt.Sprintf("must be the hub's one-time invite (1 to %d characters)", MaxFedInviteLen))
	}
	return nil
}
