package server_test

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/circles-coop/circles/authority/fault"

	"github.com/automerge/automerge-go"
	"github.com/google/uuid"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

func creditBody(id, to string, amount float64, at string) map[string]any {
	return map[string]any{"id": id, "to": to, "amount": amount, "note": "help", "at": at}
}

func postCredit(t *testing.T, url string, d *servertest.Device, body map[string]any) (servertest.Response, wire.Credit) {
	t.Helper()
	r := servertest.Call(t, url, "POST", "/v1/credits", d.Token, servertest.MustJSON(t, body))
	var out wire.Credit
	if r.Status < 300 {
		if err := json.Unmarshal(r.Body, &out); err != nil {
			t.Fatalf("POST /v1/credits: %v in %s", err, r.Body)
		}
	}
	return r, out
}

// TestMutualCredit runs mutual credit end to end on known data, with the
// charter's credit.limit at 10 hours: transfers over REST and through a
// device's sync, the limit flag, transfers the view does not count, the
// balances (which sum to zero), idempotency, and the same view after a
// restart rebuilt the index from the store.
func TestMutualCredit(t *testing.T) {
	pol := crdt.DefaultPolicies()
	if err := pol.Set("credit.limit", "10"); err != nil {
		t.Fatal(err)
	}
	c := servertest.Init(t, "Time Bank", pol)
	c.Start()
	url := c.URL()
	alice := servertest.MustEnroll(t, url, c.FounderInvite, "Alice")
	bob := servertest.MustEnroll(t, url, servertest.MustInvite(t, url, alice, "member", ""), "Bob")
	carol := servertest.MustEnroll(t, url, servertest.MustInvite(t, url, alice, "member", ""), "Carol")
	bobLedger := servertest.MustCircle(t, url, bob).Docs["ledger"]

	id1, id2, id3, id4 := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	idSelf, idStranger := uuid.NewString(), uuid.NewString()

	// 1. Alice gives Bob 6 h: Alice -6.
	r, got := postCredit(t, url, alice, creditBody(id1, bob.Member, 6, "2026-03-01T10:00:00Z"))
	if r.Status != http.StatusCreated || got.From != alice.Member || got.To != bob.Member || !got.Counted || got.OverLimit || got.FromBalance != -6 {
		t.Fatalf("first credit = %d %s, want 201, counted, not over the limit, from_balance -6", r.Status, r.Body)
	}
	// The same again is a safe retry; other content under the id conflicts.
	if r, _ := postCredit(t, url, alice, creditBody(id1, bob.Member, 6, "2026-03-01T10:00:00Z")); r.Status != http.StatusOK {
		t.Errorf("identical retry = %d %s, want 200", r.Status, r.Body)
	}
	if r, _ := postCredit(t, url, alice, creditBody(id1, bob.Member, 7, "2026-03-01T10:00:00Z")); r.Status != http.StatusConflict || r.Code != fault.Conflict {
		t.Errorf("same id, other amount = %d %s, want 409 conflict", r.Status, r.Body)
	}
	if r, _ := postCredit(t, url, bob, creditBody(id1, alice.Member, 6, "2026-03-01T10:00:00Z")); r.Status != http.StatusConflict {
		t.Errorf("Alice's id sent by Bob = %d %s, want 409", r.Status, r.Body)
	}

	// Refused over REST, and nothing stored.
	before := servertest.MustStoredDocs(t, c)
	for name, body := range map[string]map[string]any{
		"to yourself":      creditBody(uuid.NewString(), alice.Member, 1, "2026-03-01T10:00:00Z"),
		"to a stranger":    creditBody(uuid.NewString(), "m_nobody", 1, "2026-03-01T10:00:00Z"),
		"zero amount":      creditBody(uuid.NewString(), bob.Member, 0, "2026-03-01T10:00:00Z"),
		"negative amount":  creditBody(uuid.NewString(), bob.Member, -2, "2026-03-01T10:00:00Z"),
		"huge amount":      creditBody(uuid.NewString(), bob.Member, 2e6, "2026-03-01T10:00:00Z"),
		"id not a uuid":    creditBody("1", bob.Member, 1, "2026-03-01T10:00:00Z"),
		"no time":          {"id": uuid.NewString(), "to": bob.Member, "amount": 1},
		"amount as string": {"id": uuid.NewString(), "to": bob.Member, "amount": "one", "at": "2026-03-01T10:00:00Z"},
	} {
		if r, _ := postCredit(t, url, alice, body); r.Status != http.StatusBadRequest || r.Code != fault.InvalidRequest {
			t.Errorf("credit %s = %d %s, want 400 invalid_request", name, r.Status, r.Body)
		}
	}
	after := servertest.MustStoredDocs(t, c)
	for id, b := range before {
		if !bytes.Equal(after[id], b) {
			t.Errorf("a refused credit changed document %s", id)
		}
	}

	// 2. Through sync, Bob's device gives Carol 4 h (Bob 6-4 = 2), and
	// writes two transfers the view keeps but does not count: to himself,
	// and to someone who is not a member. The write rules accept all three.
	for _, cr := range []map[string]any{
		creditBody(id2, carol.Member, 4, "2026-03-02T10:00:00Z"),
		creditBody(idSelf, bob.Member, 2, "2026-03-02T11:00:00Z"),
		creditBody(idStranger, "m_stranger", 1, "2026-03-02T12:00:00Z"),
	} {
		msg := servertest.MustChangeMessage(t, url, bob, bobLedger, bob.Actor, func(d *automerge.Doc) error {
			return d.Path("credits", cr["id"].(string)).Set(cr)
		})
		if r := servertest.Call(t, url, "POST", "/v1/sync", bob.Token, servertest.SyncBody(t, wire.SyncMessage{Doc: bobLedger, Data: msg})); r.Status != http.StatusOK {
			t.Fatalf("sync credit %v = %d %s, want 200", cr["id"], r.Status, r.Body)
		}
	}

	// 3. Alice gives Carol 5 h: Alice at -11, beyond the limit of 10. It is
	// stored and flagged, not refused.
	r, got = postCredit(t, url, alice, creditBody(id3, carol.Member, 5, "2026-03-03T10:00:00Z"))
	if r.Status != http.StatusCreated || !got.OverLimit || !got.Counted || got.FromBalance != -11 {
		t.Fatalf("credit beyond the limit = %d %s, want 201 flagged over_limit at -11", r.Status, r.Body)
	}
	// 4. Carol gives Alice 3 h: Alice back to -8, Carol 4+5-3 = 6.
	if r, got := postCredit(t, url, carol, creditBody(id4, alice.Member, 3, "2026-03-04T10:00:00Z")); r.Status != http.StatusCreated || got.OverLimit || got.FromBalance != 6 {
		t.Fatalf("Carol's credit = %d %s, want 201 at 6", r.Status, r.Body)
	}

	check := func(when string) {
		t.Helper()
		var bal wire.Balances
		servertest.MustGetJSON(t, url, alice, "/v1/balances", &bal)
		want := map[string]float64{alice.Member: -8, bob.Member: 2, carol.Member: 6}
		var sum float64
		for _, b := range bal.Members {
			if b.CreditBalance != want[b.MemberID] || b.CreditLimit != 10 || b.CreditOverLimit {
				t.Errorf("%s: %s credit_balance %v limit %v over %v, want %v, 10, false", when, b.Name, b.CreditBalance, b.CreditLimit, b.CreditOverLimit, want[b.MemberID])
			}
			sum += b.CreditBalance
		}
		if len(bal.Members) != 3 || math.Abs(sum) > 1e-9 {
			t.Errorf("%s: %d members, credit balances sum to %v; want 3 members summing to 0", when, len(bal.Members), sum)
		}

		var all wire.CreditList
		servertest.MustGetJSON(t, url, alice, "/v1/credits", &all)
		type flags struct {
			from    string
			counted bool
			problem string
			over    bool
		}
		wantAll := map[string]flags{
			id1:        {alice.Member, true, "", false},
			id2:        {bob.Member, true, "", false},
			idSelf:     {bob.Member, false, "self", false},
			idStranger: {bob.Member, false, "unknown_member", false},
			id3:        {alice.Member, true, "", true},
			id4:        {carol.Member, true, "", false},
		}
		if all.Limit != 10 || len(all.Credits) != len(wantAll) {
			t.Errorf("%s: GET /v1/credits lists %d transfers with limit %v, want %d with limit 10", when, len(all.Credits), all.Limit, len(wantAll))
		}
		for _, cr := range all.Credits {
			w, ok := wantAll[cr.ID]
			if got := (flags{cr.From, cr.Counted, cr.Problem, cr.OverLimit}); !ok || got != w {
				t.Errorf("%s: transfer %s = %+v, want %+v", when, cr.ID, got, w)
			}
		}

		var mine wire.CreditList
		servertest.MustGetJSON(t, url, alice, "/v1/credits?member="+alice.Member, &mine)
		ids := []string{}
		for _, cr := range mine.Credits {
			ids = append(ids, cr.ID)
		}
		if len(ids) != 3 || ids[0] != id1 || ids[1] != id3 || ids[2] != id4 {
			t.Errorf("%s: Alice's transfers %v, want given and received in the order of at [%s %s %s]", when, ids, id1, id3, id4)
		}
	}
	check("running")

	// Pages of two: 6 transfers in 3 pages.
	var seen []string
	cursor := ""
	for page := 0; page < 5; page++ {
		var p wire.CreditList
		servertest.MustGetJSON(t, url, alice, "/v1/credits?limit=2&cursor="+cursor, &p)
		for _, cr := range p.Credits {
			seen = append(seen, cr.ID)
		}
		if cursor = p.NextCursor; cursor == "" {
			break
		}
	}
	if len(seen) != 6 {
		t.Errorf("paging by 2 gave %d transfers, want 6", len(seen))
	}
	for path, status := range map[string]int{
		"/v1/credits?member=m_nobody": http.StatusNotFound,
		"/v1/credits?cursor=abc":      http.StatusBadRequest,
		"/v1/credits?limit=0":         http.StatusBadRequest,
	} {
		if r := servertest.Call(t, url, "GET", path, alice.Token, nil); r.Status != status {
			t.Errorf("GET %s = %d, want %d", path, r.Status, status)
		}
	}

	// The index is rebuilt from the store at start: the same view.
	c.Stop()
	c.Start()
	check("after a restart")
}

