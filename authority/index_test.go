package authority

import (
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/circles-coop/circles/crdt"
)

func testEntry(i int, note string) crdt.Entry {
	return crdt.Entry{
		ID:           fmt.Sprintf("00000000-0000-4000-8000-%012d", i),
		Kind:         "labour",
		Quantity:     1.5 + float64(i),
		Unit:         "h",
		Note:         note,
		At:           time.Date(2026, 11, 30, 12, 0, i%60, 123456789, time.UTC),
		Counterparty: "m2",
		Voids:        "",
	}
}

// TestIndexGivesBackWhatItWasGiven: entries and credits come back from
// the scratch file field for field, by id, by page and by member, and a
// record replayed (a restart, a compacted snapshot) changes nothing.
func TestIndexGivesBackWhatItWasGiven(t *testing.T) {
	for _, tc := range []struct {
		name string
		dir  string
	}{
		{"scratch file", t.TempDir()},
		{"no file (kept in memory)", filepath.Join(t.TempDir(), "missing")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ix := NewIndex(tc.dir, nil)
			defer ix.Close()
			var recs []chunkRecord
			for c := 0; c < 10; c++ {
				rec := chunkRecord{Member: fmt.Sprintf("m%d", c%3)}
				for i := 0; i < 5; i++ {
					rec.Entries = append(rec.Entries, testEntry(c*5+i, strings.Repeat("é", c)+"\x00note"))
				}
				rec.Credits = []crdt.Credit{{ID: fmt.Sprintf("10000000-0000-4000-8000-%012d", c), To: "m9", Amount: 0.25, Note: "thanks", At: time.Unix(1e9+int64(c), 7).UTC()}}
				recs = append(recs, rec)
				if n, err := ix.Add(fmt.Sprintf("doc%d", c%2), uint64(c+1), 0, rec); err != nil || n != 6 {
					t.Fatalf("Add = %d, %v", n, err)
				}
			}
			// Replayed: kept as first accepted, counted once.
			if _, err := ix.Add("doc9", 99, 0, recs[3]); err != nil {
				t.Fatal(err)
			}
			if got := ix.Len(); got != 50 {
				t.Fatalf("Len = %d, want 50", got)
			}
			if got := ix.DocItems("doc0") + ix.DocItems("doc1"); got != 60 || ix.DocItems("doc9") != 0 {
				t.Fatalf("DocItems = %d (+%d in the replay's doc), want 60 and 0", got, ix.DocItems("doc9"))
			}
			for c, rec := range recs {
				for i, e := range rec.Entries {
					got, ok, err := ix.Entry(e.ID)
					if err != nil || !ok {
						t.Fatalf("Entry(%s) = %v, %v", e.ID, ok, err)
					}
					if !got.Entry.Same(e) || got.Entry.At != e.At || got.Member != rec.Member || got.Doc != fmt.Sprintf("doc%d", c%2) || got.Seq != indexKey(uint64(c+1), i) {
						t.Fatalf("Entry(%s) = %+v, want %+v of %s", e.ID, got, e, rec.Member)
					}
				}
				cr, ok, err := ix.Credit(rec.Credits[0].ID)
				if err != nil || !ok || !cr.Credit.Same(rec.Credits[0]) || cr.Member != rec.Member {
					t.Fatalf("Credit = %+v, %v, %v", cr, ok, err)
				}
			}
			if _, ok, err := ix.Entry("00000000-0000-4000-8000-999999999999"); ok || err != nil {
				t.Fatalf("an unknown id was found (%v)", err)
			}
			// Pages of everybody, in acceptance order, and of one member.
			var all []Indexed
			for cursor := ""; ; {
				page, next, err := ix.Page("", cursor, 7)
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, page...)
				if next == "" {
					break
				}
				cursor = next
			}
			if len(all) != 50 {
				t.Fatalf("pages held %d entries, want 50", len(all))
			}
			for i, it := range all {
				if it.Entry.ID != testEntry(i, "").ID {
					t.Fatalf("page item %d is %s", i, it.Entry.ID)
				}
			}
			for _, member := range []string{"", "m1"} {
				if page, next, err := ix.Page(member, "18446744073709551615", 10); err != nil || len(page) != 0 || next != "" {
					t.Fatalf("Page(%q) after the largest cursor = %d entries, %q, %v; want none", member, len(page), next, err)
				}
			}
			mine, _, err := ix.Page("m1", "", 100)
			if err != nil || len(mine) != 15 {
				t.Fatalf("m1's page = %d entries, %v; want 15", len(mine), err)
			}
			by, err := ix.ByMember()
			if err != nil || len(by["m0"]) != 20 || len(by["m1"]) != 15 || len(by["m2"]) != 15 {
				t.Fatalf("ByMember = %d/%d/%d, %v", len(by["m0"]), len(by["m1"]), len(by["m2"]), err)
			}
			credits, err := ix.CreditsByAuthor()
			if err != nil || len(credits["m0"]) != 4 {
				t.Fatalf("CreditsByAuthor = %d for m0, %v; want 4", len(credits["m0"]), err)
			}
			keys, err := ix.Keys(recs[2].Entries, append(recs[2].Credits, crdt.Credit{ID: "unknown"}))
			if err != nil || len(keys) != 7 || keys[0] != indexKey(3, 0) || keys[5] != indexKey(3, 5) || keys[6] != 0 {
				t.Fatalf("Keys = %v, %v", keys, err)
			}
		})
	}
}

