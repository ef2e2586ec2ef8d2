package servertest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/circles-coop/circles/wire"
)

// Device is a device enrolled over the API by a test: its key, the
// automerge actor it writes with, its member and device ids and its
// current access token.
type Device struct {
	Key    ed25519.PrivateKey
	Actor  string
	Member string
	ID     string
	Token  string
}

// MustEnroll redeems invite at the server at base with a new key and
// actor; for a member invite it makes a member named name. It requires 201.
func MustEnroll(tb testing.TB, base, invite, name string) *Device {
	tb.Helper()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	d := &Device{Key: priv, Actor: automerge.NewActorID()}
	r := Call(tb, base, "POST", "/v1/enroll", "", MustJSON(tb, wire.EnrollRequest{Invite: invite, MemberName: name, DeviceName: name + "-phone", PublicKey: pub, ActorID: d.Actor}))
	if r.Status != http.StatusCreated {
		tb.Fatalf("enroll %s: %d %s", name, r.Status, r.Body)
	}
	var er wire.EnrollResponse
	if err := json.Unmarshal(r.Body, &er); err != nil {
		tb.Fatal(err)
	}
	d.Member, d.ID, d.Token = er.MemberID, er.DeviceID, er.AccessToken
	return d
}

// MustInvite makes an invite as d, for "member" or "device", valid for ttl
// (a Go duration; empty: the server's default), and returns its code.
func MustInvite(tb testing.TB, base string, d *Device, forWhat, ttl string) string {
	tb.Helper()
	r := Call(tb, base, "POST", "/v1/invites", d.Token, MustJSON(tb, wire.InviteRequest{For: forWhat, ExpiresIn: ttl}))
	if r.Status != http.StatusCreated {
		tb.Fatalf("invite: %d %s", r.Status, r.Body)
	}
	var ir wire.InviteResponse
	_ = json.Unmarshal(r.Body, &ir)
	return ir.Code
}

// MustCircle is GET /v1/circle as d.
func MustCircle(tb testing.TB, base string, d *Device) wire.Circle {
	tb.Helper()
	r := Call(tb, base, "GET", "/v1/circle", d.Token, nil)
	if r.Status != http.StatusOK {
		tb.Fatalf("circle: %d %s", r.Status, r.Body)
	}
	var c wire.Circle
	_ = json.Unmarshal(r.Body, &c)
	return c
}

// MustSign signs claims with key as a JWT of method, with kid in its
// header: a device assertion, or a token made to be refused.
func MustSign(tb testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	tb.Helper()
	tok := jwt.NewWithClaims(method, claims)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatalf("sign: %v", err)
	}
	return s
}

// MustRefresh trades a new device assertion, issued at now (the server's
// clock), for an access token and stores it in d, as a device does after
// its token expired.
func MustRefresh(tb testing.TB, base, circleID string, d *Device, now time.Time) {
	tb.Helper()
	a := MustSign(tb, jwt.SigningMethodEdDSA, d.Key, d.ID, jwt.MapClaims{
		"iss": d.ID, "aud": circleID, "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(), "jti": uuid.NewString(),
	})
	r := Call(tb, base, "POST", "/v1/token", "", MustJSON(tb, wire.TokenRequest{Assertion: a}))
	if r.Status != http.StatusOK {
		tb.Fatalf("token: %d %s", r.Status, r.Body)
	}
	var tr wire.TokenResponse
	_ = json.Unmarshal(r.Body, &tr)
	d.Token = tr.AccessToken
}
