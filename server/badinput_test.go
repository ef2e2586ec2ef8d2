package server_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/server"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// TestBadInputs sends a table of bad requests; each must get its
// documented status and code, and leave every stored document byte for
// byte as it was.
func TestBadInputs(t *testing.T) {
	clk := &servertest.Clock{}
	c := servertest.Start(t, "Tool Library", servertest.WithClock(clk.Now), servertest.WithConfig(func(cfg *server.Config) {
		cfg.MetricsListen = "127.0.0.1:0"
	}))
	url := c.URL()
	// clockAt moves the server's clock by offset for one scenario.
	clockAt := func(offset time.Duration) func(testing.TB) {
		return func(tb testing.TB) {
			clk.Set(offset)
			tb.Cleanup(func() { clk.Set(0) })
		}
	}

	alice := servertest.MustEnroll(t, url, c.FounderInvite, "Alice")
	bob := servertest.MustEnroll(t, url, servertest.MustInvite(t, url, alice, "member", ""), "Bob")
	aliceOld := servertest.MustEnroll(t, url, servertest.MustInvite(t, url, alice, "device", ""), "Alice")
	if r := servertest.Call(t, url, "POST", "/v1/devices/"+aliceOld.ID+"/revoke", alice.Token, nil); r.Status != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	usedInvite := c.FounderInvite
	shortInvite := servertest.MustInvite(t, url, alice, "member", "1m")

	circle := servertest.MustCircle(t, url, alice)
	aliceLedger, roster := circle.Docs["ledger"], circle.Docs["roster"]
	bobLedger := servertest.MustCircle(t, url, bob).Docs["ledger"]

	// An entry that exists, to try to rewrite.
	existing := uuid.NewString()
	if r := servertest.Call(t, url, "POST", "/v1/ledger/entries", alice.Token, servertest.MustJSON(t, servertest.ValidEntry(existing))); r.Status != http.StatusCreated {
		t.Fatalf("create entry: %d %s", r.Status, r.Body)
	}

	// Attack messages, prepared while everything is still unchanged.
	intoBob := servertest.MustChangeMessage(t, url, alice, bobLedger, alice.Actor, func(d *automerge.Doc) error {
		return d.Path("entries", uuid.NewString()).Set(servertest.ValidEntry(uuid.NewString()))
	})
	intoRoster := servertest.MustChangeMessage(t, url, alice, roster, alice.Actor, func(d *automerge.Doc) error {
		return d.Path("members", "m_evil").Set(map[string]any{"id": "m_evil", "name": "Eve"})
	})
	otherActor := servertest.MustChangeMessage(t, url, alice, aliceLedger, automerge.NewActorID(), func(d *automerge.Doc) error {
		id := uuid.NewString()
		return d.Path("entries", id).Set(servertest.ValidEntry(id))
	})
	revokedActor := servertest.MustChangeMessage(t, url, alice, aliceLedger, aliceOld.Actor, func(d *automerge.Doc) error {
		id := uuid.NewString()
		return d.Path("entries", id).Set(servertest.ValidEntry(id))
	})
	badSchema := func(field string, value any) []byte {
		return servertest.MustChangeMessage(t, url, alice, aliceLedger, alice.Actor, func(d *automerge.Doc) error {
			id := uuid.NewString()
			e := servertest.ValidEntry(id)
			if value == nil {
				delete(e, field)
			} else {
				e[field] = value
			}
			return d.Path("entries", id).Set(e)
		})
	}
	negative := badSchema("quantity", -3.0)
	badKind := badSchema("kind", "bribe")
	noAt := badSchema("at", nil)
	longNote := badSchema("note", strings.Repeat("x", 2001))
	wrongIDKey := servertest.MustChangeMessage(t, url, alice, aliceLedger, alice.Actor, func(d *automerge.Doc) error {
		return d.Path("entries", uuid.NewString()).Set(servertest.ValidEntry(uuid.NewString()))
	})
	rewrite := servertest.MustChangeMessage(t, url, alice, aliceLedger, alice.Actor, func(d *automerge.Doc) error {
		return d.Path("entries", existing, "quantity").Set(200.0)
	})
	deleteEntry := servertest.MustChangeMessage(t, url, alice, aliceLedger, alice.Actor, func(d *automerge.Doc) error {
		return d.Path("entries").Map().Delete(existing)
	})
	replaceRoot := servertest.MustChangeMessage(t, url, alice, aliceLedger, alice.Actor, func(d *automerge.Doc) error {
		return d.RootMap().Set("entries", automerge.NewMap())
	})
	rootKey := servertest.MustChangeMessage(t, url, alice, aliceLedger, alice.Actor, func(d *automerge.Doc) error {
		return d.RootMap().Set("member", "m_someone_else")
	})
	valid := servertest.MustChangeMessage(t, url, alice, aliceLedger, alice.Actor, func(d *automerge.Doc) error {
		id := uuid.NewString()
		return d.Path("entries", id).Set(servertest.ValidEntry(id))
	})

	now := clk.Now()
	claims := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": alice.ID, "aud": circle.CircleID, "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(), "jti": uuid.NewString()}
		if mod != nil {
			mod(c)
		}
		return c
	}
	assertion := func(mod func(jwt.MapClaims)) []byte {
		return servertest.MustJSON(t, wire.TokenRequest{Assertion: servertest.MustSign(t, jwt.SigningMethodEdDSA, alice.Key, alice.ID, claims(mod))})
	}
	replayed := assertion(nil)
	if r := servertest.Call(t, url, "POST", "/v1/token", "", replayed); r.Status != http.StatusOK {
		t.Fatalf("first use of assertion: %d %s", r.Status, r.Body)
	}
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	noneToken := servertest.MustSign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, alice.ID, claims(nil))
	hmacToken := servertest.MustSign(t, jwt.SigningMethodHS256, []byte(alice.Key.Public().(ed25519.PublicKey)), alice.ID, claims(nil))
	forgedAccess := servertest.MustSign(t, jwt.SigningMethodEdDSA, otherKey, "", jwt.MapClaims{"iss": circle.CircleID, "aud": circle.CircleID, "sub": alice.ID, "mbr": alice.Member, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	noneAccess := servertest.MustSign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", jwt.MapClaims{"iss": circle.CircleID, "aud": circle.CircleID, "sub": alice.ID, "mbr": alice.Member, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	pub := alice.Key.Public().(ed25519.PublicKey)
	enroll := func(mod func(*wire.EnrollRequest)) []byte {
		r := wire.EnrollRequest{Invite: "nope", MemberName: "Mallory", DeviceName: "phone", PublicKey: make([]byte, 32), ActorID: automerge.NewActorID()}
		mod(&r)
		return servertest.MustJSON(t, r)
	}
	entry := func(mod func(map[string]any)) []byte {
		e := servertest.ValidEntry(uuid.NewString())
		mod(e)
		return servertest.MustJSON(t, e)
	}
	b64 := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	msg := func(doc string, data []byte) wire.SyncMessage { return wire.SyncMessage{Doc: doc, Data: data} }

	cases := []servertest.Scenario{
		// Enrolment.
		{Name: "enroll malformed JSON", Method: "POST", Path: "/v1/enroll", Body: []byte(`{"invite": `), WantStatus: 400, WantCode: "invalid_request"},
		{Name: "enroll wrong type", Method: "POST", Path: "/v1/enroll", Body: []byte(`{"invite": 42}`), WantStatus: 400, WantCode: "invalid_request"},
		{Name: "enroll unknown invite", Method: "POST", Path: "/v1/enroll", Body: enroll(func(r *wire.EnrollRequest) {}), WantStatus: 403, WantCode: "forbidden"},
		{Name: "enroll used invite", Method: "POST", Path: "/v1/enroll", Body: enroll(func(r *wire.EnrollRequest) { r.Invite = usedInvite }), WantStatus: 403, WantCode: "forbidden"},
		{Name: "enroll expired invite", Method: "POST", Path: "/v1/enroll", Body: enroll(func(r *wire.EnrollRequest) { r.Invite = shortInvite }), Before: clockAt(2 * time.Minute), WantStatus: 403, WantCode: "forbidden"},
		{Name: "enroll short public key", Method: "POST", Path: "/v1/enroll", Body: enroll(func(r *wire.EnrollRequest) { r.Invite = shortInvite; r.PublicKey = pub[:31] }), WantStatus: 400, WantCode: "invalid_request"},
		{Name: "enroll actor not hex", Method: "POST", Path: "/v1/enroll", Body: enroll(func(r *wire.EnrollRequest) { r.Invite = shortInvite; r.ActorID = "not-hex!" }), WantStatus: 400, WantCode: "invalid_request"},
		{Name: "enroll new member without a name", Method: "POST", Path: "/v1/enroll", Body: enroll(func(r *wire.EnrollRequest) { r.Invite = shortInvite; r.MemberName = "" }), WantStatus: 400, WantCode: "invalid_request"},
		{Name: "enroll taken actor", Method: "POST", Path: "/v1/enroll", Body: enroll(func(r *wire.EnrollRequest) { r.Invite = shortInvite; r.ActorID = bob.Actor }), WantStatus: 409, WantCode: "conflict"},
		{Name: "enroll huge body", Method: "POST", Path: "/v1/enroll", Body: []byte(`{"invite":"` + strings.Repeat("a", 200_000) + `"}`), WantStatus: 413, WantCode: "too_large"},
		// Device assertions.
		{Name: "token garbage", Method: "POST", Path: "/v1/token", Body: servertest.MustJSON(t, wire.TokenRequest{Assertion: "garbage"}), WantStatus: 401, WantCode: "unauthenticated"},
		{Name: "token missing", Method: "POST", Path: "/v1/token", Body: []byte(`{}`), WantStatus: 400, WantCode: "invalid_request"},
		{Name: "token alg none", Method: "POST", Path: "/v1/token", Body: servertest.MustJSON(t, wire.TokenRequest{Assertion: noneToken}), WantStatus: 401, WantCode: "unauthenticated"},
		{Name: "token HMAC with public key", Method: "POST", Path: "/v1/token", Body: servertest.MustJSON(t, wire.TokenRequest{Assertion: hmacToken}), WantStatus: 401, WantCode: "unauthenticated"},
		{Name: "token replayed jti", Method: "POST", Path: "/v1/token", Body: replayed, WantStatus: 401, WantCode: "unauthenticated"},
		{Name: "token expired", Method: "POST", Path: "/v1/token", Body: assertion(nil), Before: clockAt(10 * time.Minute), WantStatus: 401, WantCode: "unauthenticated"},
		{Name: "token lives too long", Method: "POST", Path: "/v1/token", Body: assertion(func(c jwt.MapClaims) { c["exp"] = now.Add(time.Hour).Unix() }), WantStatus: 401, WantCode: "unauthenticated"},
		{Name: "token wrong audience", Method: "POST", Path: "/v1/token", Body: assertion(func(c jwt.MapClaims) { c["aud"] = "another-circle" }), WantStatus: 401, WantCode: "unauthenticated"},
		{Name: "token iss is not kid", Method: "POST", Path: "/v1/token", Body: assertion(func(c jwt.MapClaims) { c["iss"] = bob.ID }), WantStatus: 401, WantCode: "unauthenticated"},
		{Name: "token no jti", Method: "POST", Path: "/v1/token", Body: assertion(func(c jwt.MapClaims) { delete(c, "jti") }), WantStatus: 401, WantCode: "unauthenticated"},
		{Name: "token of revoked device", Method: "POST", Path: "/v1/token", Body: servertest.MustJSON(t, wire.TokenRequest{Assertion: servertest.MustSign(t, jwt.SigningMethodEdDSA, aliceOld.Key, aliceOld.ID, claims(func(c jwt.MapClaims) { c["iss"] = aliceOld.ID }))}), WantStatus: 401, WantCode: "unauthenticated"},
		// Access tokens.
		{Name: "no token", Method: "GET", Path: "/v1/circle", WantStatus: 401, WantCode: "unauthenticated"},
		{Name: "forged token", Method: "GET", Path: "/v1/circle", Token: forgedAccess, WantStatus: 401, WantCode: "unauthenticated"},
		{Name: "alg none token", Method: "GET", Path: "/v1/circle", Token: noneAccess, WantStatus: 401, WantCode: "unauthenticated"},
		{Name: "expired token", Method: "GET", Path: "/v1/circle", Token: alice.Token, Before: clockAt(time.Hour), WantStatus: 401, WantCode: "unauthenticated"},
		{Name: "revoked device's token", Method: "GET", Path: "/v1/circle", Token: aliceOld.Token, WantStatus: 401, WantCode: "unauthenticated"},
		{Name: "revoke another member's device", Method: "POST", Path: "/v1/devices/" + bob.ID + "/revoke", Token: alice.Token, WantStatus: 403, WantCode: "forbidden"},
		// Sync.
		{Name: "sync malformed JSON", Method: "POST", Path: "/v1/sync", Token: alice.Token, Body: []byte(`{"messages": [`), WantStatus: 400, WantCode: "invalid_request"},
		{Name: "sync no messages field", Method: "POST", Path: "/v1/sync", Token: alice.Token, Body: []byte(`{}`), WantStatus: 400, WantCode: "invalid_request"},
		{Name: "sync bad base64", Method: "POST", Path: "/v1/sync", Token: alice.Token, Body: []byte(`{"messages":[{"doc":"` + aliceLedger + `","data":"@@@"}]}`), WantStatus: 400, WantCode: "invalid_request"},
		{Name: "sync not automerge", Method: "POST", Path: "/v1/sync", Token: alice.Token, Body: servertest.SyncBody(t, msg(aliceLedger, []byte("hello world"))), WantStatus: 400, WantCode: "invalid_request"},
		{Name: "sync garbage after magic byte", Method: "POST", Path: "/v1/sync", Token: alice.Token, Body: []byte(`{"messages":[{"doc":"` + aliceLedger + `","data":"` + b64([]byte{0x42, 0xff, 0xff, 0xff, 0x01}) + `"}]}`), WantStatus: 400, WantCode: "invalid_request"},
		{Name: "sync unknown document", Method: "POST", Path: "/v1/sync", Token: alice.Token, Body: servertest.SyncBody(t, msg(string(crdt.NewDocID()), valid)), WantStatus: 404, WantCode: "not_found"},
		{Name: "sync into another member's ledger", Method: "POST", Path: "/v1/sync", Token: alice.Token, Body: servertest.SyncBody(t, msg(bobLedger, intoBob)), WantStatus: 422, WantCode: "rule_violation"},
		{Name: "sync into the roster", Method: "POST", Path: "/v1/sync", Token: alice.Token, Body: servertest.SyncBody(t, msg(roster, intoRoster)), WantStatus: 422, WantCode: "rule_violation"},
		{Name: "sync as another actor", Method: "POST", Path: "/v1/sync", Token: alice.Token, Body: servertest.SyncBody(t, msg(aliceLedger, otherActor)), WantStatus: 422, WantCode: "rule_violation"},
		{Name: "sync as the revoked device's actor", Method: "POST", Path: "/v1/sync", Token: alice.Token, Body: servertest.SyncBody(t, msg(aliceLedger, revokedActor)), WantStatus: 422, WantCode: "rule_violation"},
		{Name: "sync negative quantity", Method: "POST", Path: "/v1/sync", Token: alice.Token, Body: servertest.SyncBody(t, msg(aliceLedger, negative)), WantStatus: 422, WantCode: "rule_violation"},
		{Name: "sync unknown kind", Method: "POST", Path: "/v1/sync", Token: alice.Token, Body: servertest.SyncBody(t, msg(aliceLedger, badKind)), WantStatus: 422, WantCode: "rule_violation"},
		{Name: "sync entry without at", Method: "POST", Path: "/v1/sync", Token: alice.Token, Body: servertest.SyncBody(t, msg(aliceLedger, noAt)), WantStatus: 422, WantCode: "rule_violation"},
		{Name: "sync note too long", Method: "POST", Path: "/v1/sync", Token: alice.Token, Body: servertest.SyncBody(t, msg(aliceLedger, longNote)), WantStatus: 422, WantCode: "rule_violation"},
		{Name: "sync key and id differ", Method: "POST", Path: "/v1/sync", Token: alice.Token, Body: servertest.SyncBody(t, msg(aliceLedger, wrongIDKey)), WantStatus: 422, WantCode: "rule_violation"},
		{Name: "sync rewrites an accepted entry", Method: "POST", Path: "/v1/sync", Token: alice.Token, Body: servertest.SyncBody(t, msg(aliceLedger, rewrite)), WantStatus: 422, WantCode: "rule_violation"},
		{Name: "sync deletes an accepted entry", Method: "POST", Path: "/v1/sync", Token: alice.Token, Body: servertest.SyncBody(t, msg(aliceLedger, deleteEntry)), WantStatus: 422, WantCode: "rule_violation"},
		{Name: "sync replaces the entries map", Method: "POST", Path: "/v1/sync", Token: alice.Token, Body: servertest.SyncBody(t, msg(aliceLedger, replaceRoot)), WantStatus: 422, WantCode: "rule_violation"},
		{Name: "sync writes a root key", Method: "POST", Path: "/v1/sync", Token: alice.Token, Body: servertest.SyncBody(t, msg(aliceLedger, rootKey)), WantStatus: 422, WantCode: "rule_violation"},
		{Name: "sync valid then invalid: nothing applied", Method: "POST", Path: "/v1/sync", Token: alice.Token, Body: servertest.SyncBody(t, msg(aliceLedger, valid), msg(roster, intoRoster)), WantStatus: 422, WantCode: "rule_violation"},
		{Name: "sync huge body", Method: "POST", Path: "/v1/sync", Token: alice.Token, Body: servertest.SyncBody(t, msg(aliceLedger, bytes.Repeat([]byte{0x42}, 9<<20))), WantStatus: 413, WantCode: "too_large"},
		{Name: "sync too many messages", Method: "POST", Path: "/v1/sync", Token: alice.Token, Body: servertest.SyncBody(t, func() []wire.SyncMessage {
			ms := make([]wire.SyncMessage, 300)
			for i := range ms {
				ms[i] = msg(aliceLedger, valid)
			}
			return ms
		}()...), WantStatus: 413, WantCode: "too_large"},
		// Ledger REST.
		{Name: "entry wrong type", Method: "POST", Path: "/v1/ledger/entries", Token: alice.Token, Body: entry(func(e map[string]any) { e["quantity"] = "two" }), WantStatus: 400, WantCode: "invalid_request"},
		{Name: "entry zero quantity", Method: "POST", Path: "/v1/ledger/entries", Token: alice.Token, Body: entry(func(e map[string]any) { e["quantity"] = 0 }), WantStatus: 400, WantCode: "invalid_request"},
		{Name: "entry unknown kind", Method: "POST", Path: "/v1/ledger/entries", Token: alice.Token, Body: entry(func(e map[string]any) { e["kind"] = "bribe" }), WantStatus: 400, WantCode: "invalid_request"},
		{Name: "entry id not a uuid", Method: "POST", Path: "/v1/ledger/entries", Token: alice.Token, Body: entry(func(e map[string]any) { e["id"] = "1" }), WantStatus: 400, WantCode: "invalid_request"},
		{Name: "entry bad time", Method: "POST", Path: "/v1/ledger/entries", Token: alice.Token, Body: entry(func(e map[string]any) { e["at"] = "yesterday" }), WantStatus: 400, WantCode: "invalid_request"},
		{Name: "entry unknown counterparty", Method: "POST", Path: "/v1/ledger/entries", Token: alice.Token, Body: entry(func(e map[string]any) { e["counterparty"] = "m_nobody" }), WantStatus: 400, WantCode: "invalid_request"},
		{Name: "entry id reused with other content", Method: "POST", Path: "/v1/ledger/entries", Token: alice.Token, Body: entry(func(e map[string]any) { e["id"] = existing; e["quantity"] = 5.0 }), WantStatus: 409, WantCode: "conflict"},
		{Name: "entries bad cursor", Method: "GET", Path: "/v1/ledger/entries?cursor=abc", Token: alice.Token, WantStatus: 400, WantCode: "invalid_request"},
		{Name: "entries bad limit", Method: "GET", Path: "/v1/ledger/entries?limit=0", Token: alice.Token, WantStatus: 400, WantCode: "invalid_request"},
		{Name: "entries unknown member", Method: "GET", Path: "/v1/ledger/entries?member=m_nobody", Token: alice.Token, WantStatus: 404, WantCode: "not_found"},
		{Name: "invite for an admin", Method: "POST", Path: "/v1/invites", Token: alice.Token, Body: []byte(`{"for":"admin"}`), WantStatus: 400, WantCode: "invalid_request"},
		{Name: "invite bad expiry", Method: "POST", Path: "/v1/invites", Token: alice.Token, Body: []byte(`{"for":"member","expires_in":"forever"}`), WantStatus: 400, WantCode: "invalid_request"},
		{Name: "unknown endpoint", Method: "GET", Path: "/v1/nope", Token: alice.Token, WantStatus: 404, WantCode: "not_found"},
	}
	if len(cases) < 30 {
		t.Fatalf("only %d bad inputs; the contract asks for at least 30", len(cases))
	}
	// Every refusal leaves every stored document byte for byte as it was.
	before := servertest.MustStoredDocs(t, c)
	for i := range cases {
		cases[i].After = func(tb testing.TB, _ servertest.Response) { servertest.MustStoreUnchanged(tb, c, before) }
	}
	servertest.RunScenarios(t, url, cases)

	// The invite that the refused enrolments named is still good.
	servertest.MustEnroll(t, url, shortInvite, "Carol")

	// The valid message of the mixed request still goes through alone:
	// the refusal was for the request, not a poisoned server state.
	r := servertest.Call(t, url, "POST", "/v1/sync", alice.Token, servertest.SyncBody(t, msg(aliceLedger, valid)))
	if r.Status != http.StatusOK {
		t.Fatalf("valid message alone: %d %s", r.Status, r.Body)
	}
	mr := servertest.Call(t, "http://"+c.Server.MetricsAddr(), "GET", "/metrics", "", nil)
	for _, rule := range []string{"actor", "permission", "schema", "immutable"} {
		if !bytes.Contains(mr.Body, []byte(fmt.Sprintf(`circles_rule_violations_total{rule=%q}`, rule))) {
			t.Errorf("/metrics does not count rule %q violations", rule)
		}
	}
}
