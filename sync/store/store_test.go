package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"

	"github.com/circles-coop/circles/sync/store"
)

func TestAppendLoadRoundTrip(t *testing.T) {
	s, _ := MustNewStore(t)
	tests := []struct {
		name   string
		doc    string
		chunks []string
	}{
		{"one chunk", "doc1", []string{"hello"}},
		{"several chunks", "doc2", []string{"a", "bb", "ccc", "dddd"}},
		{"binary and empty", "doc3", []string{"\x00\x01\xff", "", "\r\n\r\nNATS/1.0"}},
		{"longest id", strings.Repeat("Z", 64), []string{"x"}},
		{"large chunk", "doc4", []string{strings.Repeat("0123456789abcdef", 1<<16)}}, // 1 MiB
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seqs := MustAppend(t, s, tt.doc, tt.chunks...)
			for i := 1; i < len(seqs); i++ {
				if seqs[i] <= seqs[i-1] {
					t.Fatalf("AppendChunk seqs = %v, want strictly increasing", seqs)
				}
			}
			got, err := s.Load(testCtx(t), tt.doc)
			if err != nil {
				t.Fatalf("Load(%q) error = %v", tt.doc, err)
			}
			if diff := cmp.Diff(expectChunks(seqs, tt.chunks), chunkStrings(got.Chunks)); diff != "" {
				t.Errorf("Load(%q).Chunks mismatch (-want +got):\n%s", tt.doc, diff)
			}
			if got.Snapshot != nil || got.Covers != 0 {
				t.Errorf("Load(%q) snapshot = %q covers %d, want none", tt.doc, got.Snapshot, got.Covers)
			}
			if want := seqs[len(seqs)-1]; got.LastSeq != want {
				t.Errorf("Load(%q).LastSeq = %d, want %d", tt.doc, got.LastSeq, want)
			}
		})
	}
}

func TestLoadNotFound(t *testing.T) {
	s, _ := MustNewStore(t)
	MustAppend(t, s, "other", "x")
	ctx := testCtx(t)
	if _, err := s.Load(ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Load(missing) error = %v, want ErrNotFound", err)
	}
	if _, err := s.DocBytes(ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DocBytes(missing) error = %v, want ErrNotFound", err)
	}
}

func TestBadDocIDs(t *testing.T) {
	s, _ := MustNewStore(t)
	ctx := testCtx(t)
	ops := []struct {
		name string
		call func(doc string) error
	}{
		{"AppendChunk", func(doc string) error { _, err := s.AppendChunk(ctx, doc, []byte("x")); return err }},
		{"AppendChunks", func(doc string) error {
			_, err := s.AppendChunks(ctx, []store.ChunkWrite{{Doc: "good", Data: []byte("x")}, {Doc: doc, Data: []byte("x")}})
			return err
		}},
		{"PutSnapshot", func(doc string) error { return s.PutSnapshot(ctx, doc, []byte("x"), 0) }},
		{"Load", func(doc string) error { _, err := s.Load(ctx, doc); return err }},
		{"DocBytes", func(doc string) error { _, err := s.DocBytes(ctx, doc); return err }},
	}
	ids := []string{"", "a.b", "a*", "a>", ">", "with space", "a\tb", "ünï", "a/b", "a-b", "a_b", strings.Repeat("a", 65)}
	for _, op := range ops {
		for _, id := range ids {
			t.Run(fmt.Sprintf("%s/%q", op.name, id), func(t *testing.T) {
				if err := op.call(id); !errors.Is(err, store.ErrBadDoc) {
					t.Errorf("%s(%q) error = %v, want ErrBadDoc", op.name, id, err)
				}
			})
		}
	}
	// The rejected batch wrote nothing, not even its valid entry.
	docs, err := s.Docs(ctx)
	if err != nil {
		t.Fatalf("Docs() error = %v", err)
	}
	if len(docs) != 0 {
		t.Errorf("Docs() = %v after only rejected writes, want none", docs)
	}
}

