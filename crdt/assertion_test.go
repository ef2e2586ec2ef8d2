package crdt_test

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/mobile-api/client"
)

func TestCheckAssertionClaimsKeepsStatementsAndAssertionsApart(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c := newResetCircle(t, 1, at.Add(-30*24*time.Hour))
	assertion, err := client.NewAssertion(c.keys["m_aa"], "d_m_aa", c.id, at)
	if err != nil {
		t.Fatal(err)
	}
	if err := crdt.CheckAssertionClaims(assertion); err != nil {
		t.Fatalf("CheckAssertionClaims(a device assertion) = %v, want nil", err)
	}
	assertionClaims := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": "d_m_aa", "aud": c.id, "iat": at.Unix(), "exp": at.Add(time.Minute).Unix(), "jti": "j1"}
	}
	with := func(change func(jwt.MapClaims)) string {
		cl := assertionClaims()
		change(cl)
		return c.signClaims(t, "m_aa", cl, nil)
	}
	withExp := resetClaims(c.id, at)
	withExp["iss"] = "d_m_aa"
	withExp["exp"] = at.Add(time.Minute).Unix()
	for _, tc := range []struct {
		name, token string
	}{
		{"a reset statement", c.sign(t, "m_aa", 0, "j1", at)},
		{"a reset statement with exp", c.signClaims(t, "m_aa", withExp, nil)},
		{"typ of any value", with(func(cl jwt.MapClaims) { cl["typ"] = "assertion" })},
		{"an empty typ", with(func(cl jwt.MapClaims) { cl["typ"] = "" })},
		{"an extra claim", with(func(cl jwt.MapClaims) { cl["epoch"] = 0 })},
		{"no exp", with(func(cl jwt.MapClaims) { delete(cl, "exp") })},
		{"no jti", with(func(cl jwt.MapClaims) { delete(cl, "jti") })},
		{"not a JWS", "not.a-jws"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantRuleError(t, crdt.CheckAssertionClaims(tc.token), crdt.RuleAssertion, "")
		})
	}
	// And the other way: an assertion is no reset statement.
	if _, err := crdt.ParseReset(assertion, c.id, c.roster); err == nil {
		t.Fatal("ParseReset(a device assertion) = nil error, want a refusal")
	}
}
