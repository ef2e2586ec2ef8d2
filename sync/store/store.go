package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Errors callers branch on. Every error the store returns wraps one of these
// or a JetStream/NATS error.
var (
	// ErrNotFound: no document, key or snapshot is stored under that name.
	ErrNotFound = errors.New("store: not found")
	// ErrExists: KV.Create found the key already present.
	ErrExists = errors.New("store: key exists")
	// ErrConflict: a compare-and-set write lost, because the key's revision
	// (or the doc's snapshot) moved since the caller read it.
	ErrConflict = errors.New("store: revision conflict")
	// ErrReplay: ClaimJTI saw the token id before.
	ErrReplay = errors.New("store: token id already used")
	// ErrBadKey: a KV key or token id is empty or too long.
	ErrBadKey = errors.New("store: bad key")
	// ErrBadDoc: a document id is not 1..64 characters of [A-Za-z0-9].
	ErrBadDoc = errors.New("store: bad document id")
	// ErrTooLarge: data does not fit in one JetStream message.
	ErrTooLarge = errors.New("store: data too large")
	// ErrBadCovers: PutSnapshot's covers is below the stored snapshot's
	// covers or beyond the document's last chunk.
	ErrBadCovers = errors.New("store: snapshot covers out of range")
	// ErrJTIExpiry: a token expires later than the replay window (JTITTL)
	// would remember its id.
	ErrJTIExpiry = errors.New("store: token expiry beyond replay window")
)

// Names of the JetStream streams and KV buckets the store owns.
const (
	ChunkStream    = "CIRC_CHUNKS"
	SnapshotStream = "CIRC_SNAPS"
	chunkPrefix    = "circ.chunk."
	snapPrefix     = "circ.snap."

	syncBucket    = "circ_syncstates"
	metaBucket    = "circ_meta"
	invitesBucket = "circ_invites"
	jtiBucket     = "circ_jti"

	// CoversHeader is the snapshot message header holding the highest
	// chunk sequence the snapshot includes.
	CoversHeader = "Circ-Covers"

	// MaxDataSize bounds one chunk's or snapshot's data; the rest of
	// MaxPayload is headroom for headers.
	MaxDataSize = MaxPayload - 4096

	maxDocID = 64
)

// Options tune Open. The zero value is usable.
type Options struct {
	// Replicas is the JetStream replica count of every stream and bucket
	// (default 1; 3 on an external cluster).
	Replicas int
	// JTITTL is how long ClaimJTI remembers a token id (default 10 min). It
	// must exceed the longest token lifetime.
	JTITTL time.Duration
	// SyncStateTTL is how long a sync state nobody writes is kept (default
	// 30 days): a device that was away longer syncs from scratch, which
	// costs a round trip, and the states of devices that never come back
	// do not pile up.
	SyncStateTTL time.Duration
	// Fence, if set, is asked before every write, under the write gate:
	// an error refuses the write (wrapped; errors.Is finds it) before
	// anything is sent. Failover mode (server/failover.go) sets it to
	// "this process still holds the circle's lease".
	Fence func() error
}

// Store is the circle server's persistence: document chunks and snapshots
// in two JetStream streams, small state in KV buckets. It is safe for
// concurrent use. It holds no goroutines; closing the NATS connection ends
// it.
type Store struct {
	js        jetstream.JetStream
	nc        *nats.Conn
	apiPrefix string
	chunks    jetstream.Stream
	snaps     jetstream.Stream
	opts      Options

	// gate is held shared by every write for as long as it runs and
	// exclusively by Snapshot, so a snapshot sees no write half done.
	gate *sync.RWMutex

	syncStates *bucket
	meta       *bucket
	invites    *bucket
	jti        *bucket
}

// enter takes the write gate shared and asks the fence; on a refusal
// the gate is released again and the error returned.
func (s *Store) enter() error { return enterGate(s.gate, s.opts.Fence) }

func enterGate(gate *sync.RWMutex, fence func() error) error {
	gate.RLock()
	if fence != nil {
		if err := fence(); err != nil {
			gate.RUnlock()
			return fmt.Errorf("store: write refused: %w", err)
		}
	}
	return nil
}

// Chunk is one stored incremental change chunk of a document. Seq is its
// JetStream stream sequence: strictly increasing per document, but not
// contiguous, since all documents share one stream.
type Chunk struct {
	Seq  uint64
	Data []byte
}

