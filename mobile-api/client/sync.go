package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/crdt/amchange"
	"github.com/circles-coop/circles/wire"
)

// MaxSyncRounds bounds the POST /v1/sync rounds of one Device.Sync. Two
// peers normally converge in two to four rounds; what is left after the
// bound is picked up by the next Sync, since the state is saved each round.
const MaxSyncRounds = 50

// ErrSyncIncomplete is returned by Device.Sync when the documents were
// still not in step after MaxSyncRounds rounds.
var ErrSyncIncomplete = errors.New("sync did not finish; run it again")

// SyncProgress reports one round of Device.Sync: one POST /v1/sync (or,
// when the server refused a batch and the round was retried document by
// document, several).
type SyncProgress struct {
	Round            int
	Requests         int // HTTP requests made in this round
	SentMessages     int
	SentBytes        int
	SentChanges      int
	ReceivedMessages int
	ReceivedBytes    int
	ReceivedChanges  int
}

// SyncSummary totals a Device.Sync.
type SyncSummary struct {
	Docs            int // documents taken part
	Rounds          int
	Requests        int
	ChangesSent     int
	ChangesReceived int
	BytesSent       int
	BytesReceived   int
	// Snapshots are the documents the device started from a stored
	// snapshot (snapshot.go), SnapshotBytes their size.
	Snapshots     int
	SnapshotBytes int
	Failed        []DocError // documents the server refused
	// Recovered are the member's own documents the server refused a
	// change to, taken afresh from the server with what the member made
	// written again (Device.Recover); what the server still refused is
	// listed there and in Device.Refused.
	Recovered []RecoverSummary
}

// DocError is a document the server refused during a sync, with its
// reason (usually an *APIError with code rule_violation or forbidden).
type DocError struct {
	Doc   string
	Label string
	Err   error
}

// SyncError is returned by Device.Sync when the server refused some
// documents; the others were synced. It unwraps to each document's error,
// so errors.As finds the *APIError.
type SyncError struct {
	Docs []DocError
}

// Error names each refused document and the server's reason.
func (e *SyncError) Error() string {
	parts := make([]string, len(e.Docs))
	for i, de := range e.Docs {
		reason := de.Err.Error()
		var ae *APIError
		if errors.As(de.Err, &ae) {
			reason = ae.Code + ": " + ae.Message
		}
		parts[i] = fmt.Sprintf("%s (%s) refused: %s", de.Label, de.Doc, reason)
	}
	return "sync: " + strings.Join(parts, "; ")
}

// Unwrap returns the documents' errors.
func (e *SyncError) Unwrap() []error {
	errs := make([]error, len(e.Docs))
	for i, de := range e.Docs {
		errs[i] = de.Err
	}
	return errs
}

// docRef is a document the device syncs and what it is to the device.
type docRef struct {
	id    string
	label string
	own   bool // written by this member
}

// docRefs lists the documents the device should hold: the member's own
// ledger segments and ballots, then the circle's shared documents, then
// every other member's ledger segments.
func docRefs(info DeviceInfo) []docRef {
	c := info.Circle
	if c == nil {
		return nil
	}
	var refs []docRef
	seen := map[string]bool{}
	add := func(id, label string, own bool) {
		if id == "" || seen[id] || checkID(id) != nil {
			return
		}
		seen[id] = true
		refs = append(refs, docRef{id: id, label: label, own: own})
	}
	for _, m := range c.Members {
		if m.MemberID != info.MemberID {
			continue
		}
		for i, l := range m.Ledgers {
			add(l, fmt.Sprintf("my ledger #%d", i+1), true)
		}
	}
	add(c.Docs["ledger"], "my ledger", true)
	add(c.Docs["ballots"], "my ballots", true)
	for _, k := range []string{"roster", "charter", "governance", "audit", "charter-draft"} {
		add(c.Docs[k], k, false)
	}
	// Archives never change once archived: after their first sync a round
	// costs only the heads.
	if c.Archives != nil {
		for i, id := range c.Archives.Audit {
			add(id.Doc, fmt.Sprintf("audit segment #%d", i+1), false)
		}
		for i, id := range c.Archives.Governance {
			add(id, fmt.Sprintf("governance archive #%d", i+1), false)
		}
	}
	for _, m := range c.Members {
		if m.MemberID == info.MemberID {
			continue
		}
		name := m.Name
		if name == "" {
			name = m.MemberID
		}
		for i, l := range m.Ledgers {
			label := "ledger of " + name
			if len(m.Ledgers) > 1 {
				label = fmt.Sprintf("%s #%d", label, i+1)
			}
			add(l, label, false)
		}
	}
	return refs
}

