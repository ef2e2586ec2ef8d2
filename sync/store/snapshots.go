// Compacted snapshots: one message per document in CIRC_SNAPS, naming the
// last chunk it covers; loading a document assembles its snapshot and the
// chunks stored after it.

package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// snapshot is the stored snapshot of a doc as read from the stream.
type snapshot struct {
	data   []byte
	covers uint64
	seq    uint64 // its sequence in SnapshotStream, for compare-and-set
}

// getSnapshot returns doc's snapshot, or nil if it has none.
func (s *Store) getSnapshot(ctx context.Context, doc string) (*snapshot, error) {
	m, err := s.snaps.GetLastMsgForSubject(ctx, snapPrefix+doc)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: get snapshot of %s: %w", doc, err)
	}
	covers, err := strconv.ParseUint(m.Header.Get(CoversHeader), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("store: snapshot of %s (seq %d): bad %s header: %w", doc, m.Sequence, CoversHeader, err)
	}
	return &snapshot{data: m.Data, covers: covers, seq: m.Sequence}, nil
}

// lastChunkSeq returns the sequence of doc's newest stored chunk, 0 if none.
func (s *Store) lastChunkSeq(ctx context.Context, doc string) (uint64, error) {
	m, err := s.chunks.GetLastMsgForSubject(ctx, chunkPrefix+doc)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: last chunk of %s: %w", doc, err)
	}
	return m.Sequence, nil
}

// PutSnapshot stores data as doc's snapshot, stating that it includes every
// chunk of doc with Seq <= covers, and then purges those chunks. The order
// makes a crash harmless: if the process dies between the two steps, the
// covered chunks are still stored, Load skips them, and the next
// PutSnapshot purges them.
//
// covers may not go below the stored snapshot's covers, nor beyond the doc's
// newest chunk (ErrBadCovers): either would lose or hide chunks. If another
// PutSnapshot for doc lands between reading and writing, the call fails with
// ErrConflict and nothing is purged. Other errors: ErrBadDoc, ErrTooLarge.
func (s *Store) PutSnapshot(ctx context.Context, doc string, data []byte, covers uint64) error {
	if err := checkDoc(doc); err != nil {
		return err
	}
	if err := s.checkSize(len(data)); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.gate.RUnlock()
	cur, err := s.getSnapshot(ctx, doc)
	if err != nil {
		return err
	}
	last, err := s.lastChunkSeq(ctx, doc)
	if err != nil {
		return err
	}
	var curCovers, curSeq uint64
	if cur != nil {
		curCovers, curSeq = cur.covers, cur.seq
	}
	if covers < curCovers || covers > max(last, curCovers) {
		return fmt.Errorf("%w: doc %s covers %d, stored snapshot covers %d, last chunk %d",
			ErrBadCovers, doc, covers, curCovers, last)
	}

	msg := nats.NewMsg(snapPrefix + doc)
	msg.Header.Set(CoversHeader, strconv.FormatUint(covers, 10))
	msg.Data = data
	if _, err := s.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(curSeq)); err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			return fmt.Errorf("%w: snapshot of %s changed meanwhile: %v", ErrConflict, doc, err)
		}
		return fmt.Errorf("store: put snapshot of %s: %w", doc, err)
	}
	if covers == 0 {
		return nil
	}
	// Purge keeps messages from sequence covers+1 on.
	err = s.chunks.Purge(ctx, jetstream.WithPurgeSubject(chunkPrefix+doc), jetstream.WithPurgeSequence(covers+1))
	if err != nil {
		return fmt.Errorf("store: snapshot of %s stored, purge of covered chunks failed (a later snapshot retries it): %w", doc, err)
	}
	return nil
}

// raw reads everything stored for doc: all its chunks, then its snapshot.
// Chunks are read first: a snapshot written concurrently covers at least
// every chunk a concurrent purge removed, so filtering the chunks by the
// snapshot read afterwards never loses one.
func (s *Store) raw(ctx context.Context, doc string) (*snapshot, []Chunk, error) {
	var chunks []Chunk
	err := s.scan(ctx, ChunkStream, chunkPrefix+doc, 0, func(_ string, seq uint64, data []byte) error {
		chunks = append(chunks, Chunk{Seq: seq, Data: data})
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("store: read chunks of %s: %w", doc, err)
	}
	snap, err := s.getSnapshot(ctx, doc)
	if err != nil {
		return nil, nil, err
	}
	return snap, chunks, nil
}

// Load returns doc's snapshot and the chunks newer than it. Chunks the
// snapshot already covers (left over from an interrupted PutSnapshot) are
// skipped. Errors: ErrBadDoc, ErrNotFound when nothing is stored for doc.
func (s *Store) Load(ctx context.Context, doc string) (Doc, error) {
	if err := checkDoc(doc); err != nil {
		return Doc{}, err
	}
	snap, chunks, err := s.raw(ctx, doc)
	if err != nil {
		return Doc{}, err
	}
	d, ok := assemble(snap, chunks)
	if !ok {
		return Doc{}, fmt.Errorf("load %s: %w", doc, ErrNotFound)
	}
	return d, nil
}

// assemble builds a Doc from a snapshot (or nil) and the doc's stored
// chunks in Seq order, dropping chunks the snapshot covers. It reports
// false when there is nothing at all.
func assemble(snap *snapshot, chunks []Chunk) (Doc, bool) {
	if snap == nil && len(chunks) == 0 {
		return Doc{}, false
	}
	var d Doc
	if snap != nil {
		d.Snapshot, d.Covers = snap.data, snap.covers
		if d.Snapshot == nil {
			d.Snapshot = []byte{}
		}
	}
	i, _ := slices.BinarySearchFunc(chunks, d.Covers+1, func(c Chunk, seq uint64) int {
		return cmpUint(c.Seq, seq)
	})
	if i < len(chunks) {
		d.Chunks = chunks[i:]
	}
	d.LastSeq = d.Covers
	if n := len(d.Chunks); n > 0 {
		d.LastSeq = d.Chunks[n-1].Seq
	}
	return d, true
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