// overLimitEntries returns the credit.over_limit audit entries by credit
// id.
func overLimitEntries(t *testing.T, url string, d *servertest.Device) map[string][]map[string]any {
	t.Helper()
	out := map[string][]map[string]any{}
	for _, e := range auditKinds(t, url, d) {
		if e.Kind != crdt.AuditCreditOverLimit {
			continue
		}
		var data map[string]any
		if err := json.Unmarshal(e.Data, &data); err != nil {
			t.Fatalf("audit entry %d: %v", e.Seq, err)
		}
		id, _ := data["credit"].(string)
		out[id] = append(out[id], data)
	}
	return out
}

// TestCreditOverLimitAudit: a transfer beyond the credit limit, made over
// REST or synced from a device, gets exactly one credit.over_limit audit
// entry, also after retries and a restart; one within the limit gets none.
func TestCreditOverLimitAudit(t *testing.T) {
	pol := crdt.DefaultPolicies()
	if err := pol.Set("credit.limit", "10"); err != nil {
		t.Fatal(err)
	}
	c := servertest.Init(t, "Time Bank", pol)
	c.Start()
	url := c.URL()
	alice := servertest.MustEnroll(t, url, c.FounderInvite, "Alice")
	bob := servertest.MustEnroll(t, url, servertest.MustInvite(t, url, alice, "member", ""), "Bob")
	carol := servertest.MustEnroll(t, url, servertest.MustInvite(t, url, alice, "member", ""), "Carol")
	bobLedger := servertest.MustCircle(t, url, bob).Docs["ledger"]

	within, over, synced := uuid.NewString(), uuid.NewString(), uuid.NewString()
	// Alice -6: within the limit of 10.
	if r, _ := postCredit(t, url, alice, creditBody(within, bob.Member, 6, "2026-03-01T10:00:00Z")); r.Status != http.StatusCreated {
		t.Fatalf("credit within the limit = %d %s", r.Status, r.Body)
	}
	// Alice -11: over it. The entry is there when the answer comes.
	overBody := creditBody(over, carol.Member, 5, "2026-03-02T10:00:00Z")
	if r, got := postCredit(t, url, alice, overBody); r.Status != http.StatusCreated || !got.OverLimit {
		t.Fatalf("credit over the limit = %d %s, want 201 flagged", r.Status, r.Body)
	}
	got := overLimitEntries(t, url, alice)
	if len(got) != 1 || len(got[over]) != 1 {
		t.Fatalf("credit.over_limit entries after the REST credit = %v, want one for %s", got, over)
	}
	want := map[string]any{"credit": over, "author": alice.Member, "to": carol.Member, "amount": 5.0, "balance": -11.0, "limit": 10.0, "at": "2026-03-02T10:00:00Z"}
	for k, v := range want {
		if got[over][0][k] != v {
			t.Errorf("credit.over_limit %s = %v, want %v", k, got[over][0][k], v)
		}
	}
	// A retry is no second breach.
	if r, _ := postCredit(t, url, alice, overBody); r.Status != http.StatusOK {
		t.Fatalf("retry = %d %s, want 200", r.Status, r.Body)
	}

	// Bob (+6) gives Carol 17 h from his device: -11, over the limit.
	msg := servertest.MustChangeMessage(t, url, bob, bobLedger, bob.Actor, func(d *automerge.Doc) error {
		cr := creditBody(synced, carol.Member, 17, "2026-03-03T10:00:00Z")
		return d.Path("credits", synced).Set(cr)
	})
	if r := servertest.Call(t, url, "POST", "/v1/sync", bob.Token, servertest.SyncBody(t, wire.SyncMessage{Doc: bobLedger, Data: msg})); r.Status != http.StatusOK {
		t.Fatalf("sync credit = %d %s", r.Status, r.Body)
	}
	for deadline := time.Now().Add(10 * time.Second); len(overLimitEntries(t, url, alice)[synced]) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no credit.over_limit entry for the synced credit %s", synced)
		}
	}

	check := func(when string) {
		t.Helper()
		got := overLimitEntries(t, url, alice)
		if len(got) != 2 || len(got[over]) != 1 || len(got[synced]) != 1 || got[synced][0]["author"] != bob.Member || got[synced][0]["balance"] != -11.0 {
			t.Errorf("%s: credit.over_limit entries = %v, want one for %s and one for %s by Bob at -11", when, got, over, synced)
		}
		if _, ok := got[within]; ok {
			t.Errorf("%s: a credit within the limit has a credit.over_limit entry", when)
		}
	}
	check("running")
	c.Stop()
	c.Start()
	// After a restart the retried credit is judged again: still one entry.
	if r, _ := postCredit(t, url, alice, overBody); r.Status != http.StatusOK {
		t.Fatalf("retry after a restart = %d %s, want 200", r.Status, r.Body)
	}
	check("after a restart")
}