// TestIndexIDHashCollision: two ids whose hashes meet are both found,
// each as itself (the collision is forced: a 64-bit hash under a random
// seed does not meet by chance in a test).
func TestIndexIDHashCollision(t *testing.T) {
	ix := NewIndex(t.TempDir(), nil)
	defer ix.Close()
	a, b := testEntry(1, "a"), testEntry(2, "b")
	if _, err := ix.Add("doc", 1, 0, chunkRecord{Member: "m", Entries: []crdt.Entry{a}}); err != nil {
		t.Fatal(err)
	}
	// b's hash now points at a.
	ix.entries.byID[maphash.String(ix.seed, b.ID)] = ix.entries.byID[maphash.String(ix.seed, a.ID)]
	if got, ok, _ := ix.Entry(b.ID); ok {
		t.Fatalf("b found before it was added, as %s", got.Entry.ID)
	}
	if _, err := ix.Add("doc", 2, 0, chunkRecord{Member: "m", Entries: []crdt.Entry{b}}); err != nil {
		t.Fatal(err)
	}
	for _, e := range []crdt.Entry{a, b} {
		got, ok, err := ix.Entry(e.ID)
		if err != nil || !ok || got.Entry.ID != e.ID || got.Entry.Note != e.Note {
			t.Fatalf("Entry(%s) = %s %q, %v, %v", e.ID, got.Entry.ID, got.Entry.Note, ok, err)
		}
	}
	if ix.Len() != 2 {
		t.Fatalf("Len = %d, want 2", ix.Len())
	}
}

