// Package authority is the circle's authority: everything the circle
// decides, independent of any transport. It is the only writer of the
// documents the server writes (roster, charter, governance, audit), the
// judge of every change a device sends (Policy, the write rules of
// DESIGN.md §4, asked by the sync engine before anything is applied), and
// the home of the circle's features, which mobile-api (HTTP) and
// federation call alike:
//
//   - Identity (identity.go): invites, enrolment, device assertions traded
//     for access tokens, device revocation.
//   - Circle (circle.go): what the circle is, and sync batches.
//   - Ledger (ledger.go, segments in ledger.go) and Credits (credits.go,
//     breach.go): entries, balances and signals, mutual credit.
//   - Scorecard (scorecard.go).
//   - Governance (governance.go, effects.go, admit.go): proposals, votes,
//     decisions (crdt.Decide) and their effects.
//   - Draws (draws.go), Terms (terms.go), Charter (charter.go), Mandates
//     (mandates.go): verifiable draws, role terms ending, the charter's
//     renewal and lapse, mandates ending — the clock-driven work that
//     Authority.Tick runs.
//   - Resets (resets.go): the hard reset.
//   - Audit (audit.go): the hash-chained audit log every feature writes.
//   - Policy (policy.go) and Dispatcher (dispatch.go): the engine's two
//     hooks — may this change be applied, and what follows once it is
//     stored (the index, counting ballots, judging credits, new segments).
//
// The features are small types over one shared State (state.go), whose
// fields say what is shared and which lock guards what. The pure rules are
// in package crdt; the authority reads and writes documents only through
// the engine, and reports refusals as *fault.Error (authority/fault) or
// *crdt.RuleError, which each transport maps to its own answers. It
// imports neither echo nor mobile-api.
package authority
