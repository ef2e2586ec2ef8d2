package replica

// The exchange between replicas: what a circle hears on the federation's
// subjects (changes, announcements of heads, wants) and what it sends
// back. replica.go holds the replica's own document and its lifecycle.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/nats-io/nats.go"

	"github.com/circles-coop/circles/crdt/amchange"
)

// handle receives everything circles publish in the federation.
func (r *Replica) handle(m *nats.Msg) {
	fed, circle, suffix, ok := parseSubject(m.Subject)
	if !ok || fed != r.cfg.Federation || !ValidID(circle) {
		return
	}
	if circle == r.cfg.Circle {
		return // our own, echoed; nobody else may write as us
	}
	// The first word from the federation after a silence (the link came
	// back, or another circle did): announce at once rather than at the
	// next tick, so catch-up starts without waiting.
	r.mu.Lock()
	silent := time.Since(r.lastHeard) > 2*r.cfg.AnnounceEvery
	r.lastHeard = time.Now()
	r.mu.Unlock()
	if silent {
		r.Announce()
	}
	switch suffix {
	case SuffixChanges:
		if err := r.receiveChanges(circle, m.Data); err != nil {
			r.refused.Add(1)
			r.log.Warn("refused federated change", "circle", circle, "err", err)
		}
	case SuffixWant:
		r.receiveWant(circle, m.Data)
	}
}

// ErrForeignActor refuses a change on circle X's subject that was not
// written by X's federation actor.
var ErrForeignActor = errors.New("change not authored by the circle whose subject carries it")

// receiveChanges checks and applies a message of circle's changes: every
// change must decode (amchange, which also keeps automerge-go safe from
// malformed input) and be authored by circle's actor, or nothing of the
// message is applied.
func (r *Replica) receiveChanges(circle string, data []byte) error {
	frames, err := unframe(data)
	if err != nil {
		return err
	}
	want := ActorFor(r.cfg.Federation, circle)
	for _, f := range frames {
		c, err := amchange.Decode(f)
		if err != nil {
			return fmt.Errorf("decode change: %w", err)
		}
		if !strings.EqualFold(c.Actor, want) {
			return fmt.Errorf("%w: actor %s on %s's subject", ErrForeignActor, c.Actor, circle)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastHeard = time.Now()
	p := r.peers[circle]
	if p == nil {
		p = &peer{doc: automerge.New()}
		r.peers[circle] = p
	}
	if p.size+len(data) > r.cfg.MaxReplicaBytes {
		return fmt.Errorf("%w (%d bytes)", ErrReplicaFull, r.cfg.MaxReplicaBytes)
	}
	before := p.doc.Heads()
	// automerge-go's LoadIncremental refuses a change whose dependencies
	// are missing, so such a change waits in p.pending until they arrive
	// (a live change may overtake the catch-up that precedes it).
	queue := append(p.pending, frames...)
	if len(p.pending) == 0 && p.doc.LoadIncremental(bytes.Join(frames, nil)) == nil {
		queue = nil // the usual case, in one call: every dependency is there
	}
	for progress := true; progress && len(queue) > 0; {
		progress = false
		rest := queue[:0:0]
		for _, f := range queue {
			if err := p.doc.LoadIncremental(f); err != nil {
				rest = append(rest, f)
				continue
			}
			progress = true
		}
		queue = rest
	}
	if len(queue) > maxPending { // the oldest go; a later catch-up brings them again
		queue = queue[len(queue)-maxPending:]
	}
	p.pending = queue
	if !sameHeads(before, p.doc.Heads()) {
		p.size += len(data)
		p.dirty = true
		r.notifyLocked()
	}
	return nil
}

// want is a circle's announcement: the heads it holds of each member's
// document, and of its own.
type want struct {
	Heads map[string][]string `json:"heads"`
	Own   []string            `json:"own"`
}

// maxWant bounds an announcement (heads of a few hundred circles).
const maxWant = 256 << 10

func (r *Replica) sendAnnounce() {
	r.mu.Lock()
	w := want{Heads: map[string][]string{}, Own: hashStrings(r.own.Heads())}
	for c, p := range r.peers {
		w.Heads[c] = hashStrings(p.doc.Heads())
	}
	r.mu.Unlock()
	b, _ := json.Marshal(w)
	if err := r.cfg.Conn.Publish(CircleSubject(r.cfg.Federation, r.cfg.Circle, SuffixWant), b); err != nil {
		r.log.Warn("announce", "err", err)
	}
}

// receiveWant answers circle's announcement: it sends what circle lacks
// of this circle's document, and announces soon if circle has changes of
// its own this circle lacks.
func (r *Replica) receiveWant(circle string, data []byte) {
	if len(data) > maxWant {
		r.refused.Add(1)
		return
	}
	var w want
	if err := json.Unmarshal(data, &w); err != nil {
		r.refused.Add(1)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastHeard = time.Now()
	// What they lack of ours.
	theirs := w.Heads[r.cfg.Circle]
	mine := hashStrings(r.own.Heads())
	if !slices.Equal(sortedCopy(theirs), sortedCopy(mine)) {
		// The same answer (their heads, ours) at most once per two
		// announcement periods: several announcements of one state while
		// the answer travels get one answer.
		key := circle + "|" + strings.Join(sortedCopy(theirs), ",") + "|" + strings.Join(sortedCopy(mine), ",")
		if t, ok := r.served[key]; !ok || time.Since(t) > 2*r.cfg.AnnounceEvery {
			r.served[key] = time.Now()
			r.sendSinceLocked(theirs)
		}
	}
	for k, t := range r.served {
		if time.Since(t) > 10*r.cfg.AnnounceEvery {
			delete(r.served, k)
		}
	}
	// What we lack of theirs.
	p := r.peers[circle]
	for _, h := range w.Own {
		ch, err := automerge.NewChangeHash(h)
		if err != nil {
			return
		}
		if p == nil {
			r.Announce()
			return
		}
		if _, err := p.doc.Change(ch); err != nil {
			r.Announce()
			return
		}
	}
}

// sendSinceLocked publishes the own document's changes that a holder of
// heads lacks; heads this circle does not know (a replica of a state it
// never had) get everything.
func (r *Replica) sendSinceLocked(heads []string) {
	var hs []automerge.ChangeHash
	for _, h := range heads {
		ch, err := automerge.NewChangeHash(h)
		if err != nil {
			hs = nil
			break
		}
		if _, err := r.own.Change(ch); err != nil {
			hs = nil // unknown to us: send all
			break
		}
		hs = append(hs, ch)
	}
	chs, err := r.own.Changes(hs...)
	if err != nil {
		chs, err = r.own.Changes()
		if err != nil {
			r.log.Warn("changes to send", "err", err)
			return
		}
	}
	if len(chs) > 0 {
		r.publishLocked(chs)
	}
}

func hashStrings(hs []automerge.ChangeHash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.String()
	}
	return out
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

func sameHeads(a, b []automerge.ChangeHash) bool {
	return slices.Equal(sortedCopy(hashStrings(a)), sortedCopy(hashStrings(b)))
}

func mapsKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
