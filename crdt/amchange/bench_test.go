package amchange_test

import (
	"testing"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/circles-coop/circles/crdt/amchange"
)

// ledgerEntryChange returns a change like one a member makes when logging
// a ledger entry: a map of seven fields put into the entries map, 8 ops.
func ledgerEntryChange(b *testing.B) []byte {
	doc := MustDoc(b, actorA)
	entries := automerge.NewMap()
	Must(b, doc.RootMap().Set("entries", entries))
	MustCommit(b, doc, "")
	entry := automerge.NewMap()
	const entryID = "0b6d9c1e-4f7a-4c55-9a3e-2d1f0c8b7a61"
	Must(b, entries.Set(entryID, entry))
	for _, kv := range []struct {
		k string
		v any
	}{
		{"id", entryID},
		{"kind", "hours"},
		{"quantity", 2.5},
		{"unit", "h"},
		{"note", "Fixed the community garden fence"},
		{"at", time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC).Format(time.RFC3339)},
		{"counterparty", "member-7f3a"},
	} {
		Must(b, entry.Set(kv.k, kv.v))
	}
	MustCommit(b, doc, "")
	chs := MustChanges(b, doc)
	return chs[len(chs)-1].Save()
}

func BenchmarkDecode(b *testing.B) {
	list := func(b *testing.B) []byte {
		doc := MustDoc(b, actorA)
		l := automerge.NewList()
		Must(b, doc.RootMap().Set("l", l))
		var vals []any
		for i := range 1000 {
			vals = append(vals, int64(i*7%100))
		}
		Must(b, l.Append(vals...))
		MustCommit(b, doc, "")
		return MustChanges(b, doc)[0].Save()
	}
	for _, bc := range []struct {
		name string
		in   func(b *testing.B) []byte
	}{
		{"ledger entry", ledgerEntryChange},
		{"1001-op list", list},
		{"1001-op list compressed", func(b *testing.B) []byte { return compressChunk(b, list(b)) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			in := bc.in(b)
			c, err := amchange.Decode(in)
			Must(b, err)
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := amchange.Decode(in); err != nil {
					b.Fatal(err)
				}
			}
			s := b.Elapsed().Seconds()
			b.ReportMetric(float64(b.N)/s, "changes/s")
			b.ReportMetric(float64(b.N*len(c.Ops))/s, "ops/s")
		})
	}
}