func TestTooLarge(t *testing.T) {
	s, _ := MustNewStore(t)
	ctx := testCtx(t)
	big := make([]byte, store.MaxDataSize+1)
	if _, err := s.AppendChunk(ctx, "d", big); !errors.Is(err, store.ErrTooLarge) {
		t.Errorf("AppendChunk(%d bytes) error = %v, want ErrTooLarge", len(big), err)
	}
	if err := s.PutSnapshot(ctx, "d", big, 0); !errors.Is(err, store.ErrTooLarge) {
		t.Errorf("PutSnapshot(%d bytes) error = %v, want ErrTooLarge", len(big), err)
	}
	// The largest allowed snapshot round-trips.
	max := bytes.Repeat([]byte{0xA5}, store.MaxDataSize)
	if err := s.PutSnapshot(ctx, "d", max, 0); err != nil {
		t.Fatalf("PutSnapshot(%d bytes) error = %v", len(max), err)
	}
	got, err := s.Load(ctx, "d")
	if err != nil {
		t.Fatalf("Load(d) error = %v", err)
	}
	if !bytes.Equal(got.Snapshot, max) {
		t.Errorf("Load(d).Snapshot is %d bytes, want the %d bytes stored", len(got.Snapshot), len(max))
	}
}

func TestSnapshotPurge(t *testing.T) {
	tests := []struct {
		name   string
		covers int // index of the last covered chunk, -1 for none
	}{
		{"covers nothing", -1},
		{"covers first", 0},
		{"covers middle", 2},
		{"covers all", 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := MustNewStore(t)
			ctx := testCtx(t)
			data := []string{"c0", "c1", "c2", "c3", "c4"}
			var seqs []uint64
			for _, c := range data {
				// Another doc's chunk in between: sequences are shared.
				MustAppend(t, s, "noise", "n")
				seqs = append(seqs, MustAppend(t, s, "doc", c)...)
			}
			var covers uint64
			if tt.covers >= 0 {
				covers = seqs[tt.covers]
			}
			if err := s.PutSnapshot(ctx, "doc", []byte("snap"), covers); err != nil {
				t.Fatalf("PutSnapshot(covers %d) error = %v", covers, err)
			}
			got, err := s.Load(ctx, "doc")
			if err != nil {
				t.Fatalf("Load(doc) error = %v", err)
			}
			want := store.Doc{Snapshot: []byte("snap"), Covers: covers, LastSeq: seqs[len(seqs)-1]}
			for i := tt.covers + 1; i < len(seqs); i++ {
				want.Chunks = append(want.Chunks, store.Chunk{Seq: seqs[i], Data: []byte(data[i])})
			}
			if tt.covers == len(seqs)-1 {
				want.LastSeq = covers
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Load(doc) mismatch (-want +got):\n%s", diff)
			}
			// The covered chunks are gone from the stream, not just hidden.
			dump, err := s.DocBytes(ctx, "doc")
			if err != nil {
				t.Fatalf("DocBytes(doc) error = %v", err)
			}
			for i, seq := range seqs {
				covered := i <= tt.covers
				if got := bytes.Contains(dump, fmt.Appendf(nil, "chunk seq=%d ", seq)); got == covered {
					t.Errorf("DocBytes holds chunk %d = %v, want %v", seq, got, !covered)
				}
			}
			// The other doc is untouched.
			noise, err := s.Load(ctx, "noise")
			if err != nil {
				t.Fatalf("Load(noise) error = %v", err)
			}
			if got, want := len(noise.Chunks), len(data); got != want {
				t.Errorf("len(Load(noise).Chunks) = %d, want %d", got, want)
			}
		})
	}
}

