// What members call on Governance over a transport: proposing and voting
// (REST; ballots documents come through the Dispatcher), and reading the
// proposals, roles and mandates as decided.

package authority

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/circles-coop/circles/authority/fault"
	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/wire"
)

func payloadOf(p map[string]any) map[string]any {
	if p == nil {
		return map[string]any{}
	}
	return p
}

// Propose opens a proposal made over REST.
func (s *Governance) Propose(ctx context.Context, c Caller, req wire.ProposalRequest) (wire.Proposal, bool, error) {
	p := crdt.Proposal{ID: req.ID, Kind: req.Kind, Title: req.Title, Body: req.Body, Payload: req.Payload, At: s.now()}
	if p.Payload == nil {
		p.Payload = map[string]any{}
	}
	if err := p.Validate(); err != nil {
		var re *crdt.RuleError
		if errors.As(err, &re) {
			return wire.Proposal{}, false, &fault.Error{Code: fault.InvalidRequest, Message: re.Message, Err: err}
		}
		return wire.Proposal{}, false, err
	}
	st, created, err := s.openProposal(ctx, p, c.Member)
	if err != nil {
		return wire.Proposal{}, false, err
	}
	return s.wireProposalFor(ctx, c, st), created, nil
}

// Vote counts a vote made over REST.
func (s *Governance) Vote(ctx context.Context, c Caller, id string, req wire.VoteRequest) (wire.Proposal, error) {
	v := crdt.Vote{Proposal: id, Choice: req.Choice, Reason: req.Reason, At: s.now()}
	if err := v.Validate(); err != nil {
		var re *crdt.RuleError
		if errors.As(err, &re) {
			return wire.Proposal{}, &fault.Error{Code: fault.InvalidRequest, Message: re.Message, Err: err}
		}
		return wire.Proposal{}, err
	}
	st, err := s.castVote(ctx, id, c.Member, req.Choice, req.Reason, true)
	if err != nil {
		return wire.Proposal{}, err
	}
	return s.wireProposalFor(ctx, c, st), nil
}

// Proposal returns one proposal.
func (s *Governance) Proposal(ctx context.Context, c Caller, id string) (wire.Proposal, error) {
	st, found, err := s.lookupProposal(ctx, id)
	if err != nil {
		return wire.Proposal{}, err
	}
	if !found {
		return wire.Proposal{}, fault.Errorf(fault.NotFound, "no proposal %s in this circle", id)
	}
	return s.wireProposalFor(ctx, c, st), nil
}

// Proposals lists the proposals, oldest first, all or those of status.
// Decided proposals in archives are read from them (archives.go); open
// ones are all in the live governance document.
func (s *Governance) Proposals(ctx context.Context, c Caller, status string) (wire.ProposalList, error) {
	states, err := s.readProposals(ctx)
	if err != nil {
		return wire.ProposalList{}, err
	}
	if status != crdt.ProposalOpen {
		old, err := s.readArchivedProposals(ctx)
		if err != nil {
			return wire.ProposalList{}, err
		}
		// A proposal being archived is in both for a moment: the live
		// document's copy counts.
		live := make(map[string]bool, len(states))
		for _, st := range states {
			live[st.ID] = true
		}
		old = slices.DeleteFunc(old, func(st crdt.ProposalState) bool { return live[st.ID] })
		states = append(old, states...)
		slices.SortStableFunc(states, func(a, b crdt.ProposalState) int {
			if c := a.OpenedAt.Compare(b.OpenedAt); c != 0 {
				return c
			}
			return strings.Compare(a.ID, b.ID)
		})
	}
	out := wire.ProposalList{Proposals: []wire.Proposal{}}
	for _, st := range states {
		if status == "" || st.Status == status {
			out.Proposals = append(out.Proposals, s.wireProposalFor(ctx, c, st))
		}
	}
	return out, nil
}

// Roles lists the circle's roles by name: the active ones (status "" or
// "active"), the retired ones, or all.
func (s *Governance) Roles(ctx context.Context, c Caller, status string) (wire.RoleList, error) {
	r, err := s.readRoster(ctx)
	if err != nil {
		return wire.RoleList{}, err
	}
	pending, err := s.draws.PendingRoleDraws(ctx)
	if err != nil {
		return wire.RoleList{}, err
	}
	out := wire.RoleList{Roles: []wire.Role{}}
	for _, role := range r.Roles {
		st := cmp.Or(role.Status, crdt.RoleActive)
		if status != "all" && st != cmp.Or(status, crdt.RoleActive) {
			continue
		}
		out.Roles = append(out.Roles, wire.Role{
			ID: role.ID, Name: role.Name, Purpose: role.Purpose, Term: role.Term.String(), TermLimit: role.TermLimit,
			Rotation: cmp.Or(role.Rotation, crdt.RotationVacate), Holder: role.Holder, TermStart: role.TermStart, TermEnd: role.TermEnd,
			TermsServed: role.TermsServed, PreviousHolder: role.PreviousHolder, Status: st, RetiredAt: role.RetiredAt,
		})
		if d, ok := pending[role.ID]; ok {
			out.Roles[len(out.Roles)-1].PendingDraw = &wire.PendingRoleDraw{Draw: d.Round, Proposal: d.Proposal}
		}
	}
	slices.SortFunc(out.Roles, func(a, b wire.Role) int { return strings.Compare(a.Name+a.ID, b.Name+b.ID) })
	return out, nil
}

// Mandates lists the delegates' mandates, newest deadline last, with their
// status now (an active mandate past its deadline is expired).
func (s *Governance) Mandates(ctx context.Context, c Caller) (wire.MandateList, error) {
	r, err := s.readRoster(ctx)
	if err != nil {
		return wire.MandateList{}, err
	}
	now := s.now()
	out := wire.MandateList{Mandates: []wire.Mandate{}}
	for _, m := range r.Mandates {
		out.Mandates = append(out.Mandates, wireMandate(*m, now))
	}
	slices.SortFunc(out.Mandates, func(a, b wire.Mandate) int {
		if c := a.Deadline.Compare(b.Deadline); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// wireProposalFor shows a proposal to caller c: to its author, a passed
// member.admit carries the invite it made.
func (s *Governance) wireProposalFor(ctx context.Context, c Caller, st crdt.ProposalState) wire.Proposal {
	out := s.wireProposal(st)
	out.Invite = s.admitInvite(ctx, c, st)
	return out
}

// wireProposal shows a proposal with its tally among its eligible voters
// (eligibleAt).
func (s *Governance) wireProposal(st crdt.ProposalState) wire.Proposal {
	now := s.now()
	t := crdt.Decide(st.Choices(), eligibleAt(s.activeVoters(now), st.OpenedAt), s.policies(), false).Tally
	out := wire.Proposal{
		ID: st.ID, Kind: st.Kind, Title: st.Title, Body: st.Body, Payload: payloadOf(st.Payload), Author: st.Author,
		OpenedAt: st.OpenedAt, ClosesAt: st.ClosesAt, Status: st.Status, Votes: make(map[string]wire.ProposalVote, len(st.Votes)),
		Tally:     wire.Tally{Yes: t.Yes, No: t.No, Object: t.Object, Abstain: t.Abstain, Eligible: t.Eligible, Needed: t.Needed},
		DecidedAt: st.DecidedAt, Reason: st.Reason, Applied: st.Applied,
	}
	for m, v := range st.Votes {
		out.Votes[m] = wire.ProposalVote{Choice: v.Choice, Reason: v.Reason, At: v.At}
	}
	return out
}
