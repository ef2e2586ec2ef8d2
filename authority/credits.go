package authority

import (
	"cmp"
	"context"
	"errors"
	"sort"
	"strconv"
	"strings"

	"github.com/circles-coop/circles/authority/fault"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/wire"
)

// Credits are the members' mutual credit (in hours, summing to zero):
// transfers, the credit view with its limit, and the credit.over_limit
// audit entries of breaches (breach.go).
type Credits struct {
	*State
	audit *Audit
	// breaches are the credits with a credit.over_limit audit entry
	// (breach.go).
	breaches breaches
}

// credits implements mobileapi.Credits: mutual credit in hours between
// members (DESIGN.md §1). Transfers live in their authors' ledgers; the
// balances and flags are derived by crdt.MutualCredit from the index.

var errSameCredit = errors.New("identical credit already stored")

// CreateCredit writes a transfer from the caller into the caller's current
// ledger segment, as the server's actor, exactly as if the device had
// synced it. A retry with the same id and content answers created=false;
// other content, or an id another member used, → 409. Over REST the
// receiver must be another active member (400 otherwise); through sync any
// well-formed transfer is accepted and the view flags it instead. A
// transfer beyond the credit limit is stored and returned flagged, and
// gets a credit.over_limit audit entry.
func (s *Credits) CreateCredit(ctx context.Context, c Caller, in wire.Credit) (wire.Credit, bool, error) {
	cred := crdt.Credit{ID: in.ID, To: in.To, Amount: in.Amount, Note: in.Note, At: in.At.UTC()}
	if err := cred.Validate(); err != nil {
		var re *crdt.RuleError
		if errors.As(err, &re) {
			return wire.Credit{}, false, fault.Errorf(fault.InvalidRequest, "%s", re.Message)
		}
		return wire.Credit{}, false, err
	}
	if cred.To == c.Member {
		return wire.Credit{}, false, fault.Errorf(fault.InvalidRequest, "field \"to\" must be another member: credit given to yourself moves nothing")
	}
	if to, ok := s.member(cred.To); !ok || !to.ActiveAt(s.now()) {
		return wire.Credit{}, false, fault.Errorf(fault.InvalidRequest, "field \"to\" must be an active member of this circle")
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
		prev, ok, err := s.index.Credit(cred.ID)
		if err != nil {
			return nil, err
		}
		if ok {
			if prev.Member == c.Member && prev.Credit.Same(cred) {
				return nil, errSameCredit
			}
			return nil, fault.Errorf(fault.Conflict, "a credit with id %s already exists with other content; use a new id", cred.ID)
		}
		if err := crdt.PutCredit(d, cred); err != nil {
			return nil, err
		}
		return mustJSON(chunkRecord{Member: c.Member, Credits: []crdt.Credit{cred}}), nil
	})
	created := true
	switch {
	case errors.Is(err, errSameCredit):
		created = false
	case err != nil:
		return wire.Credit{}, false, err
	}
	// committed judges the credit too, in the background; judging here
	// as well puts a breach in the audit log before the answer (once:
	// auditBreaches keeps one entry per credit), and a retry writes an
	// entry that failed the first time.
	s.auditBreaches(ctx, c.Member, []string{cred.ID}, s.creditLimit())
	view, err := s.creditView()
	if err != nil {
		return wire.Credit{}, false, err
	}
	t, ok := view.Transfer(c.Member, cred.ID)
	if !ok { // cannot happen: the credit was just indexed
		t = crdt.CreditTransfer{Credit: cred, From: c.Member}
	}
	return creditToWire(t), created, nil
}

// ListCredits pages through the transfers a member gave or received (or
// all), with the view's flags, in the order the view judges them: by
// "at", then id, then author. That order is the same on every replica and
// after every restart (the index's acceptance order is not: it is rebuilt
// segment by segment). The cursor is the last transfer's sort key; a
// transfer synced later with an earlier "at" appears before it, so on a
// page already read.
func (s *Credits) ListCredits(ctx context.Context, c Caller, member string, limit int, cursor string) (wire.CreditList, error) {
	if member != "" {
		if _, ok := s.member(member); !ok {
			return wire.CreditList{}, fault.Errorf(fault.NotFound, "no member %q in this circle", member)
		}
	}
	var after creditKey
	if cursor != "" {
		var ok bool
		if after, ok = parseCreditKey(cursor); !ok {
			return wire.CreditList{}, fault.Errorf(fault.InvalidRequest, "query parameter \"cursor\" must be a next_cursor from an earlier page")
		}
	}
	view, err := s.creditView()
	if err != nil {
		return wire.CreditList{}, err
	}
	out := wire.CreditList{Credits: []wire.Credit{}, Limit: s.creditLimit()}
	// The transfers are sorted by their keys: find the first after the
	// cursor, then filter.
	start := 0
	if cursor != "" {
		start = sort.Search(len(view.Transfers), func(i int) bool { return keyOf(view.Transfers[i]).compare(after) > 0 })
	}
	var last creditKey
	for _, t := range view.Transfers[start:] {
		if member != "" && t.From != member && t.To != member {
			continue
		}
		if len(out.Credits) == limit {
			out.NextCursor = last.String()
			break
		}
		out.Credits = append(out.Credits, creditToWire(t))
		last = keyOf(t)
	}
	return out, nil
}

// creditKey is a transfer's place in the view's order, and the cursor of
// GET /v1/credits: "<at in Unix nanoseconds>~<id>~<author>" ("~" is in no
// id).
type creditKey struct {
	at     int64
	id     string
	author string
}

func keyOf(t crdt.CreditTransfer) creditKey {
	return creditKey{at: t.At.UnixNano(), id: t.ID, author: t.From}
}

func (k creditKey) compare(o creditKey) int {
	return cmp.Or(cmp.Compare(k.at, o.at), strings.Compare(k.id, o.id), strings.Compare(k.author, o.author))
}

func (k creditKey) String() string {
	return strconv.FormatInt(k.at, 10) + "~" + k.id + "~" + k.author
}

func parseCreditKey(s string) (creditKey, bool) {
	parts := strings.Split(s, "~")
	if len(parts) != 3 || parts[1] == "" || parts[2] == "" {
		return creditKey{}, false
	}
	at, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil {
		return creditKey{}, false
	}
	return creditKey{at: at, id: parts[1], author: parts[2]}, true
}

func creditToWire(t crdt.CreditTransfer) wire.Credit {
	return wire.Credit{
		ID: t.ID, From: t.From, To: t.To, Amount: t.Amount, Note: t.Note, At: t.At,
		Counted: t.Counted, Problem: t.Problem, OverLimit: t.OverLimit, FromBalance: t.FromBalance,
	}
}

// creditLimit is the charter's credit.limit in hours.
func (s *Credits) creditLimit() float64 { return s.policies().Float("credit.limit") }

// creditView derives the mutual-credit view over every member ever
// enrolled (removed ones keep the credit they hold or owe, so the
// balances still sum to zero).
func (s *Credits) creditView() (crdt.CreditView, error) { return s.creditViewAt(s.creditLimit()) }

// creditViewAt is creditView with the given credit limit.
func (s *Credits) creditViewAt(limit float64) (crdt.CreditView, error) {
	s.mu.RLock()
	ids := make([]string, 0, len(s.roster.Members))
	for id := range s.roster.Members {
		ids = append(ids, id)
	}
	s.mu.RUnlock()
	sort.Strings(ids)
	byAuthor, err := s.index.CreditsByAuthor()
	if err != nil {
		return crdt.CreditView{}, err
	}
	return crdt.MutualCredit(ids, byAuthor, limit), nil
}
