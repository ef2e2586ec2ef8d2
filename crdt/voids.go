package crdt

// Voided returns the ids of the entries in entries that a correction voids.
// entries must be one author's entries, from all of their ledger segments:
// a correction only ever voids its own author's entries, so the caller
// groups by author (Balances, BuildScorecard and the client's ledger view
// all do).
//
// This is the one voiding rule of the circle (API.md: "a correction is a
// new entry that voids an old one"; DESIGN.md §4: nothing accepted is
// rewritten or deleted):
//
//   - An entry is voided when another entry of the same author names it
//     in "voids". A voided entry counts for nothing; the correction counts
//     with its own fields.
//   - Order does not matter: neither "at" (what the author says happened,
//     and a correction may well move an entry to an earlier day) nor the
//     order the entries arrived in. Replicas receive entries in any
//     order; a rule that depended on it would make devices and the server
//     disagree about the same ledger.
//   - Chains: if B voids A and C voids B, A and B are voided and only C
//     counts. A correction that is itself voided still voids its target
//     (voiding the correction does not bring back the entry it replaced).
//   - An entry naming itself voids nothing (Entry.Validate refuses it; the
//     schema has no pure retraction).
//   - If an id appears more than once, each copy's "voids" applies, and a
//     voided id is voided in every copy.
//   - An id named in "voids" that is not among entries (another author's
//     entry, or one not synced yet) is not in the result; once the entry
//     arrives, it is voided.
//
// The result is never nil.
func Voided(entries []Entry) map[string]bool {
	named := make(map[string]bool)
	for _, e := range entries {
		if e.Voids != "" && e.Voids != e.ID {
			named[e.Voids] = true
		}
	}
	out := make(map[string]bool)
	if len(named) == 0 {
		return out
	}
	for _, e := range entries {
		if named[e.ID] {
			out[e.ID] = true
		}
	}
	return out
}
