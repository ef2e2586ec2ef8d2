package server_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// A reset statement carries exp and is signed by the device's key, but it
// is no device assertion: the token exchange refuses it (issue 7: before,
// it was traded for an access token).
func TestTokenRefusesAResetStatement(t *testing.T) {
	c := servertest.Start(t, "Statement Circle")
	url := c.URL()
	alice := servertest.MustEnroll(t, url, c.FounderInvite, "Alice")
	circle := servertest.MustCircle(t, url, alice).CircleID
	now := time.Now()
	st := servertest.MustSign(t, jwt.SigningMethodEdDSA, alice.Key, alice.ID, jwt.MapClaims{
		"typ": "reset", "epoch": 0, "reason": "r", "iss": alice.ID, "aud": circle,
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": uuid.NewString(),
	})
	r := servertest.Call(t, url, "POST", "/v1/token", "", servertest.MustJSON(t, wire.TokenRequest{Assertion: st}))
	if r.Status != http.StatusUnauthorized {
		t.Fatalf("POST /v1/token with a reset statement: %d %s, want 401", r.Status, r.Body)
	}
}

// The charter draft is bounded when it is synced, not only at
// ratification: a 1 MB principle is refused and nothing is stored.
func TestDraftPastItsBoundIsRefusedAtSync(t *testing.T) {
	c := servertest.Start(t, "Draft Circle")
	url := c.URL()
	alice := servertest.MustEnroll(t, url, c.FounderInvite, "Alice")
	draft := servertest.MustCircle(t, url, alice).Docs[string(crdt.KindCharterDraft)]
	before := servertest.MustStoredDocs(t, c)[draft]
	msg := servertest.MustChangeMessage(t, url, alice, draft, alice.Actor, func(d *automerge.Doc) error {
		return d.Path("principles").List().Append(strings.Repeat("p", 1_000_000))
	})
	r := servertest.Call(t, url, "POST", "/v1/sync", alice.Token, servertest.SyncBody(t, wire.SyncMessage{Doc: draft, Data: msg}))
	if r.Status == http.StatusOK {
		t.Fatalf("sync of a 1 MB principle: %d, want a refusal", r.Status)
	}
	if after := servertest.MustStoredDocs(t, c)[draft]; !bytes.Equal(before, after) {
		t.Fatal("the refused edit changed the stored draft")
	}
}
