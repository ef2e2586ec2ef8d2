package replica_test

import (
	"context"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"
)

// waitHeads waits, bounded by d, until b's replica of circle has heads.
func waitHeads(tb testing.TB, b *circle, circle string, heads []string, d time.Duration) {
	tb.Helper()
	deadline := time.After(d)
	for {
		ch := b.rep.Changed()
		if slices.Equal(b.rep.Heads(circle), heads) {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			tb.Fatalf("%s did not get %s's heads within %s", b.id, circle, d)
		}
	}
}

// BenchmarkPropagation measures a federated change from the write in
// circle A (commit, stored in A's JetStream, published) to its being
// applied in circle B's replica, routed through the hub, over 1,000
// changes; it reports p50 and p99.
func BenchmarkPropagation(b *testing.B) {
	hub := mustHub(b, "A", "B")
	a, c := newCircle(b, hub, "A", nil), newCircle(b, hub, "B", nil)
	ctx := context.Background()
	waitHeads(b, c, "A", a.rep.Heads("A"), 10*time.Second)
	const n = 1000
	for b.Loop() {
		lat := make([]time.Duration, 0, n)
		for i := range n {
			start := time.Now()
			if err := a.rep.BenchWrite(ctx, "k", strconv.Itoa(i)); err != nil {
				b.Fatal(err)
			}
			waitHeads(b, c, "A", a.rep.Heads("A"), 5*time.Second)
			lat = append(lat, time.Since(start))
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		b.ReportMetric(float64(lat[n/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[n*99/100].Microseconds())/1000, "p99-ms")
	}
}

// BenchmarkCatchUp measures how fast circle B, offline while A made
// 10,000 federation changes, catches up once its link is back: from
// enabling the link (and the link telling the replica to announce) to
// B holding A's heads.
func BenchmarkCatchUp(b *testing.B) {
	hub := mustHub(b, "A", "B")
	a, c := newCircle(b, hub, "A", nil), newCircle(b, hub, "B", nil)
	ctx := context.Background()
	waitHeads(b, c, "A", a.rep.Heads("A"), 10*time.Second)
	const n = 10000
	round := 0
	for b.Loop() {
		b.StopTimer()
		c.setLink(false)
		for i := range n {
			if err := a.rep.BenchWrite(ctx, "k", strconv.Itoa(round*n+i)); err != nil {
				b.Fatal(err)
			}
		}
		round++
		heads := a.rep.Heads("A")
		b.StartTimer()
		start := time.Now()
		c.setLink(true)
		linked := time.Since(start)
		c.rep.Announce()
		waitHeads(b, c, "A", heads, 60*time.Second)
		el := time.Since(start)
		b.ReportMetric(float64(n)/el.Seconds(), "changes/s")
		b.ReportMetric(float64(el.Milliseconds()), "catchup-ms")
		b.ReportMetric(float64(linked.Milliseconds()), "relink-ms")
		b.ReportMetric(float64(n)/(el-linked).Seconds(), "changes/s-after-relink")
	}
}