func TestPutSnapshotCoversRange(t *testing.T) {
	s, _ := MustNewStore(t)
	ctx := testCtx(t)
	seqs := MustAppend(t, s, "doc", "a", "b", "c")
	MustAppend(t, s, "other", "z") // a later sequence, not doc's
	if err := s.PutSnapshot(ctx, "doc", []byte("s1"), seqs[1]); err != nil {
		t.Fatalf("PutSnapshot(covers %d) error = %v", seqs[1], err)
	}
	tests := []struct {
		name   string
		covers uint64
		want   error
	}{
		{"beyond last chunk", seqs[2] + 1, store.ErrBadCovers},
		{"below stored snapshot", seqs[0], store.ErrBadCovers},
		{"zero below stored snapshot", 0, store.ErrBadCovers},
		{"same as stored snapshot", seqs[1], nil},
		{"last chunk", seqs[2], nil},
		{"again after everything purged", seqs[2], nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.PutSnapshot(ctx, "doc", []byte(tt.name), tt.covers)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("PutSnapshot(covers %d) error = %v, want %v", tt.covers, err, tt.want)
			}
			got, err := s.Load(ctx, "doc")
			if err != nil {
				t.Fatalf("Load(doc) error = %v", err)
			}
			// Whatever happened, no chunk was lost: snapshot covers plus the
			// remaining chunks account for every chunk appended.
			var rest []uint64
			for _, c := range got.Chunks {
				rest = append(rest, c.Seq)
			}
			var want []uint64
			for _, seq := range seqs {
				if seq > got.Covers {
					want = append(want, seq)
				}
			}
			if !slices.Equal(rest, want) {
				t.Errorf("Load(doc) chunks = %v with covers %d, want %v", rest, got.Covers, want)
			}
		})
	}
}

func TestPutSnapshotConcurrent(t *testing.T) {
	s, _ := MustNewStore(t)
	ctx := testCtx(t)
	var data []string
	for i := range 40 {
		data = append(data, fmt.Sprintf("c%d", i))
	}
	seqs := MustAppend(t, s, "doc", data...)

	var wg sync.WaitGroup
	errs := make([]error, len(seqs))
	for i, seq := range seqs {
		wg.Go(func() { errs[i] = s.PutSnapshot(ctx, "doc", fmt.Appendf(nil, "snap up to %d", seq), seq) })
	}
	wg.Wait()
	var ok int
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrBadCovers):
		default:
			t.Errorf("PutSnapshot(covers %d) error = %v, want nil, ErrConflict or ErrBadCovers", seqs[i], err)
		}
	}
	if ok == 0 {
		t.Fatalf("no concurrent PutSnapshot succeeded")
	}
	got, err := s.Load(ctx, "doc")
	if err != nil {
		t.Fatalf("Load(doc) error = %v", err)
	}
	if want := fmt.Sprintf("snap up to %d", got.Covers); string(got.Snapshot) != want {
		t.Errorf("Load(doc).Snapshot = %q, want %q", got.Snapshot, want)
	}
	i := slices.Index(seqs, got.Covers)
	if diff := cmp.Diff(expectChunks(seqs[i+1:], data[i+1:]), chunkStrings(got.Chunks)); diff != "" {
		t.Errorf("Load(doc).Chunks after racing snapshots (-want +got):\n%s", diff)
	}
}

