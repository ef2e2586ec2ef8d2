package authority

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/circles-coop/circles/crdt"
)

// FederationLink is what the authority needs of the circle's federation
// link (package federation/link, wired by package server) to carry out
// passed federation.join and federation.leave proposals.
type FederationLink interface {
	// Join asks the hub to admit the circle with a one-time invite and
	// links the circle to it; joining again for the same proposal returns
	// what the first join made.
	Join(ctx context.Context, proposal, hub, invite string) (id, name string, err error)
	// Leave unlinks the circle from the federation at once and tells the
	// hub. Leaving again for the same proposal is a no-op.
	Leave(ctx context.Context, proposal, federation string) error
	// Member reports whether the circle is a member of the federation.
	Member(federation string) bool
	// LeftBy reports whether the circle left the federation by proposal.
	LeftBy(federation, proposal string) bool
}

// federationJoinTimeout bounds the call to a hub while a passed
// federation.join is carried out (one proposal is handled at a time).
const federationJoinTimeout = 15 * time.Second

// planFederation plans a passed federation.join or federation.leave. A
// join is carried out here, while planning: what it joined (the
// federation's id and name) is only known from the hub's answer, and a
// hub that refuses (a used or expired invite, a hub that cannot be
// reached) rejects the proposal with the hub's reason. A leave needs
// nobody's consent: it is carried out when the effect is applied.
func (s *Governance) planFederation(ctx context.Context, st crdt.ProposalState, recovering bool) (effect, error) {
	p := st.Proposal
	str := func(k string) string { v, _ := p.Payload[k].(string); return strings.TrimSpace(v) }
	if s.federation == nil {
		return effect{}, &crdt.RuleError{Rule: crdt.RuleGovernance, Message: "this circle server cannot federate: it runs on an external NATS, not its own embedded server"}
	}
	switch p.Kind {
	case crdt.ProposalFederationJoin:
		hub := str("hub")
		jctx, cancel := context.WithTimeout(ctx, federationJoinTimeout)
		defer cancel()
		id, name, err := s.federation.Join(jctx, st.ID, hub, str("invite"))
		if err != nil {
			if recovering {
				// It passed and was meant to join; the hub now refuses
				// (the invite was used by the join that was cut short, or
				// has expired). Record what was planned and go on: the
				// members see the federation missing and can join again.
				s.log.Error("federation.join: finishing after a stop", "proposal", st.ID, "err", err)
				return effect{done: true}, nil
			}
			return effect{}, &crdt.RuleError{Rule: crdt.RuleGovernance, Message: fmt.Sprintf("joining the federation at %s failed: %v", hub, err)}
		}
		return effect{
			audit: crdt.AuditFederationJoined,
			data:  map[string]any{"proposal": st.ID, "federation": id, "name": name, "hub": hub},
		}, nil
	default: // crdt.ProposalFederationLeave
		fed := str("federation")
		if recovering && s.federation.LeftBy(fed, st.ID) {
			return effect{done: true}, nil
		}
		if !s.federation.Member(fed) {
			return effect{}, &crdt.RuleError{Rule: crdt.RuleGovernance, Message: fmt.Sprintf("this circle is not a member of federation %s", fed)}
		}
		return effect{
			pre: func(ctx context.Context) error {
				return s.federation.Leave(ctx, st.ID, fed)
			},
			audit: crdt.AuditFederationLeft,
			data:  map[string]any{"proposal": st.ID, "federation": fed},
		}, nil
	}
}
