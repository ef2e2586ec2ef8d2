package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/circles-coop/circles/mobile-api/client"
	"github.com/circles-coop/circles/server"
	"github.com/circles-coop/circles/server/servertest"
)

// BenchmarkBallotsHistory (issue 12 item 3, ballots): one member's Go
// device votes offline and syncs (Device.Vote, then Device.Sync over POST
// /v1/sync), one vote at a time, after 0, 2,000 and 5,000 earlier items
// in their ballots documents. "segmented" is the server as built (a new
// ballots document every 500 items, authority/ballotsegments.go);
// "single" sets the bound out of reach, as before: one ballots document
// for ever. For each it reports the vote+sync p50 and p99 over
// ballotsBenchRounds votes and the items in the member's current ballots
// document (read from its snapshot). The votes are on proposals the
// circle does not know (each is an item like any other; the server keeps
// a bounded number of them pending), so building is quick; building is
// not measured.
func BenchmarkBallotsHistory(b *testing.B) {
	for b.Loop() {
		for _, mode := range []struct {
			name  string
			bound int
		}{{"segmented", 0}, {"single", 1 << 30}} {
			runBallotsBench(b, mode.name, mode.bound, []int{0, 2000, 5000})
		}
	}
}

const ballotsBenchRounds = 100

func runBallotsBench(b *testing.B, name string, bound int, levels []int) {
	c := servertest.Start(b, "BallotsHistory", metricsOnAPI, servertest.WithConfig(func(cfg *server.Config) { cfg.BallotsSegmentEntries = bound }))
	defer c.Stop()
	url := c.URL()
	ana := servertest.MustEnroll(b, url, c.FounderInvite, "Ana")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	ben, err := client.Join(ctx, b.TempDir(), url, servertest.MustInvite(b, url, ana, "member", ""), "Ben", "laptop")
	if err != nil {
		b.Fatal(err)
	}
	h := newBenchHTTP(url)
	defer h.close()
	vote := func() {
		if _, err := ben.Vote(uuid.NewString(), "yes", "", time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	sync := func() {
		if _, err := ben.Sync(ctx, nil); err != nil {
			b.Fatal(err)
		}
	}
	sync()
	written := 0
	for _, level := range levels {
		for written < level {
			for range min(250, level-written) {
				vote()
				written++
			}
			sync()
			// The device writes into the document the circle names: a
			// second sync picks up a switch the first one caused.
			sync()
		}
		var took []time.Duration
		for range ballotsBenchRounds {
			t0 := time.Now()
			vote()
			sync()
			took = append(took, time.Since(t0))
			written++
		}
		sync()
		cur := ben.Info().Circle.Docs["ballots"]
		items := ballotsItems(b, url, ana, cur)
		m, err := h.metrics()
		if err != nil {
			b.Fatal(err)
		}
		tag := fmt.Sprintf("%s_v%d", name, level)
		b.ReportMetric(benchMS(benchPercentile(took, 50)), tag+"_p50_ms")
		b.ReportMetric(benchMS(benchPercentile(took, 99)), tag+"_p99_ms")
		b.ReportMetric(float64(items), tag+"_live_items")
		b.Logf("%s, %d earlier items: vote+sync p50 %.2f ms, p99 %.2f ms; current ballots document holds %d items; circles_sync_loaded_bytes %.1f MiB",
			name, level, benchMS(benchPercentile(took, 50)), benchMS(benchPercentile(took, 99)), items, m["circles_sync_loaded_bytes"]/(1<<20))
	}
}