// TestIndexOutOfOrderKeys: an item that comes with an earlier key (a
// snapshot's record) takes its place in the order.
func TestIndexOutOfOrderKeys(t *testing.T) {
	ix := NewIndex(t.TempDir(), nil)
	defer ix.Close()
	if _, err := ix.Add("doc", 5, 0, chunkRecord{Member: "m", Entries: []crdt.Entry{testEntry(2, "")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ix.Add("doc", 9, 0, chunkRecord{Member: "m", Entries: []crdt.Entry{testEntry(1, "")}, Keys: []uint64{indexKey(3, 0)}}); err != nil {
		t.Fatal(err)
	}
	for _, member := range []string{"", "m"} {
		page, _, err := ix.Page(member, "", 10)
		if err != nil || len(page) != 2 || page[0].Entry.ID != testEntry(1, "").ID || page[1].Entry.ID != testEntry(2, "").ID {
			t.Fatalf("Page(%q) = %+v, %v; want entry 1 then 2", member, page, err)
		}
	}
}

// TestIndexMemoryDoesNotHoldBodies: what the index keeps in memory does
// not grow with what the entries say. 20,000 entries with 1 KB notes are
// 20 MB of text; the index holds well under a tenth of it.
func TestIndexMemoryDoesNotHoldBodies(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 20 MB")
	}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	ix := NewIndex(t.TempDir(), nil)
	defer ix.Close()
	note := strings.Repeat("n", 1000)
	const n = 20000
	for c := 0; c < n/10; c++ {
		rec := chunkRecord{Member: fmt.Sprintf("m%d", c%30)}
		for i := 0; i < 10; i++ {
			rec.Entries = append(rec.Entries, testEntry(c*10+i, note))
		}
		if _, err := ix.Add(fmt.Sprintf("doc%d", c/100), uint64(c+1), 0, rec); err != nil {
			t.Fatal(err)
		}
	}
	grown := int64(heap()) - int64(before)
	t.Logf("index of %d entries with 1 KB notes: %d bytes of heap (%d per entry)", n, grown, grown/n)
	if grown > n*100 {
		t.Errorf("the index holds %d bytes for %d entries, want under %d (100 an entry)", grown, n, n*100)
	}
	runtime.KeepAlive(ix)
}

// TestIndexSameIDTwiceInOneRecord: the first is kept, as across records.
func TestIndexSameIDTwiceInOneRecord(t *testing.T) {
	ix := NewIndex(t.TempDir(), nil)
	defer ix.Close()
	a, again := testEntry(1, "first"), testEntry(1, "second")
	if _, err := ix.Add("doc", 1, 0, chunkRecord{Member: "m", Entries: []crdt.Entry{a, again}}); err != nil {
		t.Fatal(err)
	}
	got, ok, err := ix.Entry(a.ID)
	if err != nil || !ok || got.Entry.Note != "first" || ix.Len() != 1 || ix.DocItems("doc") != 1 {
		t.Fatalf("Entry = %q, %v, %v; Len %d, DocItems %d; want the first, once", got.Entry.Note, ok, err, ix.Len(), ix.DocItems("doc"))
	}

	// Credits the same way; and an entry and a credit may share an id
	// (they are indexed apart), so both of those are kept.
	c := crdt.Credit{ID: "20000000-0000-4000-8000-000000000002", To: "m2", Amount: 1, Note: "first", At: time.Unix(1e9, 0).UTC()}
	cAgain := c
	cAgain.Note = "second"
	shared := testEntry(2, "entry")
	shared.ID = c.ID
	if _, err := ix.Add("doc2", 2, 0, chunkRecord{Member: "m", Entries: []crdt.Entry{shared}, Credits: []crdt.Credit{c, cAgain}}); err != nil {
		t.Fatal(err)
	}
	gotC, okC, errC := ix.Credit(c.ID)
	gotE, okE, errE := ix.Entry(c.ID)
	if errC != nil || !okC || gotC.Credit.Note != "first" || errE != nil || !okE || gotE.Entry.Note != "entry" || ix.DocItems("doc2") != 2 {
		t.Fatalf("Credit = %q, %v, %v; Entry = %q, %v, %v; DocItems %d; want the first credit and the entry, 2 items",
			gotC.Credit.Note, okC, errC, gotE.Entry.Note, okE, errE, ix.DocItems("doc2"))
	}
}

// BenchmarkIndexByMember: what the balances pay to read every entry back
// from the scratch file (50,000 entries of 30 members).
func BenchmarkIndexByMember(b *testing.B) {
	ix := NewIndex(b.TempDir(), nil)
	defer ix.Close()
	for c := 0; c < 5000; c++ {
		rec := chunkRecord{Member: fmt.Sprintf("m%d", c%30)}
		for i := 0; i < 10; i++ {
			rec.Entries = append(rec.Entries, testEntry(c*10+i, "contribution to the tool library"))
		}
		if _, err := ix.Add(fmt.Sprintf("doc%d", c/100), uint64(c+1), 0, rec); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		by, err := ix.ByMember()
		if err != nil || len(by) != 30 {
			b.Fatal(len(by), err)
		}
	}
}

// TestIndexReadErrorsReachTheCaller: when the scratch file cannot be read,
// every read says so instead of answering "not found" or an empty list
// (which would let a duplicate id in).
func TestIndexReadErrorsReachTheCaller(t *testing.T) {
	ix := NewIndex(t.TempDir(), nil)
	defer ix.Close()
	e := testEntry(1, "x")
	c := crdt.Credit{ID: "10000000-0000-4000-8000-000000000001", To: "m2", Amount: 1, At: time.Unix(1e9, 0).UTC()}
	if _, err := ix.Add("doc", 1, 0, chunkRecord{Member: "m", Entries: []crdt.Entry{e}, Credits: []crdt.Credit{c}}); err != nil {
		t.Fatal(err)
	}
	if err := ix.bodies.f.Close(); err != nil { // the file goes away under the index
		t.Fatal(err)
	}
	if _, _, err := ix.Entry(e.ID); err == nil {
		t.Error("Entry read nothing without an error")
	}
	if _, _, err := ix.Credit(c.ID); err == nil {
		t.Error("Credit read nothing without an error")
	}
	if _, _, err := ix.Page("", "", 10); err == nil {
		t.Error("Page read nothing without an error")
	}
	if _, err := ix.ByMember(); err == nil {
		t.Error("ByMember read nothing without an error")
	}
	if _, err := ix.CreditsByAuthor(); err == nil {
		t.Error("CreditsByAuthor read nothing without an error")
	}
	if _, err := ix.Keys([]crdt.Entry{e}, nil); err == nil {
		t.Error("Keys read nothing without an error")
	}
	if _, err := ix.Add("doc", 2, 0, chunkRecord{Member: "m", Entries: []crdt.Entry{e}}); err == nil {
		t.Error("Add of a known id could not check it, yet answered no error")
	}
}

// TestIndexWriteFailureKeepsItemsAndLogsOnce: a write that fails moves the
// index to memory; nothing is lost and the failure is logged once.
func TestIndexWriteFailureKeepsItemsAndLogsOnce(t *testing.T) {
	var logs strings.Builder
	ix := NewIndex(t.TempDir(), slog.New(slog.NewTextHandler(&logs, nil)))
	defer ix.Close()
	ix.bodies.mu.Lock()
	ix.bodies.open()
	_ = ix.bodies.f.Close() // every write now fails
	ix.bodies.mu.Unlock()
	for i := range 3 {
		if _, err := ix.Add("doc", uint64(i+1), 0, chunkRecord{Member: "m", Entries: []crdt.Entry{testEntry(i, "kept")}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		got, ok, err := ix.Entry(testEntry(i, "").ID)
		if err != nil || !ok || got.Entry.Note != "kept" {
			t.Fatalf("entry %d after a failed write: %+v, %v, %v", i, got.Entry, ok, err)
		}
	}
	if n := strings.Count(logs.String(), "cannot write its scratch file"); n != 1 {
		t.Errorf("the failure was logged %d times, want once:\n%s", n, logs.String())
	}
}

// TestIndexDamagedBody: every truncation of a body is refused as damaged,
// never read as another item or a panic.
func TestIndexDamagedBody(t *testing.T) {
	it := Indexed{Seq: 7, Member: "m", Doc: "doc", Entry: testEntry(1, "a note")}
	b := encodeEntry(&it)
	if got, err := decodeEntry(string(b)); err != nil || !got.Entry.Same(it.Entry) {
		t.Fatalf("whole body = %+v, %v", got, err)
	}
	for n := 0; n < len(b); n++ {
		if _, err := decodeEntry(string(b[:n])); !errors.Is(err, errBadBody) {
			t.Fatalf("a body cut at %d of %d bytes decoded with %v, want errBadBody", n, len(b), err)
		}
	}
	c := IndexedCredit{Seq: 7, Member: "m", Doc: "doc", Credit: crdt.Credit{ID: "c", To: "m2", Amount: 2, Note: "n", At: time.Unix(5, 6).UTC()}}
	cb := encodeCredit(&c)
	for n := 0; n < len(cb); n++ {
		if _, err := decodeCredit(string(cb[:n])); !errors.Is(err, errBadBody) {
			t.Fatalf("a credit cut at %d of %d bytes decoded with %v, want errBadBody", n, len(cb), err)
		}
	}
}