// syncDoc is one document during a sync.
type syncDoc struct {
	ref   docRef
	doc   *automerge.Doc
	state *automerge.SyncState
	saved []byte // the sync state as last persisted (nil: new)
	heads []automerge.ChangeHash
	dirty bool // received something not yet persisted
	done  bool // refused by the server
}

// restore drops the sync state's memory of messages that were sent but
// not answered, by going back to the last persisted state. Without it
// automerge would wait forever for the lost answer.
func (sd *syncDoc) restore() {
	ss, err := decodeState(sd.doc, sd.saved)
	if err != nil {
		ss = automerge.NewSyncState(sd.doc)
	}
	sd.state = ss
}

// Sync refreshes the circle's description (GET /v1/circle) and then
// exchanges automerge sync messages with the server (POST /v1/sync, all
// documents batched in one request per round) until neither side has
// anything to send, persisting each document and its sync state after
// every round. progress, if not nil, is called after each round.
//
// When the server refuses a batch (422 rule_violation, 403 forbidden, 404
// not_found or 413 too_large),
// the round is repeated one document at a time, so the refused documents
// are found and the others still sync. A refused change to one of the
// member's own documents is recovered at once (Device.Recover): the
// summary's Recovered lists what was written again and what the server
// still refused. Sync returns a *SyncError naming the documents it could
// not sync or recover. It returns an error wrapping ErrUnreachable when
// the server cannot be reached, and ErrSyncIncomplete after MaxSyncRounds.
func (d *Device) Sync(ctx context.Context, progress func(SyncProgress)) (SyncSummary, error) {
	var sum SyncSummary
	c, err := d.Client()
	if err != nil {
		return sum, err
	}
	unlock, err := lockHome(d.home)
	if err != nil {
		return sum, err
	}
	defer unlock()

	info := d.Info()
	old := docRefs(info)
	circle, err := c.Circle(ctx)
	if err != nil {
		return sum, fmt.Errorf("sync: fetch circle: %w", err)
	}
	info.Circle, info.CircleSeenAt = circle, time.Now().UTC()
	if err := d.saveInfo(info); err != nil {
		return sum, err
	}
	refs := docRefs(info)
	for _, r := range old {
		// Own documents the circle no longer lists (a stale segment list)
		// may still hold changes the server lacks.
		if r.own && d.store.has(r.id) && !slices.ContainsFunc(refs, func(n docRef) bool { return n.id == r.id }) {
			refs = append(refs, r)
		}
	}
	refs = append(refs, closedBallotsHeld(info, refs, d.store)...)

	docs := make([]*syncDoc, 0, len(refs))
	byID := map[string]*syncDoc{}
	for _, r := range refs {
		doc, _, err := d.store.loadDoc(r.id)
		if err != nil {
			return sum, fmt.Errorf("sync: %w", err)
		}
		ss, saved, err := d.store.loadState(r.id, doc)
		if err != nil {
			return sum, fmt.Errorf("sync: %w", err)
		}
		sd := &syncDoc{ref: r, doc: doc, state: ss, saved: saved, heads: doc.Heads()}
		docs = append(docs, sd)
		byID[r.id] = sd
	}
	sum.Docs = len(docs)
	if err := d.seedFromSnapshots(ctx, c, circle.Snapshots, docs, &sum); err != nil {
		return sum, err
	}

	for round := 1; ; round++ {
		batch, msgs, p := generate(docs)
		if len(msgs) == 0 {
			break
		}
		if round > MaxSyncRounds {
			for _, sd := range batch {
				sd.restore()
			}
			return sum, fmt.Errorf("sync: %w after %d rounds", ErrSyncIncomplete, MaxSyncRounds)
		}
		p.Round = round
		p.Requests = 1
		replies, err := c.Sync(ctx, msgs)
		if err != nil {
			for _, sd := range batch {
				sd.restore()
			}
			if !refusal(err) {
				return sum, fmt.Errorf("sync: %w", err)
			}
			if len(batch) == 1 {
				batch[0].done = true
				sum.Failed = append(sum.Failed, DocError{Doc: batch[0].ref.id, Label: batch[0].ref.label, Err: err})
				p = SyncProgress{Round: round, Requests: 1}
			} else if p, err = d.isolate(ctx, c, batch, byID, round, &sum); err != nil {
				return sum, err
			}
		} else if err := receive(replies, byID, &p); err != nil {
			return sum, err
		}
		if err := d.persist(docs); err != nil {
			return sum, err
		}
		sum.Rounds = round
		sum.Requests += p.Requests
		sum.ChangesSent += p.SentChanges
		sum.ChangesReceived += p.ReceivedChanges
		sum.BytesSent += p.SentBytes
		sum.BytesReceived += p.ReceivedBytes
		if progress != nil {
			progress(p)
		}
	}

	for _, sd := range docs {
		if sd.done {
			continue
		}
		if err := d.store.saveSyncedHeads(sd.ref.id, sd.doc.Heads()); err != nil {
			return sum, err
		}
	}
	own := map[string]bool{}
	for _, sd := range docs {
		own[sd.ref.id] = sd.ref.own
	}
	sum.Failed, sum.Recovered = d.recoverRefused(ctx, c, sum.Failed, func(doc string) bool { return own[doc] })
	if len(sum.Failed) > 0 {
		return sum, &SyncError{Docs: sum.Failed}
	}
	info = d.Info()
	info.LastSync = time.Now().UTC()
	if err := d.saveInfo(info); err != nil {
		return sum, err
	}
	return sum, nil
}

