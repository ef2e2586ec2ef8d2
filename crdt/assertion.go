package crdt

import (
	"fmt"
	"slices"
	"strings"
)

// RuleAssertion names the rule a device assertion breaks.
const RuleAssertion = "assertion"

// AssertionClaimNames are the claims of a device assertion, the JWT a
// device trades for an access token (API.md, POST /v1/token), and the only
// ones it may carry.
var AssertionClaimNames = []string{"iss", "aud", "iat", "exp", "jti"}

// CheckAssertionClaims keeps device assertions and signed statements
// apart. A device signs both with the same key, so each must be
// recognisable for what it is: a reset statement carries typ "reset" and
// never exp (ParseReset refuses it), and an assertion carries exactly
// AssertionClaimNames — in particular no typ, whatever its value, so that
// no statement (reset, or any later kind, each of which names itself in
// typ) can be traded for a token. The token exchange calls it on the raw
// assertion, before or after checking the signature; it decodes the claims
// only and verifies nothing. It returns a *RuleError of rule "assertion".
func CheckAssertionClaims(assertion string) error {
	raw, err := statementClaims(assertion)
	if err != nil {
		return &RuleError{Rule: RuleAssertion, Message: "the assertion's claims are not a JSON object in a compact JWS"}
	}
	if _, ok := raw["typ"]; ok {
		return &RuleError{Rule: RuleAssertion, Message: "the assertion carries a typ claim: it is a signed statement, not a device assertion"}
	}
	for name := range raw {
		if !slices.Contains(AssertionClaimNames, name) {
			return &RuleError{Rule: RuleAssertion, Message: fmt.Sprintf("the assertion carries the claim %q; a device assertion carries only %s",
				truncate(name, maxIDLen), strings.Join(AssertionClaimNames, ", "))}
		}
	}
	for _, name := range AssertionClaimNames {
		if _, ok := raw[name]; !ok {
			return &RuleError{Rule: RuleAssertion, Message: fmt.Sprintf("the assertion lacks the claim %q", name)}
		}
	}
	return nil
}