// Doc is what Load returns for one document: the latest snapshot (nil if
// none) and, in order, every chunk newer than it.
type Doc struct {
	// Snapshot is the latest snapshot's data, nil if there is none.
	Snapshot []byte
	// Covers is the highest chunk sequence the snapshot includes (0 if none).
	Covers uint64
	// Chunks are the chunks with Seq > Covers, in Seq order.
	Chunks []Chunk
	// LastSeq is the highest sequence the doc has seen: the last chunk's
	// Seq, or Covers when no newer chunk exists. Pass it as covers to
	// PutSnapshot after saving the loaded state.
	LastSeq uint64
}

// ChunkWrite is one chunk to append in AppendChunks.
type ChunkWrite struct {
	Doc  string
	Data []byte
}

// WriteFailure names one write of an AppendChunks batch that failed.
type WriteFailure struct {
	Index int    // position in the batch
	Doc   string // document id
	Err   error
}

// BatchError is returned by AppendChunks when some writes were not
// acknowledged. Writes not listed succeeded. A write that failed on a
// cancelled context may still have been stored.
type BatchError struct {
	Failures []WriteFailure
}

// Error summarises the failures.
func (e *BatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "store: %d chunk writes failed", len(e.Failures))
	for i, f := range e.Failures {
		if i == 3 {
			b.WriteString("; …")
			break
		}
		fmt.Fprintf(&b, "; #%d doc %s: %v", f.Index, f.Doc, f.Err)
	}
	return b.String()
}

// Unwrap returns every failure's error, for errors.Is and errors.As.
func (e *BatchError) Unwrap() []error {
	errs := make([]error, len(e.Failures))
	for i, f := range e.Failures {
		errs[i] = f.Err
	}
	return errs
}

// Open creates or updates the streams and KV buckets the store needs and
// returns a Store using them. It is idempotent: opening an existing store
// keeps its data and applies changed options (replicas, JTI TTL).
func Open(ctx context.Context, js jetstream.JetStream, opts Options) (*Store, error) {
	if opts.Replicas == 0 {
		opts.Replicas = 1
	}
	if opts.Replicas < 0 || opts.Replicas > 5 {
		return nil, fmt.Errorf("store: replicas %d out of range 1..5", opts.Replicas)
	}
	if opts.JTITTL == 0 {
		opts.JTITTL = 10 * time.Minute
	}
	if opts.JTITTL < time.Second {
		return nil, fmt.Errorf("store: JTITTL %s too short", opts.JTITTL)
	}
	if opts.SyncStateTTL == 0 {
		opts.SyncStateTTL = 30 * 24 * time.Hour
	}
	if opts.SyncStateTTL < time.Second {
		return nil, fmt.Errorf("store: SyncStateTTL %s too short", opts.SyncStateTTL)
	}

	s := &Store{js: js, nc: js.Conn(), opts: opts, apiPrefix: apiPrefix(js.Options()), gate: new(sync.RWMutex)}
	var err error
	s.chunks, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        ChunkStream,
		Description: "circles: incremental change chunks, subject circ.chunk.<doc>",
		Subjects:    []string{chunkPrefix + ">"},
		Storage:     jetstream.FileStorage,
		Replicas:    opts.Replicas,
		MaxMsgSize:  MaxPayload,
		AllowDirect: true,
		// Chunks leave only by purge, after a snapshot covers them.
		DenyDelete: true,
	})
	if err != nil {
		return nil, fmt.Errorf("store: stream %s: %w", ChunkStream, err)
	}
	s.snaps, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              SnapshotStream,
		Description:       "circles: latest snapshot per doc, subject circ.snap.<doc>",
		Subjects:          []string{snapPrefix + ">"},
		Storage:           jetstream.FileStorage,
		Replicas:          opts.Replicas,
		MaxMsgSize:        MaxPayload,
		MaxMsgsPerSubject: 1,
		AllowDirect:       true,
		DenyDelete:        true,
	})
	if err != nil {
		return nil, fmt.Errorf("store: stream %s: %w", SnapshotStream, err)
	}

	buckets := []struct {
		dst  **bucket
		name string
		desc string
		ttl  time.Duration
	}{
		{&s.syncStates, syncBucket, "circles: automerge sync state per device and doc", opts.SyncStateTTL},
		{&s.meta, metaBucket, "circles: circle config, keys, roster cache, counters", 0},
		{&s.invites, invitesBucket, "circles: pending invites", 0},
		{&s.jti, jtiBucket, "circles: seen token ids (replay guard)", opts.JTITTL},
	}
	for _, b := range buckets {
		kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      b.name,
			Description: b.desc,
			History:     1,
			TTL:         b.ttl,
			Storage:     jetstream.FileStorage,
			Replicas:    opts.Replicas,
		})
		if err != nil {
			return nil, fmt.Errorf("store: bucket %s: %w", b.name, err)
		}
		*b.dst = &bucket{kv: kv, name: b.name, gate: s.gate, fence: opts.Fence}
	}
	return s, nil
}

