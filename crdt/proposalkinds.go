package crdt

// ProposalKind names what a proposal decides. The kinds, in one place;
// ProposalKinds lists them with their payloads.
type ProposalKind = string

// The proposal kinds (API.md "Governance").
const (
	ProposalRoleCreate    ProposalKind = "role.create"
	ProposalRoleChange    ProposalKind = "role.change"
	ProposalRoleRetire    ProposalKind = "role.retire"
	ProposalRoleAssign    ProposalKind = "role.assign"
	ProposalRoleDraw      ProposalKind = "role.draw"
	ProposalCharterRatify ProposalKind = "charter.ratify"
	ProposalPolicySet     ProposalKind = "policy.set"
	ProposalMandateGrant  ProposalKind = "mandate.grant"
	ProposalMandateRecall ProposalKind = "mandate.recall"
	ProposalMemberAdmit   ProposalKind = "member.admit"
	ProposalMemberRemove  ProposalKind = "member.remove"
)
