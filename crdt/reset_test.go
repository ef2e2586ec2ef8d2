package crdt_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/automerge/automerge-go"
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
		if n > 26 {
			m = fmt.Sprintf("m_%04d", i)
		}
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
		{"null epoch", with(func(cl jwt.MapClaims) { cl["epoch"] = nil })},
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

// newGovernance returns a fresh governance document.
func newGovernance(tb testing.TB) *automerge.Doc {
	tb.Helper()
	d := automerge.New()
	if err := crdt.InitGovernance(d); err != nil {
		tb.Fatal(err)
	}
	mustCommit(tb, d)
	return d
}

func mustParseReset(tb testing.TB, c *resetCircle, st string) crdt.ResetSignature {
	tb.Helper()
	sig, err := crdt.ParseReset(st, c.id, c.roster)
	if err != nil {
		tb.Fatalf("ParseReset = %v", err)
	}
	return sig
}

// pendingMembers returns the member of each pending statement, re-parsed
// from the statements the governance document keeps.
func pendingMembers(tb testing.TB, c *resetCircle, d *automerge.Doc) map[string]int {
	tb.Helper()
	sts, err := crdt.PendingResetStatements(d)
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]int{}
	for _, st := range sts {
		out[mustParseReset(tb, c, st).Member]++
	}
	return out
}

func TestPendingResetsOneMemberCannotDisplaceAnother(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c := newResetCircle(t, 3, at.Add(-30*24*time.Hour))
	d := newGovernance(t)
	add := func(st string) {
		t.Helper()
		if err := crdt.AddResetStatement(d, mustParseReset(t, c, st)); err != nil {
			t.Fatalf("AddResetStatement = %v", err)
		}
	}
	add(c.sign(t, "m_aa", 0, "shared-jti", at))
	// m_ba signs its own statement under the same jti (the jti is public:
	// GET /v1/resets and the governance document show it).
	add(c.sign(t, "m_ba", 0, "shared-jti", at.Add(time.Minute)))
	got := pendingMembers(t, c, d)
	if got["m_aa"] != 1 || got["m_ba"] != 1 {
		t.Fatalf("pending by member = %v, want m_aa and m_ba once each", got)
	}
	// The same statement again, and many more from one member, leave one
	// pending statement for that member.
	add(c.sign(t, "m_aa", 0, "shared-jti", at))
	for i := range 20 {
		add(c.sign(t, "m_ca", 0, "j"+string(rune('a'+i)), at.Add(time.Duration(i)*time.Second)))
	}
	got = pendingMembers(t, c, d)
	if len(got) != 3 || got["m_aa"] != 1 || got["m_ba"] != 1 || got["m_ca"] != 1 {
		t.Fatalf("pending by member = %v, want m_aa, m_ba and m_ca once each", got)
	}
	// And it survives a reload, as a peer reads it.
	if got := pendingMembers(t, c, mustReload(t, d)); len(got) != 3 {
		t.Fatalf("after reload, pending by member = %v, want 3 members", got)
	}
}

