package authority

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/circles-coop/circles/authority/fault"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
)

// Governance opens proposals, counts votes, decides with crdt.Decide and
// carries out what passed (effects.go); it also lists the roles and
// mandates as decided.
type Governance struct {
	*State
	audit *Audit
	draws *Draws
	// replayed are the proposals and votes met while rebuilding the index,
	// counted again after start. Only Open touches it.
	replayed []ballotItems
}

// Event types of proposals (GET /v1/events).
const (
	EventProposalOpened  = "proposal.opened"
	EventProposalDecided = "proposal.decided"
)

// Proposals and votes (API.md "Governance") arrive by REST or inside
// members' ballots documents; both end in openProposal and castVote. The
// governance document holds every proposal with its votes and outcome
// (crdt/proposals.go); the rule that decides is crdt.Decide.
//
// One proposal is handled at a time (s.gov): deciding one and carrying out
// its effect touch several documents — governance, then the roster or the
// charter, then the audit log — each under its own lock, never two at
// once. The steps are ordered so a crash in between loses nothing: the
// vote is stored before the decision, the decision ("passed") before the
// effect, and "applied" only after it; Tick and the start of the server
// finish what was left (a passed proposal not yet applied is applied
// again, which every effect detects and skips if it had already happened).

// proposalStep is what one update of the governance document did to a
// proposal.
type proposalStep struct {
	st       crdt.ProposalState // after the update
	found    bool
	opened   bool   // this update opened it
	existed  bool   // an identical proposal was already there
	refusal  error  // why the submission was not recorded; nil if it was
	rejected bool   // this update rejected it
	pass     bool   // crdt.Decide says it passes; passProposal checks its effect
	wrote    bool   // the update changed the document
	reason   string // crdt.Decide's reason
	tally    crdt.Tally
}

// stepProposal runs fn on the governance document, then decides proposal
// id if its outcome is settled: a rejection is written at once, a pass is
// left to passProposal, which checks that its effect can be carried out
// first. fn reports refusals in step.refusal and returns nil, so that a
// refused submission still lets a due decision be made. The caller holds
// s.gov.
//
// fn sets step.wrote when it changes the document: automerge refuses an
// empty commit, so an update that writes nothing must not commit.
func (s *Governance) stepProposal(ctx context.Context, id string, fn func(d *automerge.Doc, now time.Time, step *proposalStep) error) (proposalStep, error) {
	now := s.now()
	voters := s.activeVoters(now)
	pol := s.policies()
	var step proposalStep
	err := s.updateGov(ctx, func(d *automerge.Doc) ([]byte, error) {
		step = proposalStep{}
		if fn != nil {
			if err := fn(d, now, &step); err != nil {
				return nil, err
			}
		}
		st, ok, err := crdt.LookupProposalState(d, id)
		if err != nil {
			return nil, err
		}
		if !ok {
			if !step.wrote {
				return nil, errNoChange
			}
			return nil, nil
		}
		step.found = true
		if st.Status == crdt.ProposalOpen {
			dec := crdt.Decide(st.Choices(), eligibleAt(voters, st.OpenedAt), pol, !now.Before(st.ClosesAt))
			step.tally = dec.Tally
			switch dec.Status {
			case crdt.ProposalRejected:
				if err := crdt.DecideProposal(d, id, dec.Status, dec.Reason, now); err != nil {
					return nil, err
				}
				st.Status, st.Reason, st.DecidedAt = dec.Status, dec.Reason, &now
				step.rejected, step.wrote = true, true
			case crdt.ProposalPassed:
				step.pass, step.reason = true, dec.Reason
			}
		}
		step.st = st
		if !step.wrote {
			return nil, errNoChange
		}
		return nil, nil
	})
	if errors.Is(err, errNoChange) {
		err = nil
	}
	return step, err
}

// errNoChange ends an update of the governance document that has nothing
// to write.
var errNoChange = errors.New("nothing to write")

