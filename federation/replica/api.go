package replica

import (
	"context"
	"time"

	"github.com/circles-coop/circles/authority"
	"github.com/circles-coop/circles/wire"
)

// API serves the mobile API's federation routes (mobile-api's
// FederationDocs) from a Manager. The caller is an authenticated member
// of this circle; the delegate checks are the replica's.
type API struct {
	M   *Manager
	Now func() time.Time
}

func (a API) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// FederationView is GET /v1/federations/{id}.
func (a API) FederationView(_ context.Context, _ authority.Caller, id string) (wire.FederationView, error) {
	r, err := a.M.Replica(id)
	if err != nil {
		return wire.FederationView{}, err
	}
	return r.View(), nil
}

// FederationPropose is POST /v1/federations/{id}/proposals.
func (a API) FederationPropose(ctx context.Context, c authority.Caller, id string, req wire.FederationProposalRequest) (wire.FederationProposal, bool, error) {
	r, err := a.M.Replica(id)
	if err != nil {
		return wire.FederationProposal{}, false, err
	}
	return r.Propose(ctx, c.Member, req, a.now())
}

// FederationVote is POST /v1/federations/{id}/proposals/{pid}/votes.
func (a API) FederationVote(ctx context.Context, c authority.Caller, id, proposal, choice string) (wire.FederationProposal, error) {
	r, err := a.M.Replica(id)
	if err != nil {
		return wire.FederationProposal{}, err
	}
	return r.Vote(ctx, c.Member, proposal, choice)
}

// FederationProposals is GET /v1/federations/{id}/proposals.
func (a API) FederationProposals(_ context.Context, _ authority.Caller, id string) ([]wire.FederationProposal, error) {
	r, err := a.M.Replica(id)
	if err != nil {
		return nil, err
	}
	return r.Proposals(), nil
}

// FederationCredit is POST /v1/federations/{id}/credits.
func (a API) FederationCredit(ctx context.Context, c authority.Caller, id string, req wire.FederationCreditRequest) (wire.FederationCredit, bool, error) {
	r, err := a.M.Replica(id)
	if err != nil {
		return wire.FederationCredit{}, false, err
	}
	return r.Credit(ctx, c.Member, req, a.now())
}

// FederationBalances is GET /v1/federations/{id}/balances.
func (a API) FederationBalances(_ context.Context, _ authority.Caller, id string) ([]wire.FederationBalance, error) {
	r, err := a.M.Replica(id)
	if err != nil {
		return nil, err
	}
	return r.Balances(), nil
}

// PublishBlueprint is POST /v1/blueprints.
func (a API) PublishBlueprint(ctx context.Context, _ authority.Caller, b wire.Blueprint) (wire.Blueprint, bool, error) {
	b.Origin = nil // the circle's own practice
	return a.M.PublishBlueprint(ctx, b)
}

// AdoptBlueprint is POST /v1/blueprints/{id}/adopt.
func (a API) AdoptBlueprint(ctx context.Context, _ authority.Caller, id, federation, circle string) (wire.Blueprint, bool, error) {
	return a.M.AdoptBlueprint(ctx, id, federation, circle)
}
