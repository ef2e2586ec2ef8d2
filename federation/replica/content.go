package replica

import (
	"encoding/json"
	"fmt"
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

// readView parses circle's document; records that do not parse, or that
// contradict their key, are skipped.
func readView(d *automerge.Doc, circle string) view {
	var v view
	_ = json.Unmarshal([]byte(readString(d, "profile")), &v.Profile)
	if s := readString(d, "scorecard"); json.Valid([]byte(s)) {
		v.Scorecard = json.RawMessage(s)
	}
	_ = json.Unmarshal([]byte(readString(d, "delegates")), &v.Delegates)
	if v.Delegates == nil {
		v.Delegates = []Delegate{}
	}
	for id, s := range readMap(d, "blueprints") {
		var b Blueprint
		if json.Unmarshal([]byte(s), &b) == nil && b.ID == id {
			v.Blueprints = append(v.Blueprints, b)
		}
	}
	sort.Slice(v.Blueprints, func(i, j int) bool { return v.Blueprints[i].ID < v.Blueprints[j].ID })
	for id, s := range readMap(d, "proposals") {
		var p Proposal
		if json.Unmarshal([]byte(s), &p) == nil && p.ID == id {
			p.AuthorCircle = circle
			v.Proposals = append(v.Proposals, p)
		}
	}
	v.Votes = readMap(d, "votes")
	for id, s := range readMap(d, "credits") {
		var c Credit
		if json.Unmarshal([]byte(s), &c) == nil && c.ID == id && c.Amount > 0 && c.Amount <= MaxCredit {
			c.From = circle
			v.Credits = append(v.Credits, c)
		}
	}
	sort.Slice(v.Credits, func(i, j int) bool { return v.Credits[i].ID < v.Credits[j].ID })
	return v
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