// apiPrefix is the JetStream API subject prefix js sends requests to.
func apiPrefix(o jetstream.JetStreamOptions) string {
	switch {
	case o.Domain != "":
		return "$JS." + o.Domain + ".API."
	case o.APIPrefix != "":
		return strings.TrimSuffix(o.APIPrefix, ".") + "."
	default:
		return jetstream.DefaultAPIPrefix
	}
}

// ValidDocID reports whether id is a usable document id: 1..64 characters
// of [A-Za-z0-9] (automerge-repo's base58 ids are).
func ValidDocID(id string) bool {
	if len(id) == 0 || len(id) > maxDocID {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

func checkDoc(doc string) error {
	if !ValidDocID(doc) {
		return fmt.Errorf("%w: %.80q", ErrBadDoc, doc)
	}
	return nil
}

func (s *Store) checkSize(n int) error {
	limit := min(MaxDataSize, int(s.nc.MaxPayload())-4096)
	if n > limit {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, limit)
	}
	return nil
}

// AppendChunk appends data as the next chunk of doc and returns its
// sequence. It returns only after JetStream acknowledged the write, so the
// chunk is on disk (see the package documentation for fsync). Errors:
// ErrBadDoc, ErrTooLarge, or the publish error.
func (s *Store) AppendChunk(ctx context.Context, doc string, data []byte) (uint64, error) {
	if err := checkDoc(doc); err != nil {
		return 0, err
	}
	if err := s.checkSize(len(data)); err != nil {
		return 0, err
	}
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.gate.RUnlock()
	ack, err := s.js.Publish(ctx, chunkPrefix+doc, data)
	if err != nil {
		return 0, fmt.Errorf("store: append chunk to %s: %w", doc, err)
	}
	return ack.Sequence, nil
}

// AppendChunks appends several chunks, possibly to different docs: it
// publishes all of them asynchronously and then waits for every ack. The
// result holds each write's sequence, in batch order (0 for a failed write).
// Chunks of one doc are stored in batch order. If any write fails the error
// is a *BatchError naming them. An invalid doc id or size fails the whole
// batch before anything is sent. Without a ctx deadline, waiting is bounded
// by 30 s.
func (s *Store) AppendChunks(ctx context.Context, batch []ChunkWrite) ([]uint64, error) {
	for i, w := range batch {
		if err := checkDoc(w.Doc); err != nil {
			return nil, fmt.Errorf("batch #%d: %w", i, err)
		}
		if err := s.checkSize(len(w.Data)); err != nil {
			return nil, fmt.Errorf("batch #%d: %w", i, err)
		}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	deadline, _ := ctx.Deadline()
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.gate.RUnlock()

	seqs := make([]uint64, len(batch))
	futures := make([]jetstream.PubAckFuture, len(batch))
	var failed []WriteFailure
	for i, w := range batch {
		// When too many acks are outstanding, PublishAsync stalls; let it
		// wait as long as our context allows instead of its default 200 ms.
		stall := max(time.Until(deadline), time.Millisecond)
		f, err := s.js.PublishAsync(chunkPrefix+w.Doc, w.Data, jetstream.WithStallWait(stall))
		if err != nil {
			failed = append(failed, WriteFailure{Index: i, Doc: w.Doc, Err: err})
			continue
		}
		futures[i] = f
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		seq, err := waitAck(ctx, f)
		if err != nil {
			failed = append(failed, WriteFailure{Index: i, Doc: batch[i].Doc, Err: err})
			continue
		}
		seqs[i] = seq
	}
	if len(failed) > 0 {
		slices.SortFunc(failed, func(a, b WriteFailure) int { return a.Index - b.Index })
		return seqs, &BatchError{Failures: failed}
	}
	return seqs, nil
}

// waitAck waits for f's outcome. An outcome already known wins over a
// cancelled ctx, so a late cancel does not misreport stored writes.
func waitAck(ctx context.Context, f jetstream.PubAckFuture) (uint64, error) {
	select {
	case ack := <-f.Ok():
		return ack.Sequence, nil
	case err := <-f.Err():
		return 0, err
	default:
	}
	select {
	case ack := <-f.Ok():
		return ack.Sequence, nil
	case err := <-f.Err():
		return 0, err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// Docs returns the ids of all stored documents, sorted.
func (s *Store) Docs(ctx context.Context) ([]string, error) {
	set := map[string]struct{}{}
	for _, st := range []struct {
		stream jetstream.Stream
		prefix string
	}{{s.chunks, chunkPrefix}, {s.snaps, snapPrefix}} {
		info, err := st.stream.Info(ctx, jetstream.WithSubjectFilter(st.prefix+">"))
		if err != nil {
			return nil, fmt.Errorf("store: list docs: %w", err)
		}
		for subj := range info.State.Subjects {
			set[strings.TrimPrefix(subj, st.prefix)] = struct{}{}
		}
	}
	docs := make([]string, 0, len(set))
	for d := range set {
		docs = append(docs, d)
	}
	slices.Sort(docs)
	return docs, nil
}

// Each calls fn for every stored document, in id order, with what Load
// would return for it. It reads all chunks in one pass over the chunk
// stream (reading doc by doc would rescan the interleaved stream once per
// doc), then each doc's snapshot just before calling fn. So memory holds
// every chunk not yet compacted plus one snapshot. fn runs on the caller's
// goroutine; an error from fn stops the walk and is returned as is.
func (s *Store) Each(ctx context.Context, fn func(doc string, d Doc) error) error {
	chunks := map[string][]Chunk{}
	err := s.scan(ctx, ChunkStream, chunkPrefix+">", 0, func(subj string, seq uint64, data []byte) error {
		doc := strings.TrimPrefix(subj, chunkPrefix)
		chunks[doc] = append(chunks[doc], Chunk{Seq: seq, Data: data})
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: read chunks: %w", err)
	}
	// Snapshots are read after the chunks, as in Load.
	info, err := s.snaps.Info(ctx, jetstream.WithSubjectFilter(snapPrefix+">"))
	if err != nil {
		return fmt.Errorf("store: list snapshots: %w", err)
	}
	ids := make([]string, 0, len(chunks)+len(info.State.Subjects))
	for doc := range chunks {
		ids = append(ids, doc)
	}
	for subj := range info.State.Subjects {
		if doc := strings.TrimPrefix(subj, snapPrefix); chunks[doc] == nil {
			ids = append(ids, doc)
		}
	}
	slices.Sort(ids)
	for _, doc := range ids {
		var snap *snapshot
		if _, ok := info.State.Subjects[snapPrefix+doc]; ok {
			if snap, err = s.getSnapshot(ctx, doc); err != nil {
				return err
			}
		}
		d, ok := assemble(snap, chunks[doc])
		delete(chunks, doc) // let the collector have them once fn is done
		if !ok {
			continue
		}
		if err := fn(doc, d); err != nil {
			return err
		}
	}
	return nil
}

// DocBytes returns a stable dump of everything stored for doc: the snapshot
// with its covers and every stored chunk with its sequence, covered or not.
// Two calls return equal bytes exactly when nothing was written, purged or
// replaced in between. Errors: ErrBadDoc, ErrNotFound.
func (s *Store) DocBytes(ctx context.Context, doc string) ([]byte, error) {
	if err := checkDoc(doc); err != nil {
		return nil, err
	}
	snap, chunks, err := s.raw(ctx, doc)
	if err != nil {
		return nil, err
	}
	if snap == nil && len(chunks) == 0 {
		return nil, fmt.Errorf("dump %s: %w", doc, ErrNotFound)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "circles-store-doc/1 %s\n", doc)
	if snap != nil {
		fmt.Fprintf(&b, "snapshot covers=%d len=%d\n", snap.covers, len(snap.data))
		b.Write(snap.data)
		b.WriteByte('\n')
	}
	for _, c := range chunks {
		fmt.Fprintf(&b, "chunk seq=%d len=%d\n", c.Seq, len(c.Data))
		b.Write(c.Data)
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}
