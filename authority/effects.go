package authority

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
)

// effect is what a passed proposal changes: one write into the roster or
// the charter, and its audit entry.
type effect struct {
	doc   crdt.Kind // the document written; "" for none
	write func(d *automerge.Doc) error
	audit string
	data  map[string]any
	done  bool // already carried out (found when finishing after a crash)
	// pre runs before the write (a draw makes sure its seed was
	// committed, and records what it drew); event, if set, is published
	// with data.
	pre   func(ctx context.Context) error
	event string
}

// planEffect works out the effect of proposal st decided at at, against the
// roster and charter as they are now. A *crdt.RuleError says the effect
// cannot be carried out (the proposal is then rejected with its message).
// recovering is set when finishing a proposal that was already marked
// passed: an effect that has already happened is then reported done.
func (s *Governance) planEffect(ctx context.Context, st crdt.ProposalState, at time.Time, recovering bool) (effect, error) {
	p := st.Proposal
	str := func(k string) string { v, _ := p.Payload[k].(string); return v }
	pol := s.policies()
	maxTerms := pol.Int("role.term_limit")
	switch p.Kind {
	case crdt.ProposalRoleCreate, crdt.ProposalRoleChange, crdt.ProposalRoleRetire, crdt.ProposalRoleAssign, crdt.ProposalMandateGrant, crdt.ProposalMandateRecall, crdt.ProposalMemberRemove:
		r, err := s.readRoster(ctx)
		if err != nil {
			return effect{}, err
		}
		re, err := crdt.PlanRosterEffect(r, p, at, maxTerms, recovering)
		return effect{doc: crdt.KindRoster, write: re.Write, audit: re.Audit, data: re.Data, done: re.Done}, err
	case crdt.ProposalPolicySet, crdt.ProposalCharterRatify:
		ch, err := s.readCharter(ctx)
		if err != nil {
			return effect{}, err
		}
		eff := effect{doc: crdt.KindCharter}
		if p.Kind == crdt.ProposalPolicySet {
			name, value := str("name"), strings.TrimSpace(str("value"))
			old := ch.Policies[name]
			if err := ch.Policies.Set(name, value); err != nil {
				return effect{}, err
			}
			eff.done = recovering && old == value
			eff.audit, eff.data = crdt.AuditPolicySet, map[string]any{"proposal": p.ID, "name": name, "value": value, "previous": old}
		} else {
			if recovering && ch.RatifiedAt != nil && !ch.RatifiedAt.Before(at.Truncate(time.Second)) {
				return effect{done: true}, nil
			}
			var draft crdt.CharterDraftText
			err := s.engine.View(ctx, string(s.meta.Docs[crdt.KindCharterDraft]), func(d *automerge.Doc) error {
				var err error
				draft, err = crdt.ReadCharterDraft(d)
				return err
			})
			if err != nil {
				return effect{}, fmt.Errorf("read charter draft: %w", err)
			}
			if ch, err = crdt.RatifyDraft(ch, draft, at); err != nil {
				return effect{}, err
			}
			eff.audit, eff.data = crdt.AuditCharterRatified, map[string]any{
				"proposal": p.ID, "version": ch.Version, "ratified_at": ch.RatifiedAt, "expires_at": ch.ExpiresAt,
				"principles": len(ch.Principles), "text_chars": len([]rune(ch.Text)),
			}
		}
		eff.write = func(d *automerge.Doc) error { return crdt.PutCharter(d, ch) }
		return eff, nil
	case crdt.ProposalRoleDraw:
		return s.draws.planDraw(ctx, p, str("role"), at, recovering)
	case crdt.ProposalMemberAdmit:
		return s.planAdmit(ctx, st, at, recovering)
	case crdt.ProposalFederationJoin, crdt.ProposalFederationLeave:
		return s.planFederation(ctx, st, recovering)
	}
	return effect{}, &crdt.RuleError{Rule: crdt.RuleGovernance, Message: fmt.Sprintf("unknown proposal kind %q", p.Kind)}
}

// applyEffect carries out a passed proposal's effect, records it in the
// audit log and marks the proposal applied and recorded. An effect found
// already done (finishing after a stop) is recorded with the entry
// planned when the proposal passed; AppendOnce keeps it from being
// recorded twice.
func (s *Governance) applyEffect(ctx context.Context, st crdt.ProposalState, eff effect) error {
	kind, data := eff.audit, any(eff.data)
	if !eff.done {
		if eff.pre != nil {
			if err := eff.pre(ctx); err != nil {
				return err
			}
		}
		if err := s.writeEffect(ctx, st, eff); err != nil {
			return err
		}
		s.log.Info("proposal carried out", "proposal", st.ID, "kind", st.Kind, "effect", eff.audit)
		if eff.event != "" {
			s.events.Publish(eff.event, eff.data)
		}
	} else if st.EffectAudit != nil {
		kind, data = st.EffectAudit.Kind, json.RawMessage(st.EffectAudit.Data)
	}
	if kind != "" {
		if err := s.audit.AppendOnce(ctx, *st.DecidedAt, kind, data, auditFor(kind, "proposal", st.ID)); err != nil {
			return err
		}
	}
	return s.markRecorded(ctx, st.ID, true)
}

// writeEffect writes an effect into its document, if it has one, and
// reloads what the server keeps of that document.
func (s *Governance) writeEffect(ctx context.Context, st crdt.ProposalState, eff effect) error {
	if eff.write == nil {
		return nil // member.admit: its pre did the work
	}
	var err error
	if eff.doc == crdt.KindRoster {
		err = s.writeRoster(ctx, eff.write)
	} else {
		err = s.engine.Update(ctx, string(s.meta.Docs[eff.doc]), func(d *automerge.Doc) ([]byte, error) {
			return nil, eff.write(d)
		})
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", eff.doc, err)
	}
	switch eff.doc {
	case crdt.KindRoster:
		// A role that rotates by draw and has a new term gets the
		// draw at the end of that term committed now.
		s.mu.RLock()
		r := s.roster
		s.mu.RUnlock()
		if err := s.draws.commitRotationDraws(ctx, r); err != nil {
			s.log.Error("proposal: commit rotation draws", "proposal", st.ID, "err", err)
		}
	case crdt.KindCharter:
		if err := s.loadPolicies(ctx); err != nil {
			return fmt.Errorf("reload policies: %w", err)
		}
	}
	return nil
}
