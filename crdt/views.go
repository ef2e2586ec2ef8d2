package crdt

import (
	"slices"
	"time"
)

// Balance is one member's line in the reciprocity view (API.md,
// GET /v1/balances).
type Balance struct {
	Member     string
	Given      float64    // sum of the quantities of the member's counted entries
	Received   float64    // sum of the quantities of others' counted entries naming the member
	Balance    float64    // Given - Received
	LastActive *time.Time // newest "at" among all the member's entries; nil if none
}

// Signals are early warnings of informal hierarchy and disengagement.
type Signals struct {
	TopShare      float64  // largest Given / total Given; 0 when nothing was given
	Gini          float64  // Gini coefficient of Given over the listed members
	SilentMembers []string // members with no entry within silentAfter of now, sorted
}

// Balances derives each listed member's balance and the circle's signals
// from the members' ledger entries (entries maps an author's member id to
// all the entries of all their ledger segments).
//
// The rules:
//
//   - Only the entries of listed members count; an entry whose id appears
//     twice for one author counts once. Quantities are summed as logged,
//     whatever their kind or unit.
//   - Voiding follows Voided: an entry is excluded when another entry by
//     the same author names it in "voids". The voiding entry itself counts
//     with its own quantity: it is the corrected version that replaces the
//     old one (the schema has no zero quantities, so a pure retraction is
//     not expressible; correct it to the right amount instead). A "voids"
//     naming another author's entry has no effect, and chains work
//     naturally: if B voids A and C voids B, only C counts.
//   - Given is the sum of a member's counted entries. Received is the sum of
//     the counted entries of other listed members that name the member as
//     counterparty; an entry naming its own author, or someone not listed,
//     adds to no one's Received. Balance = Given - Received.
//   - LastActive is the newest "at" of all the member's entries, voided or
//     not: logging a correction is activity too.
//   - TopShare is the largest Given divided by the sum of all Given (0 when
//     that sum is 0).
//   - Gini uses the population formula
//     G = Σᵢ Σⱼ |xᵢ − xⱼ| / (2 n² x̄) over the n listed members' Given,
//     computed from the sorted values as Σᵢ (2i − n − 1) x₍ᵢ₎ / (n Σx).
//     It is 0 when everyone gave the same, (n−1)/n when one member gave
//     everything (0.75 for givens 0, 0, 0, 10), and 0 for n ≤ 1 or when
//     nothing was given.
//   - SilentMembers lists, sorted, the members whose LastActive is nil or
//     more than silentAfter before now.
//
// The result keeps the order of members, without duplicates.
func Balances(members []string, entries map[string][]Entry, now time.Time, silentAfter time.Duration) ([]Balance, Signals) {
	index := make(map[string]int, len(members))
	out := make([]Balance, 0, len(members))
	for _, m := range members {
		if _, dup := index[m]; dup {
			continue
		}
		index[m] = len(out)
		out = append(out, Balance{Member: m})
	}

	for i := range out {
		author := out[i].Member
		list := entries[author]
		voided := Voided(list)
		seen := make(map[string]bool, len(list))
		for _, e := range list {
			if seen[e.ID] {
				continue
			}
			seen[e.ID] = true
			if out[i].LastActive == nil || e.At.After(*out[i].LastActive) {
				at := e.At
				out[i].LastActive = &at
			}
			if voided[e.ID] {
				continue
			}
			out[i].Given += e.Quantity
			if j, ok := index[e.Counterparty]; ok && e.Counterparty != author {
				out[j].Received += e.Quantity
			}
		}
	}

	sig := Signals{SilentMembers: []string{}}
	givens := make([]float64, len(out))
	var total, top float64
	for i := range out {
		b := &out[i]
		b.Balance = b.Given - b.Received
		givens[i] = b.Given
		total += b.Given
		top = max(top, b.Given)
		if b.LastActive == nil || now.Sub(*b.LastActive) > silentAfter {
			sig.SilentMembers = append(sig.SilentMembers, b.Member)
		}
	}
	slices.Sort(sig.SilentMembers)
	if total > 0 {
		sig.TopShare = top / total
		sig.Gini = gini(givens, total)
	}
	return out, sig
}

// gini computes the population Gini coefficient of xs (all ≥ 0, summing to
// total > 0).
func gini(xs []float64, total float64) float64 {
	n := len(xs)
	if n < 2 {
		return 0
	}
	sorted := slices.Clone(xs)
	slices.Sort(sorted)
	var s float64
	for i, x := range sorted {
		s += float64(2*(i+1)-n-1) * x
	}
	return s / (float64(n) * total)
}
