package crdt

import (
	"cmp"
	"slices"
	"strings"
)

// Problems that keep a credit transfer from moving any balance in the
// mutual-credit view. The write rules accept any well-formed credit (a
// device offline cannot always know the roster, and refusing a change it
// already committed would block every later sync of that device), so
// such transfers are kept in the ledger and shown with their problem.
const (
	CreditProblemSelf          = "self"           // To is the author
	CreditProblemUnknownMember = "unknown_member" // To (or the author) is not a member of the circle
)

// creditEpsilon absorbs the float noise of sums of fractional hours, so a
// balance of exactly -limit reached in steps of 0.1 h is not over it.
const creditEpsilon = 1e-9

// CreditTransfer is one credit as the mutual-credit view judged it.
type CreditTransfer struct {
	Credit
	From string // author: the member whose ledger holds the credit
	// Counted is true when the transfer moved Amount from From to To.
	Counted bool
	// Problem says why a transfer was not counted; "" when it was.
	Problem string
	// OverLimit is true when a counted transfer left its author's balance
	// below minus the author's credit limit.
	OverLimit bool
	// FromBalance is the author's credit balance right after the
	// transfer, in the order the view judges transfers.
	FromBalance float64
}

// CreditAccount is one member's mutual-credit position.
type CreditAccount struct {
	Member   string
	Given    float64 // sum of the counted credits the member issued
	Received float64 // sum of the counted credits issued to the member
	Balance  float64 // Received - Given; all balances sum to zero
	Limit    float64 // how far Balance may go below zero (credit.limit)
	// OverLimit is true when Balance is below -Limit.
	OverLimit bool
}

// CreditView is the circle's mutual-credit view: every member's account
// and every transfer with its flags.
type CreditView struct {
	Accounts  []CreditAccount  // in the order of the members given, without duplicates
	Transfers []CreditTransfer // in the order judged: by At, then ID, then author
}

// Account returns the account of member, and false if the member was not
// listed.
func (v CreditView) Account(member string) (CreditAccount, bool) {
	for _, a := range v.Accounts {
		if a.Member == member {
			return a, true
		}
	}
	return CreditAccount{}, false
}

// Transfer returns the transfer of the given author and id, and false if
// there is none.
func (v CreditView) Transfer(author, id string) (CreditTransfer, bool) {
	for _, t := range v.Transfers {
		if t.From == author && t.ID == id {
			return t, true
		}
	}
	return CreditTransfer{}, false
}

// MutualCredit derives the circle's mutual-credit view (DESIGN.md §1)
// from the credits each author issued (credits maps an author's member id
// to all the credits of all their ledger segments). members are the
// circle's members — every member ever enrolled, removed ones included,
// since credit they hold or owe stays real — and limit is the charter's
// credit.limit in hours, the same for every member.
//
// The rules:
//
//   - A credit whose id appears twice for one author counts once (the
//     first). Authors with no credits still get an account.
//   - Transfers are judged in the order of their "at", then id, then
//     author: the order the members say things happened, which every
//     replica can compute from the documents alone, whatever order they
//     were synced in.
//   - A transfer is counted when its author and its receiver are two
//     distinct listed members; it then moves Amount from the author to the
//     receiver: the author's Balance goes down by Amount, the receiver's up.
//     A credit to oneself (problem "self") or to someone who is not a
//     member (problem "unknown_member") is kept but moves nothing. So the
//     balances always sum to zero over the listed members.
//   - The limit rule: a member's balance may not go below -limit. A
//     counted transfer is flagged OverLimit when it leaves its author's
//     balance below -limit (with 1e-9 h of tolerance for float sums); it
//     is still counted: the hours were given, the flag is the circle's
//     warning, and nothing accepted is ever dropped. A member already
//     below -limit (say after the limit was lowered, since every transfer
//     is judged with the current limit) has each further transfer they
//     issue flagged until credit received brings them back within it.
//     Receiving credit is never flagged.
//   - An account is OverLimit when its final Balance is below -limit.
func MutualCredit(members []string, credits map[string][]Credit, limit float64) CreditView {
	index := make(map[string]int, len(members))
	view := CreditView{Accounts: make([]CreditAccount, 0, len(members))}
	for _, m := range members {
		if _, dup := index[m]; dup {
			continue
		}
		index[m] = len(view.Accounts)
		view.Accounts = append(view.Accounts, CreditAccount{Member: m, Limit: limit})
	}

	for author, list := range credits {
		seen := make(map[string]bool, len(list))
		for _, c := range list {
			if seen[c.ID] {
				continue
			}
			seen[c.ID] = true
			view.Transfers = append(view.Transfers, CreditTransfer{Credit: c, From: author})
		}
	}
	slices.SortFunc(view.Transfers, func(a, b CreditTransfer) int {
		return cmp.Or(a.At.Compare(b.At), strings.Compare(a.ID, b.ID), strings.Compare(a.From, b.From))
	})

	for i := range view.Transfers {
		t := &view.Transfers[i]
		from, fromOK := index[t.From]
		to, toOK := index[t.To]
		switch {
		case !fromOK || !toOK:
			t.Problem = CreditProblemUnknownMember
		case from == to:
			t.Problem = CreditProblemSelf
		default:
			t.Counted = true
			view.Accounts[from].Given += t.Amount
			view.Accounts[from].Balance -= t.Amount
			view.Accounts[to].Received += t.Amount
			view.Accounts[to].Balance += t.Amount
			t.OverLimit = view.Accounts[from].Balance < -limit-creditEpsilon
		}
		if fromOK {
			t.FromBalance = view.Accounts[from].Balance
		}
	}
	for i := range view.Accounts {
		a := &view.Accounts[i]
		a.OverLimit = a.Balance < -a.Limit-creditEpsilon
	}
	return view
}
