package crdt_test

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/circles-coop/circles/crdt"
)

// credit builds a credit made days after the start of 2026.
func credit(id, to string, amount float64, days int) crdt.Credit {
	return crdt.Credit{ID: id, To: to, Amount: amount, At: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC).AddDate(0, 0, days)}
}

func approx(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestMutualCredit(t *testing.T) {
	members := []string{"a", "b", "c", "a"} // a duplicate member is listed once
	credits := map[string][]crdt.Credit{
		"a": {
			credit("c01", "b", 6, 1),
			credit("c03", "c", 5, 3), // a at -11: over the limit of 10
			credit("c05", "b", 1.5, 5),
			credit("c06", "a", 2, 6),   // to oneself: kept, moves nothing
			credit("c01", "b", 6, 1),   // the same id again counts once
			credit("c08", "b", 0.5, 8), // a at exactly -10: within the limit
			credit("c09", "b", 0.1, 9), // a at -10.1: over
		},
		"b": {
			credit("c02", "c", 4, 2),
			credit("c07", "m_gone", 1, 7), // not a member: kept, moves nothing
		},
		"c": {credit("c04", "a", 3, 4)}, // brings a back to -8
	}
	v := crdt.MutualCredit(members, credits, 10)

	type acct struct {
		given, received, balance float64
		over                     bool
	}
	want := map[string]acct{
		// a: -6 -5 +3 -1.5 -0.5 -0.1
		"a": {13.1, 3, -10.1, true},
		// b: +6 -4 +1.5 +0.5 +0.1
		"b": {4, 8.1, 4.1, false},
		// c: +4 +5 -3
		"c": {3, 9, 6, false},
	}
	if len(v.Accounts) != 3 {
		t.Fatalf("MutualCredit() has %d accounts, want 3", len(v.Accounts))
	}
	var sum float64
	for i, a := range v.Accounts {
		if a.Member != []string{"a", "b", "c"}[i] {
			t.Errorf("account %d is %q, want the members' order", i, a.Member)
		}
		w := want[a.Member]
		if !approx(a.Given, w.given) || !approx(a.Received, w.received) || !approx(a.Balance, w.balance) || a.OverLimit != w.over || a.Limit != 10 {
			t.Errorf("account %s = %+v, want given %v received %v balance %v over %v limit 10", a.Member, a, w.given, w.received, w.balance, w.over)
		}
		sum += a.Balance
	}
	if !approx(sum, 0) {
		t.Errorf("balances sum to %v, want 0", sum)
	}

	type tr struct {
		counted     bool
		problem     string
		over        bool
		fromBalance float64
	}
	wantT := []struct {
		id string
		tr
	}{
		{"c01", tr{true, "", false, -6}},
		{"c02", tr{true, "", false, 2}},
		{"c03", tr{true, "", true, -11}},
		{"c04", tr{true, "", false, 6}},
		{"c05", tr{true, "", false, -9.5}},
		{"c06", tr{false, crdt.CreditProblemSelf, false, -9.5}},
		{"c07", tr{false, crdt.CreditProblemUnknownMember, false, 3.5}},
		{"c08", tr{true, "", false, -10}},
		{"c09", tr{true, "", true, -10.1}},
	}
	if len(v.Transfers) != len(wantT) {
		t.Fatalf("MutualCredit() has %d transfers, want %d (a duplicate id counts once; nothing is dropped)", len(v.Transfers), len(wantT))
	}
	for i, w := range wantT {
		got := v.Transfers[i]
		if got.ID != w.id {
			t.Fatalf("transfer %d is %s, want %s (judged by time)", i, got.ID, w.id)
		}
		if got.Counted != w.counted || got.Problem != w.problem || got.OverLimit != w.over || !approx(got.FromBalance, w.fromBalance) {
			t.Errorf("transfer %s = counted %v problem %q over %v from balance %v, want %v %q %v %v",
				w.id, got.Counted, got.Problem, got.OverLimit, got.FromBalance, w.counted, w.problem, w.over, w.fromBalance)
		}
	}
	if tr, ok := v.Transfer("a", "c03"); !ok || !tr.OverLimit || tr.From != "a" || tr.To != "c" {
		t.Errorf("Transfer(a, c03) = %+v, %v, want the over-limit transfer to c", tr, ok)
	}
	if _, ok := v.Transfer("b", "c03"); ok {
		t.Errorf("Transfer(b, c03) found a transfer b never made")
	}
	if a, ok := v.Account("c"); !ok || !approx(a.Balance, 6) {
		t.Errorf("Account(c) = %+v, %v, want balance 6", a, ok)
	}
}

// TestMutualCreditJudgedByTime: the limit is judged in the order of "at",
// not in the order the transfers were synced or listed, so every replica
// flags the same transfers.
func TestMutualCreditJudgedByTime(t *testing.T) {
	credits := map[string][]crdt.Credit{
		"a": {credit("x2", "b", 12, 2)}, // listed first, but made after b's
		"b": {credit("x1", "a", 5, 1)},
	}
	v := crdt.MutualCredit([]string{"a", "b"}, credits, 10)
	if tr, _ := v.Transfer("a", "x2"); tr.OverLimit || !approx(tr.FromBalance, -7) {
		t.Errorf("a's 12 h after receiving 5 h: over %v, balance %v; want within the limit at -7", tr.OverLimit, tr.FromBalance)
	}
	v = crdt.MutualCredit([]string{"a", "b"}, credits, 6)
	if tr, _ := v.Transfer("a", "x2"); !tr.OverLimit {
		t.Errorf("with a limit of 6, a's transfer to -7 is not flagged")
	}
	if a, _ := v.Account("a"); !a.OverLimit {
		t.Errorf("account a at -7 with limit 6 is not over its limit")
	}
	// A zero limit: any net debt is over it.
	v = crdt.MutualCredit([]string{"a", "b"}, map[string][]crdt.Credit{"a": {credit("y", "b", 0.25, 0)}}, 0)
	if tr, _ := v.Transfer("a", "y"); !tr.OverLimit {
		t.Errorf("with a zero limit, a transfer into debt is not flagged")
	}
	// No members, no credits: an empty view, not a panic.
	if v := crdt.MutualCredit(nil, nil, 20); len(v.Accounts) != 0 || len(v.Transfers) != 0 {
		t.Errorf("MutualCredit(nil, nil) = %+v, want empty", v)
	}
}

// TestMutualCreditSumsToZero checks the invariant on random circles,
// including credits to oneself and to strangers.
func TestMutualCreditSumsToZero(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	members := []string{"a", "b", "c", "d", "e"}
	targets := append([]string{"stranger"}, members...)
	for round := 0; round < 50; round++ {
		credits := map[string][]crdt.Credit{}
		n := r.IntN(40)
		for i := 0; i < n; i++ {
			from := members[r.IntN(len(members))]
			c := credit(string(rune('A'+i)), targets[r.IntN(len(targets))], float64(r.IntN(100))/10+0.1, r.IntN(30))
			credits[from] = append(credits[from], c)
		}
		v := crdt.MutualCredit(members, credits, float64(r.IntN(20)))
		var sum, given, received float64
		for _, a := range v.Accounts {
			sum += a.Balance
			given += a.Given
			received += a.Received
			if !approx(a.Balance, a.Received-a.Given) {
				t.Errorf("round %d: %s balance %v, want received - given = %v", round, a.Member, a.Balance, a.Received-a.Given)
			}
		}
		if !approx(sum, 0) || !approx(given, received) {
			t.Errorf("round %d: balances sum to %v (given %v, received %v), want 0", round, sum, given, received)
		}
		if len(v.Transfers) != n {
			t.Errorf("round %d: %d transfers, want all %d", round, len(v.Transfers), n)
		}
	}
}
