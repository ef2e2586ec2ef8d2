// Package federation will link circle servers into regional federations
// over NATS leaf nodes (DESIGN.md §8): the hub (`circled hub`, operator/JWT
// mode, one account per federation, one leaf-only user per circle), joining
// and leaving by granting or revoking a subject permission, and the
// replication of each circle's federated documents.
//
// Nothing is built yet; it is the subject of its own issue.
package federation
