package server

import (
	"context"
	"errors"
	"sort"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
	mobileapi "github.com/circles-coop/circles/mobile-api"
	"github.com/circles-coop/circles/mobile-api/wire"
)

// credits implements mobileapi.Credits: mutual credit in hours between
// members (DESIGN.md §1). Transfers live in their authors' ledgers; the
// balances and flags are derived by crdt.MutualCredit from the index.
type credits Server

var _ mobileapi.Credits = (*credits)(nil)

var errSameCredit = errors.New("identical credit already stored")

// CreateCredit writes a transfer from the caller into the caller's current
// ledger segment, as the server's actor, exactly as if the device had
// synced it. A retry with the same id and content answers created=false;
// other content, or an id another member used, → 409. Over REST the
// receiver must be another active member (400 otherwise); through sync any
// well-formed transfer is accepted and the view flags it instead. A
// transfer beyond the credit limit is stored and returned flagged.
func (cr *credits) CreateCredit(ctx context.Context, c mobileapi.Caller, in wire.Credit) (wire.Credit, bool, error) {
	s := (*Server)(cr)
	cred := crdt.Credit{ID: in.ID, To: in.To, Amount: in.Amount, Note: in.Note, At: in.At.UTC()}
	if err := cred.Validate(); err != nil {
		var re *crdt.RuleError
		if errors.As(err, &re) {
			return wire.Credit{}, false, mobileapi.Errorf(wire.CodeInvalidRequest, "%s", re.Message)
		}
		return wire.Credit{}, false, err
	}
	if cred.To == c.Member {
		return wire.Credit{}, false, mobileapi.Errorf(wire.CodeInvalidRequest, "field \"to\" must be another member: credit given to yourself moves nothing")
	}
	if to, ok := s.member(cred.To); !ok || !to.ActiveAt(s.now()) {
		return wire.Credit{}, false, mobileapi.Errorf(wire.CodeInvalidRequest, "field \"to\" must be an active member of this circle")
	}
	m, ok := s.member(c.Member)
	if !ok {
		return wire.Credit{}, false, errUnauthenticated
	}
	doc := string(m.CurrentLedger())
	err := s.engine.Update(ctx, doc, func(d *automerge.Doc) ([]byte, error) {
		// As for entries: the index is updated under the document's lock,
		// so this check and the write are atomic for this segment, and ids
		// are unique across segments through the index.
		if prev, ok := s.index.Credit(cred.ID); ok {
			if prev.Member == c.Member && prev.Credit.Same(cred) {
				return nil, errSameCredit
			}
			return nil, mobileapi.Errorf(wire.CodeConflict, "a credit with id %s already exists with other content; use a new id", cred.ID)
		}
		if err := crdt.PutCredit(d, cred); err != nil {
			return nil, err
		}
		return mustJSON(ledgerRecord{Member: c.Member, Credits: []crdt.Credit{cred}}), nil
	})
	created := true
	switch {
	case errors.Is(err, errSameCredit):
		created = false
	case err != nil:
		return wire.Credit{}, false, err
	}
	t, ok := s.creditView().Transfer(c.Member, cred.ID)
	if !ok { // cannot happen: the credit was just indexed
		t = crdt.CreditTransfer{Credit: cred, From: c.Member}
	}
	return creditToWire(t), created, nil
}

// ListCredits pages through the transfers a member gave or received (or
// all), in the order they were accepted, with the view's flags.
func (cr *credits) ListCredits(ctx context.Context, c mobileapi.Caller, member string, limit int, cursor string) (wire.CreditList, error) {
	s := (*Server)(cr)
	if member != "" {
		if _, ok := s.member(member); !ok {
			return wire.CreditList{}, mobileapi.Errorf(wire.CodeNotFound, "no member %q in this circle", member)
		}
	}
	items, next, err := s.index.CreditPage(member, cursor, limit)
	if err != nil {
		return wire.CreditList{}, mobileapi.Errorf(wire.CodeInvalidRequest, "query parameter \"cursor\" must be a next_cursor from an earlier page")
	}
	view := s.creditView()
	judged := make(map[string]crdt.CreditTransfer, len(view.Transfers))
	for _, t := range view.Transfers {
		judged[t.From+"\x00"+t.ID] = t
	}
	out := wire.CreditList{Credits: make([]wire.Credit, len(items)), NextCursor: next, Limit: s.creditLimit()}
	for i, it := range items {
		t, ok := judged[it.Member+"\x00"+it.Credit.ID]
		if !ok {
			t = crdt.CreditTransfer{Credit: it.Credit, From: it.Member}
		}
		out.Credits[i] = creditToWire(t)
	}
	return out, nil
}

func creditToWire(t crdt.CreditTransfer) wire.Credit {
	return wire.Credit{
		ID: t.ID, From: t.From, To: t.To, Amount: t.Amount, Note: t.Note, At: t.At,
		Counted: t.Counted, Problem: t.Problem, OverLimit: t.OverLimit, FromBalance: t.FromBalance,
	}
}

// creditLimit is the charter's credit.limit in hours.
func (s *Server) creditLimit() float64 { return s.pol.Float("credit.limit") }

// creditView derives the mutual-credit view over every member ever
// enrolled (removed ones keep the credit they hold or owe, so the
// balances still sum to zero).
func (s *Server) creditView() crdt.CreditView {
	s.mu.RLock()
	ids := make([]string, 0, len(s.roster.Members))
	for id := range s.roster.Members {
		ids = append(ids, id)
	}
	s.mu.RUnlock()
	sort.Strings(ids)
	return crdt.MutualCredit(ids, s.index.CreditsByAuthor(), s.creditLimit())
}
