// Reading a document's stored snapshot on its own, for serving it to
// devices without loading the document.

package store

import (
	"context"
	"fmt"
)

// StoredSnapshot is a document's stored snapshot as SnapshotOf returns it.
type StoredSnapshot struct {
	// Data is the snapshot's data (what PutSnapshot stored).
	Data []byte
	// Covers is the highest chunk sequence it includes.
	Covers uint64
	// LastChunk is the sequence of the document's newest stored chunk (0
	// if none). Complete reports whether the snapshot holds everything.
	LastChunk uint64
}

// Complete reports whether the snapshot includes every chunk stored for
// the document.
func (s StoredSnapshot) Complete() bool { return s.LastChunk <= s.Covers }

// SnapshotOf reads doc's stored snapshot alone (one message) and the
// sequence of its newest chunk, without reading any chunk. Errors:
// ErrBadDoc, ErrNotFound when doc has no snapshot.
func (s *Store) SnapshotOf(ctx context.Context, doc string) (StoredSnapshot, error) {
	if err := checkDoc(doc); err != nil {
		return StoredSnapshot{}, err
	}
	// The newest chunk is read first: a snapshot written in between covers
	// at least it, so Complete never claims more than is true.
	last, err := s.lastChunkSeq(ctx, doc)
	if err != nil {
		return StoredSnapshot{}, err
	}
	snap, err := s.getSnapshot(ctx, doc)
	if err != nil {
		return StoredSnapshot{}, err
	}
	if snap == nil {
		return StoredSnapshot{}, fmt.Errorf("snapshot of %s: %w", doc, ErrNotFound)
	}
	return StoredSnapshot{Data: snap.data, Covers: snap.covers, LastChunk: last}, nil
}
