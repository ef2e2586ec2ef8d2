package authority

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/circles-coop/circles/authority/fault"
	"github.com/google/uuid"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/wire"
)

// Resets counts hard-reset signatures and executes the reset when a
// quorum of distinct members signed (DESIGN.md §6).
type Resets struct {
	*State
	audit      *Audit
	governance *Governance
	// replayed are the reset statements met while rebuilding the index;
	// those of the current epoch are counted again after start, in case
	// the server stopped before counting them. Only Open touches it.
	replayed []string
}

// Event types sent to connected clients (GET /v1/events).
const (
	EventResetSignature = "reset.signature"
	EventResetExecuted  = "reset.executed"
)

// resetOutcome is what one submitted signature led to.
type resetOutcome struct {
	Epoch      int64 // the circle's epoch after the submission
	Signatures int   // signatures that count now toward the next reset
	Needed     int
	Executed   bool
	Record     *crdt.ResetRecord // the reset this signature executed, if it did
}

// errAlreadyReset marks a statement for the epoch that a reset just ended:
// it arrived a moment after the signatures that executed the reset.
var errAlreadyReset = errors.New("already reset")

// submitReset counts a hard-reset statement (DESIGN.md §6). Statements
// come by REST or inside a member's ballots document; both end here, and
// the governance document's lock orders them, so of two signatures that
// arrive together as the third and the fourth exactly one executes the
// reset.
//
// strict (REST) refuses, with a *crdt.RuleError, a statement that does
// not count now. Otherwise (sync) a statement for the current epoch is
// kept even if it does not count yet — its member may pass
// reset.min_membership within the window — and the scheduler counts again
// as time passes.
func (s *Resets) submitReset(ctx context.Context, statement string, strict bool) (resetOutcome, error) {
	s.mu.RLock()
	roster := s.roster
	s.mu.RUnlock()
	sig, err := crdt.ParseReset(statement, s.meta.ID, roster)
	if err != nil {
		return resetOutcome{}, err
	}
	return s.countResets(ctx, &sig, strict)
}

// countResets adds sig (if any) to the pending signatures and executes the
// reset if the signatures that count now reach the quorum.
func (s *Resets) countResets(ctx context.Context, sig *crdt.ResetSignature, strict bool) (resetOutcome, error) {
	// Under s.gov, as the State says: a proposal's effect must not be
	// carried out between the epoch moving and the roles being vacated
	// (the kill -9 harness found a role.assign written after the vacating,
	// recorded before reset.executed, and held after the reset).
	s.gov.Lock()
	defer s.gov.Unlock()
	s.mu.RLock()
	roster := s.roster
	s.mu.RUnlock()
	var out resetOutcome
	now := s.now()
	err := s.updateGov(ctx, func(d *automerge.Doc) ([]byte, error) {
		epoch, err := crdt.ReadEpoch(d)
		if err != nil {
			return nil, err
		}
		out.Epoch, out.Needed = int64(epoch), s.policies().Int("reset.quorum")
		if sig != nil {
			if sig.Epoch == int64(epoch)-1 {
				if past, err := crdt.ReadResets(d); err == nil && len(past) > 0 && past[len(past)-1].Epoch == sig.Epoch {
					out.Executed = true
					return nil, errAlreadyReset
				}
			}
			if strict {
				if err := crdt.CheckReset(*sig, int64(epoch), roster, s.policies(), now); err != nil {
					return nil, err
				}
			}
			// Verified once, here; what was verified is kept, so counting
			// needs no cryptography (crdt.AdmitReset).
			kept, err := crdt.AdmitReset(d, *sig, roster, s.policies(), now)
			if err != nil {
				return nil, err
			}
			if !kept && !strict {
				return nil, errNothingPending // the member's live signature is already kept
			}
		}
		sigs, err := crdt.PendingResets(d)
		if err != nil {
			return nil, err
		}
		if len(sigs) == 0 {
			return nil, errNothingPending
		}
		counted, quorum := crdt.CountReset(sigs, int64(epoch), roster, s.policies(), now)
		out.Signatures, out.Needed = len(counted), quorum
		if len(counted) < quorum {
			if sig == nil {
				return nil, errNothingPending // a recount that changes nothing writes nothing
			}
			return nil, nil
		}
		rec := crdt.ResetRecord{Epoch: int64(epoch), At: now, Signatures: counted}
		if err := crdt.RecordReset(d, rec); err != nil {
			return nil, err
		}
		out.Executed, out.Record, out.Epoch, out.Signatures = true, &rec, int64(epoch)+1, 0
		return nil, nil
	})
	switch {
	case errors.Is(err, errAlreadyReset), errors.Is(err, errNothingPending):
		return out, nil
	case err != nil:
		return resetOutcome{}, err
	}
	if sig != nil {
		s.events.Publish(EventResetSignature, map[string]any{
			"member": sig.Member, "epoch": sig.Epoch, "signatures": out.Signatures, "needed": out.Needed, "executed": out.Executed,
		})
	}
	if out.Record != nil {
		if err := s.afterReset(ctx, *out.Record, false); err != nil {
			s.log.Error("hard reset executed but not finished; Tick finishes it", "epoch", out.Record.Epoch, "err", err)
		}
	}
	return out, nil
}