func TestRestartKeepsData(t *testing.T) {
	dir := t.TempDir()
	n := MustNATS(t, dir)
	s := MustStore(t, n, store.Options{})
	ctx := testCtx(t)

	docs := []string{"alpha", "beta", "gamma"}
	before := map[string][]byte{}
	for i, doc := range docs {
		seqs := MustAppend(t, s, doc, "one", "two", "three")
		if i == 1 {
			if err := s.PutSnapshot(ctx, doc, []byte("beta snapshot"), seqs[1]); err != nil {
				t.Fatalf("PutSnapshot(%s) error = %v", doc, err)
			}
		}
	}
	if _, err := s.AppendChunks(ctx, []store.ChunkWrite{{Doc: "alpha", Data: []byte("four")}, {Doc: "delta", Data: []byte("new")}}); err != nil {
		t.Fatalf("AppendChunks() error = %v", err)
	}
	docs = append(docs, "delta")
	for _, doc := range docs {
		b, err := s.DocBytes(ctx, doc)
		if err != nil {
			t.Fatalf("DocBytes(%s) error = %v", doc, err)
		}
		before[doc] = b
	}
	if _, err := s.Meta().Put(ctx, "config", []byte("v1")); err != nil {
		t.Fatalf("Meta().Put() error = %v", err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("Close() error = %v", err)
	}

	n2 := MustNATS(t, dir)
	s2 := MustStore(t, n2, store.Options{})
	gotDocs, err := s2.Docs(ctx)
	if err != nil {
		t.Fatalf("Docs() after restart error = %v", err)
	}
	if want := []string{"alpha", "beta", "delta", "gamma"}; !slices.Equal(gotDocs, want) {
		t.Errorf("Docs() after restart = %v, want %v", gotDocs, want)
	}
	for _, doc := range docs {
		got, err := s2.DocBytes(ctx, doc)
		if err != nil {
			t.Fatalf("DocBytes(%s) after restart error = %v", doc, err)
		}
		if !bytes.Equal(got, before[doc]) {
			t.Errorf("DocBytes(%s) after restart = %q, want %q", doc, got, before[doc])
		}
	}
	val, _, err := s2.Meta().Get(ctx, "config")
	if err != nil || string(val) != "v1" {
		t.Errorf("Meta().Get(config) after restart = %q, %v; want \"v1\", nil", val, err)
	}
	// Sequences continue after the restart.
	seq := MustAppend(t, s2, "alpha", "five")[0]
	got, err := s2.Load(ctx, "alpha")
	if err != nil {
		t.Fatalf("Load(alpha) error = %v", err)
	}
	if want := []string{"one", "two", "three", "four", "five"}; !slices.Equal(dataOf(got.Chunks), want) {
		t.Errorf("Load(alpha) chunks = %q, want %q", dataOf(got.Chunks), want)
	}
	if got.LastSeq != seq {
		t.Errorf("Load(alpha).LastSeq = %d, want %d", got.LastSeq, seq)
	}
}

func dataOf(chunks []store.Chunk) []string {
	out := make([]string, len(chunks))
	for i, c := range chunks {
		out[i] = string(c.Data)
	}
	return out
}

// TestCrashBetweenSnapshotAndPurge writes a snapshot the way PutSnapshot
// does but skips the purge, as a crash at that point would, then restarts
// the server on the same directory.
func TestCrashBetweenSnapshotAndPurge(t *testing.T) {
	dir := t.TempDir()
	n := MustNATS(t, dir)
	s := MustStore(t, n, store.Options{})
	ctx := testCtx(t)
	seqs := MustAppend(t, s, "doc", "a", "b", "c", "d")

	msg := nats.NewMsg("circ.snap.doc")
	msg.Header.Set(store.CoversHeader, fmt.Sprint(seqs[2]))
	msg.Data = []byte("snapshot a-c")
	if _, err := n.JetStream().PublishMsg(ctx, msg); err != nil {
		t.Fatalf("publish snapshot error = %v", err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("Close() error = %v", err)
	}

	n2 := MustNATS(t, dir)
	s2 := MustStore(t, n2, store.Options{})
	want := store.Doc{
		Snapshot: []byte("snapshot a-c"),
		Covers:   seqs[2],
		Chunks:   []store.Chunk{{Seq: seqs[3], Data: []byte("d")}},
		LastSeq:  seqs[3],
	}
	got, err := s2.Load(ctx, "doc")
	if err != nil {
		t.Fatalf("Load(doc) error = %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load(doc) after interrupted compaction (-want +got):\n%s", diff)
	}
	dump, err := s2.DocBytes(ctx, "doc")
	if err != nil {
		t.Fatalf("DocBytes(doc) error = %v", err)
	}
	if c := bytes.Count(dump, []byte("\nchunk seq=")); c != 4 {
		t.Errorf("DocBytes(doc) holds %d chunks before the retried purge, want 4", c)
	}

	// Retrying the same snapshot completes the purge; Load is unchanged.
	if err := s2.PutSnapshot(ctx, "doc", []byte("snapshot a-c"), seqs[2]); err != nil {
		t.Fatalf("PutSnapshot(retry) error = %v", err)
	}
	got, err = s2.Load(ctx, "doc")
	if err != nil {
		t.Fatalf("Load(doc) error = %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load(doc) after retried compaction (-want +got):\n%s", diff)
	}
	dump, err = s2.DocBytes(ctx, "doc")
	if err != nil {
		t.Fatalf("DocBytes(doc) error = %v", err)
	}
	if c := bytes.Count(dump, []byte("\nchunk seq=")); c != 1 {
		t.Errorf("DocBytes(doc) holds %d chunks after the retried purge, want 1", c)
	}
}

func TestAppendChunksConcurrent(t *testing.T) {
	s, _ := MustNewStore(t)
	ctx := testCtx(t)
	const (
		writers = 8
		batches = 10
		perDoc  = 3
		docs    = 20
	)
	// Each writer owns docs w0d*, so the order of a doc's chunks is known.
	var wg sync.WaitGroup
	allSeqs := make([][]uint64, writers)
	errs := make([]error, writers)
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				var batch []store.ChunkWrite
				for d := range docs {
					for k := range perDoc {
						batch = append(batch, store.ChunkWrite{
							Doc:  fmt.Sprintf("w%dd%d", w, d),
							Data: fmt.Appendf(nil, "b%d.k%d", b, k),
						})
					}
				}
				seqs, err := s.AppendChunks(ctx, batch)
				if err != nil {
					errs[w] = err
					return
				}
				allSeqs[w] = append(allSeqs[w], seqs...)
			}
		})
	}
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: AppendChunks() error = %v", w, err)
		}
	}
	seen := map[uint64]bool{}
	for _, seqs := range allSeqs {
		for _, seq := range seqs {
			if seq == 0 || seen[seq] {
				t.Fatalf("AppendChunks returned seq %d twice or zero", seq)
			}
			seen[seq] = true
		}
	}
	if got, want := len(seen), writers*batches*docs*perDoc; got != want {
		t.Fatalf("%d distinct seqs, want %d", got, want)
	}
	var want []string
	for b := range batches {
		for k := range perDoc {
			want = append(want, fmt.Sprintf("b%d.k%d", b, k))
		}
	}
	for w := range writers {
		for d := range docs {
			doc := fmt.Sprintf("w%dd%d", w, d)
			got, err := s.Load(ctx, doc)
			if err != nil {
				t.Fatalf("Load(%s) error = %v", doc, err)
			}
			if diff := cmp.Diff(want, dataOf(got.Chunks)); diff != "" {
				t.Fatalf("Load(%s) chunks (-want +got):\n%s", doc, diff)
			}
		}
	}
}

