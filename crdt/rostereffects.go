package crdt

import (
	"cmp"
	"strings"
	"time"

	"github.com/automerge/automerge-go"
)

// RosterEffect is what a passed proposal writes into the roster: Write
// applies it to the roster document, Audit and Data are its audit entry.
// Done says it had already happened (found when finishing a proposal
// after a crash); Write is then nil.
type RosterEffect struct {
	Write func(d *automerge.Doc) error
	Audit string
	Data  map[string]any
	Done  bool
}

// PlanRosterEffect works out what passed proposal p (a role.*, mandate.*
// or member.remove; role.draw is planned by the authority, which draws)
// writes into roster r, decided at at. maxTerms is the charter's
// role.term_limit. A *RuleError of rule "governance" (or "schema") says
// it cannot be carried out. recovering is set when finishing a proposal
// already marked passed: an effect that has already happened is then
// reported Done.
func PlanRosterEffect(r *Roster, p Proposal, at time.Time, maxTerms int, recovering bool) (RosterEffect, error) {
	str := func(k string) string { v, _ := p.Payload[k].(string); return v }
	fail := func(format string, args ...any) (RosterEffect, error) {
		return RosterEffect{}, governanceErr(format, args...)
	}
	activeMember := func(id string) (*Member, error) {
		m, ok := r.Members[id]
		if !ok || !m.ActiveAt(at) {
			_, err := fail("%s is not an active member of the circle", id)
			return nil, err
		}
		return m, nil
	}
	var eff RosterEffect
	switch p.Kind {
	case ProposalRoleCreate:
		if _, ok := r.Roles[p.ID]; ok {
			return RosterEffect{Done: true}, nil
		}
		role, err := NewRole(p, maxTerms)
		if err != nil {
			return RosterEffect{}, err
		}
		if other, ok := roleNameTaken(r, role.Name, ""); ok {
			return fail("a role named %q already exists", other.Name)
		}
		eff.Write = func(d *automerge.Doc) error { return PutRole(d, role) }
		eff.Audit, eff.Data = AuditRoleCreated, map[string]any{
			"proposal": p.ID, "role": role.ID, "name": role.Name, "purpose": role.Purpose, "term": role.Term.String(), "term_limit": role.TermLimit,
		}
	case ProposalRoleChange:
		role, ok := FindRole(r.Roles, str("role"))
		if !ok {
			return fail("there is no role %q", str("role"))
		}
		changed, err := ChangeRole(*role, p, maxTerms)
		if err != nil {
			return RosterEffect{}, err
		}
		if other, ok := roleNameTaken(r, changed.Name, role.ID); ok {
			return fail("a role named %q already exists", other.Name)
		}
		diff := roleDiff(*role, changed)
		if recovering && len(diff) == 0 {
			return RosterEffect{Done: true}, nil
		}
		eff.Write = func(d *automerge.Doc) error { return PutRole(d, &changed) }
		eff.Audit, eff.Data = AuditRoleChanged, map[string]any{"proposal": p.ID, "role": role.ID, "name": changed.Name, "changes": diff}
	case ProposalRoleRetire:
		role, ok := FindRole(r.Roles, str("role"))
		if !ok {
			return fail("there is no role %q", str("role"))
		}
		if role.Retired() {
			if recovering {
				return RosterEffect{Done: true}, nil
			}
			return fail("role %q is already retired", role.Name)
		}
		retired := RetireRole(*role, at)
		eff.Write = func(d *automerge.Doc) error { return PutRole(d, &retired) }
		eff.Audit, eff.Data = AuditRoleRetired, map[string]any{
			"proposal": p.ID, "role": role.ID, "name": role.Name, "previous_holder": role.Holder, "retired_at": retired.RetiredAt,
		}
	case ProposalRoleAssign:
		role, ok := FindRole(r.Roles, str("role"))
		if !ok {
			return fail("there is no role %q", str("role"))
		}
		member := str("member")
		if recovering && role.Holder == member && role.TermStart != nil && !role.TermStart.Before(at.Truncate(time.Second)) {
			return RosterEffect{Done: true}, nil
		}
		if _, err := activeMember(member); err != nil {
			return RosterEffect{}, err
		}
		assigned, err := AssignRole(*role, member, at, maxTerms)
		if err != nil {
			return RosterEffect{}, err
		}
		eff.Write = func(d *automerge.Doc) error { return PutRole(d, &assigned) }
		eff.Audit, eff.Data = AuditRoleAssigned, map[string]any{
			"proposal": p.ID, "role": role.ID, "name": role.Name, "member": member, "previous_holder": role.Holder,
			"term_start": assigned.TermStart, "term_end": assigned.TermEnd, "terms_served": assigned.TermsServed,
		}
	case ProposalMandateGrant:
		if _, ok := r.Mandates[p.ID]; ok {
			return RosterEffect{Done: true}, nil
		}
		if _, err := activeMember(str("member")); err != nil {
			return RosterEffect{}, err
		}
		m, err := NewMandate(p, at)
		if err != nil {
			return RosterEffect{}, err
		}
		eff.Write = func(d *automerge.Doc) error { return PutMandate(d, m) }
		eff.Audit, eff.Data = AuditMandateGranted, map[string]any{
			"proposal": p.ID, "mandate": m.ID, "member": m.Member, "issue": m.Issue, "scope": m.Scope, "deadline": m.Deadline,
		}
	case ProposalMandateRecall:
		m, ok := r.Mandates[str("mandate")]
		if !ok {
			return fail("there is no mandate %q", str("mandate"))
		}
		if status := m.StatusAt(at); status != MandateActive {
			if recovering {
				return RosterEffect{Done: true}, nil
			}
			return fail("mandate %s is already %s", m.ID, status)
		}
		recalled := *m
		recalled.Status = MandateRecalled
		eff.Write = func(d *automerge.Doc) error { return PutMandate(d, &recalled) }
		eff.Audit, eff.Data = AuditMandateRecalled, map[string]any{"proposal": p.ID, "mandate": m.ID, "member": m.Member, "issue": m.Issue}
	case ProposalMemberRemove:
		m, ok := r.Members[str("member")]
		if !ok {
			return fail("there is no member %q", str("member"))
		}
		if !m.ActiveAt(at) {
			if recovering {
				return RosterEffect{Done: true}, nil
			}
			return fail("%s is no longer a member", m.ID)
		}
		removed := *m
		removedAt := at
		removed.RemovedAt = &removedAt
		// A member who leaves leaves their roles vacant and their
		// mandates recalled.
		var vacate []Role
		var recall []Mandate
		held := 0
		for _, role := range r.Roles {
			if role.Holder == m.ID || role.PreviousHolder == m.ID {
				vacate = append(vacate, VacateRole(*role))
			}
			if role.Holder == m.ID {
				held++
			}
		}
		for _, md := range r.Mandates {
			if md.Member == m.ID && md.StatusAt(at) == MandateActive {
				v := *md
				v.Status = MandateRecalled
				recall = append(recall, v)
			}
		}
		eff.Write = func(d *automerge.Doc) error {
			for i := range vacate {
				if err := PutRole(d, &vacate[i]); err != nil {
					return err
				}
			}
			for i := range recall {
				if err := PutMandate(d, &recall[i]); err != nil {
					return err
				}
			}
			// Only removed_at is written, into the member as the document
			// holds it now: devices enrolled since this was planned stay
			// listed, and the member is removed all the same.
			return MarkMemberRemoved(d, removed.ID, removedAt)
		}
		eff.Audit, eff.Data = AuditMemberRemoved, map[string]any{
			"proposal": p.ID, "member": m.ID, "name": m.Name, "roles_vacated": held, "mandates_recalled": len(recall),
		}
	}
	return eff, nil
}

// nameTaken finds a role other than except, not retired, named name
// (ignoring case).
func roleNameTaken(r *Roster, name, except string) (*Role, bool) {
	for _, other := range r.Roles {
		if other.ID != except && !other.Retired() && strings.EqualFold(other.Name, name) {
			return other, true
		}
	}
	return nil, false
}

// roleDiff lists what a role.change changed: {field: {from, to}}.
func roleDiff(before, after Role) map[string]any {
	out := map[string]any{}
	add := func(k string, from, to any) {
		if from != to {
			out[k] = map[string]any{"from": from, "to": to}
		}
	}
	add("name", before.Name, after.Name)
	add("purpose", before.Purpose, after.Purpose)
	add("term", before.Term.String(), after.Term.String())
	add("term_limit", before.TermLimit, after.TermLimit)
	add("rotation", cmp.Or(before.Rotation, RotationVacate), cmp.Or(after.Rotation, RotationVacate))
	return out
}