// errNothingPending ends a recount that has nothing to write.
var errNothingPending = errors.New("nothing to count")

// afterReset carries out an executed reset: every role vacated, every
// mandate revoked, the charter flagged for re-ratification, the audit
// entry written, everyone told. The epoch moved first (in the same write
// as the reset's record), so no signature can count twice; the
// reset.executed audit entry is written last and marks the reset
// finished. A server that stops before it finishes the reset at start,
// or on the next Tick (finishReset): each step is safe to run again. The
// caller holds s.gov.
func (s *Resets) afterReset(ctx context.Context, rec crdt.ResetRecord, finishing bool) error {
	ctx = context.WithoutCancel(ctx)
	now := s.now()
	vacated, revoked := 0, 0
	err := s.writeRoster(ctx, func(d *automerge.Doc) error {
		r, err := crdt.ReadRoster(d)
		if err != nil {
			return err
		}
		for _, role := range r.Roles {
			if role.Holder == "" && role.PreviousHolder == "" {
				continue
			}
			if role.Holder != "" {
				vacated++
			}
			v := crdt.VacateRole(*role)
			if err := crdt.PutRole(d, &v); err != nil {
				return err
			}
		}
		for _, m := range r.Mandates {
			if m.StatusAt(now) != crdt.MandateActive {
				continue
			}
			m.Status = crdt.MandateRevoked
			if err := crdt.PutMandate(d, m); err != nil {
				return err
			}
			revoked++
		}
		return nil
	})
	if err != nil && !errors.Is(err, errNoChange) {
		return fmt.Errorf("reset: vacate roles and revoke mandates: %w", err)
	}
	err = s.engine.Update(ctx, string(s.meta.Docs[crdt.KindCharter]), func(d *automerge.Doc) ([]byte, error) {
		ch, err := crdt.ReadCharter(d)
		if err != nil {
			return nil, err
		}
		ch.Status = crdt.CharterNeedsRatification
		return nil, crdt.PutCharter(d, ch)
	})
	if err != nil {
		return fmt.Errorf("reset: flag the charter: %w", err)
	}
	cancelled, err := s.cancelOpenProposals(ctx, rec)
	if err != nil {
		return fmt.Errorf("reset: cancel open proposals: %w", err)
	}
	ratify, err := s.openRatification(ctx, rec)
	if err != nil {
		return fmt.Errorf("reset: open the charter's ratification: %w", err)
	}
	members := make([]string, len(rec.Signatures))
	statements := make([]string, len(rec.Signatures))
	for i, sig := range rec.Signatures {
		members[i], statements[i] = sig.Member, sig.Statement
	}
	data := map[string]any{
		"epoch": rec.Epoch, "new_epoch": rec.Epoch + 1, "members": members, "statements": statements,
		"roles_vacated": vacated, "mandates_revoked": revoked,
		"proposals_cancelled": cancelled, "ratification": ratify,
	}
	if finishing {
		// Counted when the server finished the reset after a stop: what an
		// interrupted first attempt had already vacated is not counted.
		data["finished_after_stop"] = true
	}
	if err := s.audit.AppendOnce(ctx, rec.At, crdt.AuditResetExecuted, data, auditFor(crdt.AuditResetExecuted, "epoch", rec.Epoch)); err != nil {
		return fmt.Errorf("reset: audit entry: %w", err)
	}
	s.log.Warn("hard reset executed", "epoch", rec.Epoch, "by", members, "roles_vacated", vacated, "mandates_revoked", revoked)
	s.events.Publish(EventResetExecuted, map[string]any{"epoch": rec.Epoch + 1, "members": members, "roles_vacated": vacated, "mandates_revoked": revoked})
	return nil
}

