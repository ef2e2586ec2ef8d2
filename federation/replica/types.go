package replica

import "github.com/circles-coop/circles/wire"

// The package's record types are the API's shapes (wire/federation_docs.go).
type (
	Profile         = wire.FederationProfile
	Delegate        = wire.FederationDelegate
	Origin          = wire.BlueprintOrigin
	Blueprint       = wire.Blueprint
	Proposal        = wire.FederationProposal
	Credit          = wire.FederationCredit
	CircleView      = wire.FederationCircleView
	FederationView  = wire.FederationView
	Balance         = wire.FederationBalance
	ProposalRequest = wire.FederationProposalRequest
	CreditRequest   = wire.FederationCreditRequest
)