// finishStep tells what a step did (audit log, events) and, when the
// proposal passes, carries it out. It returns the proposal as it stands
// after. The caller holds s.gov.
func (s *Governance) finishStep(ctx context.Context, step proposalStep) crdt.ProposalState {
	ctx = context.WithoutCancel(ctx)
	st := step.st
	if step.opened {
		if err := s.audit.Append(ctx, crdt.AuditProposalOpened, map[string]any{
			"id": st.ID, "kind": st.Kind, "title": st.Title, "author": st.Author, "payload": payloadOf(st.Payload),
			"opened_at": st.OpenedAt, "closes_at": st.ClosesAt,
		}); err != nil {
			s.log.Error("proposal: audit entry", "proposal", st.ID, "err", err)
		}
		s.events.Publish(EventProposalOpened, map[string]any{"id": st.ID, "kind": st.Kind, "title": st.Title, "author": st.Author, "closes_at": st.ClosesAt})
		// A role.draw's round opens when it passes (drawseeds.go).
	}
	switch {
	case step.rejected:
		// Not recorded until both writes are done; Tick finishes it
		// otherwise (finishDecided).
		if err := s.decided(ctx, st, step.tally); err != nil {
			s.log.Error("proposal: audit entry of the decision", "proposal", st.ID, "err", err)
		} else if err := s.markRecorded(ctx, st.ID, false); err != nil {
			s.log.Error("proposal: mark recorded", "proposal", st.ID, "err", err)
		} else {
			st.Recorded = true
		}
	case step.pass:
		next, err := s.passProposal(ctx, st, step.reason, step.tally)
		if err != nil {
			// Left open: the next Tick decides it again.
			s.log.Error("proposal: pass", "proposal", st.ID, "err", err)
			return st
		}
		st = next
	}
	if st.Recorded {
		s.maybeArchive(ctx)
	}
	return st
}

// passProposal decides for a proposal that crdt.Decide passes: if its
// effect can be carried out it is marked passed and carried out at once,
// otherwise it is rejected with the reason. The caller holds s.gov.
//
// Each step is written before the next starts, so a server that stops
// anywhere finishes the rest later (finishDecided): the decision, with the
// audit entry its effect will have (crdt.PlanEffectAudit); the decision's
// audit entry; the effect; the effect's audit entry; then "applied" and
// "recorded". Audit entries are written with AppendOnce, so finishing
// never records anything twice.
func (s *Governance) passProposal(ctx context.Context, st crdt.ProposalState, reason string, tally crdt.Tally) (crdt.ProposalState, error) {
	at := s.now()
	eff, err := s.planEffect(ctx, st, at, false)
	status := crdt.ProposalPassed
	var re *crdt.RuleError
	switch {
	case errors.As(err, &re):
		status, reason = crdt.ProposalRejected, "passed the vote but cannot take effect: "+re.Message
	case err != nil:
		return st, err
	}
	var planned *crdt.PlannedAudit
	if status == crdt.ProposalPassed && eff.audit != "" {
		planned = &crdt.PlannedAudit{Kind: eff.audit, Data: string(mustJSON(eff.data))}
	}
	err = s.updateGov(ctx, func(d *automerge.Doc) ([]byte, error) {
		if err := crdt.DecideProposal(d, st.ID, status, reason, at); err != nil {
			return nil, err
		}
		if planned != nil {
			return nil, crdt.PlanEffectAudit(d, st.ID, *planned)
		}
		return nil, nil
	})
	if err != nil {
		return st, err
	}
	st.Status, st.Reason, st.DecidedAt, st.EffectAudit = status, reason, &at, planned
	if err := s.decided(ctx, st, tally); err != nil {
		s.log.Error("proposal: audit entry of the decision", "proposal", st.ID, "err", err) // Tick records it
		return st, nil
	}
	if status == crdt.ProposalPassed {
		if err := s.applyEffect(ctx, st, eff); err != nil {
			s.log.Error("proposal: carry out", "proposal", st.ID, "err", err) // Tick tries again
			return st, nil
		}
		st.Applied = true
	} else if err := s.markRecorded(ctx, st.ID, false); err != nil {
		s.log.Error("proposal: mark recorded", "proposal", st.ID, "err", err)
		return st, nil
	}
	st.Recorded = true
	return st, nil
}

