package store_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/circles-coop/circles/sync/store"
)

const benchDocs = 30

var benchChunk = make([]byte, 64) // a small automerge change

func benchDoc(i int) string { return fmt.Sprintf("benchdoc%02d", i%benchDocs) }

// BenchmarkAppendChunk appends one acknowledged chunk per op, sequentially,
// with JetStream's default sync policy and with sync-always (fsync per
// write).
func BenchmarkAppendChunk(b *testing.B) {
	for _, syncAlways := range []bool{false, true} {
		b.Run(fmt.Sprintf("syncAlways=%v", syncAlways), func(b *testing.B) {
			n := MustNATSConfig(b, store.NATSConfig{Dir: b.TempDir(), SyncAlways: syncAlways})
			s := MustStore(b, n, store.Options{})
			ctx := testCtx(b)
			defer reportCPU(b)()
			i := 0
			for b.Loop() {
				if _, err := s.AppendChunk(ctx, benchDoc(i), benchChunk); err != nil {
					b.Fatalf("AppendChunk() error = %v", err)
				}
				i++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "chunks/s")
		})
	}
}

// BenchmarkAppendChunksParallel runs AppendChunks from GOMAXPROCS
// goroutines; an op is one batch of the given size, spread over docs.
func BenchmarkAppendChunksParallel(b *testing.B) {
	for _, size := range []int{1, 16} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			n := MustNATS(b, b.TempDir())
			s := MustStore(b, n, store.Options{})
			ctx := testCtx(b)
			var next atomic.Int64
			defer reportCPU(b)()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				batch := make([]store.ChunkWrite, size)
				for pb.Next() {
					base := int(next.Add(int64(size)))
					for i := range batch {
						batch[i] = store.ChunkWrite{Doc: benchDoc(base + i), Data: benchChunk}
					}
					if _, err := s.AppendChunks(ctx, batch); err != nil {
						b.Errorf("AppendChunks() error = %v", err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "chunks/s")
		})
	}
}

// eachTotal is the chunk count of BenchmarkEach's store.
const eachTotal = 50_000

// mustFilledStore returns a store holding eachTotal small chunks spread
// round-robin over benchDocs docs, the worst layout for reading one doc.
func mustFilledStore(b *testing.B) *store.Store {
	b.Helper()
	n := MustNATS(b, b.TempDir())
	s := MustStore(b, n, store.Options{})
	ctx := testCtx(b)
	batch := make([]store.ChunkWrite, 0, 1000)
	for i := range eachTotal {
		batch = append(batch, store.ChunkWrite{Doc: benchDoc(i), Data: benchChunk})
		if len(batch) == cap(batch) || i == eachTotal-1 {
			if _, err := s.AppendChunks(ctx, batch); err != nil {
				b.Fatalf("AppendChunks() error = %v", err)
			}
			batch = batch[:0]
		}
	}
	return s
}

// BenchmarkEach walks 30 docs holding 50,000 small chunks in total; an op
// is one complete Each.
func BenchmarkEach(b *testing.B) {
	s := mustFilledStore(b)
	ctx := testCtx(b)
	defer reportCPU(b)()
	for b.Loop() {
		var docs, chunks int
		err := s.Each(ctx, func(doc string, d store.Doc) error {
			docs++
			chunks += len(d.Chunks)
			return nil
		})
		if err != nil {
			b.Fatalf("Each() error = %v", err)
		}
		if docs != benchDocs || chunks != eachTotal {
			b.Fatalf("Each() saw %d docs, %d chunks; want %d, %d", docs, chunks, benchDocs, eachTotal)
		}
	}
	b.ReportMetric(float64(b.N*eachTotal)/b.Elapsed().Seconds(), "chunks/s")
}

// BenchmarkLoad loads one of BenchmarkEach's docs (~1,667 chunks) per op.
func BenchmarkLoad(b *testing.B) {
	s := mustFilledStore(b)
	ctx := testCtx(b)
	defer reportCPU(b)()
	i := 0
	for b.Loop() {
		d, err := s.Load(ctx, benchDoc(i))
		if err != nil {
			b.Fatalf("Load() error = %v", err)
		}
		if got, want := len(d.Chunks), eachTotal/benchDocs; got < want {
			b.Fatalf("Load() returned %d chunks, want >= %d", got, want)
		}
		i++
	}
}

// reportCPU starts measuring the process's CPU time; the returned func
// reports it per op as cpu-ms/op. On a busy machine, wall time per op
// (ns/op) includes waiting for a CPU; cpu-ms/op does not.
func reportCPU(b *testing.B) func() {
	start, ok := processCPU()
	return func() {
		end, ok2 := processCPU()
		if ok && ok2 && b.N > 0 {
			b.ReportMetric(float64(end-start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
		}
	}
}
