package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/internal/atomicfile"
	"github.com/circles-coop/circles/wire"
)

// A refused change strands a device. Automerge changes depend on the ones
// before them, so once the server refuses one of this device's changes to
// a document, every later change of the device to that document waits
// behind it for ever, and the server keeps refusing the message that
// carries them. Recovery undoes the strand without losing what the member
// typed:
//
//  1. the device takes a fresh copy of the document from the server;
//  2. every item the device made that the server does not have — ledger
//     entries and credits, proposals, votes and reset statements — is
//     written again into the fresh copy, one item per change and one
//     sync each, so the server judges each on its own;
//  3. items the server accepts are synced; items it refuses are kept in
//     refused.json in the device's home with the server's reason, and
//     listed as refused (Device.Refused, Device.Entries);
//  4. the fresh copy, holding everything accepted, replaces the stranded
//     one.
//
// Sync runs it by itself for the member's own documents the server
// refused with rule_violation.

// RefusedItem is something the member made that the server refused, kept
// on the device with the reason.
type RefusedItem struct {
	Doc       string    `json:"doc"`       // the document it was written into
	Container string    `json:"container"` // entries, credits, proposals, votes or resets
	ID        string    `json:"id"`        // its key in the container
	What      string    `json:"what"`      // a line a person recognises it by
	Reason    string    `json:"reason"`    // the server's refusal
	At        time.Time `json:"at"`        // when it was refused
	// Entry is the refused ledger entry itself, so it stays readable.
	Entry *crdt.Entry `json:"entry,omitempty"`
}

// refusedFile holds the refused items in the device's home.
const refusedFile = "refused.json"

// Refused lists the items the server refused, oldest first.
func (d *Device) Refused() ([]RefusedItem, error) {
	b, err := os.ReadFile(filepath.Join(d.home, refusedFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read refused items: %w", err)
	}
	var out []RefusedItem
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("read refused items: %w", err)
	}
	return out, nil
}

func (d *Device) addRefused(items []RefusedItem) error {
	if len(items) == 0 {
		return nil
	}
	all, err := d.Refused()
	if err != nil {
		return err
	}
	all = append(all, items...)
	b, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(d.home, refusedFile), b, 0o600)
}

// item is one thing the device made, to write again into a fresh copy.
type item struct {
	container, id, what string
	at                  time.Time
	entry               *crdt.Entry
	put                 func(doc *automerge.Doc) error
}

// pendingItems lists what local holds and fresh does not, oldest first.
func pendingItems(local, fresh *automerge.Doc) ([]item, error) {
	var out []item
	if v, err := local.Path("entries").Get(); err == nil && v.Kind() == automerge.KindMap {
		entries, credits, err := crdt.ReadLedger(local)
		if err != nil {
			return nil, fmt.Errorf("read the local ledger: %w", err)
		}
		for _, e := range entries {
			if _, ok, _ := crdt.LookupEntry(fresh, e.ID); ok {
				continue
			}
			out = append(out, item{container: "entries", id: e.ID, what: fmt.Sprintf("%g %s %s: %s", e.Quantity, e.Unit, e.Kind, e.Note), at: e.At, entry: &e,
				put: func(doc *automerge.Doc) error { return crdt.PutEntry(doc, e) }})
		}
		for _, c := range credits {
			if _, ok, _ := crdt.LookupCredit(fresh, c.ID); ok {
				continue
			}
			out = append(out, item{container: "credits", id: c.ID, what: fmt.Sprintf("credit of %g to %s: %s", c.Amount, c.To, c.Note), at: c.At,
				put: func(doc *automerge.Doc) error { return crdt.PutCredit(doc, c) }})
		}
	}
	if v, err := local.Path("proposals").Get(); err == nil && v.Kind() == automerge.KindMap {
		b, err := crdt.ReadBallots(local)
		if err != nil {
			return nil, fmt.Errorf("read the local ballots: %w", err)
		}
		for id, p := range b.Proposals {
			if _, ok, _ := crdt.LookupProposal(fresh, id); ok {
				continue
			}
			out = append(out, item{container: "proposals", id: id, what: fmt.Sprintf("proposal %s: %s", p.Kind, p.Title), at: p.At,
				put: func(doc *automerge.Doc) error { return crdt.PutProposal(doc, p) }})
		}
		for id, v := range b.Votes {
			if _, ok, _ := crdt.LookupVote(fresh, id); ok {
				continue
			}
			out = append(out, item{container: "votes", id: id, what: fmt.Sprintf("vote %s on %s", v.Choice, id), at: v.At,
				put: func(doc *automerge.Doc) error { return crdt.PutVote(doc, v) }})
		}
		for jti, st := range b.Resets {
			if _, ok, _ := crdt.LookupResetStatement(fresh, jti); ok {
				continue
			}
			out = append(out, item{container: "resets", id: jti, what: "reset signature " + jti,
				put: func(doc *automerge.Doc) error { return crdt.PutResetStatement(doc, jti, st) }})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if c := out[i].at.Compare(out[j].at); c != 0 {
			return c < 0
		}
		return out[i].container+out[i].id < out[j].container+out[j].id
	})
	return out, nil
}

