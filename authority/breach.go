package authority

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/circles-coop/circles/crdt"
)

// EventCreditOverLimit is published (GET /v1/events) with the data of a
// credit.over_limit audit entry.
const EventCreditOverLimit = "credit.over_limit"

// breaches remembers which credits already have their credit.over_limit
// audit entry. The audit log is the record: the set is read from it once,
// on first use, so a restart never writes a second entry for a credit.
type breaches struct {
	mu     sync.Mutex // held while judging and writing, so one entry per credit
	loaded bool
	ids    map[string]bool
}

// overLimitData is the data of a credit.over_limit audit entry.
type overLimitData struct {
	Credit  string    `json:"credit"`
	Author  string    `json:"author"`
	To      string    `json:"to"`
	Amount  float64   `json:"amount"`
	At      time.Time `json:"at"`
	Balance float64   `json:"balance"` // the author's balance right after it
	Limit   float64   `json:"limit"`   // credit.limit when it was accepted
}

// auditBreaches writes a credit.over_limit audit entry for each of the
// given credits of author that the mutual-credit view flags over the
// limit now, right after they were accepted, unless it already has one.
// Only the credits just accepted are judged: a lower credit.limit later
// flags old transfers in the view, but those were not breaches when they
// were made. A failure is logged; a REST retry of the same credit judges
// it again.
//
// limit is the credit limit when the credits were accepted: judging runs
// in the background, and a lower limit passed meanwhile must not make a
// transfer that was within the limit a breach.
func (s *Credits) auditBreaches(ctx context.Context, author string, ids []string, limit float64) {
	if len(ids) == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx)
	b := &s.breaches
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.loaded {
		seen, err := s.readBreaches(ctx)
		if err != nil {
			s.log.Error("credit limit: read the audit log", "err", err)
			return
		}
		b.ids, b.loaded = seen, true
	}
	var view crdt.CreditView
	judged := false
	for _, id := range ids {
		if b.ids[id] {
			continue
		}
		if !judged {
			var err error
			if view, err = s.creditViewAt(limit); err != nil {
				s.log.Error("credit limit: judging credits", "err", err)
				return
			}
			judged = true
		}
		t, ok := view.Transfer(author, id)
		if !ok || !t.OverLimit {
			continue
		}
		acc, _ := view.Account(author)
		data := overLimitData{Credit: t.ID, Author: author, To: t.To, Amount: t.Amount, At: t.At, Balance: t.FromBalance, Limit: acc.Limit}
		if err := s.audit.Append(ctx, crdt.AuditCreditOverLimit, data); err != nil {
			s.log.Error("credit limit: audit entry", "credit", id, "err", err)
			continue
		}
		b.ids[id] = true
		s.log.Info("credit over the limit", "credit", id, "author", author, "balance", t.FromBalance, "limit", acc.Limit)
		s.events.Publish(EventCreditOverLimit, data)
	}
}

// readBreaches returns the credits the audit log has a credit.over_limit
// entry for.
func (s *Credits) readBreaches(ctx context.Context) (map[string]bool, error) {
	// Once per process: every segment of the log, one at a time.
	entries, err := s.readAuditFrom(ctx, 0, -1)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, e := range entries {
		if e.Kind != crdt.AuditCreditOverLimit {
			continue
		}
		var data overLimitData
		if err := json.Unmarshal(e.Data, &data); err != nil {
			return nil, fmt.Errorf("audit entry %d: %w", e.Seq, err)
		}
		out[data.Credit] = true
	}
	return out, nil
}

// judgeCredits judges, in the background, the credits a stored ledger
// record brought (a device's sync or a REST credit); committed calls it
// while the ledger's lock is held, so it cannot write other documents
// itself.
func (s *Credits) judgeCredits(rec chunkRecord) {
	if len(rec.Credits) == 0 {
		return
	}
	ids := make([]string, len(rec.Credits))
	for i, c := range rec.Credits {
		ids[i] = c.ID
	}
	limit := s.creditLimit() // as it stands now, when the credits are accepted
	s.tasks.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s.auditBreaches(ctx, rec.Member, ids, limit)
	})
}
