// The batched sync of POST /v1/sync: Sync decodes every message first,
// applies those carrying changes together (atomically) and answers each.

package engine

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/automerge/automerge-go"
)

type decoded struct {
	msg     Message
	index   int      // position in the request
	raws    [][]byte // the change chunks, as the message carries them
	changes []Change // decoded, once the request may apply
}

// Sync receives a batch of sync messages from peer and returns the
// engine's answers. Either every change of the batch is applied and stored,
// or none is — unless the store fails partway through writing the batch:
// then the documents whose writes it acknowledged keep their changes (as
// after a crash at that point) and are reported to Committed, the others
// are not changed, and Sync returns ErrStore. The device's next sync
// delivers the rest.
//
// Documents whose messages carry changes are locked together, so the batch
// is atomic. Documents whose messages carry none (a device asking what is
// new) are handled one at a time afterwards and may be evicted in between,
// so a device fetching the whole circle does not pin every document in
// memory at once.
func (e *Engine) Sync(ctx context.Context, peer Peer, in []Message) ([]Message, error) {
	start := time.Now()
	defer func() { e.m.syncSeconds.Observe(time.Since(start).Seconds()) }()

	// 1. Decode everything and check read rights before touching any
	// document.
	byDoc := make(map[string][]decoded)
	var ids, writes []string
	for i, m := range in {
		if err := e.cfg.Policy.CheckRead(peer, m.Doc); err != nil {
			return nil, fmt.Errorf("message %d (doc %s): %w", i, m.Doc, err)
		}
		raws, err := splitMessage(m.Data)
		if err != nil {
			return nil, fmt.Errorf("message %d (doc %s): %w", i, m.Doc, err)
		}
		if _, ok := byDoc[m.Doc]; !ok {
			ids = append(ids, m.Doc)
		}
		byDoc[m.Doc] = append(byDoc[m.Doc], decoded{msg: m, index: i, raws: raws})
		if len(raws) > 0 && !slices.Contains(writes, m.Doc) {
			writes = append(writes, m.Doc)
		}
	}

	answers := make(map[string][]byte, len(ids))
	if len(writes) > 0 {
		// The changes are decoded once it is this request's turn to apply
		// (Config.MaxApplying), and still before any document is touched.
		done, err := e.startApplying(ctx)
		if err != nil {
			return nil, err
		}
		doneApplying := sync.OnceFunc(done)
		for _, id := range writes {
			for j := range byDoc[id] {
				d := &byDoc[id][j]
				if d.changes, err = decodeChanges(d.raws); err != nil {
					doneApplying()
					return nil, fmt.Errorf("message %d (doc %s): %w", d.index, id, err)
				}
			}
		}
		err = e.syncDocs(ctx, peer, writes, byDoc, answers, doneApplying)
		doneApplying()
		if err != nil {
			return nil, err
		}
	}
	for _, id := range ids {
		if slices.Contains(writes, id) {
			continue
		}
		if ans, ok := e.inSyncAnswer(id, messageData(byDoc[id])); ok {
			answers[id] = ans // the device holds all of id (snapshots.go)
			continue
		}
		if err := e.syncDocs(ctx, peer, []string{id}, byDoc, answers, func() {}); err != nil {
			return nil, err
		}
	}
	var out []Message
	for _, id := range ids {
		if msg, ok := answers[id]; ok {
			out = append(out, Message{Doc: id, Data: msg})
		}
	}
	return out, nil
}

// syncDocs applies the messages of the documents ids under their locks,
// stores what changed, and puts the engine's answer for each document into
// answers. If anything fails, nothing of these documents is applied.
//
// doneApplying is called once the messages are applied and checked,
// before the store's round trip (see Config.MaxApplying).
func (e *Engine) syncDocs(ctx context.Context, peer Peer, ids []string, byDoc map[string][]decoded, answers map[string][]byte, doneApplying func()) error {
	entries, release, err := e.acquire(ids)
	if err != nil {
		return err
	}
	defer release()
	for _, x := range entries {
		if err := e.ensureLoaded(ctx, x); err != nil {
			return err
		}
	}
	rollback := func() {
		for _, x := range entries {
			e.unload(x)
		}
	}
	records := make(map[string][][]byte)
	counts := make(map[string]int)
	ops := make(map[string]int)
	var changed []*entry
	for _, x := range entries {
		ss, err := e.syncState(ctx, x, peer.Device)
		if err != nil {
			rollback()
			return err
		}
		// Each request starts from what both sides are known to share,
		// forgetting what this side believes it sent before: over HTTP a
		// response can be lost, and automerge would never resend changes
		// it thinks the peer already got. This makes a retried or repeated
		// request safe.
		if ss, err = e.resetSyncState(x, peer.Device, ss); err != nil {
			rollback()
			return err
		}
		for _, d := range byDoc[x.id] {
			rec, applied, err := e.receiveOne(peer, x, ss, d)
			if err != nil {
				rollback()
				return err
			}
			if len(applied) == 0 {
				continue
			}
			if rec != nil {
				records[x.id] = append(records[x.id], rec)
			}
			if !slices.Contains(changed, x) {
				changed = append(changed, x)
			}
			counts[x.id] += len(applied)
			ops[x.id] += opsOf(applied)
			e.m.accepted.Add(float64(len(applied)))
		}
	}

	// Store, and only then acknowledge.
	doneApplying()
	if len(changed) > 0 {
		if err := e.persist(ctx, nil, changed, records, counts, ops); err != nil {
			rollback()
			return err
		}
	}
	for _, x := range entries {
		ss := x.peers[peer.Device]
		if msg, ok := generate(ss); ok {
			answers[x.id] = msg
		}
		e.markDirty(peer.Device, x.id, ss)
	}
	for _, x := range changed {
		e.maybeCompact(ctx, x)
	}
	return nil
}

// receiveOne checks and applies one message; it returns the policy's
// record and the changes that entered the document.
func (e *Engine) receiveOne(peer Peer, x *entry, ss *automerge.SyncState, d decoded) ([]byte, []Change, error) {
	fresh := x.unseen(d.changes)
	if len(fresh) > 0 {
		if err := e.cfg.Policy.CheckChanges(peer, x.id, x.doc, fresh); err != nil {
			e.m.rejected.Inc()
			return nil, nil, fmt.Errorf("doc %s: %w", x.id, err)
		}
	}
	before := x.doc.Heads()
	if err := receive(ss, d.msg.Data); err != nil {
		return nil, nil, fmt.Errorf("doc %s: %w", x.id, err)
	}
	applied, err := x.applied(before, fresh)
	if err != nil {
		e.m.rejected.Inc()
		return nil, nil, fmt.Errorf("doc %s: %w", x.id, err)
	}
	if len(applied) == 0 {
		return nil, nil, nil
	}
	rec, err := e.cfg.Policy.Accept(x.id, x.doc, applied)
	if err != nil {
		e.m.rejected.Inc()
		return nil, nil, fmt.Errorf("doc %s: %w", x.id, err)
	}
	return rec, applied, nil
}

// opsOf counts the operations of changes.
func opsOf(changes []Change) int {
	n := 0
	for _, ch := range changes {
		n += ch.Ops()
	}
	return n
}
