package server_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/server/servertest"
)

// The benchmarks in this file each run one whole scenario per iteration
// against a real circle: embedded NATS with JetStream in a temporary
// directory, HTTP on 127.0.0.1, devices that sync real automerge documents
// through POST /v1/sync. Their figures are the custom metrics; ns/op is
// the time of the measured part of the scenario. Run them with
//
//	go test -run '^$' -bench . -benchtime 1x ./server/

// BenchmarkBacklog: 50 members' devices each come back online with 100
// ledger entries made offline (100 changes each, one commit per entry) and
// all sync at once. It reports the accepted changes per second (5,000 over
// the wall time until the last device is in step) and that wall time; the
// server answers only after storing, so the last answer is the moment
// everything is stored. It fails unless GET /v1/ledger/entries then lists
// all 5,000 entries.
func BenchmarkBacklog(b *testing.B) {
	const devices, perDevice = 50, 100
	var (
		runs    int
		changes int
		wall    time.Duration
		rounds  []int
		perDone []time.Duration
	)
	for b.Loop() {
		b.StopTimer()
		c := servertest.Start(b, "Backlog")
		h := newBenchHTTP(c.URL())
		devs, err := h.enrollMembers(c.FounderInvite, devices)
		if err != nil {
			b.Fatal(err)
		}
		circle, err := h.circle(devs[0])
		if err != nil {
			b.Fatal(err)
		}
		ledgers := map[string]string{}
		for _, m := range circle.Members {
			ledgers[m.MemberID] = m.Ledgers[len(m.Ledgers)-1]
		}
		// Each device takes its ledger, then goes offline and logs 100
		// entries, one change each.
		at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		if err := benchRunAll(devices, func(i int) error {
			d := devs[i]
			if err := h.pullLedger(d, ledgers[d.member]); err != nil {
				return err
			}
			for n := range perDevice {
				if _, err := d.writeEntry(n, at.Add(time.Duration(n)*time.Hour)); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}

		b.StartTimer()
		var mu sync.Mutex
		sent := 0
		start := time.Now()
		err = benchRunAll(devices, func(i int) error {
			st, err := h.syncLedger(devs[i])
			done := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			rounds = append(rounds, st.rounds)
			perDone = append(perDone, done)
			sent += st.sent
			return err
		})
		elapsed := time.Since(start)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}

		stored, err := h.countEntries(devs[0])
		if err != nil {
			b.Fatal(err)
		}
		if want := devices * perDevice; stored != want {
			b.Fatalf("server lists %d entries after the backlog sync, want %d", stored, want)
		}
		runs++
		changes += devices * perDevice
		wall += elapsed
		if sent != devices*perDevice {
			b.Logf("devices sent %d changes for %d made (some sent twice)", sent, devices*perDevice)
		}
		h.close()
		c.Stop()
		b.StartTimer()
	}
	b.ReportMetric(float64(changes)/wall.Seconds(), "changes/s")
	b.ReportMetric(wall.Seconds()/float64(runs), "stored_s")
	b.ReportMetric(float64(slices.Max(rounds)), "max_rounds")
	b.Logf("backlog: %d devices x %d offline changes; all stored in %.2fs (%.0f changes/s); device done p50 %.2fs max %.2fs; rounds p50 %d max %d",
		devices, perDevice, wall.Seconds()/float64(runs), float64(changes)/wall.Seconds(),
		benchPercentile(perDone, 50).Seconds(), slices.Max(perDone).Seconds(), benchMedian(rounds), slices.Max(rounds))
}

// BenchmarkLatency: 20 connected devices each log one entry every 250 ms
// and sync it at once. Per change it measures the time from the local
// commit to the HTTP answer whose heads include the change (the server
// answers after storing it), and reports p50, p99 and max over all
// changes (20 × 25 = 500 per iteration).
func BenchmarkLatency(b *testing.B) {
	const (
		devices   = 20
		perDevice = 25
		every     = 250 * time.Millisecond
		limit     = 90 * time.Second // bound on one iteration
	)
	c := servertest.Start(b, "Latency")
	h := newBenchHTTP(c.URL())
	defer h.close()
	devs, err := h.enrollMembers(c.FounderInvite, devices)
	if err != nil {
		b.Fatal(err)
	}
	circle, err := h.circle(devs[0])
	if err != nil {
		b.Fatal(err)
	}
	for _, m := range circle.Members {
		for _, d := range devs {
			if d.member == m.MemberID {
				if err := h.pullLedger(d, m.Ledgers[len(m.Ledgers)-1]); err != nil {
					b.Fatal(err)
				}
			}
		}
	}

	var (
		mu  sync.Mutex
		lat []time.Duration
	)
	b.ResetTimer()
	for b.Loop() {
		deadline := time.Now().Add(limit)
		err := benchRunAll(devices, func(i int) error {
			d := devs[i]
			// Spread the devices' ticks over the period.
			time.Sleep(time.Duration(i) * every / devices)
			tick := time.NewTicker(every)
			defer tick.Stop()
			for n := range perDevice {
				if time.Now().After(deadline) {
					return errBenchTimeout
				}
				hash, err := d.writeEntry(n, time.Now())
				if err != nil {
					return err
				}
				committed := time.Now()
				var acked time.Duration = -1
				if _, err := h.syncDocs(d.token, map[string]*automerge.SyncState{d.ledger: d.ss}, func(_ string, m *automerge.SyncMessage, arrived time.Time) {
					if acked < 0 && slices.Contains(m.Heads(), hash) {
						acked = arrived.Sub(committed)
					}
				}); err != nil {
					return err
				}
				if acked < 0 {
					return errBenchNoAck
				}
				mu.Lock()
				lat = append(lat, acked)
				mu.Unlock()
				<-tick.C
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(benchMS(benchPercentile(lat, 50)), "p50_ms")
	b.ReportMetric(benchMS(benchPercentile(lat, 99)), "p99_ms")
	b.ReportMetric(benchMS(slices.Max(lat)), "max_ms")
	b.Logf("latency: %d changes from %d devices, one each per %v per device: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms",
		len(lat), devices, every, benchMS(benchPercentile(lat, 50)), benchMS(benchPercentile(lat, 90)), benchMS(benchPercentile(lat, 99)), benchMS(slices.Max(lat)))
}
