package crdt

import (
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// ProposalKind names what a proposal decides. The kinds, in one place;
// ProposalKinds lists them with their payloads.
type ProposalKind = string

// The proposal kinds (API.md "Governance").
const (
	ProposalRoleCreate    ProposalKind = "role.create"
	ProposalRoleChange    ProposalKind = "role.change"
	ProposalRoleRetire    ProposalKind = "role.retire"
	ProposalRoleAssign    ProposalKind = "role.assign"
	ProposalRoleDraw      ProposalKind = "role.draw"
	ProposalCharterRatify ProposalKind = "charter.ratify"
	ProposalPolicySet     ProposalKind = "policy.set"
	ProposalMandateGrant  ProposalKind = "mandate.grant"
	ProposalMandateRecall ProposalKind = "mandate.recall"
	ProposalMemberAdmit   ProposalKind = "member.admit"
	ProposalMemberRemove  ProposalKind = "member.remove"
	// Federation membership (API.md "Federation"): joining a federation's
	// hub with its one-time invite, and leaving it.
	ProposalFederationJoin  ProposalKind = "federation.join"
	ProposalFederationLeave ProposalKind = "federation.leave"
)

// ProposalKinds lists the kinds of proposal and, for each, the payload
// fields it must carry (API.md, "Governance"):
//
//	role.create     name, purpose, term (Go duration), term_limit (whole number ≥ 1),
//	                rotation? ("vacate", the default, or "draw": what happens when a term ends)
//	role.change     role, and at least one of name?, purpose?, term?,
//	                term_limit?, rotation? (as for role.create)
//	role.retire     role                  (vacated, kept for history as retired)
//	role.assign     role, member
//	role.draw       role                  (a verifiable random draw among eligible members)
//	charter.ratify  —                     (ratify the current draft)
//	policy.set      name, value           (checked with CheckPolicy; credit.limit sets the credit limit)
//	mandate.grant   member, issue, scope, deadline (RFC 3339)
//	mandate.recall  mandate
//	member.admit    name                  (a one-time member invite for the author to hand over)
//	member.remove   member
//	federation.join  hub (http or https URL), invite (the hub's one-time invite)
//	federation.leave federation (its id)
var ProposalKinds = []string{
	ProposalRoleCreate, ProposalRoleChange, ProposalRoleRetire, ProposalRoleAssign, ProposalRoleDraw, ProposalCharterRatify, ProposalPolicySet,
	ProposalMandateGrant, ProposalMandateRecall, ProposalMemberAdmit, ProposalMemberRemove,
	ProposalFederationJoin, ProposalFederationLeave,
}

// roleChangeFields are the fields a role.change may change.
var roleChangeFields = []string{"name", "purpose", "term", "term_limit", "rotation"}

// payloadFields maps each proposal kind to its required payload fields.
var payloadFields = map[string][]string{
	ProposalRoleCreate:    {"name", "purpose", "term", "term_limit"},
	ProposalRoleChange:    {"role"},
	ProposalRoleRetire:    {"role"},
	ProposalRoleAssign:    {"role", "member"},
	ProposalRoleDraw:      {"role"},
	ProposalCharterRatify: {},
	ProposalPolicySet:     {"name", "value"},
	ProposalMandateGrant:  {"member", "issue", "scope", "deadline"},
	ProposalMandateRecall: {"mandate"},
	ProposalMemberAdmit:   {"name"},
	ProposalMemberRemove:  {"member"},
	// federation.go checks their values.
	ProposalFederationJoin:  {"hub", "invite"},
	ProposalFederationLeave: {"federation"},
}

// checkPayloadKind checks the values of the fields a kind requires.
func checkPayloadKind(kind string, p map[string]any) error {
	str := func(k string) (string, error) {
		s, ok := p[k].(string)
		if !ok || strings.TrimSpace(s) == "" {
			return "", fieldErr("proposal", "payload."+k, "must be a non-empty string")
		}
		return s, nil
	}
	id := func(k string) error {
		s, err := str(k)
		if err == nil && !isID(s) {
			err = fieldErr("proposal", "payload."+k, "must be an id")
		}
		return err
	}
	// roleField checks one field of a role.create or role.change.
	roleField := func(k string) error {
		switch k {
		case "name":
			s, err := str(k)
			if err == nil {
				err = checkName("proposal", s)
			}
			if err != nil {
				return fieldErr("proposal", "payload.name", fmt.Sprintf("must be a name of 1 to %d characters", MaxNameLen))
			}
		case "purpose":
			s, ok := p[k].(string)
			if !ok || utf8.RuneCountInString(s) > MaxPurposeLen {
				return fieldErr("proposal", "payload.purpose", fmt.Sprintf("must be a text of at most %d characters", MaxPurposeLen))
			}
		case "term":
			s, err := str(k)
			if err != nil {
				return err
			}
			if d, err := time.ParseDuration(s); err != nil || d < time.Hour {
				return fieldErr("proposal", "payload.term", "must be a Go duration of at least 1h, like 2160h")
			}
		case "term_limit":
			if n, ok := wholeNumber(p[k]); !ok || n < 1 {
				return fieldErr("proposal", "payload.term_limit", "must be a whole number of at least 1")
			}
		case "rotation":
			if v := p[k]; v != RotationVacate && v != RotationDraw {
				return fieldErr("proposal", "payload.rotation", "must be vacate or draw")
			}
		}
		return nil
	}
	switch kind {
	case ProposalRoleCreate:
		for _, k := range []string{"term", "term_limit", "name"} {
			if err := roleField(k); err != nil {
				return err
			}
		}
		if _, ok := p["rotation"]; ok {
			return roleField("rotation")
		}
	case ProposalRoleChange:
		if err := id("role"); err != nil {
			return err
		}
		changed := 0
		for _, k := range roleChangeFields {
			if _, ok := p[k]; !ok {
				continue
			}
			changed++
			if err := roleField(k); err != nil {
				return err
			}
		}
		if changed == 0 {
			return fieldErr("proposal", "payload", "must change at least one of "+strings.Join(roleChangeFields, ", "))
		}
	case ProposalRoleRetire:
		return id("role")
	case ProposalMemberAdmit:
		s, err := str("name")
		if err == nil {
			err = checkName("proposal", s)
		}
		if err != nil {
			return fieldErr("proposal", "payload.name", fmt.Sprintf("must be the newcomer's name, 1 to %d characters", MaxNameLen))
		}
	case ProposalRoleAssign:
		if err := id("role"); err != nil {
			return err
		}
		return id("member")
	case ProposalRoleDraw:
		return id("role")
	case ProposalPolicySet:
		name, err := str("name")
		if err != nil {
			return err
		}
		value, ok := p["value"].(string)
		if !ok {
			return fieldErr("proposal", "payload.value", "must be a string")
		}
		return CheckPolicy(name, value)
	case ProposalMandateGrant:
		if err := id("member"); err != nil {
			return err
		}
		if _, err := str("issue"); err != nil {
			return err
		}
		s, err := str("deadline")
		if err != nil {
			return err
		}
		if _, err := parseTime(s); err != nil {
			return fieldErr("proposal", "payload.deadline", "must be an RFC 3339 time")
		}
	case ProposalMandateRecall:
		return id("mandate")
	case ProposalMemberRemove:
		return id("member")
	case ProposalFederationJoin, ProposalFederationLeave:
		return checkFederationPayload(kind, p)
	}
	return nil
}

// wholeNumber reads a payload value as a whole number.
func wholeNumber(v any) (int64, bool) {
	switch v := v.(type) {
	case int:
		return int64(v), true
	case int64:
		return v, true
	case float64:
		if v == math.Trunc(v) && math.Abs(v) <= 1<<53 {
			return int64(v), true
		}
	}
	return 0, false
}