// generate asks every live document for its next sync message.
func generate(docs []*syncDoc) ([]*syncDoc, []wire.SyncMessage, SyncProgress) {
	var batch []*syncDoc
	var msgs []wire.SyncMessage
	var p SyncProgress
	for _, sd := range docs {
		if sd.done {
			continue
		}
		m, ok := sd.state.GenerateMessage()
		if !ok {
			continue
		}
		data := m.Bytes()
		batch = append(batch, sd)
		msgs = append(msgs, wire.SyncMessage{Doc: sd.ref.id, Data: data})
		p.SentMessages++
		p.SentBytes += len(data)
		p.SentChanges += countChanges(data)
	}
	return batch, msgs, p
}

// isolate repeats a refused round one document at a time, marking the
// documents the server refuses.
func (d *Device) isolate(ctx context.Context, c *Client, batch []*syncDoc, byID map[string]*syncDoc, round int, sum *SyncSummary) (SyncProgress, error) {
	p := SyncProgress{Round: round, Requests: 1}
	for _, sd := range batch {
		_, msgs, one := generate([]*syncDoc{sd})
		if len(msgs) == 0 {
			continue
		}
		p.Requests++
		replies, err := c.Sync(ctx, msgs)
		if err != nil {
			sd.restore()
			if !refusal(err) {
				return p, fmt.Errorf("sync: %w", err)
			}
			sd.done = true
			sum.Failed = append(sum.Failed, DocError{Doc: sd.ref.id, Label: sd.ref.label, Err: err})
			continue
		}
		p.SentMessages += one.SentMessages
		p.SentBytes += one.SentBytes
		p.SentChanges += one.SentChanges
		if err := receive(replies, byID, &p); err != nil {
			return p, err
		}
	}
	return p, nil
}

// refusal reports whether the server refused what a request carried (a
// change breaking a rule, a document the member may not read or that does
// not exist, a batch too large), as opposed to failing as a whole; a
// refused batch is retried document by document.
func refusal(err error) bool {
	var ae *APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.Status {
	case http.StatusUnprocessableEntity, http.StatusForbidden, http.StatusNotFound, http.StatusRequestEntityTooLarge:
		return true
	}
	return false
}

// receive applies the server's answers to their documents; answers for
// documents not being synced are ignored.
func receive(replies []wire.SyncMessage, byID map[string]*syncDoc, p *SyncProgress) error {
	for _, r := range replies {
		sd, ok := byID[r.Doc]
		if !ok || sd.done {
			continue
		}
		p.ReceivedMessages++
		p.ReceivedBytes += len(r.Data)
		n, err := applyMessage(sd.state, r.Data)
		if err != nil {
			return fmt.Errorf("sync: %s (%s): bad message from the server: %w", sd.ref.label, sd.ref.id, err)
		}
		p.ReceivedChanges += n
		sd.dirty = true
	}
	return nil
}

// applyMessage counts a sync message's changes and applies it. automerge-go
// panics on some malformed input; that becomes an error.
func applyMessage(ss *automerge.SyncState, data []byte) (n int, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("automerge: %v", r)
		}
	}()
	if _, err := ss.ReceiveMessage(data); err != nil {
		return 0, err
	}
	return countChanges(data), nil
}

// countChanges returns how many changes a sync message carries, reading
// only its framing (automerge accepted or produced the message already).
func countChanges(data []byte) int {
	raws, _ := amchange.SplitSyncMessage(data)
	return len(raws)
}

// persist writes every document that received something, then its sync
// state: a state on disk never claims changes its document lacks.
func (d *Device) persist(docs []*syncDoc) error {
	for _, sd := range docs {
		if !sd.dirty {
			continue
		}
		heads := sd.doc.Heads()
		if !crdt.SameHeads(heads, sd.heads) {
			if err := d.store.saveDoc(sd.ref.id, sd.doc); err != nil {
				return err
			}
			sd.heads = heads
		}
		data := sd.state.Save()
		if err := d.store.saveState(sd.ref.id, data); err != nil {
			return err
		}
		sd.saved = data
		sd.dirty = false
	}
	return nil
}
