package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/google/uuid"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/wire"
)

// ErrLedgerNotFetched is returned by Device.Log while none of the member's
// ledger segments has come from the server yet. Writing into a ledger the
// device made itself would create root maps that hide, or are hidden by,
// the server's after the merge; sync first.
var ErrLedgerNotFetched = errors.New("your ledger has not been fetched from the circle server yet; run sync while online first")

// Log writes a contribution entry into the member's current ledger segment
// on disk and commits it as this device's change; it needs no network. An
// empty ID gets a new UUID, a zero At the current time. It returns the
// entry as written; a *crdt.RuleError if the entry breaks the ledger
// schema; crdt.ErrEntryExists if the id is taken; ErrLedgerNotFetched if the
// ledger was never synced; ErrNotEnrolled before enrolment.
func (d *Device) Log(e crdt.Entry) (crdt.Entry, error) {
	if e.ID == "" {
		e.ID = uuid.NewString()
	}
	if e.At.IsZero() {
		e.At = time.Now()
	}
	e.At = e.At.UTC()
	if err := e.Validate(); err != nil {
		return e, err
	}
	info := d.Info()
	if !info.Enrolled() {
		return e, ErrNotEnrolled
	}
	unlock, err := lockHome(d.home)
	if err != nil {
		return e, err
	}
	defer unlock()

	id, doc, err := d.writableLedger(info)
	if err != nil {
		return e, err
	}
	if err := crdt.PutEntry(doc, e); err != nil {
		return e, fmt.Errorf("log entry: %w", err)
	}
	if _, err := doc.Commit("log " + e.Kind + " " + e.ID); err != nil {
		return e, fmt.Errorf("log entry: commit: %w", err)
	}
	if err := d.store.saveDoc(id, doc); err != nil {
		return e, err
	}
	return e, nil
}

// writableLedger loads the newest of the member's ledger segments that has
// come from the server: the current one (docs.ledger) if held, else the
// latest older one (DESIGN.md §4 lets a device write there when it has been
// offline across a segment switch).
func (d *Device) writableLedger(info DeviceInfo) (string, *automerge.Doc, error) {
	if info.Circle == nil {
		return "", nil, ErrLedgerNotFetched
	}
	candidates := []string{info.Circle.Docs["ledger"]}
	for _, m := range info.Circle.Members {
		if m.MemberID == info.MemberID {
			for _, l := range slices.Backward(m.Ledgers) {
				candidates = append(candidates, l)
			}
		}
	}
	for _, id := range candidates {
		if id == "" || !d.store.has(id) {
			continue
		}
		doc, _, err := d.store.loadDoc(id)
		if err != nil {
			return "", nil, err
		}
		if owner, _, err := crdt.LedgerOwner(doc); err != nil || owner != info.MemberID {
			continue
		}
		return id, doc, nil
	}
	return "", nil, ErrLedgerNotFetched
}

// LedgerEntry is an entry read from a ledger held on the device.
type LedgerEntry struct {
	crdt.Entry
	Member     string // author's member id
	MemberName string // author's name as last seen, if known
	Doc        string // ledger segment holding it
	Mine       bool   // written by this device's member
	Voided     bool   // another entry of the same member voids it (crdt.Voided)
	// Refused is the server's reason when it refused this entry (kept on
	// the device only; see Device.Recover); empty otherwise.
	Refused string
}

// UnreadableError is returned by Device.Entries, together with the
// entries it could read, when some stored values do not fit the ledger
// schema (a change the server would refuse, or a newer schema).
type UnreadableError struct {
	Count int   // values skipped
	First error // why the first was skipped
}

// Error says how many values were skipped and why the first was.
func (e *UnreadableError) Error() string {
	return fmt.Sprintf("%d ledger values could not be read, the first: %v", e.Count, e.First)
}

// Unwrap returns the first value's error.
func (e *UnreadableError) Unwrap() error { return e.First }

