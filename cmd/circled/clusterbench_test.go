//go:build unix

package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/circles-coop/circles/mobile-api/client"
	"github.com/circles-coop/circles/wire"
)

// BenchmarkClusterWrites: write throughput and latency of one circle, as
// real processes, with its store in the embedded nats-server (the
// default), on a three-node nats-server cluster on loopback with
// --replicas 1, and with --replicas 3. Each run: benchWriters REST
// writers create benchWrites ledger entries in all (POST
// /v1/ledger/entries: the answer comes after JetStream acknowledged the
// write), after a warm-up. It prints writes/s and the p50/p99 latency.
// Run it with `make bench-cluster`, or
//
//	go test -run '^$' -bench BenchmarkClusterWrites -benchtime 1x ./cmd/circled/
func BenchmarkClusterWrites(b *testing.B) {
	bin, natsBin := buildCircled(b), buildNATSServer(b)
	for _, mode := range []struct {
		name     string
		replicas int // 0: embedded
	}{{"embedded", 0}, {"cluster-R1", 1}, {"cluster-R3", 3}} {
		b.Run(mode.name, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				var extra []string
				if mode.replicas > 0 {
					_, urls := startNATSCluster(b, natsBin)
					extra = []string{"--nats-url", urls, "--replicas", fmt.Sprint(mode.replicas)}
				}
				data := filepath.Join(b.TempDir(), "circle")
				invite := initCircle(b, bin, data, extra...)
				p, err := serve(bin, data, "127.0.0.1:0", extra...)
				if err != nil {
					b.Fatal(err)
				}
				ctx := context.Background()
				dev, err := client.Join(ctx, b.TempDir(), "http://"+p.addr, invite, "Bench", "phone")
				if err != nil {
					b.Fatal(err)
				}
				cl, _ := dev.Client()
				if _, err := writeBurst(ctx, cl, benchWriters, 100); err != nil { // warm-up
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				lat, err := writeBurst(ctx, cl, benchWriters, benchWrites)
				wall := time.Since(start)
				b.StopTimer()
				p.stop()
				if err != nil {
					b.Fatal(err)
				}
				slices.Sort(lat)
				rate := float64(len(lat)) / wall.Seconds()
				p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
				b.ReportMetric(rate, "writes/s")
				b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
				fmt.Printf("cluster-writes %-11s %d writes by %d writers: %6.0f writes/s  p50 %6.1f ms  p99 %6.1f ms\n",
					mode.name, len(lat), benchWriters, rate, float64(p50.Microseconds())/1000, float64(p99.Microseconds())/1000)
			}
		})
	}
}

const (
	benchWriters = 8
	benchWrites  = 2000
)

// writeBurst makes total entries with writers concurrent writers and
// returns each write's latency; any failed write fails the burst.
func writeBurst(ctx context.Context, cl *client.Client, writers, total int) ([]time.Duration, error) {
	var (
		mu    sync.Mutex
		lat   []time.Duration
		first error
		wg    sync.WaitGroup
	)
	per := total / writers
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range per {
				cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				t0 := time.Now()
				_, err := cl.CreateEntry(cctx, wire.Entry{ID: uuid.NewString(), Kind: "hours", Quantity: 1, Note: "bench", At: time.Now().UTC()})
				d := time.Since(t0)
				cancel()
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				lat = append(lat, d)
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	return lat, first
}
