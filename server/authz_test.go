package server_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// TestAuthorizationMatrix sends every route that needs a token (as the
// server's own OpenAPI description lists them) with every kind of bad
// credential — none, expired, alg "none", HS256 keyed with the circle's
// public key, another circle's token, a revoked device's, a removed
// member's — and wants 401 with nothing but the error body; then the
// routes a member may only use for their own things with another
// member's valid token, wanting 403. Afterwards every stored document is
// byte for byte as it was.
func TestAuthorizationMatrix(t *testing.T) {
	clk := &servertest.Clock{}
	c := servertest.Start(t, "Matrix Circle", servertest.WithClock(clk.Now))
	url := c.URL()
	ada := servertest.MustEnroll(t, url, c.FounderInvite, "Ada")
	bo := servertest.MustEnroll(t, url, servertest.MustInvite(t, url, ada, "member", "1h"), "Bo")
	cy := servertest.MustEnroll(t, url, servertest.MustInvite(t, url, ada, "member", "1h"), "Cy")
	lost := servertest.MustEnroll(t, url, servertest.MustInvite(t, url, ada, "device", "1h"), "Ada-lost")
	if r := servertest.Call(t, url, "POST", "/v1/devices/"+lost.ID+"/revoke", ada.Token, []byte(`{}`)); r.Status != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	p := mustPropose(t, url, ada, "member.remove", "Cy leaves", map[string]any{"member": cy.Member})
	mustVote(t, url, ada, p.ID, "yes")
	mustVote(t, url, bo, p.ID, "yes")
	mustVote(t, url, cy, p.ID, "abstain")
	if got := getProposal(t, url, ada, p.ID); got.Status != "passed" {
		t.Fatalf("member.remove is %s, want passed", got.Status)
	}
	deadline := time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339)
	g := mustPropose(t, url, ada, "mandate.grant", "Ada speaks for us", map[string]any{"member": ada.Member, "issue": "the bakery", "scope": "local", "deadline": deadline})
	mustVote(t, url, ada, g.ID, "yes")
	mustVote(t, url, bo, g.ID, "yes")
	other := servertest.Start(t, "Another Circle")
	stranger := servertest.MustEnroll(t, other.URL(), other.FounderInvite, "Stranger")

	valid := ada.Token
	forged := map[string]string{
		"no token":              "",
		"alg none":              algNone(t, valid),
		"HS256 with public key": hmacWithPublicKey(t, url, ada, valid),
		"another circle":        stranger.Token,
		"revoked device":        lost.Token,
		"removed member":        cy.Token,
		"garbage":               "not.a.jwt",
	}

	routes := tokenRoutes(t, url)
	ids := map[string]string{"{id}": p.ID}
	before := servertest.MustStoredDocs(t, c)
	secrets := []string{ada.Member, bo.Member, "Ada", "Bo", p.ID}

	check := func(name, token string) {
		for _, rt := range routes {
			path := rt.path
			for k, v := range ids {
				path = strings.ReplaceAll(path, k, v)
			}
			body := []byte(`{}`)
			if rt.method == http.MethodGet {
				body = nil
			}
			r := servertest.Call(t, url, rt.method, path, token, body)
			if r.Status != http.StatusUnauthorized || r.Code != "unauthenticated" {
				t.Errorf("%s %s with %s: %d %s, want 401 unauthenticated", rt.method, rt.path, name, r.Status, r.Body)
				continue
			}
			var eb map[string]any
			if err := json.Unmarshal(r.Body, &eb); err != nil || len(eb) != 1 || eb["error"] == nil {
				t.Errorf("%s %s with %s: body %s, want only an error", rt.method, rt.path, name, r.Body)
			}
			for _, s := range secrets {
				if bytes.Contains(r.Body, []byte(s)) {
					t.Errorf("%s %s with %s: the error leaks %q: %s", rt.method, rt.path, name, s, r.Body)
				}
			}
		}
	}
	names := make([]string, 0, len(forged))
	for name := range forged {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		check(name, forged[name])
	}

	// Valid tokens on what belongs to another member.
	mandates := servertest.Call(t, url, "GET", "/v1/mandates", bo.Token, nil)
	var ml wire.MandateList
	_ = json.Unmarshal(mandates.Body, &ml)
	if len(ml.Mandates) != 1 {
		t.Fatalf("mandates: %s", mandates.Body)
	}
	for _, tc := range []struct{ what, method, path string }{
		{"Bo marks Ada's mandate done", "POST", "/v1/mandates/" + ml.Mandates[0].ID + "/done"},
		{"Bo revokes Ada's device", "POST", "/v1/devices/" + ada.ID + "/revoke"},
	} {
		if r := servertest.Call(t, url, tc.method, tc.path, bo.Token, []byte(`{}`)); r.Status != http.StatusForbidden || r.Code != "forbidden" {
			t.Errorf("%s: %d %s, want 403 forbidden", tc.what, r.Status, r.Body)
		}
	}

	// Tokens expire: 15 minutes later the valid token is refused too.
	clk.Set(16 * time.Minute)
	check("expired", valid)

	if after := servertest.MustStoredDocs(t, c); !sameState(before, after) {
		t.Errorf("the refused requests changed stored documents")
	}
	if r := servertest.Call(t, url, "GET", "/v1/audit", bo.Token, nil); r.Status != http.StatusUnauthorized {
		t.Errorf("Bo's token after 16 minutes: %d, want 401", r.Status)
	}
}

type route struct{ method, path string }

// tokenRoutes lists the routes of the server's OpenAPI description that
// need a token (those without an empty "security").
func tokenRoutes(t *testing.T, url string) []route {
	t.Helper()
	r := servertest.Call(t, url, "GET", "/v1/openapi.json", "", nil)
	var spec struct {
		Paths map[string]map[string]struct {
			Security *[]any `json:"security"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(r.Body, &spec); err != nil {
		t.Fatal(err)
	}
	var out []route
	for path, ops := range spec.Paths {
		for method, op := range ops {
			if op.Security != nil && len(*op.Security) == 0 {
				continue
			}
			out = append(out, route{strings.ToUpper(method), path})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path+out[i].method < out[j].path+out[j].method })
	if len(out) < 20 {
		t.Fatalf("only %d routes need a token in the OpenAPI description", len(out))
	}
	return out
}

func sameState(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// algNone re-signs token's claims with alg "none".
func algNone(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	head := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	return head + "." + parts[1] + "."
}

// hmacWithPublicKey signs token's claims with HS256, keyed with the
// circle's public key (read from the circle.created audit entry): the
// classic algorithm confusion.
func hmacWithPublicKey(t *testing.T, url string, d *servertest.Device, token string) string {
	t.Helper()
	var pub []byte
	for _, e := range auditKinds(t, url, d) {
		if e.Kind != crdt.AuditCircleCreated {
			continue
		}
		var data struct {
			PublicKey []byte `json:"public_key"`
		}
		if err := json.Unmarshal(e.Data, &data); err != nil {
			t.Fatal(err)
		}
		pub = data.PublicKey
	}
	if len(pub) != 32 {
		t.Fatalf("circle public key: %d bytes", len(pub))
	}
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil {
		t.Fatal(err)
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(pub)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
