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

func postCredit(t *testing.T, url string, d *device, body map[string]any) (rawResp, wire.Credit) {
	t.Helper()
	r := call(t, url, "POST", "/v1/credits", d.token, mustJSON(t, body))
	var out wire.Credit
	if r.status < 300 {
		if err := json.Unmarshal(r.body, &out); err != nil {
			t.Fatalf("POST /v1/credits: %v in %s", err, r.body)
		}
	}
	return r, out
}

func getJSON(t *testing.T, url string, d *device, path string, v any) {
	t.Helper()
	r := call(t, url, "GET", path, d.token, nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET %s = %d %s", path, r.status, r.body)
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
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
	alice := enrollRaw(t, url, c.FounderInvite, "Alice")
	bob := enrollRaw(t, url, invite(t, url, alice, "member", ""), "Bob")
	carol := enrollRaw(t, url, invite(t, url, alice, "member", ""), "Carol")
	bobLedger := circleOf(t, url, bob).Docs["ledger"]

	id1, id2, id3, id4 := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	idSelf, idStranger := uuid.NewString(), uuid.NewString()

	// 1. Alice gives Bob 6 h: Alice -6.
	r, got := postCredit(t, url, alice, creditBody(id1, bob.member, 6, "2026-03-01T10:00:00Z"))
	if r.status != http.StatusCreated || got.From != alice.member || got.To != bob.member || !got.Counted || got.OverLimit || got.FromBalance != -6 {
		t.Fatalf("first credit = %d %s, want 201, counted, not over the limit, from_balance -6", r.status, r.body)
	}
	// The same again is a safe retry; other content under the id conflicts.
	if r, _ := postCredit(t, url, alice, creditBody(id1, bob.member, 6, "2026-03-01T10:00:00Z")); r.status != http.StatusOK {
		t.Errorf("identical retry = %d %s, want 200", r.status, r.body)
	}
	if r, _ := postCredit(t, url, alice, creditBody(id1, bob.member, 7, "2026-03-01T10:00:00Z")); r.status != http.StatusConflict || r.code != fault.Conflict {
		t.Errorf("same id, other amount = %d %s, want 409 conflict", r.status, r.body)
	}
	if r, _ := postCredit(t, url, bob, creditBody(id1, alice.member, 6, "2026-03-01T10:00:00Z")); r.status != http.StatusConflict {
		t.Errorf("Alice's id sent by Bob = %d %s, want 409", r.status, r.body)
	}

	// Refused over REST, and nothing stored.
	before := storedState(t, c)
	for name, body := range map[string]map[string]any{
		"to yourself":      creditBody(uuid.NewString(), alice.member, 1, "2026-03-01T10:00:00Z"),
		"to a stranger":    creditBody(uuid.NewString(), "m_nobody", 1, "2026-03-01T10:00:00Z"),
		"zero amount":      creditBody(uuid.NewString(), bob.member, 0, "2026-03-01T10:00:00Z"),
		"negative amount":  creditBody(uuid.NewString(), bob.member, -2, "2026-03-01T10:00:00Z"),
		"huge amount":      creditBody(uuid.NewString(), bob.member, 2e6, "2026-03-01T10:00:00Z"),
		"id not a uuid":    creditBody("1", bob.member, 1, "2026-03-01T10:00:00Z"),
		"no time":          {"id": uuid.NewString(), "to": bob.member, "amount": 1},
		"amount as string": {"id": uuid.NewString(), "to": bob.member, "amount": "one", "at": "2026-03-01T10:00:00Z"},
	} {
		if r, _ := postCredit(t, url, alice, body); r.status != http.StatusBadRequest || r.code != fault.InvalidRequest {
			t.Errorf("credit %s = %d %s, want 400 invalid_request", name, r.status, r.body)
		}
	}
	after := storedState(t, c)
	for id, b := range before {
		if !bytes.Equal(after[id], b) {
			t.Errorf("a refused credit changed document %s", id)
		}
	}

	// 2. Through sync, Bob's device gives Carol 4 h (Bob 6-4 = 2), and
	// writes two transfers the view keeps but does not count: to himself,
	// and to someone who is not a member. The write rules accept all three.
	for _, cr := range []map[string]any{
		creditBody(id2, carol.member, 4, "2026-03-02T10:00:00Z"),
		creditBody(idSelf, bob.member, 2, "2026-03-02T11:00:00Z"),
		creditBody(idStranger, "m_stranger", 1, "2026-03-02T12:00:00Z"),
	} {
		msg := attack(t, url, bob, bobLedger, bob.actor, func(d *automerge.Doc) error {
			return d.Path("credits", cr["id"].(string)).Set(cr)
		})
		if r := call(t, url, "POST", "/v1/sync", bob.token, syncBody(t, wire.SyncMessage{Doc: bobLedger, Data: msg})); r.status != http.StatusOK {
			t.Fatalf("sync credit %v = %d %s, want 200", cr["id"], r.status, r.body)
		}
	}

	// 3. Alice gives Carol 5 h: Alice at -11, beyond the limit of 10. It is
	// stored and flagged, not refused.
	r, got = postCredit(t, url, alice, creditBody(id3, carol.member, 5, "2026-03-03T10:00:00Z"))
	if r.status != http.StatusCreated || !got.OverLimit || !got.Counted || got.FromBalance != -11 {
		t.Fatalf("credit beyond the limit = %d %s, want 201 flagged over_limit at -11", r.status, r.body)
	}
	// 4. Carol gives Alice 3 h: Alice back to -8, Carol 4+5-3 = 6.
	if r, got := postCredit(t, url, carol, creditBody(id4, alice.member, 3, "2026-03-04T10:00:00Z")); r.status != http.StatusCreated || got.OverLimit || got.FromBalance != 6 {
		t.Fatalf("Carol's credit = %d %s, want 201 at 6", r.status, r.body)
	}

	check := func(when string) {
		t.Helper()
		var bal wire.Balances
		getJSON(t, url, alice, "/v1/balances", &bal)
		want := map[string]float64{alice.member: -8, bob.member: 2, carol.member: 6}
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
		getJSON(t, url, alice, "/v1/credits", &all)
		type flags struct {
			from    string
			counted bool
			problem string
			over    bool
		}
		wantAll := map[string]flags{
			id1:        {alice.member, true, "", false},
			id2:        {bob.member, true, "", false},
			idSelf:     {bob.member, false, "self", false},
			idStranger: {bob.member, false, "unknown_member", false},
			id3:        {alice.member, true, "", true},
			id4:        {carol.member, true, "", false},
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
		getJSON(t, url, alice, "/v1/credits?member="+alice.member, &mine)
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
		getJSON(t, url, alice, "/v1/credits?limit=2&cursor="+cursor, &p)
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
		if r := call(t, url, "GET", path, alice.token, nil); r.status != status {
			t.Errorf("GET %s = %d, want %d", path, r.status, status)
		}
	}

	// The index is rebuilt from the store at start: the same view.
	c.Stop()
	c.Start()
	check("after a restart")
}

// overLimitEntries returns the credit.over_limit audit entries by credit
// id.
func overLimitEntries(t *testing.T, url string, d *device) map[string][]map[string]any {
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
	alice := enrollRaw(t, url, c.FounderInvite, "Alice")
	bob := enrollRaw(t, url, invite(t, url, alice, "member", ""), "Bob")
	carol := enrollRaw(t, url, invite(t, url, alice, "member", ""), "Carol")
	bobLedger := circleOf(t, url, bob).Docs["ledger"]

	within, over, synced := uuid.NewString(), uuid.NewString(), uuid.NewString()
	// Alice -6: within the limit of 10.
	if r, _ := postCredit(t, url, alice, creditBody(within, bob.member, 6, "2026-03-01T10:00:00Z")); r.status != http.StatusCreated {
		t.Fatalf("credit within the limit = %d %s", r.status, r.body)
	}
	// Alice -11: over it. The entry is there when the answer comes.
	overBody := creditBody(over, carol.member, 5, "2026-03-02T10:00:00Z")
	if r, got := postCredit(t, url, alice, overBody); r.status != http.StatusCreated || !got.OverLimit {
		t.Fatalf("credit over the limit = %d %s, want 201 flagged", r.status, r.body)
	}
	got := overLimitEntries(t, url, alice)
	if len(got) != 1 || len(got[over]) != 1 {
		t.Fatalf("credit.over_limit entries after the REST credit = %v, want one for %s", got, over)
	}
	want := map[string]any{"credit": over, "author": alice.member, "to": carol.member, "amount": 5.0, "balance": -11.0, "limit": 10.0, "at": "2026-03-02T10:00:00Z"}
	for k, v := range want {
		if got[over][0][k] != v {
			t.Errorf("credit.over_limit %s = %v, want %v", k, got[over][0][k], v)
		}
	}
	// A retry is no second breach.
	if r, _ := postCredit(t, url, alice, overBody); r.status != http.StatusOK {
		t.Fatalf("retry = %d %s, want 200", r.status, r.body)
	}

	// Bob (+6) gives Carol 17 h from his device: -11, over the limit.
	msg := attack(t, url, bob, bobLedger, bob.actor, func(d *automerge.Doc) error {
		cr := creditBody(synced, carol.member, 17, "2026-03-03T10:00:00Z")
		return d.Path("credits", synced).Set(cr)
	})
	if r := call(t, url, "POST", "/v1/sync", bob.token, syncBody(t, wire.SyncMessage{Doc: bobLedger, Data: msg})); r.status != http.StatusOK {
		t.Fatalf("sync credit = %d %s", r.status, r.body)
	}
	for deadline := time.Now().Add(10 * time.Second); len(overLimitEntries(t, url, alice)[synced]) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no credit.over_limit entry for the synced credit %s", synced)
		}
	}

	check := func(when string) {
		t.Helper()
		got := overLimitEntries(t, url, alice)
		if len(got) != 2 || len(got[over]) != 1 || len(got[synced]) != 1 || got[synced][0]["author"] != bob.member || got[synced][0]["balance"] != -11.0 {
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
	if r, _ := postCredit(t, url, alice, overBody); r.status != http.StatusOK {
		t.Fatalf("retry after a restart = %d %s, want 200", r.status, r.body)
	}
	check("after a restart")
}
