// The governance document's indexes that bound a member's open proposals,
// proposals a day and waiting votes (OpenProposal, AddPendingVote).

package crdt

import (
	"time"

	"github.com/automerge/automerge-go"
)

// childMap returns parent[key] as a map, creating it if missing.
func childMap(parent *automerge.Map, key string) (*automerge.Map, error) {
	v, err := parent.Get(key)
	if err != nil {
		return nil, err
	}
	if v.Kind() == automerge.KindMap {
		return v.Map(), nil
	}
	if !v.IsVoid() {
		return nil, schemaErr("governance: %q must be a map", truncate(key, maxIDLen))
	}
	if err := parent.Set(key, automerge.NewMap()); err != nil {
		return nil, err
	}
	if v, err = parent.Get(key); err != nil {
		return nil, err
	}
	return v.Map(), nil
}

// authorIndex returns the author's map in "open_proposals".
func authorIndex(doc *automerge.Doc, author string) (*automerge.Map, error) {
	all, err := ensureMap(doc, openProposals)
	if err != nil {
		return nil, err
	}
	return childMap(all, author)
}

// recentIndex returns the author's map in "recent_proposals".
func recentIndex(doc *automerge.Doc, author string) (*automerge.Map, error) {
	all, err := ensureMap(doc, recentProposals)
	if err != nil {
		return nil, err
	}
	return childMap(all, author)
}

// staleRecent returns the proposals of an author's recent map opened 24
// hours or more before now (or whose time does not read): they no longer
// count toward MaxProposalsPerMemberPerDay.
func staleRecent(recent *automerge.Map, now time.Time) ([]string, error) {
	vals, err := recent.Values()
	if err != nil {
		return nil, err
	}
	var stale []string
	for id, v := range vals {
		if v.Kind() != automerge.KindStr {
			stale = append(stale, id)
			continue
		}
		if at, err := parseTime(v.Str()); err != nil || now.Sub(at) >= 24*time.Hour {
			stale = append(stale, id)
		}
	}
	return stale, nil
}

// unindexOpen removes proposal id (its map p) from its author's open
// proposals, if it is there.
func unindexOpen(doc *automerge.Doc, p *automerge.Map, id string) error {
	av, err := p.Get("author")
	if err != nil || av.Kind() != automerge.KindStr {
		return err
	}
	v, err := doc.Path(openProposals, av.Str(), id).Get()
	if err != nil || v.IsVoid() {
		return err
	}
	return doc.Path(openProposals, av.Str()).Map().Delete(id)
}