// decided writes the audit entry of a decision (once) and tells everyone.
func (s *Governance) decided(ctx context.Context, st crdt.ProposalState, tally crdt.Tally) error {
	votes := make(map[string]string, len(st.Votes))
	for m, v := range st.Votes {
		votes[m] = v.Choice
	}
	err := s.audit.AppendOnce(ctx, *st.DecidedAt, crdt.AuditProposalDecided, map[string]any{
		"id": st.ID, "kind": st.Kind, "title": st.Title, "status": st.Status, "reason": st.Reason,
		"votes": votes, "tally": tally,
	}, auditFor(crdt.AuditProposalDecided, "id", st.ID))
	if err != nil {
		return err
	}
	s.log.Info("proposal decided", "proposal", st.ID, "kind", st.Kind, "status", st.Status, "reason", st.Reason)
	s.events.Publish(EventProposalDecided, map[string]any{"id": st.ID, "kind": st.Kind, "title": st.Title, "status": st.Status, "reason": st.Reason})
	return nil
}

// markRecorded writes that proposal id's audit entries are all written
// (and, for a passed one, that its effect was carried out).
func (s *Governance) markRecorded(ctx context.Context, id string, applied bool) error {
	return s.updateGov(ctx, func(d *automerge.Doc) ([]byte, error) {
		if applied {
			if err := crdt.MarkApplied(d, id); err != nil {
				return nil, err
			}
		}
		return nil, crdt.MarkRecorded(d, id)
	})
}

// openProposal opens proposal p by author. It returns the proposal as it
// stands after (decided, if it was settled at once), whether this call
// opened it, and, as the error, why it was refused: an id already used by
// another proposal (an identical one is no refusal).
func (s *Governance) openProposal(ctx context.Context, p crdt.Proposal, author string) (crdt.ProposalState, bool, error) {
	s.gov.Lock()
	defer s.gov.Unlock()
	return s.openProposalLocked(ctx, p, author)
}

