// Package crdt holds the circle's Automerge documents: their kinds and ids,
// their schemas, typed access to them, the write rules a change must pass,
// and the views derived from them (balances, signals).
//
// The package is pure: it does no I/O, reads no clock (callers pass now)
// and knows nothing of HTTP or NATS. Callers hand it *automerge.Doc values
// and decoded changes.
//
// # Documents
//
// Each kind of document (Kind) has an Init function that writes its root,
// Put functions that write one validated value, and Read or Lookup
// functions that return typed values:
//
//   - a member's ledger segment: Entry (contributions) and Credit (mutual
//     credit transfers) — InitLedger, PutEntry, PutCredit, ReadLedger,
//     LookupEntry, LookupCredit;
//   - a member's ballots: Proposal, Vote and reset statements —
//     InitBallots, PutProposal, PutVote, PutResetStatement, ReadBallots;
//   - the roster: Member, Device, Role, Mandate — InitRoster, PutMember,
//     PutRole, PutMandate, ReadRoster;
//   - the charter with its Policies — InitCharter, PutCharter, ReadCharter;
//     the charter draft — InitCharterDraft, ReadCharterDraft; governance —
//     InitGovernance, ReadEpoch; audit — InitAudit.
//
// None of the Init or Put functions commits: the caller groups writes into
// one change and commits it.
//
// # What a member cannot do to others
//
// A member writes their own ledger and ballots and the charter draft
// freely, so the rules that keep one member from harming the rest are
// here: CheckAppendOnly bounds every value before it is applied
// (MaxValueLen), CheckBallotsGrowth bounds a ballots document over its
// life, CheckDraftChanges and CheckCharterDraft bound the charter draft;
// ParseReset checks every claim of a reset statement (alg, aud, typ,
// epoch, iss, iat, jti, nothing more) and CheckAssertionClaims keeps
// device assertions apart from statements; AdmitReset keeps one live,
// verified reset signature per member (PendingResets reads them without
// cryptography); OpenProposal and AddPendingVote bound what one member
// can make the governance document hold (MaxOpenProposalsPerMember,
// MaxPendingVotesPerMember); CancelOpenProposals ends the proposals of an
// epoch a hard reset ended.
//
// # Strings
//
// Everything is written as scalar strings, which are several times cheaper
// to store and load than automerge text; only the charter draft's text is a
// Text object, for editing together. Readers accept both, since the JS
// library writes text by default, and accept numbers stored as int, uint or
// float, and times as RFC 3339 strings or automerge timestamps.
//
// # Errors
//
// A value that breaks a schema or a rule is reported as a *RuleError whose
// Rule names the rule ("schema", "immutable", "policy", "actor",
// "permission") and whose Message names the field. Readers check a value's
// kind before using automerge-go's typed accessors, which panic on a
// mismatch, so a malformed document gives an error, never a panic.
// Conditions callers branch on are named errors: ErrEntryExists,
// ErrNotInitialized, ErrBadDocID.
//
// # Views
//
// Balances derives per-member given, received and balance and the
// signals of informal hierarchy (top share, Gini coefficient, silent
// members); MutualCredit derives mutual-credit balances and flags
// transfers over the credit limit; BuildScorecard counts dependencies
// reversed; Decide (decide.go) settles proposals; CountReset counts hard-
// reset signatures; VerifyAudit re-checks the audit chain;
// Charter.StatusAt and Mandate.StatusAt derive expiry; RotateRole and
// AssignRole rotate roles and count consecutive terms; DrawPick picks a
// role's holder from a draw's seed and eligible members, and
// VerifyAuditDraws recomputes every draw in the audit log (draw.go says
// what the draws guarantee). Their exact rules are documented on each
// function.
package crdt
