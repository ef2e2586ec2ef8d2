package authority

import (
	"cmp"
	"fmt"
	"hash/maphash"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
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

// Indexed is one entry as the index gives it back.
type Indexed struct {
	Seq    uint64 // index key (indexKey): the order of acceptance
	Member string // author
	Doc    string // ledger segment it lives in
	Entry  crdt.Entry
}

// IndexedCredit is one mutual-credit transfer as the index gives it back.
type IndexedCredit struct {
	Seq    uint64 // index key (indexKey): the order of acceptance
	Member string // author
	Doc    string // ledger segment it lives in
	Credit crdt.Credit
}

// Index knows every accepted ledger entry and credit, in the order they
// were accepted, so REST reads and balances never load a document. It is
// updated after each stored change and rebuilt at start from the store's
// records.
//
// It keeps in memory only what finds an item: its index key, where its
// body is, a 64-bit hash of its id, and per author the keys of their
// entries, about 60 bytes an entry and no pointers. The items themselves
// are in bodies, a scratch file read back on demand. A circle's ledger
// grows for ever; the server's memory should not grow with it (issue 7).
type Index struct {
	mu      sync.RWMutex
	seed    maphash.Seed
	bodies  bodies
	log     *slog.Logger
	entries table
	credits table
	// byMember holds each author's entry keys in acceptance order.
	byMember map[string][]uint64
	perDoc   map[string]int // ledger segment → entries + credits it holds
}

// table finds one kind of item (entries or credits) by key and by id.
type table struct {
	all  []slot            // sorted by key
	byID map[uint64]uint64 // hash of the id → key
	// collided holds the ids whose hash an earlier, different id has.
	collided map[string]uint64
}

// slot is one item in memory: its key and where its body is.
type slot struct {
	key uint64
	at  ref
}

// NewIndex returns an empty index whose scratch file will be made in dir
// ("": the system's temporary directory).
func NewIndex(dir string, log *slog.Logger) *Index {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Index{
		seed:     maphash.MakeSeed(),
		bodies:   bodies{dir: dir},
		log:      log,
		entries:  table{byID: make(map[uint64]uint64)},
		credits:  table{byID: make(map[uint64]uint64)},
		byMember: make(map[string][]uint64),
		perDoc:   make(map[string]int),
	}
}

// Close drops the scratch file.
func (ix *Index) Close() error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return ix.bodies.close()
}

// find returns the slot of key in t.
func (t *table) find(key uint64) (slot, bool) {
	i, ok := slices.BinarySearchFunc(t.all, key, func(s slot, k uint64) int { return cmp.Compare(s.key, k) })
	if !ok {
		return slot{}, false
	}
	return t.all[i], true
}

// lookup finds the item of id in t: its key and body. idOf decodes a
// body's id.
func (ix *Index) lookup(t *table, id string, idOf func(string) (string, error)) (uint64, string, bool, error) {
	try := func(key uint64) (string, bool, error) {
		s, ok := t.find(key)
		if !ok {
			return "", false, nil
		}
		b, err := ix.bodies.get(s.at)
		if err != nil {
			return "", false, err
		}
		got, err := idOf(b)
		if err != nil {
			return "", false, err
		}
		return b, got == id, nil
	}
	if key, ok := t.byID[maphash.String(ix.seed, id)]; ok {
		b, same, err := try(key)
		if err != nil || same {
			return key, b, same, err
		}
	}
	if key, ok := t.collided[id]; ok {
		b, same, err := try(key)
		return key, b, same, err
	}
	return 0, "", false, nil
}

// pending is an item Add found new, waiting for its body's place.
type pending struct {
	t    *table
	id   string
	key  uint64
	body []byte
}

// insert records new items, writing their bodies in one go.
func (ix *Index) insert(items []pending) {
	if len(items) == 0 {
		return
	}
	bs := make([][]byte, len(items))
	for i, p := range items {
		bs[i] = p.body
	}
	refs, err := ix.bodies.put(bs)
	if err != nil { // once: put reports the failure that made it give up the file
		ix.log.Error("ledger index: cannot write its scratch file; keeping items in memory", "err", err)
	}
	for i, p := range items {
		t := p.t
		t.all = insertByKey(t.all, slot{key: p.key, at: refs[i]}, func(s slot) uint64 { return s.key })
		h := maphash.String(ix.seed, p.id)
		if _, taken := t.byID[h]; !taken {
			t.byID[h] = p.key
			continue
		}
		if t.collided == nil {
			t.collided = make(map[string]uint64)
		}
		t.collided[strings.Clone(p.id)] = p.key
	}
}