// openProposalLocked is openProposal for a caller that holds s.gov (a
// hard reset opening the charter's ratification).
func (s *Governance) openProposalLocked(ctx context.Context, p crdt.Proposal, author string) (crdt.ProposalState, bool, error) {
	// An id of an archived proposal is taken for good (archives.go).
	if a, ok, err := s.archivedProposal(ctx, p.ID); err != nil {
		return crdt.ProposalState{}, false, err
	} else if ok {
		old, found, err := s.lookupProposal(ctx, p.ID)
		if err != nil || !found {
			return crdt.ProposalState{}, false, fmt.Errorf("archived proposal %s in %s: found %v: %w", p.ID, a.doc, found, err)
		}
		q := p
		q.At = old.At
		if old.Author == author && old.Proposal.Same(q) {
			return old, false, nil
		}
		return old, false, fault.Errorf(fault.Conflict, "proposal %s already exists with other content; make a new id for a new proposal", p.ID)
	}
	period := s.policies().Duration("proposal.period")
	step, err := s.stepProposal(ctx, p.ID, func(d *automerge.Doc, now time.Time, step *proposalStep) error {
		old, ok, err := crdt.LookupProposalState(d, p.ID)
		if err != nil {
			return err
		}
		if ok {
			q := p
			q.At = old.At
			if old.Author == author && old.Proposal.Same(q) {
				step.existed = true
			} else {
				step.refusal = fault.Errorf(fault.Conflict, "proposal %s already exists with other content; make a new id for a new proposal", p.ID)
			}
			return nil
		}
		st := crdt.ProposalState{Proposal: p, Author: author, OpenedAt: now, ClosesAt: now.Add(period), Status: crdt.ProposalOpen}
		if err := crdt.OpenProposal(d, st); errors.Is(err, crdt.ErrTooManyOpen) || errors.Is(err, crdt.ErrTooManyToday) {
			step.refusal = err
			return nil
		} else if err != nil {
			return err
		}
		step.opened, step.wrote = true, true
		// Votes that came before the proposal (from ballots documents
		// synced first) count now.
		pending, err := crdt.TakePendingVotes(d, p.ID)
		if err != nil {
			return err
		}
		for _, m := range slices.Sorted(maps.Keys(pending)) {
			if err := crdt.AddVote(d, p.ID, m, pending[m]); err != nil && !errors.Is(err, crdt.ErrVoted) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return crdt.ProposalState{}, false, err
	}
	st := s.finishStep(ctx, step)
	return st, step.opened, step.refusal
}

// castVote counts member's vote on proposal id. strict (REST) reports an
// unknown proposal as not found; from a ballots document, a vote on a
// proposal not opened yet is kept until it opens. It returns the proposal
// as it stands after and, as the error, why the vote was not counted.
func (s *Governance) castVote(ctx context.Context, id, member string, choice, reason string, strict bool) (crdt.ProposalState, error) {
	var joined time.Time
	if m, ok := s.member(member); ok {
		joined = m.JoinedAt
	}
	s.gov.Lock()
	defer s.gov.Unlock()
	step, err := s.stepProposal(ctx, id, func(d *automerge.Doc, now time.Time, step *proposalStep) error {
		v := crdt.CastVote{Choice: choice, Reason: reason, At: now}
		st, ok, err := crdt.LookupProposalState(d, id)
		if err != nil {
			return err
		}
		var arch archivedProposal
		archived := false
		if !ok {
			if arch, archived, err = s.archivedProposal(ctx, id); err != nil {
				return err
			}
		}
		switch {
		case archived:
			step.refusal = archivedRefusal(id, arch)
		case !ok && strict:
			step.refusal = fault.Errorf(fault.NotFound, "no proposal %s in this circle", id)
		case !ok:
			err := crdt.AddPendingVote(d, id, member, v)
			if errors.Is(err, crdt.ErrVoted) {
				step.refusal = fault.Errorf(fault.Conflict, "you already voted on proposal %s; a vote is final", id)
				return nil
			}
			if errors.Is(err, crdt.ErrTooManyPending) {
				step.refusal = err
				return nil
			}
			step.wrote = err == nil
			return err
		case st.Status != crdt.ProposalOpen:
			step.refusal = fault.Errorf(fault.Conflict, "proposal %s is already %s; votes are closed", id, st.Status)
		case !now.Before(st.ClosesAt):
			step.refusal = fault.Errorf(fault.Conflict, "voting on proposal %s closed at %s", id, st.ClosesAt.Format(time.RFC3339))
		case len(eligibleAt([]voter{{id: member, joined: joined}}, st.OpenedAt)) == 0:
			step.refusal = fault.Errorf(fault.Forbidden, "you joined after proposal %s opened; only those who were members when it opened vote on it", id)
		default:
			err := crdt.AddVote(d, id, member, v)
			if errors.Is(err, crdt.ErrVoted) {
				prev := st.Votes[member]
				step.refusal = fault.Errorf(fault.Conflict, "you already voted %s on proposal %s; a vote is final", prev.Choice, id)
				return nil
			}
			step.wrote = err == nil
			return err
		}
		return nil
	})
	if err != nil {
		return crdt.ProposalState{}, err
	}
	return s.finishStep(ctx, step), step.refusal
}

// ballotItems are the proposals and votes one record of a ballots
// document carried.
type ballotItems struct {
	Member    string
	Proposals []crdt.Proposal
	Votes     []crdt.Vote
}

// countBallots opens, in the background, the proposals and counts the
// votes that arrived inside a member's ballots document, in that order.
// A refusal (an id taken by another proposal, a second vote, a vote after
// the period) is logged: the ballots document keeps what the member wrote.
func (s *Governance) countBallots(items ballotItems) {
	s.tasks.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, p := range items.Proposals {
			if _, _, err := s.openProposal(ctx, p, items.Member); err != nil {
				s.log.Info("proposal from a ballots document not opened", "proposal", p.ID, "member", items.Member, "err", err)
			}
		}
		for _, v := range items.Votes {
			if _, err := s.castVote(ctx, v.Proposal, items.Member, v.Choice, v.Reason, false); err != nil {
				s.log.Info("vote from a ballots document not counted", "proposal", v.Proposal, "member", items.Member, "err", err)
			}
		}
	})
}

