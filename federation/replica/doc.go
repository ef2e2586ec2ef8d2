// Package replica keeps a circle's federated documents and its replicas
// of every other member circle's, for each federation the circle belongs
// to (DESIGN.md §8; docs/ARCHITECTURE.md, "Federation").
//
// Each circle writes one automerge document per federation, with an actor
// derived from the federation's and the circle's ids (ActorFor): its
// profile, published scorecard, delegates, blueprints, the federation
// proposals it made, its votes, and the inter-circle credits it gave. It
// publishes each change on its own subject, fed.<F>.c.<circle>.chg, the
// only subjects the hub lets it publish on, and stores its document and
// its replicas of the others' in its own JetStream (stream FEDERATION), so
// the federation view answers while the hub is down. A change on circle
// X's subject that X's actor did not write is refused.
//
// Catch-up uses broadcasts only (the leaf user has no reply permission):
// every circle announces the heads it holds (fed.<F>.c.<circle>.want), and
// each circle answers an announcement by publishing, on its own subject,
// the changes of its document the announcer lacks.
//
// Manager is the circle-wide entry: it opens the stream, keeps the
// circle's blueprints, and Attach starts a Replica for a federation on a
// connection to the circle's nats-server (the federation link calls it
// after joining). Replica holds the documents and serves the view, the
// delegates' council (Propose, Vote, Proposals), credit (Credit,
// Balances); API adapts both to the mobile API's FederationDocs.
package replica
