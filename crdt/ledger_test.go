package crdt_test

import (
	"errors"
	"testing"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/circles-coop/circles/crdt"
	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2025, 3, 14, 9, 26, 53, 589793000, time.UTC)

func sampleEntry(id string) crdt.Entry {
	return crdt.Entry{ID: id, Kind: "hours", Quantity: 2.5, Unit: "h", Note: "weeded the beds", At: t0, Counterparty: "m-bob"}
}

func newLedger(tb testing.TB) *automerge.Doc {
	tb.Helper()
	doc := automerge.New()
	if err := crdt.InitLedger(doc, "m-alice", 0); err != nil {
		tb.Fatalf("InitLedger() = %v", err)
	}
	if _, err := doc.Commit("init"); err != nil {
		tb.Fatalf("Commit() = %v", err)
	}
	return doc
}

func TestLedgerRoundTrip(t *testing.T) {
	doc := newLedger(t)
	entries := []crdt.Entry{
		sampleEntry("0b6c1c5e-2f0a-4c3e-9a57-7d1e6f3b2a10"),
		{ID: "5f0e8a4c-1b2d-4e3f-8a9b-0c1d2e3f4a5b", Kind: "meal", Quantity: 1, Note: "", At: t0.Add(time.Hour), Voids: "0b6c1c5e-2f0a-4c3e-9a57-7d1e6f3b2a10"},
	}
	credits := []crdt.Credit{{ID: "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", To: "m-bob", Amount: 3, Note: "thanks", At: t0}}
	for _, e := range entries {
		if err := crdt.PutEntry(doc, e); err != nil {
			t.Fatalf("PutEntry(%s) = %v", e.ID, err)
		}
	}
	for _, c := range credits {
		if err := crdt.PutCredit(doc, c); err != nil {
			t.Fatalf("PutCredit(%s) = %v", c.ID, err)
		}
	}
	if _, err := doc.Commit("log"); err != nil {
		t.Fatal(err)
	}
	loaded, err := automerge.Load(doc.Save())
	if err != nil {
		t.Fatal(err)
	}
	gotE, gotC, err := crdt.ReadLedger(loaded)
	if err != nil {
		t.Fatalf("ReadLedger() = %v", err)
	}
	if diff := cmp.Diff(entries, gotE); diff != "" {
		t.Errorf("ReadLedger() entries (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(credits, gotC); diff != "" {
		t.Errorf("ReadLedger() credits (-want +got):\n%s", diff)
	}
	if err := crdt.PutEntry(loaded, entries[0]); !errors.Is(err, crdt.ErrEntryExists) {
		t.Errorf("PutEntry(existing) = %v, want ErrEntryExists", err)
	}
}