// recountBallots runs after start: it counts the proposals and votes of
// ballots documents the governance document does not hold yet (the server
// may have stopped between storing a ballots change and counting it).
// Passed proposals not carried out are finished by Open before it.
func (s *Governance) recountBallots(ctx context.Context) error {
	states, err := s.readProposals(ctx)
	if err != nil {
		return err
	}
	byID := make(map[string]crdt.ProposalState, len(states))
	for _, st := range states {
		byID[st.ID] = st
	}
	if err := s.loadArchived(ctx); err != nil {
		return err
	}
	// An archived proposal was decided and recorded: nothing of it is
	// left to count.
	isArchived := func(id string) bool {
		s.arch.mu.RLock()
		defer s.arch.mu.RUnlock()
		_, ok := s.arch.archived[id]
		return ok
	}
	var todo []ballotItems
	for _, items := range s.replayed {
		var left ballotItems
		left.Member = items.Member
		for _, p := range items.Proposals {
			if _, ok := byID[p.ID]; !ok && !isArchived(p.ID) {
				left.Proposals = append(left.Proposals, p)
			}
		}
		for _, v := range items.Votes {
			st, ok := byID[v.Proposal]
			if _, voted := st.Votes[items.Member]; !voted && (!ok || st.Status == crdt.ProposalOpen) && !isArchived(v.Proposal) {
				left.Votes = append(left.Votes, v)
			}
		}
		if len(left.Proposals)+len(left.Votes) > 0 {
			todo = append(todo, left)
		}
	}
	s.replayed = nil
	// Proposals decided but not finished were finished by Open already,
	// before this; countBallots runs each in the background.
	for _, items := range todo {
		s.countBallots(items)
	}
	return nil
}

// tickProposals decides the open proposals whose outcome is settled (their
// period ended, or the members changed) and finishes passed proposals not
// yet carried out.
func (s *Governance) tickProposals(ctx context.Context) error {
	states, err := s.readProposals(ctx)
	if err != nil {
		return err
	}
	now := s.now()
	voters := s.activeVoters(now)
	var errs []error
	for _, st := range states {
		if st.Status != crdt.ProposalOpen {
			continue
		}
		if crdt.Decide(st.Choices(), eligibleAt(voters, st.OpenedAt), s.policies(), !now.Before(st.ClosesAt)).Status == crdt.ProposalOpen {
			continue // nothing to decide: leave the document alone
		}
		s.gov.Lock()
		step, err := s.stepProposal(ctx, st.ID, nil)
		if err == nil {
			s.finishStep(ctx, step)
		}
		s.gov.Unlock()
		errs = append(errs, err)
	}
	return errors.Join(append(errs, s.finishDecided(ctx))...)
}

// finishDecided finishes the proposals decided but not yet recorded (the
// server stopped in between, or a write failed): it writes the decision's
// audit entry if it is missing, carries out a passed proposal's effect if
// it was not, records the effect, and marks the proposal recorded.
func (s *Governance) finishDecided(ctx context.Context) error {
	states, err := s.readProposals(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, st := range states {
		if st.Status == crdt.ProposalOpen || st.Recorded || st.DecidedAt == nil {
			continue
		}
		s.gov.Lock()
		err := s.finishOne(ctx, st)
		s.gov.Unlock()
		if err != nil {
			errs = append(errs, fmt.Errorf("proposal %s: %w", st.ID, err))
		}
	}
	return errors.Join(errs...)
}

// finishOne finishes one decided proposal; the caller holds s.gov.
func (s *Governance) finishOne(ctx context.Context, st crdt.ProposalState) error {
	voters := eligibleAt(s.activeVoters(*st.DecidedAt), st.OpenedAt)
	tally := crdt.Decide(st.Choices(), voters, s.policies(), true).Tally
	if err := s.decided(ctx, st, tally); err != nil {
		return err
	}
	if st.Status != crdt.ProposalPassed || st.Applied {
		return s.markRecorded(ctx, st.ID, false)
	}
	eff, err := s.planEffect(ctx, st, *st.DecidedAt, true)
	if err != nil {
		return err
	}
	return s.applyEffect(ctx, st, eff)
}