// cancelOpenProposals cancels every proposal that was open when reset rec
// executed: a role.assign passed afterwards must not quietly refill a role
// the reset emptied. It returns their ids. Running it again cancels
// nothing more (the ratification the reset opens opened after rec.At).
//
// The caller holds s.gov (countResets, finishReset).
func (s *Resets) cancelOpenProposals(ctx context.Context, rec crdt.ResetRecord) ([]string, error) {
	err := s.updateGov(ctx, func(d *automerge.Doc) ([]byte, error) {
		ids, err := crdt.CancelOpenProposals(d, fmt.Sprintf("cancelled by the hard reset that ended epoch %d", rec.Epoch), rec.At)
		if err == nil && len(ids) == 0 {
			err = errNoChange
		}
		return nil, err
	})
	if err != nil && !errors.Is(err, errNoChange) {
		return nil, err
	}
	// Every proposal this reset cancelled, also by an attempt that
	// stopped before its audit entry: they carry the reset's time as
	// their decision time (found by the crash harness: a finished reset
	// named none of them).
	states, err := s.readProposals(ctx)
	if err != nil {
		return nil, err
	}
	ids := []string{}
	for _, st := range states {
		if st.Status == crdt.ProposalCancelled && st.DecidedAt != nil && st.DecidedAt.Equal(rec.At) {
			ids = append(ids, st.ID)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// openRatification opens the charter.ratify proposal a reset calls for
// (the charter needs ratification again), by the circle itself, with an
// id fixed by the reset, so it opens once however often it is tried.
func (s *Resets) openRatification(ctx context.Context, rec crdt.ResetRecord) (string, error) {
	id := uuid.NewSHA1(uuid.NameSpaceURL, []byte(fmt.Sprintf("circles:%s/reset/%d/ratify", s.meta.ID, rec.Epoch))).String()
	p := crdt.Proposal{
		ID:      id,
		Kind:    crdt.ProposalCharterRatify,
		Title:   "Ratify the charter again after the hard reset",
		Body:    fmt.Sprintf("A hard reset ended epoch %d on %s: every role and mandate was dissolved and the charter needs ratifying again. Passing this proposal ratifies the charter draft as it stands.", rec.Epoch, rec.At.UTC().Format(time.DateOnly)),
		Payload: map[string]any{},
		At:      s.now(),
	}
	if _, _, err := s.governance.openProposalLocked(ctx, p, authorCircle); err != nil { // s.gov is held
		return "", err
	}
	return id, nil
}

// finishReset finishes the circle's last reset if its audit entry is
// missing: the server stopped (or a write failed) after the epoch moved
// and before afterReset was done.
func (s *Resets) finishReset(ctx context.Context) error {
	s.gov.Lock()
	defer s.gov.Unlock()
	var last *crdt.ResetRecord
	err := s.viewGov(ctx, func(d *automerge.Doc) error {
		past, err := crdt.ReadResets(d)
		if len(past) > 0 {
			last = &past[len(past)-1]
		}
		return err
	})
	if err != nil || last == nil {
		return err
	}
	done, err := s.findAudit(ctx, last.At, auditFor(crdt.AuditResetExecuted, "epoch", last.Epoch))
	if err != nil || done {
		return err
	}
	s.log.Warn("finishing a hard reset that was interrupted", "epoch", last.Epoch)
	return s.afterReset(ctx, *last, true)
}

// Sign counts a reset statement sent over REST.
func (s *Resets) Sign(ctx context.Context, c Caller, statement string) (wire.ResetStatus, error) {
	if statement == "" {
		return wire.ResetStatus{}, fault.Errorf(fault.InvalidRequest, "field \"statement\" is required: a reset statement JWT signed by your device")
	}
	out, err := s.submitReset(ctx, statement, true)
	if err != nil {
		return wire.ResetStatus{}, err
	}
	return wire.ResetStatus{Epoch: out.Epoch, Signatures: out.Signatures, Needed: out.Needed, Executed: out.Executed}, nil
}

// Status lists the epoch, the pending signatures (and whether each counts
// now) and the past resets.
func (s *Resets) Status(ctx context.Context, c Caller) (wire.Resets, error) {
	s.mu.RLock()
	roster := s.roster
	s.mu.RUnlock()
	now := s.now()
	var out wire.Resets
	err := s.viewGov(ctx, func(d *automerge.Doc) error {
		epoch, err := crdt.ReadEpoch(d)
		if err != nil {
			return err
		}
		out.Epoch, out.Needed = int64(epoch), s.policies().Int("reset.quorum")
		out.Window = s.policies().Duration("reset.window").String()
		sigs, err := crdt.PendingResets(d)
		if err != nil {
			return err
		}
		for _, sig := range sigs {
			p := wire.ResetSignature{JTI: sig.JTI, Member: sig.Member, Device: sig.Device, Reason: sig.Reason, IssuedAt: sig.IssuedAt, Counts: true}
			if err := crdt.CheckReset(sig, int64(epoch), roster, s.policies(), now); err != nil {
				p.Counts, p.Problem = false, err.Error()
			}
			out.Pending = append(out.Pending, p)
		}
		counted, _ := crdt.CountReset(sigs, int64(epoch), roster, s.policies(), now)
		out.Signatures = len(counted)
		past, err := crdt.ReadResets(d)
		if err != nil {
			return err
		}
		for _, r := range past {
			wr := wire.PastReset{Epoch: r.Epoch, At: r.At}
			for _, sig := range r.Signatures {
				wr.Signatures = append(wr.Signatures, wire.ResetSignature{JTI: sig.JTI, Member: sig.Member, Device: sig.Device, Reason: sig.Reason, IssuedAt: sig.IssuedAt, Counts: true, Statement: sig.Statement})
			}
			out.Past = append(out.Past, wr)
		}
		return nil
	})
	if out.Pending == nil {
		out.Pending = []wire.ResetSignature{}
	}
	if out.Past == nil {
		out.Past = []wire.PastReset{}
	}
	return out, err
}

// resubmitResets counts, in the background, reset statements that arrived
// inside ballots documents. A statement that does not count is logged.
func (s *Resets) resubmitResets(statements []string) {
	for _, st := range statements {
		s.tasks.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := s.submitReset(ctx, st, false); err != nil {
				s.log.Info("reset statement from a ballots document does not count", "err", err)
			}
		})
	}
}

// recountResets resubmits, after a restart, the reset statements of the
// current epoch found in ballots documents.
//
// It first moves the statements an earlier version kept by jti into the
// per-member pending signatures (crdt.MigratePendingResets).
func (s *Resets) recountResets(ctx context.Context) error {
	var epoch int
	err := s.updateGov(ctx, func(d *automerge.Doc) ([]byte, error) {
		var err error
		if epoch, err = crdt.ReadEpoch(d); err != nil {
			return nil, err
		}
		_, err = crdt.MigratePendingResets(d, s.meta.ID, s.roster, s.policies(), s.now())
		return nil, err
	})
	if err != nil {
		return fmt.Errorf("read epoch: %w", err)
	}
	var current []string
	for _, st := range s.replayed {
		if sig, err := crdt.ParseReset(st, s.meta.ID, s.roster); err == nil && sig.Epoch == int64(epoch) {
			current = append(current, st)
		}
	}
	s.replayed = nil
	s.resubmitResets(current)
	return s.finishReset(ctx)
}
