// Package federation links circle servers into regional federations over
// NATS leaf nodes (DESIGN.md §8). This package holds what the hub and the
// circles share: the subjects (CircleSubject, FederationWildcard,
// CheckID), the one permission template of a member circle
// (UserPermissions), and the hub's HTTP protocol (JoinRequest,
// SignedNotice, ...).
//
// Package federation/hub is the hub (`circled hub`): nats-server in
// operator/JWT mode, one account for the federation, one leaf-only user
// per member circle, admission and revocation pushed at runtime. Package
// federation/link is the circle's side: its nkey, its memberships and the
// leaf remotes of its embedded nats-server. See docs/ARCHITECTURE.md,
// "Federation: hub and link".
package federation