func TestAdmitResetKeepsOneLiveSignaturePerMember(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c := newResetCircle(t, 4, at.Add(-30*24*time.Hour))
	young := c.roster.Members["m_da"]
	young.JoinedAt = at.Add(-24 * time.Hour) // joined a day ago: counts from in 6 days
	pol := crdt.DefaultPolicies()
	window := pol.Duration("reset.window")
	d := newGovernance(t)
	admit := func(st string, now time.Time) (bool, error) {
		t.Helper()
		return crdt.AdmitReset(d, mustParseReset(t, c, st), c.roster, pol, now)
	}
	mustAdmit := func(st string, now time.Time, want bool) {
		t.Helper()
		got, err := admit(st, now)
		if err != nil || got != want {
			t.Fatalf("AdmitReset = %v, %v; want %v, nil", got, err, want)
		}
	}
	pendingJTI := func() map[string]string {
		t.Helper()
		sigs, err := crdt.PendingResets(d)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, s := range sigs {
			out[s.Member] = s.JTI
		}
		return out
	}

	t.Run("refusals", func(t *testing.T) {
		revokedAt := at.Add(-time.Hour)
		c.roster.Members["m_ca"].Devices["d_m_ca"].RevokedAt = &revokedAt
		defer func() { c.roster.Members["m_ca"].Devices["d_m_ca"].RevokedAt = nil }()
		for _, tc := range []struct {
			name string
			st   string
			want string
		}{
			{"another epoch", c.sign(t, "m_aa", 1, "e1", at), "epoch"},
			{"signed in the future", c.sign(t, "m_aa", 0, "f1", at.Add(crdt.ResetSkew+time.Minute)), "future"},
			{"older than the window", c.sign(t, "m_aa", 0, "o1", at.Add(-window-time.Minute)), "window"},
			{"a revoked device", c.sign(t, "m_ca", 0, "r1", at.Add(-time.Minute)), "revoked"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ok, err := admit(tc.st, at)
				if ok {
					t.Fatal("AdmitReset wrote")
				}
				wantRuleError(t, err, crdt.RuleReset, tc.want)
			})
		}
		if got := pendingJTI(); len(got) != 0 {
			t.Fatalf("pending after refusals = %v, want none", got)
		}
	})

	mustAdmit(c.sign(t, "m_aa", 0, "a1", at), at, true)
	// m_ba reuses m_aa's jti: both are kept, each under its own member.
	mustAdmit(c.sign(t, "m_ba", 0, "a1", at), at, true)
	// A member too young to count yet is kept: they may pass
	// reset.min_membership within the window.
	mustAdmit(c.sign(t, "m_da", 0, "d1", at), at, true)
	// The same statement again, and a newer one while the first is live,
	// write nothing.
	mustAdmit(c.sign(t, "m_aa", 0, "a1", at), at, false)
	mustAdmit(c.sign(t, "m_aa", 0, "a2", at.Add(time.Hour)), at.Add(time.Hour), false)
	if got, want := pendingJTI(), map[string]string{"m_aa": "a1", "m_ba": "a1", "m_da": "d1"}; !maps.Equal(got, want) {
		t.Fatalf("pending = %v, want %v", got, want)
	}
	sigs, err := crdt.PendingResets(d)
	if err != nil {
		t.Fatal(err)
	}
	counted, quorum := crdt.CountReset(sigs, 0, c.roster, pol, at.Add(time.Hour))
	if len(counted) != 2 || quorum != 3 {
		t.Fatalf("CountReset = %d signatures, quorum %d; want 2 (m_da too young), 3", len(counted), quorum)
	}
	for _, s := range counted {
		if s.Statement == "" || s.Device != "d_"+s.Member || !s.IssuedAt.Equal(at) {
			t.Errorf("counted %+v: want the statement, device and iat kept on arrival", s)
		}
	}

	// Once m_aa's signature left the window, a new one replaces it.
	later := at.Add(window + time.Minute)
	mustAdmit(c.sign(t, "m_aa", 0, "a3", later), later, true)
	// Once m_ba's device is revoked, a statement from a new device of
	// m_ba replaces the kept one.
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	c.roster.Members["m_ba"].Devices["d_m_ba2"] = &crdt.Device{ID: "d_m_ba2", PublicKey: pub, AddedAt: later}
	c.roster.Members["m_ba"].Devices["d_m_ba"].RevokedAt = &later
	st, err := crdt.SignReset(priv, "d_m_ba2", c.id, 0, "again", "b2", later)
	if err != nil {
		t.Fatal(err)
	}
	mustAdmit(st, later.Add(time.Second), true)
	if got, want := pendingJTI(), map[string]string{"m_aa": "a3", "m_ba": "b2", "m_da": "d1"}; !maps.Equal(got, want) {
		t.Fatalf("pending = %v, want %v", got, want)
	}

	// Executing the reset clears the pending signatures.
	if err := crdt.RecordReset(d, crdt.ResetRecord{Epoch: 0, At: later, Signatures: counted}); err != nil {
		t.Fatal(err)
	}
	if got := pendingJTI(); len(got) != 0 {
		t.Fatalf("pending after RecordReset = %v, want none", got)
	}
	if sts, err := crdt.PendingResetStatements(d); err != nil || len(sts) != 0 {
		t.Fatalf("PendingResetStatements after RecordReset = %v, %v; want none", sts, err)
	}
}

// A governance document written before pending signatures were kept per
// member holds statements by jti; MigratePendingResets verifies them once
// and keeps them per member.
func TestMigratePendingResets(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c := newResetCircle(t, 3, at.Add(-30*24*time.Hour))
	pol := crdt.DefaultPolicies()
	d := newGovernance(t)
	_, forger, _ := ed25519.GenerateKey(rand.Reader)
	forged, err := crdt.SignReset(forger, "d_m_ca", c.id, 0, "x", "f1", at)
	if err != nil {
		t.Fatal(err)
	}
	legacy := map[string]any{
		"a1": c.sign(t, "m_aa", 0, "a1", at),
		"a2": c.sign(t, "m_aa", 0, "a2", at.Add(time.Minute)), // the same member again
		"b1": c.sign(t, "m_ba", 0, "b1", at),
		"f1": forged,
		"o1": c.sign(t, "m_ca", 3, "o1", at), // another epoch
	}
	if err := d.RootMap().Set("reset_signatures", legacy); err != nil {
		t.Fatal(err)
	}
	mustCommit(t, d)
	n, err := crdt.MigratePendingResets(d, c.id, c.roster, pol, at.Add(time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("MigratePendingResets = %d, %v; want 2 kept", n, err)
	}
	sigs, err := crdt.PendingResets(mustReload(t, d))
	if err != nil || len(sigs) != 2 || sigs[0].Member != "m_aa" || sigs[1].Member != "m_ba" {
		t.Fatalf("PendingResets = %+v, %v; want m_aa and m_ba", sigs, err)
	}
	if v := mustGet(t, d, "reset_signatures"); !v.IsVoid() {
		t.Fatalf("the legacy map is still there: %v", v.Kind())
	}
	if n, err := crdt.MigratePendingResets(d, c.id, c.roster, pol, at.Add(time.Hour)); err != nil || n != 0 {
		t.Fatalf("MigratePendingResets(again) = %d, %v; want 0, nil", n, err)
	}
}
