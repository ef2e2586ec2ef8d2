package authority

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/internal/strpack"
)

// chunkRecord is what the engine stores beside a member document's chunk
// (Policy.Accept returns it): for a ledger segment, the entries and
// credits the chunk added, so the index can be rebuilt at start from the
// store without loading a single document; for a ballots document, the
// reset statements, proposals and votes it added, so they are counted
// again if the server stopped before counting them.
type chunkRecord struct {
	Member  string        `json:"m"`
	Entries []crdt.Entry  `json:"e,omitempty"`
	Credits []crdt.Credit `json:"c,omitempty"`
	// Resets are reset statements that arrived in a ballots document.
	Resets []string `json:"r,omitempty"`
	// Proposals and Votes arrived in a ballots document
	// (Governance counts them).
	Proposals []crdt.Proposal `json:"p,omitempty"`
	Votes     []crdt.Vote     `json:"v,omitempty"`
	// Keys, in a snapshot's record, are the entries' and then the credits'
	// index keys from when they were first accepted, so that compaction
	// does not change their order.
	Keys []uint64 `json:"k,omitempty"`
}

// indexKey orders the index: the store's sequence of the chunk that
// brought an item, then its position in that chunk. It is the same every
// time the index is rebuilt, so cursors survive restarts.
func indexKey(seq uint64, pos int) uint64 { return seq<<20 | uint64(pos) }

// Indexed is one entry as the index holds it.
type Indexed struct {
	Seq    uint64 // index key (indexKey): the order of acceptance
	Member string // author
	Doc    string // ledger segment it lives in
	Entry  crdt.Entry
}

// Index keeps every accepted ledger entry and credit in memory, in the
// order they were accepted, so REST reads and balances never load a
// document. It is updated after each stored change and rebuilt at start.
// Each item's strings are packed into one allocation (strpack): kept for
// ever, short ones would otherwise pin automerge's C memory.
type Index struct {
	mu       sync.RWMutex
	all      []*Indexed            // by Seq-1
	byID     map[string]*Indexed   // entry id →
	byMember map[string][]*Indexed // author → entries in acceptance order
	perDoc   map[string]int        // ledger segment → entries + credits it holds
	credits  []*IndexedCredit      // by Seq-1
	creditID map[string]*IndexedCredit
}

// IndexedCredit is one mutual-credit transfer as the index holds it.
type IndexedCredit struct {
	Seq    uint64 // index key (indexKey): the order of acceptance
	Member string // author
	Doc    string // ledger segment it lives in
	Credit crdt.Credit
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{
		byID:     make(map[string]*Indexed),
		byMember: make(map[string][]*Indexed),
		perDoc:   make(map[string]int),
		creditID: make(map[string]*IndexedCredit),
	}
}

// Add records the entries and credits of one record of doc, stored in the
// chunk with sequence seq; first is the position of the record's first
// item among the chunk's items. An id already indexed is kept as first
// accepted (records are replayed idempotently). It returns the number of
// items the record holds.
func (ix *Index) Add(doc string, seq uint64, first int, rec chunkRecord) int {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	key := func(i int) uint64 {
		if i < len(rec.Keys) && rec.Keys[i] != 0 {
			return rec.Keys[i]
		}
		return indexKey(seq, first+i)
	}
	for i, e := range rec.Entries {
		if _, ok := ix.byID[e.ID]; ok {
			continue
		}
		it := &Indexed{Seq: key(i), Member: rec.Member, Doc: doc, Entry: e}
		strpack.Pack(&it.Member, &it.Doc, &it.Entry.ID, &it.Entry.Kind, &it.Entry.Unit, &it.Entry.Note, &it.Entry.Counterparty, &it.Entry.Voids)
		// The maps keep their keys: the packed strings, not the record's.
		ix.all = insertByKey(ix.all, it, func(x *Indexed) uint64 { return x.Seq })
		ix.byID[it.Entry.ID] = it
		ix.byMember[it.Member] = insertByKey(ix.byMember[it.Member], it, func(x *Indexed) uint64 { return x.Seq })
		ix.perDoc[it.Doc]++
	}
	for i, c := range rec.Credits {
		if _, ok := ix.creditID[c.ID]; ok {
			continue
		}
		it := &IndexedCredit{Seq: key(len(rec.Entries) + i), Member: rec.Member, Doc: doc, Credit: c}
		strpack.Pack(&it.Member, &it.Doc, &it.Credit.ID, &it.Credit.To, &it.Credit.Note)
		ix.credits = insertByKey(ix.credits, it, func(x *IndexedCredit) uint64 { return x.Seq })
		ix.creditID[it.Credit.ID] = it
		ix.perDoc[it.Doc]++
	}
	return len(rec.Entries) + len(rec.Credits)
}

