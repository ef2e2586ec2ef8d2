package authority

import (
	"encoding/json"
	"fmt"
)

// Dispatcher is what happens after the engine stored a change: the
// engine calls Committed with the records the Policy returned for it
// (chunkRecord), and the dispatcher hands each part to the feature that
// owns it — entries and credits to the index, reset statements to
// Resets, proposals and votes to Governance, credits to the breach check
// of Credits — then lets Ledger open a new segment if this one is full.
// At start, replay feeds the same records to the index and keeps what
// must be counted again.
type Dispatcher struct {
	*State
	resets     *Resets
	governance *Governance
	credits    *Credits
	ledger     *Ledger
}

// Committed is the engine's Committed callback: it indexes stored records,
// counts reset statements, proposals and votes that came inside ballots
// documents, and judges new credits against the credit limit.
func (s *Dispatcher) Committed(doc string, seq uint64, records [][]byte) {
	accepted := s.takeAccepted(doc)
	pos := 0
	for _, r := range records {
		rec, n, err := s.indexRecord(doc, seq, pos, r, accepted)
		pos += n
		if err != nil {
			s.log.Error("index record", "doc", doc, "err", err)
			continue
		}
		if len(rec.Resets) > 0 {
			s.resets.resubmitResets(rec.Resets)
		}
		if len(rec.Proposals)+len(rec.Votes) > 0 {
			s.governance.countBallots(ballotItems{Member: rec.Member, Proposals: rec.Proposals, Votes: rec.Votes})
		}
		s.credits.judgeCredits(rec)
	}
	s.ledger.maybeNewSegment(doc)
	s.ledger.afterCommit(doc) // snapshots.go
	s.maybeNewBallots(doc)    // ballotsegments.go
}

// replay feeds the index from the store at start, and keeps the reset
// statements it meets for Resets.recountResets and the proposals and votes for
// Governance.recountBallots.
func (s *Dispatcher) replay(doc string, seq uint64, records [][]byte) error {
	pos := 0
	for _, r := range records {
		rec, n, err := s.indexRecord(doc, seq, pos, r, nil)
		pos += n
		if err != nil {
			return fmt.Errorf("doc %s: %w", doc, err)
		}
		s.resets.replayed = append(s.resets.replayed, rec.Resets...)
		if len(rec.Proposals)+len(rec.Votes) > 0 {
			s.governance.replayed = append(s.governance.replayed, ballotItems{Member: rec.Member, Proposals: rec.Proposals, Votes: rec.Votes})
		}
	}
	return nil
}

// indexRecord adds a stored record to the index: the form Accept made it
// from when accepted holds it, else the record decoded.
func (s *Dispatcher) indexRecord(doc string, seq uint64, pos int, raw []byte, accepted []acceptedRecord) (chunkRecord, int, error) {
	rec, ok := findAccepted(accepted, raw)
	if !ok {
		if err := json.Unmarshal(raw, &rec); err != nil {
			return rec, 0, fmt.Errorf("decode ledger record: %w", err)
		}
	}
	n, err := s.index.Add(doc, seq, pos, rec)
	return rec, n, err
}
