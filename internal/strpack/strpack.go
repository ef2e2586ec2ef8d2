// Package strpack keeps long-lived short strings out of Go's tiny
// allocator, where they would keep automerge's C memory alive.
//
// Go packs pointer-free allocations smaller than 16 bytes into shared
// 16-byte blocks, and a block is freed only when nothing in it is
// reachable. automerge-go wraps every C result (a document, a sync
// message, a read) in an 8-byte pointer-free value whose finalizer frees
// the C memory, so such a wrapper often shares its block with whatever
// small thing the same goroutine allocates next. When that thing is a
// short string kept for ever (a ledger entry's kind or unit, when the
// server's index held entries in memory; today the author and segment
// ids it keeps as map keys), the wrapper's finalizer never runs, and the C
// memory it owns, a whole document even, stays allocated for as long as
// the process lives (issue 7: the soak's C heap at rest;
// BenchmarkSyncResidue).
//
// Pack copies a set of strings into one allocation of at least 16 bytes,
// which the tiny allocator never serves, and points each string into it.
package strpack

import "strings"

// minAlloc is the smallest allocation Go does not serve from its tiny
// allocator (the runtime's maxTinySize).
const minAlloc = 16

// Pack replaces each string with a copy that lives, with the others, in
// one allocation of at least 16 bytes. Strings that are already long are
// copied too: the point is that nothing short is left in a block of its
// own. Pack is meant for values kept for a long time; it costs one copy.
func Pack(ss ...*string) {
	n := 0
	for _, s := range ss {
		n += len(*s)
	}
	if n == 0 {
		return // empty strings point at no allocation
	}
	var b strings.Builder
	b.Grow(max(n, minAlloc))
	for _, s := range ss {
		b.WriteString(*s)
	}
	all := b.String()
	off := 0
	for _, s := range ss {
		l := len(*s)
		*s = all[off : off+l]
		off += l
	}
}
