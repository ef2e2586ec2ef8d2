package client_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/circles-coop/circles/mobile-api/client"
)

func mustListen(tb testing.TB) net.Listener {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	tb.Cleanup(func() { l.Close() })
	return l
}

func TestNewAssertion(t *testing.T) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	s, err := client.NewAssertion(key, "d-phone", "c-garden", now)
	if err != nil {
		t.Fatalf("NewAssertion() = %v", err)
	}
	claims := jwt.MapClaims{}
	tok, err := jwt.ParseWithClaims(s, claims, func(*jwt.Token) (any, error) { return pub, nil },
		jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithAudience("c-garden"), jwt.WithIssuer("d-phone"),
		jwt.WithIssuedAt(), jwt.WithExpirationRequired())
	if err != nil {
		t.Fatalf("Parse(assertion) = %v", err)
	}
	if got, want := tok.Header["alg"], "EdDSA"; got != want {
		t.Errorf("header alg = %v, want %v", got, want)
	}
	if got, want := tok.Header["kid"], "d-phone"; got != want {
		t.Errorf("header kid = %v, want %v", got, want)
	}
	if got, want := claims["aud"], "c-garden"; got != want {
		t.Errorf("aud = %v, want %v", got, want)
	}
	iat, _ := claims.GetIssuedAt()
	exp, _ := claims.GetExpirationTime()
	if !iat.Time.Equal(now) {
		t.Errorf("iat = %v, want %v", iat.Time, now)
	}
	if got, max := exp.Sub(iat.Time), 5*time.Minute; got <= 0 || got > max {
		t.Errorf("exp - iat = %v, want in (0, %v]", got, max)
	}
	jti, _ := claims["jti"].(string)
	if jti == "" {
		t.Errorf("jti = %v, want a string", claims["jti"])
	}

	// Another key does not verify it, and each assertion has its own jti.
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := jwt.Parse(s, func(*jwt.Token) (any, error) { return otherPub, nil }, jwt.WithValidMethods([]string{"EdDSA"})); err == nil {
		t.Errorf("Parse(assertion) with another key = nil error, want failure")
	}
	s2, err := client.NewAssertion(key, "d-phone", "c-garden", now)
	if err != nil {
		t.Fatal(err)
	}
	c2 := jwt.MapClaims{}
	if _, err := jwt.ParseWithClaims(s2, c2, func(*jwt.Token) (any, error) { return pub, nil }); err != nil {
		t.Fatal(err)
	}
	if c2["jti"] == jti {
		t.Errorf("two assertions share jti %v", jti)
	}

	bad := []struct {
		name             string
		key              ed25519.PrivateKey
		device, circleID string
	}{
		{"short key", key[:10], "d", "c"},
		{"no device", key, "", "c"},
		{"no circle", key, "d", ""},
	}
	for _, tt := range bad {
		if _, err := client.NewAssertion(tt.key, tt.device, tt.circleID, now); err == nil {
			t.Errorf("NewAssertion(%s) = nil error, want failure", tt.name)
		}
	}
}

func TestNewURL(t *testing.T) {
	tests := []struct {
		url    string
		wantOK bool
	}{
		{"http://127.0.0.1:8080", true},
		{"https://circle.example.org/", true},
		{"circle.example.org", false},
		{"ftp://circle.example.org", false},
		{"http://", false},
	}
	for _, tt := range tests {
		_, err := client.New(tt.url)
		if got := err == nil; got != tt.wantOK {
			t.Errorf("New(%q) error = %v, want ok %v", tt.url, err, tt.wantOK)
		}
	}
}