// RecoverSummary says what a recovery did for one document.
type RecoverSummary struct {
	Doc      string
	Accepted int           // items written again and accepted
	Refused  []RefusedItem // items the server refused
}

// Recover un-strands document doc (one of the member's own) after the
// server refused a change to it: see the comment at the top of this file.
// It returns what was accepted and refused; nothing the member made is
// dropped without being listed as refused.
func (d *Device) Recover(ctx context.Context, doc string) (RecoverSummary, error) {
	c, err := d.Client()
	if err != nil {
		return RecoverSummary{Doc: doc}, err
	}
	unlock, err := lockHome(d.home)
	if err != nil {
		return RecoverSummary{Doc: doc}, err
	}
	defer unlock()
	return d.recoverLocked(ctx, c, doc)
}

// recoverLocked is Recover with the home locked.
func (d *Device) recoverLocked(ctx context.Context, c *Client, doc string) (RecoverSummary, error) {
	sum := RecoverSummary{Doc: doc}
	local, _, err := d.store.loadDoc(doc)
	if err != nil {
		return sum, err
	}
	fresh, err := d.fetchFresh(ctx, c, doc)
	if err != nil {
		return sum, fmt.Errorf("recover %s: fetch a fresh copy: %w", doc, err)
	}
	items, err := pendingItems(local, fresh)
	if err != nil {
		return sum, err
	}
	for _, it := range items {
		next, err := fresh.Fork()
		if err != nil {
			return sum, err
		}
		if err := next.SetActorID(d.store.actor); err != nil {
			return sum, err
		}
		if err := it.put(next); err != nil {
			return sum, fmt.Errorf("recover %s: write %s %s again: %w", doc, it.container, it.id, err)
		}
		if _, err := next.Commit("again: " + it.container + " " + it.id); err != nil {
			return sum, err
		}
		err = d.pushOne(ctx, c, doc, next)
		var ae *APIError
		switch {
		case err == nil:
			fresh = next
			sum.Accepted++
		case errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 && ae.Status != 401 && ae.Status != 429:
			sum.Refused = append(sum.Refused, RefusedItem{Doc: doc, Container: it.container, ID: it.id, What: it.what, Reason: ae.Message, At: time.Now().UTC(), Entry: it.entry})
		default:
			// Not a refusal of this item: stop here and keep the local
			// copy as it was; the next sync tries again.
			return sum, fmt.Errorf("recover %s: %w", doc, err)
		}
	}
	if err := d.addRefused(sum.Refused); err != nil {
		return sum, err
	}
	if err := d.store.saveDoc(doc, fresh); err != nil {
		return sum, err
	}
	// The old sync state describes the stranded copy: start afresh.
	if err := d.store.saveState(doc, automerge.NewSyncState(fresh).Save()); err != nil {
		return sum, err
	}
	return sum, d.store.saveSyncedHeads(doc, fresh.Heads())
}

// fetchFresh syncs a new, empty copy of doc from the server.
func (d *Device) fetchFresh(ctx context.Context, c *Client, doc string) (*automerge.Doc, error) {
	fresh := automerge.New()
	if err := fresh.SetActorID(d.store.actor); err != nil {
		return nil, err
	}
	return fresh, d.pushOne(ctx, c, doc, fresh)
}

// pushOne syncs one document with a new sync state until both sides are
// in step (bounded by MaxSyncRounds).
func (d *Device) pushOne(ctx context.Context, c *Client, doc string, copy *automerge.Doc) error {
	ss := automerge.NewSyncState(copy)
	for range MaxSyncRounds {
		m, ok := ss.GenerateMessage()
		if !ok {
			return nil
		}
		replies, err := c.Sync(ctx, []wire.SyncMessage{{Doc: doc, Data: m.Bytes()}})
		if err != nil {
			return err
		}
		for _, r := range replies {
			if r.Doc != doc {
				continue
			}
			if _, err := applyMessage(ss, r.Data); err != nil {
				return fmt.Errorf("bad message from the server: %w", err)
			}
		}
	}
	return ErrSyncIncomplete
}

// recoverRefused runs Recover for the member's own documents that the
// server refused with rule_violation during a sync, and returns the
// failures that remain (the others' refusals, and documents it could not
// recover).
func (d *Device) recoverRefused(ctx context.Context, c *Client, failed []DocError, own func(doc string) bool) ([]DocError, []RecoverSummary) {
	var left []DocError
	var done []RecoverSummary
	for _, f := range failed {
		if !own(f.Doc) || !IsAPIError(f.Err, "rule_violation") {
			left = append(left, f)
			continue
		}
		sum, err := d.recoverLocked(ctx, c, f.Doc)
		if err != nil {
			// The refusal stands; say why it could not be recovered too.
			left = append(left, DocError{Doc: f.Doc, Label: f.Label, Err: errors.Join(f.Err, fmt.Errorf("not recovered: %w", err))})
			continue
		}
		done = append(done, sum)
	}
	return left, done
}