// insertByKey inserts it into xs, kept sorted by key. Items almost always
// come in order, so this is an append.
func insertByKey[T any](xs []T, it T, key func(T) uint64) []T {
	k := key(it)
	if n := len(xs); n == 0 || key(xs[n-1]) <= k {
		return append(xs, it)
	}
	i, _ := slices.BinarySearchFunc(xs, k, func(x T, k uint64) int { return cmp.Compare(key(x), k) })
	return slices.Insert(xs, i, it)
}

// Keys returns the index keys of the given entries and then credits
// (indexKey; 0 for an id not indexed), for a snapshot's record.
func (ix *Index) Keys(entries []crdt.Entry, credits []crdt.Credit) []uint64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	out := make([]uint64, 0, len(entries)+len(credits))
	for _, e := range entries {
		var k uint64
		if it, ok := ix.byID[e.ID]; ok {
			k = it.Seq
		}
		out = append(out, k)
	}
	for _, c := range credits {
		var k uint64
		if it, ok := ix.creditID[c.ID]; ok {
			k = it.Seq
		}
		out = append(out, k)
	}
	return out
}

// Credit looks a credit up by id.
func (ix *Index) Credit(id string) (IndexedCredit, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	it, ok := ix.creditID[id]
	if !ok {
		return IndexedCredit{}, false
	}
	return *it, true
}

// CreditsByAuthor returns a copy of every author's credits, for the
// mutual-credit view.
func (ix *Index) CreditsByAuthor() map[string][]crdt.Credit {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	out := make(map[string][]crdt.Credit)
	for _, it := range ix.credits {
		out[it.Member] = append(out[it.Member], it.Credit)
	}
	return out
}

// Entry looks an entry up by id.
func (ix *Index) Entry(id string) (Indexed, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	it, ok := ix.byID[id]
	if !ok {
		return Indexed{}, false
	}
	return *it, true
}

// Len is the number of entries indexed.
func (ix *Index) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return len(ix.all)
}

// DocItems is the number of entries and credits a ledger segment holds.
func (ix *Index) DocItems(doc string) int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.perDoc[doc]
}

// Page returns up to limit entries after cursor (a Seq, "" for the start),
// of one member or of everybody, and the cursor of the next page ("" at
// the end).
func (ix *Index) Page(member string, cursor string, limit int) ([]Indexed, string, error) {
	var after uint64
	if cursor != "" {
		n, err := strconv.ParseUint(cursor, 10, 64)
		if err != nil {
			return nil, "", fmt.Errorf("bad cursor %q", cursor)
		}
		after = n
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	src := ix.all
	if member != "" {
		src = ix.byMember[member]
	}
	// Entries are in Seq order: find the first after the cursor.
	lo, hi := 0, len(src)
	for lo < hi {
		mid := (lo + hi) / 2
		if src[mid].Seq <= after {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	var out []Indexed
	for i := lo; i < len(src) && len(out) < limit; i++ {
		out = append(out, *src[i])
	}
	next := ""
	if len(out) == limit && lo+limit < len(src) {
		next = strconv.FormatUint(out[len(out)-1].Seq, 10)
	}
	return out, next, nil
}

// ByMember returns a copy of every member's entries, for the balances.
func (ix *Index) ByMember() map[string][]crdt.Entry {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	out := make(map[string][]crdt.Entry, len(ix.byMember))
	for m, its := range ix.byMember {
		es := make([]crdt.Entry, len(its))
		for i, it := range its {
			es[i] = it.Entry
		}
		out[m] = es
	}
	return out
}
