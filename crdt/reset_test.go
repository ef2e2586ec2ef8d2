package crdt_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/circles-coop/circles/crdt"
)

// resetCircle is a roster of members m_a… each with one device d_m_a…,
// enrolled long enough ago to count toward a reset.
type resetCircle struct {
	id     string
	roster *crdt.Roster
	keys   map[string]ed25519.PrivateKey // by member
}

func newResetCircle(tb testing.TB, n int, joined time.Time) *resetCircle {
	tb.Helper()
	c := &resetCircle{id: "circle1", roster: &crdt.Roster{Members: map[string]*crdt.Member{}}, keys: map[string]ed25519.PrivateKey{}}
	for i := range n {
		m := "m_" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			tb.Fatal(err)
		}
		dev := "d_" + m
		c.keys[m] = priv
		c.roster.Members[m] = &crdt.Member{ID: m, Name: m, JoinedAt: joined, Devices: map[string]*crdt.Device{dev: {ID: dev, PublicKey: pub, AddedAt: joined}}}
	}
	return c
}

// members returns the member ids, sorted.
func (c *resetCircle) members() []string {
	return slices.Sorted(maps.Keys(c.keys))
}

// sign signs a genuine reset statement of member m.
func (c *resetCircle) sign(tb testing.TB, m string, epoch int64, jti string, at time.Time) string {
	tb.Helper()
	st, err := crdt.SignReset(c.keys[m], "d_"+m, c.id, epoch, "why", jti, at)
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

// signClaims signs arbitrary claims and header fields with member m's
// device key (EdDSA).
func (c *resetCircle) signClaims(tb testing.TB, m string, claims jwt.MapClaims, header map[string]any) string {
	tb.Helper()
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	t.Header["kid"] = "d_" + m
	maps.Copy(t.Header, header)
	st, err := t.SignedString(c.keys[m])
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

func resetClaims(circle string, at time.Time) jwt.MapClaims {
	return jwt.MapClaims{"typ": "reset", "epoch": 0, "reason": "why", "iss": "d_m_aa", "aud": circle, "iat": at.Unix(), "jti": "j1"}
}

func TestParseResetRefusesWhatIsNotAResetForThisCircle(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c := newResetCircle(t, 2, at.Add(-30*24*time.Hour))
	with := func(change func(jwt.MapClaims)) string {
		cl := resetClaims(c.id, at)
		change(cl)
		return c.signClaims(t, "m_aa", cl, nil)
	}
	hmac := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, resetClaims(c.id, at))
		tok.Header["kid"] = "d_m_aa"
		st, err := tok.SignedString([]byte(c.roster.Members["m_aa"].Devices["d_m_aa"].PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	none := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, resetClaims(c.id, at))
		tok.Header["kid"] = "d_m_aa"
		st, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return st + "x"
	}
	cases := []struct {
		name      string
		statement string
	}{
		{"signed for another circle", with(func(cl jwt.MapClaims) { cl["aud"] = "circle2" })},
		{"aud naming this and another circle", with(func(cl jwt.MapClaims) { cl["aud"] = []string{c.id, "circle2"} })},
		{"no aud", with(func(cl jwt.MapClaims) { delete(cl, "aud") })},
		{"no typ", with(func(cl jwt.MapClaims) { delete(cl, "typ") })},
		{"typ of something else", with(func(cl jwt.MapClaims) { cl["typ"] = "vote" })},
		{"no epoch", with(func(cl jwt.MapClaims) { delete(cl, "epoch") })},
		{"negative epoch", with(func(cl jwt.MapClaims) { cl["epoch"] = -1 })},
		{"fractional epoch", with(func(cl jwt.MapClaims) { cl["epoch"] = 1.5 })},
		{"iss another device", with(func(cl jwt.MapClaims) { cl["iss"] = "d_m_ba" })},
		{"no iss", with(func(cl jwt.MapClaims) { delete(cl, "iss") })},
		{"no iat", with(func(cl jwt.MapClaims) { delete(cl, "iat") })},
		{"iat in 1970", with(func(cl jwt.MapClaims) { cl["iat"] = 1 })},
		{"iat in 3000", with(func(cl jwt.MapClaims) { cl["iat"] = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC).Unix() })},
		{"no jti", with(func(cl jwt.MapClaims) { delete(cl, "jti") })},
		{"carries exp, as a token assertion does", with(func(cl jwt.MapClaims) { cl["exp"] = at.Add(time.Minute).Unix() })},
		{"carries nbf", with(func(cl jwt.MapClaims) { cl["nbf"] = at.Unix() })},
		{"carries sub", with(func(cl jwt.MapClaims) { cl["sub"] = "m_aa" })},
		{"carries an unknown claim", with(func(cl jwt.MapClaims) { cl["scope"] = "admin" })},
		{"a token assertion", with(func(cl jwt.MapClaims) { delete(cl, "typ"); delete(cl, "epoch"); cl["exp"] = at.Add(time.Minute).Unix() })},
		{"kid of an unknown device", c.signClaims(t, "m_aa", resetClaims(c.id, at), map[string]any{"kid": "d_nobody"})},
		{"kid of another member's device", c.signClaims(t, "m_aa", resetClaims(c.id, at), map[string]any{"kid": "d_m_ba"})},
		{"HMAC keyed with the public key", hmac()},
		{"alg none", none()},
	}
	good := c.signClaims(t, "m_aa", resetClaims(c.id, at), nil)
	if _, err := crdt.ParseReset(good, c.id, c.roster); err != nil {
		t.Fatalf("ParseReset(genuine statement) = %v, want nil", err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sig, err := crdt.ParseReset(tc.statement, c.id, c.roster)
			if err == nil {
				t.Fatalf("ParseReset = %+v, nil; want a refusal", sig)
			}
			wantRuleError(t, err, crdt.RuleReset, "")
		})
	}
}
