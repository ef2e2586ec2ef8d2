package replica

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"

	"github.com/automerge/automerge-go"
)

// A circle's federated document (one per circle and federation, written
// only with ActorFor(federation, circle)) holds, at its root:
//
//	profile     string: JSON Profile
//	scorecard   string: JSON, the circle's published scorecard
//	delegates   string: JSON []Delegate, replaced whole when it changes
//	blueprints  map: id → JSON Blueprint
//	proposals   map: id → JSON Proposal (federation proposals it made)
//	votes       map: proposal id → choice (the circle's one vote)
//	credits     map: id → JSON Credit (credits it gave)
//
// Records are JSON strings: a record is written whole, once (proposals,
// votes, credits) or replaced whole (profile, delegates, a blueprint), so
// field-level merging buys nothing, and a reader skips any record it
// cannot parse instead of failing the whole view.

// Statuses of a federation proposal.
const (
	StatusOpen     = "open"
	StatusPassed   = "passed"
	StatusRejected = "rejected"
)

// Kinds of federation proposals.
const (
	KindText  = "federation.text"
	KindAdmit = "federation.admit"
	KindExpel = "federation.expel"
)

// view is what one circle's document says, parsed.
type view struct {
	Profile    Profile
	Scorecard  json.RawMessage
	Delegates  []Delegate
	Blueprints []Blueprint
	Proposals  []Proposal
	Votes      map[string]string
	Credits    []Credit
}

func readString(d *automerge.Doc, key string) string {
	v, err := d.RootMap().Get(key)
	if err != nil || v.Kind() != automerge.KindStr {
		return ""
	}
	return v.Str()
}

func readMap(d *automerge.Doc, key string) map[string]string {
	out := map[string]string{}
	v, err := d.RootMap().Get(key)
	if err != nil || v.Kind() != automerge.KindMap {
		return out
	}
	vals, err := v.Map().Values()
	if err != nil {
		return out
	}
	for k, x := range vals {
		if x.Kind() == automerge.KindStr {
			out[k] = x.Str()
		}
	}
	return out
}

// readView parses circle's document. A circle writes only its own
// document, but it may write anything there: records that do not parse,
// that contradict their key, or that break the bounds the API enforces
// on writes are skipped, so a member circle cannot put into the others'
// views what the routes would have refused.
func readView(d *automerge.Doc, circle string) view {
	var v view
	_ = json.Unmarshal([]byte(readString(d, "profile")), &v.Profile)
	if len(v.Profile.Name) > MaxTitle {
		v.Profile.Name = ""
	}
	if s := readString(d, "scorecard"); len(s) <= MaxScorecard && json.Valid([]byte(s)) {
		v.Scorecard = json.RawMessage(s)
	}
	var dels []Delegate
	_ = json.Unmarshal([]byte(readString(d, "delegates")), &dels)
	v.Delegates = []Delegate{}
	for _, x := range dels {
		if len(v.Delegates) < MaxDelegates && len(x.Member) <= MaxTitle && len(x.Name) <= MaxTitle && len(x.Mandate) <= MaxTitle && len(x.Issue) <= MaxTitle {
			v.Delegates = append(v.Delegates, x)
		}
	}
	for id, s := range readMap(d, "blueprints") {
		var b Blueprint
		if json.Unmarshal([]byte(s), &b) == nil && b.ID == id && validBlueprint(b) {
			v.Blueprints = append(v.Blueprints, b)
		}
	}
	sort.Slice(v.Blueprints, func(i, j int) bool { return v.Blueprints[i].ID < v.Blueprints[j].ID })
	for id, s := range readMap(d, "proposals") {
		var p Proposal
		if json.Unmarshal([]byte(s), &p) == nil && p.ID == id && validProposal(p) {
			p.AuthorCircle = circle
			v.Proposals = append(v.Proposals, p)
		}
	}
	v.Votes = readMap(d, "votes")
	for id, s := range readMap(d, "credits") {
		var c Credit
		if json.Unmarshal([]byte(s), &c) == nil && c.ID == id && validAmount(c.Amount) && ValidID(c.To) && c.To != circle && len(c.Note) <= MaxNote {
			c.From = circle
			v.Credits = append(v.Credits, c)
		}
	}
	sort.Slice(v.Credits, func(i, j int) bool { return v.Credits[i].ID < v.Credits[j].ID })
	return v
}

// Bounds on what a circle's document may hold to be shown.
const (
	MaxDelegates = 100
	MaxScorecard = 64 << 10
)

func validBlueprint(b Blueprint) bool {
	if !ValidID(b.ID) || b.Title == "" || len(b.Title) > MaxTitle || b.Body == "" || len(b.Body) > MaxBody {
		return false
	}
	o := b.Origin
	return o == nil || (ValidID(o.Federation) && ValidID(o.CircleID) && ValidID(o.Blueprint))
}

func validProposal(p Proposal) bool {
	if !ValidID(p.ID) || p.Title == "" || len(p.Title) > MaxTitle || len(p.Body) > MaxBody {
		return false
	}
	switch p.Kind {
	case KindText:
		return true
	case KindAdmit, KindExpel:
		var cp circlePayload
		return json.Unmarshal(p.Payload, &cp) == nil && ValidID(cp.CircleID)
	}
	return false
}

// validAmount: more than 0, at most MaxCredit hours, in hundredths.
func validAmount(a float64) bool {
	cents := math.Round(a * 100)
	return a > 0 && a <= MaxCredit && math.Abs(cents-a*100) <= 1e-6
}

// putRecord sets root[mapKey][id] = JSON of rec, creating the map.
func putRecord(d *automerge.Doc, mapKey, id string, rec any) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return putMapString(d, mapKey, id, string(b))
}

func putMapString(d *automerge.Doc, mapKey, id, s string) error {
	root := d.RootMap()
	v, err := root.Get(mapKey)
	if err != nil {
		return err
	}
	if v.Kind() != automerge.KindMap {
		if err := root.Set(mapKey, automerge.NewMap()); err != nil {
			return fmt.Errorf("create %s: %w", mapKey, err)
		}
		if v, err = root.Get(mapKey); err != nil {
			return err
		}
	}
	return v.Map().Set(id, s)
}
