package client_test

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/circles-coop/circles/authority/fault"

	"github.com/automerge/automerge-go"
	"github.com/google/uuid"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/mobile-api/client"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// These tests run the client against a real circle server (package
// server, through servertest): embedded NATS and JetStream in a temporary
// directory, HTTP on 127.0.0.1.

// mustJoin enrols a device in a fresh home.
func mustJoin(tb testing.TB, c *servertest.Circle, invite, name string, opts ...client.Option) *client.Device {
	tb.Helper()
	d, err := client.Join(tb.Context(), tb.TempDir(), c.URL(), invite, name, name+"-phone", opts...)
	if err != nil {
		tb.Fatalf("Join(%s) = %v", name, err)
	}
	return d
}

func TestJoinAndTokens(t *testing.T) {
	ctx := t.Context()
	c := servertest.Start(t, "Seed Library")
	alice := mustJoin(t, c, c.FounderInvite, "Alice")

	info := alice.Info()
	if !info.Enrolled() || info.CircleID != c.CircleID || info.Circle == nil || info.Circle.Docs["ledger"] == "" {
		t.Fatalf("Info() after Join = %+v, want enrolled in %s with a ledger", info, c.CircleID)
	}
	if info.LastSync.IsZero() {
		t.Errorf("Info().LastSync is zero after Join, want the first sync's time")
	}
	// Join synced: the ledger is on disk and Log works at once.
	if _, err := alice.Log(crdt.Entry{Kind: "skill", Quantity: 1, Note: "taught grafting"}); err != nil {
		t.Fatalf("Log() right after Join = %v", err)
	}
	if _, err := client.Join(ctx, alice.Home(), c.URL(), c.FounderInvite, "Alice", "again"); !errors.Is(err, client.ErrDeviceExists) {
		t.Errorf("Join(enrolled home) = %v, want ErrDeviceExists", err)
	}
	if _, err := client.Join(ctx, t.TempDir(), c.URL(), c.FounderInvite, "Eve", "eve-phone"); !client.IsAPIError(err, fault.Forbidden) {
		t.Errorf("Join(used invite) = %v, want an APIError %s", err, fault.Forbidden)
	}

	cl, err := alice.Client()
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Healthz(ctx); err != nil {
		t.Errorf("Healthz() = %v", err)
	}
	first, _ := cl.AccessToken()
	if first == "" {
		t.Fatalf("AccessToken() after Join is empty")
	}

	// A token the client knows to be expired is replaced before the call,
	// from a new assertion (the server would still take the old one).
	expired, err := client.OpenDevice(alice.Home(), client.WithToken(first, time.Now().Add(-time.Minute)))
	if err != nil {
		t.Fatal(err)
	}
	ec, err := expired.Client()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ec.Circle(ctx); err != nil {
		t.Fatalf("Circle() with an expired token = %v, want a refresh", err)
	}
	if second, exp := ec.AccessToken(); second == first || second == "" || !exp.After(time.Now()) {
		t.Errorf("AccessToken() = %q, %v after expiry, want a new token expiring later", second, exp)
	}

	// A token the server refuses (401) is replaced and the call retried.
	reopened, err := client.OpenDevice(alice.Home(), client.WithToken("not-a-token", time.Time{}))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := reopened.Client()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Circle(ctx); err != nil {
		t.Fatalf("Circle() with a forged token = %v, want a refresh", err)
	}
	if tok, _ := rc.AccessToken(); tok == "not-a-token" || tok == "" {
		t.Errorf("AccessToken() = %q after a 401, want a fresh token", tok)
	}

	// Without a key, a refused token is an APIError.
	bare, err := client.New(c.URL(), client.WithToken("not-a-token", time.Time{}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = bare.Circle(ctx)
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized || ae.Code != fault.Unauthenticated || ae.Message == "" {
		t.Errorf("Circle() with a forged token and no key = %v, want APIError 401 %s with a message", err, fault.Unauthenticated)
	}
	// An assertion is single-use: the server refuses a replayed jti.
	a, err := alice.Assertion()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bare.Token(ctx, a); err != nil {
		t.Fatalf("Token(assertion) = %v", err)
	}
	if _, err := bare.Token(ctx, a); !client.IsAPIError(err, fault.Unauthenticated) {
		t.Errorf("Token(replayed assertion) = %v, want APIError %s", err, fault.Unauthenticated)
	}
}

func TestSyncProgressAndREST(t *testing.T) {
	ctx := t.Context()
	c := servertest.Start(t, "Tool Library")
	alice := mustJoin(t, c, c.FounderInvite, "Alice")
	inv, err := alice.Invite(ctx, false, time.Hour)
	if err != nil {
		t.Fatalf("Invite() = %v", err)
	}
	if inv.Code == "" || inv.URL == "" || !inv.ExpiresAt.After(time.Now()) {
		t.Errorf("Invite() = %+v, want a code, a URL and a future expiry", inv)
	}
	bob := mustJoin(t, c, inv.Code, "Bob")

	e, err := alice.Log(crdt.Entry{Kind: "lend", Quantity: 1, Note: "ladder", Counterparty: bob.Info().MemberID})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := alice.Status(); err != nil || st.Pending != 1 {
		t.Errorf("Status() = %+v, %v; want 1 pending change", st, err)
	}
	var rounds []client.SyncProgress
	sum, err := alice.Sync(ctx, func(p client.SyncProgress) { rounds = append(rounds, p) })
	if err != nil {
		t.Fatalf("Sync() = %v", err)
	}
	if len(rounds) == 0 || len(rounds) != sum.Rounds {
		t.Fatalf("Sync() reported %d rounds, summary says %d", len(rounds), sum.Rounds)
	}
	sent := 0
	for i, p := range rounds {
		if p.Round != i+1 {
			t.Errorf("round %d reported as %d", i+1, p.Round)
		}
		sent += p.SentChanges
	}
	if sum.ChangesSent != 1 || sent != 1 {
		t.Errorf("Sync() sent %d changes (rounds say %d), want 1", sum.ChangesSent, sent)
	}
	if st, err := alice.Status(); err != nil || st.Pending != 0 {
		t.Errorf("Status() after Sync = %+v, %v; want 0 pending", st, err)
	}

	// Bob receives Alice's entry; the REST view agrees.
	bsum, err := bob.Sync(ctx, nil)
	if err != nil {
		t.Fatalf("bob Sync() = %v", err)
	}
	if bsum.ChangesReceived < 1 {
		t.Errorf("bob Sync() received %d changes, want at least 1", bsum.ChangesReceived)
	}
	entries, err := bob.Entries()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || !entries[0].Same(e) || entries[0].Mine || entries[0].MemberName != "Alice" {
		t.Errorf("bob Entries() = %+v, want Alice's %+v", entries, e)
	}
	bc, err := bob.Client()
	if err != nil {
		t.Fatal(err)
	}
	list, err := bc.ListEntries(ctx, client.ListOptions{Member: alice.Info().MemberID})
	if err != nil {
		t.Fatalf("ListEntries() = %v", err)
	}
	if len(list.Entries) != 1 || list.Entries[0].ID != e.ID {
		t.Errorf("ListEntries() = %+v, want entry %s", list.Entries, e.ID)
	}

	// An entry made through REST reaches the device's store on sync, and
	// retrying it is safe while changing it conflicts.
	we := wire.Entry{ID: uuid.NewString(), Kind: "meal", Quantity: 4, Note: "stew", At: time.Now().UTC().Truncate(time.Second)}
	if _, err := bc.CreateEntry(ctx, we); err != nil {
		t.Fatalf("CreateEntry() = %v", err)
	}
	if _, err := bc.CreateEntry(ctx, we); err != nil {
		t.Errorf("CreateEntry(same again) = %v, want a safe retry", err)
	}
	we.Quantity = 5
	if _, err := bc.CreateEntry(ctx, we); !client.IsAPIError(err, fault.Conflict) {
		t.Errorf("CreateEntry(same id, other content) = %v, want APIError %s", err, fault.Conflict)
	}
	if _, err := bob.Sync(ctx, nil); err != nil {
		t.Fatal(err)
	}
	mine := 0
	entries, _ = bob.Entries()
	for _, le := range entries {
		if le.Mine && le.ID == we.ID {
			mine++
		}
	}
	if mine != 1 {
		t.Errorf("bob Entries() holds the REST entry %d times, want 1", mine)
	}

	bal, err := bob.Balances(ctx)
	if err != nil {
		t.Fatalf("Balances() = %v", err)
	}
	if len(bal.Members) != 2 {
		t.Errorf("Balances() lists %d members, want 2", len(bal.Members))
	}
}

// TestSyncRuleViolation: a change the server refuses (here a ledger entry
// with a negative quantity, written past Log's checks straight into the
// document) is reported as a rule violation for that document, and the
// device's other documents still sync.
func TestSyncRuleViolation(t *testing.T) {
	ctx := t.Context()
	c := servertest.Start(t, "Garden")
	alice := mustJoin(t, c, c.FounderInvite, "Alice")
	inv, err := alice.Invite(ctx, false, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	bob := mustJoin(t, c, inv.Code, "Bob")
	good, err := bob.Log(crdt.Entry{Kind: "hours", Quantity: 2, Note: "watering"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Sync(ctx, nil); err != nil {
		t.Fatal(err)
	}

	ledger := alice.Info().Circle.Docs["ledger"]
	path := filepath.Join(alice.Home(), "docs", ledger+".automerge")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := automerge.Load(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.SetActorID(alice.ActorID()); err != nil {
		t.Fatal(err)
	}
	id := uuid.NewString()
	for k, v := range map[string]any{"id": id, "kind": "hours", "quantity": -5.0, "note": "", "at": time.Now().UTC().Format(time.RFC3339)} {
		if err := doc.Path("entries", id, k).Set(v); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := doc.Commit("bad entry"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, doc.Save(), 0o600); err != nil {
		t.Fatal(err)
	}

	sum, err := alice.Sync(ctx, nil)
	var se *client.SyncError
	if !errors.As(err, &se) {
		t.Fatalf("Sync() = %v, want a *SyncError", err)
	}
	if len(se.Docs) != 1 || se.Docs[0].Doc != ledger || !client.IsAPIError(se.Docs[0].Err, fault.RuleViolation) {
		t.Errorf("SyncError docs = %+v, want only the ledger %s refused with %s", se.Docs, ledger, fault.RuleViolation)
	}
	if len(sum.Failed) != 1 || sum.ChangesReceived < 1 {
		t.Errorf("Sync() summary = %+v, want 1 failed document and Bob's entry received", sum)
	}
	// The local view skips the bad entry and says so.
	entries, err := alice.Entries()
	var ue *client.UnreadableError
	if !errors.As(err, &ue) || ue.Count != 1 {
		t.Errorf("alice Entries() error = %v, want an UnreadableError for 1 value", err)
	}
	found := false
	for _, e := range entries {
		found = found || e.ID == good.ID
	}
	if !found {
		t.Errorf("alice Entries() = %+v, want Bob's entry %s despite the refused ledger", entries, good.ID)
	}
}