func TestAppendChunksReportsFailures(t *testing.T) {
	s, n := MustNewStore(t)
	ctx := testCtx(t)
	// Without its stream, no write can be acknowledged.
	if err := n.JetStream().DeleteStream(ctx, store.ChunkStream); err != nil {
		t.Fatalf("DeleteStream() error = %v", err)
	}
	batch := []store.ChunkWrite{{Doc: "a", Data: []byte("1")}, {Doc: "b", Data: []byte("2")}, {Doc: "a", Data: []byte("3")}}
	seqs, err := s.AppendChunks(ctx, batch)
	var be *store.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("AppendChunks() error = %v, want *BatchError", err)
	}
	var got []string
	for _, f := range be.Failures {
		got = append(got, fmt.Sprintf("%d:%s", f.Index, f.Doc))
	}
	if want := []string{"0:a", "1:b", "2:a"}; !slices.Equal(got, want) {
		t.Errorf("BatchError failures = %v, want %v", got, want)
	}
	if want := []uint64{0, 0, 0}; !slices.Equal(seqs, want) {
		t.Errorf("AppendChunks() seqs = %v, want %v", seqs, want)
	}
}

func TestEach(t *testing.T) {
	s, _ := MustNewStore(t)
	ctx := testCtx(t)
	want := map[string]store.Doc{}
	var ids []string
	for i := range 30 {
		doc := fmt.Sprintf("doc%02d", i)
		ids = append(ids, doc)
		var data []string
		for k := range i * 7 {
			data = append(data, fmt.Sprintf("%s-%d", doc, k))
		}
		seqs := MustAppend(t, s, doc, data...)
		d := store.Doc{}
		switch {
		case i%3 == 0: // snapshot only (covers everything, or nothing yet)
			var covers uint64
			if len(seqs) > 0 {
				covers = seqs[len(seqs)-1]
			}
			if err := s.PutSnapshot(ctx, doc, []byte("snap "+doc), covers); err != nil {
				t.Fatalf("PutSnapshot(%s) error = %v", doc, err)
			}
			d = store.Doc{Snapshot: []byte("snap " + doc), Covers: covers, LastSeq: covers}
		case i%3 == 1: // snapshot plus newer chunks
			if err := s.PutSnapshot(ctx, doc, []byte("snap "+doc), seqs[1]); err != nil {
				t.Fatalf("PutSnapshot(%s) error = %v", doc, err)
			}
			d = store.Doc{Snapshot: []byte("snap " + doc), Covers: seqs[1], LastSeq: seqs[len(seqs)-1]}
			for k := 2; k < len(seqs); k++ {
				d.Chunks = append(d.Chunks, store.Chunk{Seq: seqs[k], Data: []byte(data[k])})
			}
		default: // chunks only
			d.LastSeq = seqs[len(seqs)-1]
			for k := range seqs {
				d.Chunks = append(d.Chunks, store.Chunk{Seq: seqs[k], Data: []byte(data[k])})
			}
		}
		want[doc] = d
	}

	got := map[string]store.Doc{}
	var order []string
	err := s.Each(ctx, func(doc string, d store.Doc) error {
		order = append(order, doc)
		got[doc] = d
		return nil
	})
	if err != nil {
		t.Fatalf("Each() error = %v", err)
	}
	if !slices.Equal(order, ids) {
		t.Errorf("Each() visited %v, want %v", order, ids)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Each() docs (-want +got):\n%s", diff)
	}

	// An error from fn stops the walk and comes back unchanged.
	stop := errors.New("stop here")
	var visited int
	err = s.Each(ctx, func(doc string, d store.Doc) error {
		visited++
		if visited == 5 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || visited != 5 {
		t.Errorf("Each() with failing fn = %v after %d docs, want %v after 5", err, visited, stop)
	}
}

func TestDocBytesStable(t *testing.T) {
	s, _ := MustNewStore(t)
	ctx := testCtx(t)
	seqs := MustAppend(t, s, "doc", "a", "b")
	dump := func() []byte {
		t.Helper()
		b, err := s.DocBytes(ctx, "doc")
		if err != nil {
			t.Fatalf("DocBytes(doc) error = %v", err)
		}
		return b
	}
	first := dump()
	MustAppend(t, s, "other", "x") // other docs do not count
	if _, err := s.Load(ctx, "doc"); err != nil {
		t.Fatalf("Load(doc) error = %v", err)
	}
	if got := dump(); !bytes.Equal(got, first) {
		t.Errorf("DocBytes(doc) = %q after reads and other docs' writes, want %q", got, first)
	}
	steps := []struct {
		name string
		do   func() error
	}{
		{"append", func() error { _, err := s.AppendChunk(ctx, "doc", []byte("c")); return err }},
		{"snapshot", func() error { return s.PutSnapshot(ctx, "doc", []byte("s"), seqs[0]) }},
		{"same snapshot, new bytes", func() error { return s.PutSnapshot(ctx, "doc", []byte("t"), seqs[0]) }},
	}
	prev := first
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: error = %v", st.name, err)
		}
		got := dump()
		if bytes.Equal(got, prev) {
			t.Errorf("DocBytes(doc) unchanged after %s", st.name)
		}
		prev = got
	}
}

