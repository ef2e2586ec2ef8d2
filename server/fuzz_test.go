package server_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/circles-coop/circles/authority/fault"
	"github.com/circles-coop/circles/server/servertest"
)

// FuzzTokenAssertion hands arbitrary strings to the token exchange
// (POST /v1/token's authority call) of a real circle with one enrolled
// device. It must never panic or fail internally; whatever it accepts
// must be an assertion signed by the device's key with EdDSA.
func FuzzTokenAssertion(f *testing.F) {
	c := servertest.Start(f, "Fuzz Circle")
	url := c.URL()
	d, err := enrollDevice(url, c.FounderInvite, "Fuzzer")
	if err != nil {
		f.Fatal(err)
	}
	now := time.Now()
	claims := jwt.MapClaims{"iss": d.ID, "aud": c.CircleID, "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(), "jti": uuid.NewString()}
	for _, m := range []jwt.SigningMethod{jwt.SigningMethodEdDSA} {
		tok := jwt.NewWithClaims(m, claims)
		tok.Header["kid"] = d.ID
		s, err := tok.SignedString(d.Key)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(s)
	}
	f.Add("e30.e30.")
	f.Add(`eyJhbGciOiJub25lIiwia2lkIjoiZCJ9.eyJpc3MiOiJkIn0.`)
	pub := d.Key.Public().(ed25519.PublicKey)
	id := c.Server.Authority().Identity
	f.Fuzz(func(t *testing.T, assertion string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := id.Token(ctx, assertion)
		if err != nil {
			var fe *fault.Error
			if !errors.As(err, &fe) || (fe.Code != fault.Unauthenticated && fe.Code != fault.InvalidRequest) {
				t.Fatalf("Token(%q) = %v, want an unauthenticated or invalid_request refusal", assertion, err)
			}
			return
		}
		if _, err := jwt.Parse(assertion, func(*jwt.Token) (any, error) { return pub, nil }, jwt.WithValidMethods([]string{"EdDSA"})); err != nil {
			t.Fatalf("Token accepted %q, which the device's key does not verify: %v", assertion, err)
		}
	})
}
