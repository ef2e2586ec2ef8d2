package authority

import (
	"fmt"
	"hash/maphash"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
)

// The append-only rule refuses a new key that a container already holds
// (a device that did not see an accepted entry could otherwise write a
// conflicting value under its key). Asking automerge for each key of a
// message costs a call into C and a result to free per change, which was
// the largest part of checking a message; so the policy keeps, for each
// loaded member document, the keys its containers hold:
//
//   - built from the document the first time a message comes for it after
//     it was loaded (one listing per container), and again whenever the
//     document's heads are not those the set was made for (a write by the
//     server, changes that waited for their dependencies);
//   - kept in step by Accept, which adds the keys of the batch it accepted
//     when that batch is exactly the one CheckChanges checked against the
//     set;
//   - dropped when the engine drops the document (Unloaded).
//
// Keys are kept as 64-bit hashes (8 bytes each rather than the strings).
// A hash that is present only says "maybe": automerge is asked then, so
// a collision costs one lookup and never refuses a new key.

// keySeed seeds the key hashes; random per process, so nobody can choose
// keys that collide on purpose.
var keySeed = maphash.MakeSeed()

// keySet is what CheckChanges knows of a member document's containers as of
// heads.
type keySet struct {
	heads []automerge.ChangeHash
	keys  map[uint64]struct{}
}

func (k *keySet) add(a crdt.Added) {
	k.keys[maphash.Comparable(keySeed, a)] = struct{}{}
}

func (k *keySet) mayHave(a crdt.Added) bool {
	_, ok := k.keys[maphash.Comparable(keySeed, a)]
	return ok
}

// keysOf returns the key set of a loaded member document whose heads are
// heads, building it if the cached one is for other heads. The caller holds
// the document's lock.
func (s *Policy) keysOf(doc string, d *automerge.Doc, heads []automerge.ChangeHash) (*keySet, error) {
	s.mu.RLock()
	k := s.docs[doc].keys
	s.mu.RUnlock()
	if k != nil && crdt.SameHeads(k.heads, heads) {
		return k, nil
	}
	info, _ := s.docInfo(doc)
	k = &keySet{heads: heads, keys: make(map[uint64]struct{})}
	for container := range crdt.Containers(info.Kind) {
		keys, err := d.Path(container).Map().Keys()
		if err != nil {
			return nil, fmt.Errorf("list the keys of %s in %s: %w", container, doc, err)
		}
		for _, key := range keys {
			k.add(crdt.Added{Container: container, Key: key})
		}
	}
	s.setKeys(doc, k)
	return k, nil
}

// setKeys records (or with nil drops) a document's key set.
func (s *Policy) setKeys(doc string, k *keySet) {
	s.updateDoc(doc, func(info *docInfo) { info.keys = k })
}

// acceptedKeys brings the key set up to date after Accept took the batch
// c: when c was checked against the set, its keys are added and the set
// moves to the document's new heads; otherwise the set is dropped and
// built again for the next message. The caller holds the document's lock.
func (s *Policy) acceptedKeys(doc string, d *automerge.Doc, c *checkedBatch, sameBatch bool) {
	s.mu.RLock()
	k := s.docs[doc].keys
	s.mu.RUnlock()
	if k == nil {
		return
	}
	if !sameBatch || c == nil || !crdt.SameHeads(k.heads, c.heads) {
		s.setKeys(doc, nil)
		return
	}
	for _, a := range c.added {
		k.add(a)
	}
	k.heads = d.Heads()
}

// Unloaded drops what the policy keeps of a document the engine no longer
// holds in memory (engine.Unloader).
func (s *Policy) Unloaded(doc string) {
	s.updateDoc(doc, func(info *docInfo) { info.keys, info.checked, info.accepted = nil, nil, nil })
}
