package client

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// AssertionLifetime is how long a device assertion is valid (API.md allows
// at most 5 minutes).
const AssertionLifetime = 2 * time.Minute

// NewAssertion returns a device assertion for POST /v1/token: a JWT signed
// with the device key, header alg EdDSA and kid deviceID, claims iss
// deviceID, aud circleID, iat now, exp now+AssertionLifetime and a random
// UUID as jti. It returns an error if the key is not a full Ed25519 private
// key or an id is empty.
func NewAssertion(key ed25519.PrivateKey, deviceID, circleID string, now time.Time) (string, error) {
	if len(key) != ed25519.PrivateKeySize {
		return "", errors.New("device assertion: not an Ed25519 private key")
	}
	if deviceID == "" || circleID == "" {
		return "", errors.New("device assertion: device id and circle id are required")
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"iss": deviceID,
		"aud": circleID,
		"iat": now.Unix(),
		"exp": now.Add(AssertionLifetime).Unix(),
		"jti": uuid.NewString(),
	})
	t.Header["kid"] = deviceID
	s, err := t.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("device assertion: %w", err)
	}
	return s, nil
}
