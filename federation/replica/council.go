package replica

import (
	"context"
	"encoding/json"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/authority/fault"
)

// Bounds on what a delegate writes.
const (
	MaxTitle  = 200
	MaxBody   = 8 << 10
	MaxNote   = 500
	MaxCredit = 1000.0 // hours in one credit
)

// Choices of a circle's vote.
var choices = []string{"yes", "no", "abstain"}

// viewsLocked parses every document: this circle's first, then the
// others by id. r.mu is held.
func (r *Replica) viewsLocked() (ids []string, views map[string]view) {
	views = map[string]view{r.cfg.Circle: readView(r.own, r.cfg.Circle)}
	for c, p := range r.peers {
		views[c] = readView(p.doc, c)
	}
	others := mapsKeys(r.peers)
	sort.Strings(others)
	return append([]string{r.cfg.Circle}, others...), views
}

// membersLocked are the circles that count for a majority: this one and
// every other whose document it holds, less the departed.
func (r *Replica) membersLocked() []string {
	out := []string{r.cfg.Circle}
	for c := range r.peers {
		if !r.departed[c] {
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out
}

// View is the federation as this circle's replica holds it.
func (r *Replica) View() FederationView {
	r.mu.Lock()
	defer r.mu.Unlock()
	status, connected := "joined", time.Since(r.lastHeard) < 3*r.cfg.AnnounceEvery
	if r.cfg.LinkState != nil {
		status, connected = r.cfg.LinkState()
	}
	ids, views := r.viewsLocked()
	out := FederationView{ID: r.cfg.Federation, Name: r.cfg.Name, Status: status, Connected: connected, Circles: []CircleView{}}
	for _, id := range ids {
		v := views[id]
		bps := v.Blueprints
		if bps == nil {
			bps = []Blueprint{}
		}
		out.Circles = append(out.Circles, CircleView{CircleID: id, Name: v.Profile.Name, Profile: v.Profile, Scorecard: v.Scorecard, Delegates: v.Delegates, Blueprints: bps, Departed: r.departed[id]})
	}
	return out
}

// FollowListing marks departed every circle whose document the replica
// holds and that listed (the hub's list of the federation's members)
// leaves out, and marks listed ones present again. A departed circle's
// last state stays, and it no longer counts for a majority. Unlike View it reads
// no document, so the link can call it every time it looks.
func (r *Replica) FollowListing(listed map[string]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	changed := false
	for c := range r.peers {
		if departed := !listed[c]; r.departed[c] != departed {
			r.departed[c] = departed
			changed = true
		}
	}
	if changed {
		r.notifyLocked()
	}
}

// proposalsLocked gathers every member's proposals with their votes and
// status. A proposal id is the federation's: if two circles used the
// same id, the earlier proposal (then the lower circle id) is the one.
func (r *Replica) proposalsLocked() []Proposal {
	ids, views := r.viewsLocked()
	byID := map[string]Proposal{}
	for _, c := range ids {
		for _, p := range views[c].Proposals {
			if q, ok := byID[p.ID]; ok && (q.CreatedAt.Before(p.CreatedAt) || (q.CreatedAt.Equal(p.CreatedAt) && q.AuthorCircle < p.AuthorCircle)) {
				continue
			}
			byID[p.ID] = p
		}
	}
	members := r.membersLocked()
	out := make([]Proposal, 0, len(byID))
	for _, p := range byID {
		p.Votes = map[string]string{}
		for _, c := range ids {
			if ch, ok := views[c].Votes[p.ID]; ok && slices.Contains(choices, ch) {
				p.Votes[c] = ch
			}
		}
		p.Status = decide(p.Votes, members)
		if s, ok := r.decided[p.ID]; ok {
			p.Status = s // a decision stands, whoever joins or leaves later
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// decide: passed once a majority of member circles voted yes, rejected
// once a majority can no longer be reached, open otherwise.
func decide(votes map[string]string, members []string) string {
	n := len(members)
	need := n/2 + 1
	yes, against := 0, 0
	for _, c := range members {
		switch votes[c] {
		case "yes":
			yes++
		case "no", "abstain":
			against++
		}
	}
	switch {
	case yes >= need:
		return StatusPassed
	case n-against < need:
		return StatusRejected
	}
	return StatusOpen
}

// Proposals lists the federation's proposals, oldest first.
func (r *Replica) Proposals() []Proposal {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.proposalsLocked()
}

// countDecided records, once, each proposal newly decided and tells
// OnDecided.
func (r *Replica) countDecided(ctx context.Context) {
	r.mu.Lock()
	if !r.recount {
		r.mu.Unlock()
		return
	}
	r.recount = false
	var fresh []Proposal
	for _, p := range r.proposalsLocked() {
		if p.Status == StatusOpen {
			continue
		}
		if _, ok := r.decided[p.ID]; ok {
			continue
		}
		if err := r.st.markDecided(ctx, r.cfg.Federation, p.ID+"="+p.Status); err != nil {
			r.log.Warn("record decision", "proposal", p.ID, "err", err)
			r.recount = true
			continue
		}
		r.decided[p.ID] = p.Status
		fresh = append(fresh, p)
	}
	r.mu.Unlock()
	for _, p := range fresh {
		r.log.Info("federation proposal decided", "proposal", p.ID, "kind", p.Kind, "status", p.Status)
		if r.cfg.OnDecided != nil {
			r.cfg.OnDecided(r.cfg.Federation, p)
		}
	}
}

// delegate checks that member is one of this circle's delegates to the
// federation, and returns the delegate.
func (r *Replica) delegate(member string) (Delegate, error) {
	if r.cfg.Source != nil {
		for _, d := range r.cfg.Source.Delegates(r.cfg.Federation) {
			if d.Member == member {
				return d, nil
			}
		}
	}
	return Delegate{}, fault.Errorf(fault.Forbidden, "only this circle's delegates to federation %s (members with an active mandate scoped \"federation:%s\") may do this", r.cfg.Federation, r.cfg.Federation)
}

type circlePayload struct {
	CircleID string `json:"circle_id"`
}

// Propose writes a federation proposal into this circle's document, for
// a delegate. created is false when the same proposal was already there.
func (r *Replica) Propose(ctx context.Context, member string, req ProposalRequest, now time.Time) (p Proposal, created bool, err error) {
	d, err := r.delegate(member)
	if err != nil {
		return Proposal{}, false, err
	}
	if !ValidID(req.ID) {
		return Proposal{}, false, fault.Errorf(fault.InvalidRequest, "id must be 1 to 64 letters, digits, '-' or '_'")
	}
	if req.Title == "" || len(req.Title) > MaxTitle {
		return Proposal{}, false, fault.Errorf(fault.InvalidRequest, "title must be 1 to %d bytes", MaxTitle)
	}
	if len(req.Body) > MaxBody {
		return Proposal{}, false, fault.Errorf(fault.InvalidRequest, "body must be at most %d bytes", MaxBody)
	}
	p = Proposal{ID: req.ID, Kind: req.Kind, Title: req.Title, Body: req.Body, AuthorCircle: r.cfg.Circle, Author: d.Member, CreatedAt: now.UTC().Truncate(time.Second)}
	r.mu.Lock()
	defer r.mu.Unlock()
	members := r.membersLocked()
	switch req.Kind {
	case KindText:
		if len(req.Payload) > 0 && string(req.Payload) != "null" && string(req.Payload) != "{}" {
			return Proposal{}, false, fault.Errorf(fault.InvalidRequest, "payload: a federation.text proposal takes none")
		}
	case KindAdmit, KindExpel:
		var cp circlePayload
		dec := json.NewDecoder(strings.NewReader(string(req.Payload)))
		dec.DisallowUnknownFields()
		if len(req.Payload) == 0 || dec.Decode(&cp) != nil || !ValidID(cp.CircleID) {
			return Proposal{}, false, fault.Errorf(fault.InvalidRequest, "payload.circle_id must name a circle")
		}
		isMember := slices.Contains(members, cp.CircleID)
		if req.Kind == KindAdmit && isMember {
			return Proposal{}, false, fault.Errorf(fault.Conflict, "circle %s is already a member of federation %s", cp.CircleID, r.cfg.Federation)
		}
		if req.Kind == KindExpel && !isMember {
			return Proposal{}, false, fault.Errorf(fault.InvalidRequest, "payload.circle_id: circle %s is not a member of federation %s", cp.CircleID, r.cfg.Federation)
		}
		p.Payload, _ = json.Marshal(cp)
	default:
		return Proposal{}, false, fault.Errorf(fault.InvalidRequest, "kind must be federation.text, federation.admit or federation.expel")
	}
	for _, q := range r.proposalsLocked() {
		if q.ID != p.ID {
			continue
		}
		if q.AuthorCircle == p.AuthorCircle && q.Kind == p.Kind && q.Title == p.Title && q.Body == p.Body && string(q.Payload) == string(p.Payload) {
			return q, false, nil
		}
		return Proposal{}, false, fault.Errorf(fault.Conflict, "a federation proposal with id %s already exists", p.ID)
	}
	err = r.writeLocked(ctx, "federation proposal "+p.ID, func(doc *automerge.Doc) (bool, error) {
		rec := p
		rec.AuthorCircle, rec.Status, rec.Votes = "", "", nil
		return true, putRecord(doc, "proposals", p.ID, rec)
	})
	if err != nil {
		return Proposal{}, false, err
	}
	for _, q := range r.proposalsLocked() {
		if q.ID == p.ID {
			return q, true, nil
		}
	}
	return p, true, nil
}

// Vote writes this circle's one vote on a federation proposal, for a
// delegate. Voting again the same choice is a safe retry; another choice
// is a conflict (the circle has voted).
func (r *Replica) Vote(ctx context.Context, member, proposal, choice string) (Proposal, error) {
	if _, err := r.delegate(member); err != nil {
		return Proposal{}, err
	}
	if !slices.Contains(choices, choice) {
		return Proposal{}, fault.Errorf(fault.InvalidRequest, "choice must be yes, no or abstain")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	find := func() (Proposal, bool) {
		for _, q := range r.proposalsLocked() {
			if q.ID == proposal {
				return q, true
			}
		}
		return Proposal{}, false
	}
	p, ok := find()
	if !ok {
		return Proposal{}, fault.Errorf(fault.NotFound, "no federation proposal %s in federation %s", proposal, r.cfg.Federation)
	}
	if prev, ok := p.Votes[r.cfg.Circle]; ok {
		if prev == choice {
			return p, nil
		}
		return Proposal{}, fault.Errorf(fault.Conflict, "this circle already voted %s on proposal %s; a circle has one vote", prev, proposal)
	}
	if p.Status != StatusOpen {
		return Proposal{}, fault.Errorf(fault.Conflict, "proposal %s is already %s", proposal, p.Status)
	}
	err := r.writeLocked(ctx, "vote "+proposal, func(d *automerge.Doc) (bool, error) {
		return true, putMapString(d, "votes", proposal, choice)
	})
	if err != nil {
		return Proposal{}, err
	}
	p, _ = find()
	return p, nil
}

// Credit writes a credit of hours from this circle to another member,
// for a delegate. created is false when the same credit was already there.
func (r *Replica) Credit(ctx context.Context, member string, req CreditRequest, now time.Time) (c Credit, created bool, err error) {
	if _, err := r.delegate(member); err != nil {
		return Credit{}, false, err
	}
	if !ValidID(req.ID) {
		return Credit{}, false, fault.Errorf(fault.InvalidRequest, "id must be 1 to 64 letters, digits, '-' or '_'")
	}
	cents := math.Round(req.Amount * 100)
	if !validAmount(req.Amount) {
		return Credit{}, false, fault.Errorf(fault.InvalidRequest, "amount must be more than 0 and at most %g hours, in hundredths", MaxCredit)
	}
	if len(req.Note) > MaxNote {
		return Credit{}, false, fault.Errorf(fault.InvalidRequest, "note must be at most %d bytes", MaxNote)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if req.ToCircle == r.cfg.Circle {
		return Credit{}, false, fault.Errorf(fault.InvalidRequest, "to_circle: a circle cannot credit itself")
	}
	if !slices.Contains(r.membersLocked(), req.ToCircle) {
		return Credit{}, false, fault.Errorf(fault.InvalidRequest, "to_circle: %q is not a member of federation %s", req.ToCircle, r.cfg.Federation)
	}
	c = Credit{ID: req.ID, From: r.cfg.Circle, To: req.ToCircle, Amount: cents / 100, Note: req.Note, Delegate: member, At: now.UTC().Truncate(time.Second)}
	for _, q := range readView(r.own, r.cfg.Circle).Credits {
		if q.ID == c.ID {
			if q.To == c.To && q.Amount == c.Amount && q.Note == c.Note {
				return q, false, nil
			}
			return Credit{}, false, fault.Errorf(fault.Conflict, "a credit with id %s already exists", c.ID)
		}
	}
	err = r.writeLocked(ctx, "credit "+c.ID, func(d *automerge.Doc) (bool, error) {
		rec := c
		rec.From = ""
		return true, putRecord(d, "credits", c.ID, rec)
	})
	if err != nil {
		return Credit{}, false, err
	}
	return c, true, nil
}

// Balances sums every circle's credits: what a circle gave counts
// against it, what it received for it. They sum to zero exactly
// (hundredths of an hour are counted as integers).
func (r *Replica) Balances() []Balance {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids, views := r.viewsLocked()
	cents := map[string]int64{}
	for _, id := range ids {
		cents[id] += 0
		for _, c := range views[id].Credits {
			n := int64(math.Round(c.Amount * 100))
			cents[id] -= n
			cents[c.To] += n
		}
	}
	out := make([]Balance, 0, len(cents))
	for _, id := range sortedCopy(mapsKeys(cents)) {
		out = append(out, Balance{CircleID: id, Balance: float64(cents[id]) / 100})
	}
	return out
}

// Blueprint returns circle's blueprint id as this replica holds it.
func (r *Replica) Blueprint(circle, id string) (Blueprint, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var d *automerge.Doc
	if circle == r.cfg.Circle {
		d = r.own
	} else if p := r.peers[circle]; p != nil {
		d = p.doc
	} else {
		return Blueprint{}, false
	}
	for _, b := range readView(d, circle).Blueprints {
		if b.ID == id {
			return b, true
		}
	}
	return Blueprint{}, false
}

// Heads are the heads of circle's document as this replica holds it
// (this circle's own, or its replica of another's), sorted.
func (r *Replica) Heads(circle string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if circle == r.cfg.Circle {
		return sortedCopy(hashStrings(r.own.Heads()))
	}
	if p := r.peers[circle]; p != nil {
		return sortedCopy(hashStrings(p.doc.Heads()))
	}
	return nil
}