// TestLoadReadsPastOneBatch: a document with more chunks than one batched
// direct get returns (4,096), interleaved with another document's, loads
// whole and in order; the reader's bounded channel must hold every round.
func TestLoadReadsPastOneBatch(t *testing.T) {
	s, _ := MustNewStore(t)
	ctx := testCtx(t)
	const n = 2*4096 + 3
	var batch []store.ChunkWrite
	for i := range n {
		batch = append(batch, store.ChunkWrite{Doc: "long", Data: fmt.Appendf(nil, "c%d", i)})
		if i%5 == 0 {
			batch = append(batch, store.ChunkWrite{Doc: "other", Data: []byte("x")})
		}
		if len(batch) >= 500 || i == n-1 {
			if _, err := s.AppendChunks(ctx, batch); err != nil {
				t.Fatalf("AppendChunks error = %v", err)
			}
			batch = batch[:0]
		}
	}
	got, err := s.Load(ctx, "long")
	if err != nil {
		t.Fatalf("Load error = %v", err)
	}
	if len(got.Chunks) != n {
		t.Fatalf("Load returned %d chunks, want %d", len(got.Chunks), n)
	}
	for i, c := range got.Chunks {
		if want := fmt.Sprintf("c%d", i); string(c.Data) != want {
			t.Fatalf("chunk %d = %q, want %q", i, c.Data, want)
		}
	}
}