// Add records the entries and credits of one record of doc, stored in the
// chunk with sequence seq; first is the position of the record's first
// item among the chunk's items. An id already indexed is kept as first
// accepted (records are replayed idempotently). It returns the number of
// items the record holds.
func (ix *Index) Add(doc string, seq uint64, first int, rec chunkRecord) (int, error) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	key := func(i int) uint64 {
		if i < len(rec.Keys) && rec.Keys[i] != 0 {
			return rec.Keys[i]
		}
		return indexKey(seq, first+i)
	}
	var items []pending
	// seenEntries and seenCredits catch an id twice in one record: the
	// first is kept.
	var seenEntries, seenCredits map[string]bool
	if n := len(rec.Entries); n > 1 {
		seenEntries = make(map[string]bool, n)
	}
	if n := len(rec.Credits); n > 1 {
		seenCredits = make(map[string]bool, n)
	}
	for i, e := range rec.Entries {
		_, _, found, err := ix.lookup(&ix.entries, e.ID, entryID)
		if err != nil {
			return 0, err
		}
		if found || seenEntries[e.ID] {
			continue
		}
		if seenEntries != nil {
			seenEntries[e.ID] = true
		}
		it := Indexed{Seq: key(i), Member: rec.Member, Doc: doc, Entry: e}
		items = append(items, pending{t: &ix.entries, id: e.ID, key: it.Seq, body: encodeEntry(&it)})
		ms, ok := ix.byMember[rec.Member]
		if !ok {
			m := rec.Member
			strpack.Pack(&m) // kept for ever: see internal/strpack
			ix.byMember[m] = nil
		}
		ix.byMember[rec.Member] = insertByKey(ms, it.Seq, func(k uint64) uint64 { return k })
		ix.countDoc(doc)
	}
	for i, c := range rec.Credits {
		_, _, found, err := ix.lookup(&ix.credits, c.ID, creditID)
		if err != nil {
			return 0, err
		}
		if found || seenCredits[c.ID] {
			continue
		}
		if seenCredits != nil {
			seenCredits[c.ID] = true
		}
		it := IndexedCredit{Seq: key(len(rec.Entries) + i), Member: rec.Member, Doc: doc, Credit: c}
		items = append(items, pending{t: &ix.credits, id: c.ID, key: it.Seq, body: encodeCredit(&it)})
		ix.countDoc(doc)
	}
	ix.insert(items)
	return len(rec.Entries) + len(rec.Credits), nil
}

func (ix *Index) countDoc(doc string) {
	if _, ok := ix.perDoc[doc]; !ok {
		strpack.Pack(&doc)
	}
	ix.perDoc[doc]++
}

// entryID and creditID read the id of an encoded body (its fourth field).
func entryID(b string) (string, error) {
	d := dec{s: b}
	d.uint()
	d.str()
	d.str()
	id := d.str()
	return id, d.err
}

func creditID(b string) (string, error) { return entryID(b) }

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
func (ix *Index) Keys(entries []crdt.Entry, credits []crdt.Credit) ([]uint64, error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	out := make([]uint64, 0, len(entries)+len(credits))
	for _, e := range entries {
		k, _, found, err := ix.lookup(&ix.entries, e.ID, entryID)
		if err != nil {
			return nil, err
		}
		if !found {
			k = 0
		}
		out = append(out, k)
	}
	for _, c := range credits {
		k, _, found, err := ix.lookup(&ix.credits, c.ID, creditID)
		if err != nil {
			return nil, err
		}
		if !found {
			k = 0
		}
		out = append(out, k)
	}
	return out, nil
}

// Credit looks a credit up by id.
func (ix *Index) Credit(id string) (IndexedCredit, bool, error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	_, b, found, err := ix.lookup(&ix.credits, id, creditID)
	if err != nil || !found {
		return IndexedCredit{}, false, err
	}
	it, err := decodeCredit(b)
	return it, err == nil, err
}

// CreditsByAuthor returns every author's credits, for the mutual-credit
// view.
func (ix *Index) CreditsByAuthor() (map[string][]crdt.Credit, error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	// One read per credit: the file is mostly entries, and credits are
	// few next to them (reading it all cost a credit request as much as
	// the balances).
	out := make(map[string][]crdt.Credit)
	for _, s := range ix.credits.all {
		b, err := ix.bodies.get(s.at)
		if err != nil {
			return nil, err
		}
		it, err := decodeCredit(b)
		if err != nil {
			return nil, err
		}
		out[it.Member] = append(out[it.Member], it.Credit)
	}
	return out, nil
}

// Entry looks an entry up by id.
func (ix *Index) Entry(id string) (Indexed, bool, error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	_, b, found, err := ix.lookup(&ix.entries, id, entryID)
	if err != nil || !found {
		return Indexed{}, false, err
	}
	it, err := decodeEntry(b)
	return it, err == nil, err
}

// Len is the number of entries indexed.
func (ix *Index) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return len(ix.entries.all)
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
	var keys []uint64
	if member != "" {
		keys = ix.byMember[member]
	} else {
		all := ix.entries.all
		keys = make([]uint64, 0, limit+1)
		for i := sort.Search(len(all), func(i int) bool { return all[i].key > after }); i < len(all) && len(keys) <= limit; i++ {
			keys = append(keys, all[i].key)
		}
	}
	// Keys are in order: find the first after the cursor.
	lo := sort.Search(len(keys), func(i int) bool { return keys[i] > after })
	var out []Indexed
	for i := lo; i < len(keys) && len(out) < limit; i++ {
		s, ok := ix.entries.find(keys[i])
		if !ok {
			return nil, "", fmt.Errorf("ledger index: entry %d missing", keys[i])
		}
		b, err := ix.bodies.get(s.at)
		if err != nil {
			return nil, "", err
		}
		it, err := decodeEntry(b)
		if err != nil {
			return nil, "", err
		}
		out = append(out, it)
	}
	next := ""
	if len(out) == limit && lo+limit < len(keys) {
		next = strconv.FormatUint(out[len(out)-1].Seq, 10)
	}
	return out, next, nil
}

// ByMember returns every member's entries, for the balances.
func (ix *Index) ByMember() (map[string][]crdt.Entry, error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	get, err := ix.bodies.all()
	if err != nil {
		return nil, err
	}
	out := make(map[string][]crdt.Entry, len(ix.byMember))
	for m, keys := range ix.byMember {
		out[m] = make([]crdt.Entry, 0, len(keys))
	}
	// In key order, so each member's entries are in acceptance order.
	for _, s := range ix.entries.all {
		b, err := get(s.at)
		if err != nil {
			return nil, err
		}
		it, err := decodeEntry(b)
		if err != nil {
			return nil, err
		}
		out[it.Member] = append(out[it.Member], it.Entry)
	}
	return out, nil
}
