package crdt_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
)

// BenchmarkResetCount measures what the server does for each reset
// statement that arrives (REST or a ballots document) in a circle of 30
// members that has already been sent 100 or 1,000 statements (members
// signing again, one member's ballots full of statements): verify it
// once (ParseReset), keep it or not (AdmitReset) and, only when it was
// kept, recount the pending signatures (PendingResets, CountReset; no
// cryptography), then commit. One live signature per member is kept, so
// the cost does not grow with the statements sent.
func BenchmarkResetCount(b *testing.B) {
	for _, sent := range []int{100, 1000} {
		b.Run(fmt.Sprintf("pending=%d", sent), func(b *testing.B) {
			at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			c := newResetCircle(b, 30, at.Add(-30*24*time.Hour))
			ms := c.members()
			pol := crdt.DefaultPolicies()
			d := automerge.New()
			if err := crdt.InitGovernance(d); err != nil {
				b.Fatal(err)
			}
			mustCommit(b, d)
			arrive := func(st string, now time.Time) {
				sig, err := crdt.ParseReset(st, c.id, c.roster)
				if err != nil {
					b.Fatal(err)
				}
				kept, err := crdt.AdmitReset(d, sig, c.roster, pol, now)
				if err != nil {
					b.Fatal(err)
				}
				if !kept {
					return // nothing changed: nothing to recount or commit
				}
				sigs, err := crdt.PendingResets(d)
				if err != nil {
					b.Fatal(err)
				}
				crdt.CountReset(sigs, 0, c.roster, pol, now)
				if _, err := d.Commit("reset"); err != nil {
					b.Fatal(err)
				}
			}
			for i := range sent {
				arrive(c.sign(b, ms[i%len(ms)], 0, "s"+strconv.Itoa(i), at), at)
			}
			if n, _ := crdt.PendingResets(d); len(n) != len(ms) {
				b.Fatalf("pending = %d, want %d", len(n), len(ms))
			}
			sts := make([]string, b.N)
			for i := range sts {
				sts[i] = c.sign(b, ms[i%len(ms)], 0, "n"+strconv.Itoa(i), at.Add(time.Minute))
			}
			b.ResetTimer()
			for i := range b.N {
				arrive(sts[i], at.Add(time.Minute))
			}
		})
	}
}

// BenchmarkResetRecount measures a recount (when a statement was kept,
// and on every scheduler tick) with one pending signature for each of
// 30, 100 or 1,000 members: reading the verified records and counting
// them, without cryptography.
func BenchmarkResetRecount(b *testing.B) {
	for _, members := range []int{30, 100, 1000} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
			at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			c := newResetCircle(b, members, at.Add(-30*24*time.Hour))
			pol := crdt.DefaultPolicies()
			d := automerge.New()
			if err := crdt.InitGovernance(d); err != nil {
				b.Fatal(err)
			}
			for i, m := range c.members() {
				sig, err := crdt.ParseReset(c.sign(b, m, 0, "s"+strconv.Itoa(i), at), c.id, c.roster)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := crdt.AdmitReset(d, sig, c.roster, pol, at); err != nil {
					b.Fatal(err)
				}
			}
			mustCommit(b, d)
			b.ResetTimer()
			for range b.N {
				sigs, err := crdt.PendingResets(d)
				if err != nil {
					b.Fatal(err)
				}
				if counted, _ := crdt.CountReset(sigs, 0, c.roster, pol, at); len(counted) != members {
					b.Fatalf("counted %d, want %d", len(counted), members)
				}
			}
		})
	}
}