// Entries reads the ledgers held on the device, offline: the member's own
// segments and those of other members that were synced, oldest first
// (by At, then ID). Entries that do not read are skipped: then the
// readable ones come with an *UnreadableError. Other errors (a document
// that does not load) come with no entries.
func (d *Device) Entries() ([]LedgerEntry, error) {
	info := d.Info()
	if info.Circle == nil {
		return nil, nil
	}
	var out []LedgerEntry
	unreadable := &UnreadableError{}
	for _, m := range info.Circle.Members {
		ids := slices.Clone(m.Ledgers)
		if m.MemberID == info.MemberID {
			if cur := info.Circle.Docs["ledger"]; cur != "" && !slices.Contains(ids, cur) {
				ids = append(ids, cur)
			}
		}
		var authored []crdt.Entry // every entry of m held here, for crdt.Voided
		first := len(out)
		for _, id := range ids {
			if !d.store.has(id) {
				continue
			}
			doc, _, err := d.store.loadDoc(id)
			if err != nil {
				return nil, err
			}
			entries, err := readEntries(doc, id, unreadable)
			if err != nil {
				return nil, err
			}
			authored = append(authored, entries...)
			for _, e := range entries {
				out = append(out, LedgerEntry{Entry: e, Member: m.MemberID, MemberName: m.Name, Doc: id, Mine: m.MemberID == info.MemberID})
			}
		}
		voided := crdt.Voided(authored)
		for i := first; i < len(out); i++ {
			out[i].Voided = voided[out[i].ID]
		}
	}
	refused, err := d.Refused()
	if err != nil {
		return nil, err
	}
	for _, r := range refused {
		if r.Entry != nil {
			out = append(out, LedgerEntry{Entry: *r.Entry, Member: info.MemberID, MemberName: info.MemberName, Doc: r.Doc, Mine: true, Refused: r.Reason})
		}
	}
	slices.SortStableFunc(out, func(a, b LedgerEntry) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if unreadable.Count > 0 {
		return out, unreadable
	}
	return out, nil
}

// readEntries reads a ledger segment's entries one by one, so one bad value
// hides only itself; skipped ones are counted in bad.
func readEntries(doc *automerge.Doc, id string, bad *UnreadableError) ([]crdt.Entry, error) {
	skip := func(err error) {
		if bad.Count == 0 {
			bad.First = fmt.Errorf("ledger %s: %w", id, err)
		}
		bad.Count++
	}
	v, err := doc.Path("entries").Get()
	if err != nil {
		return nil, fmt.Errorf("ledger %s: %w", id, err)
	}
	if v.IsVoid() {
		return nil, nil
	}
	if v.Kind() != automerge.KindMap {
		skip(fmt.Errorf("entries is a %s, not a map", v.Kind()))
		return nil, nil
	}
	keys, err := v.Map().Keys()
	if err != nil {
		return nil, fmt.Errorf("ledger %s: %w", id, err)
	}
	var out []crdt.Entry
	for _, k := range keys {
		e, ok, err := crdt.LookupEntry(doc, k)
		if err == nil && ok {
			err = e.Validate()
		}
		switch {
		case err != nil:
			skip(err)
		case ok:
			out = append(out, e)
		}
	}
	return out, nil
}

// Balances asks the server for every member's balance and the circle's
// signals; balances are derived on the server, so this needs the network.
// Unreachable, it returns an error wrapping ErrUnreachable that says so.
func (d *Device) Balances(ctx context.Context) (*wire.Balances, error) {
	c, err := d.Client()
	if err != nil {
		return nil, err
	}
	b, err := c.Balances(ctx)
	if errors.Is(err, ErrUnreachable) {
		return nil, fmt.Errorf("balances are computed by the circle server: %w", err)
	}
	return b, err
}

// Invite asks the server for an invite: for another device of this member
// if forDevice is set, else for a new member; expiresIn zero takes the
// server's default.
func (d *Device) Invite(ctx context.Context, forDevice bool, expiresIn time.Duration) (*wire.InviteResponse, error) {
	c, err := d.Client()
	if err != nil {
		return nil, err
	}
	req := wire.InviteRequest{For: "member"}
	if forDevice {
		req.For = "device"
	}
	if expiresIn > 0 {
		req.ExpiresIn = expiresIn.String()
	}
	return c.CreateInvite(ctx, req)
}

// MemberByName finds a member id in the circle as last seen, by id or by
// name (case-insensitive). It reports false if none or several match.
func (d *Device) MemberByName(s string) (string, bool) {
	info := d.Info()
	if info.Circle == nil {
		return "", false
	}
	found := ""
	for _, m := range info.Circle.Members {
		if m.MemberID == s {
			return m.MemberID, true
		}
		if strings.EqualFold(m.Name, s) {
			if found != "" {
				return "", false
			}
			found = m.MemberID
		}
	}
	return found, found != ""
}

// Status is what Device.Status reports.
type Status struct {
	Info DeviceInfo
	// DocsHeld counts the circle's documents stored on the device.
	DocsHeld int
	// Pending counts this device's changes in the member's own documents
	// that the server has not confirmed in a sync yet.
	Pending int
}

// Status reports who the device is, which circle it belongs to and how many
// of its own changes wait for a sync. It reads only local files.
func (d *Device) Status() (Status, error) {
	info := d.Info()
	st := Status{Info: info}
	for _, r := range docRefs(info) {
		if !d.store.has(r.id) {
			continue
		}
		st.DocsHeld++
		if !r.own {
			continue
		}
		doc, _, err := d.store.loadDoc(r.id)
		if err != nil {
			return st, err
		}
		heads, _ := d.store.syncedHeads(r.id)
		changes, err := doc.Changes(heads...)
		if err != nil {
			// Heads unknown to the document: count every change.
			if changes, err = doc.Changes(); err != nil {
				return st, fmt.Errorf("status: %s: %w", r.id, err)
			}
		}
		for _, ch := range changes {
			if ch.ActorID() == d.store.actor {
				st.Pending++
			}
		}
	}
	return st, nil
}
