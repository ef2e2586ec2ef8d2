package server_test

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/internal/inprocess"
	"github.com/circles-coop/circles/server"
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
// all 5,000 entries. After each pass it runs the same backlog through
// automerge-go alone in memory (package inprocess, as
// BenchmarkInProcessBacklog) and reports that rate and the ratio,
// %_of_inprocess: figures of one run, minutes apart at most.
func BenchmarkBacklog(b *testing.B) {
	const devices, perDevice = 50, 100
	var (
		runs    int
		changes int
		wall    time.Duration
		rounds  []int
		perDone []time.Duration
		// the in-process pass of each iteration (package inprocess)
		inChanges int
		inTotal   time.Duration
		// process CPU time (user+system) of the two passes
		cpu, inCPU time.Duration
	)
	for b.Loop() {
		b.StopTimer()
		c := servertest.Start(b, "Backlog", metricsOnAPI)
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
			if err := h.pullLedger(d, ledgers[d.Member]); err != nil {
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

		before, err := h.metrics()
		if err != nil {
			b.Fatal(err)
		}
		stopProfile := benchProfile(b, runs)
		b.StartTimer()
		var mu sync.Mutex
		sent := 0
		cpu0 := benchProcessCPU(b)
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
		cpu += benchProcessCPU(b) - cpu0
		b.StopTimer()
		stopProfile()
		if err != nil {
			b.Fatal(err)
		}
		after, err := h.metrics()
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("server: %s", benchEngineTime(before, after))

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

		// The same backlog through automerge-go alone, right after: the
		// ceiling, measured in the same minutes of a shared machine. The
		// collection finds the stopped server's documents, whose
		// finalizers then run while the backlog is built, not during it.
		runtime.GC()
		bl, err := inprocess.NewBacklog(devices, perDevice)
		if err != nil {
			b.Fatal(err)
		}
		inCPU0 := benchProcessCPU(b)
		inWall, err := bl.Sync()
		inCPU += benchProcessCPU(b) - inCPU0
		if err != nil {
			b.Fatal(err)
		}
		inChanges += bl.Changes()
		inTotal += inWall
		b.StartTimer()
	}
	rate, inRate := float64(changes)/wall.Seconds(), float64(inChanges)/inTotal.Seconds()
	b.ReportMetric(rate, "changes/s")
	b.ReportMetric(inRate, "inprocess_changes/s")
	b.ReportMetric(100*rate/inRate, "%_of_inprocess")
	b.ReportMetric(wall.Seconds()/float64(runs), "stored_s")
	b.ReportMetric(float64(slices.Max(rounds)), "max_rounds")
	// Cores busy (process CPU time over wall time) tell a pass that waits
	// from one that computes; CPU per change compares the work itself.
	b.ReportMetric(cpu.Seconds()/wall.Seconds(), "cores")
	b.ReportMetric(inCPU.Seconds()/inTotal.Seconds(), "inprocess_cores")
	b.ReportMetric(float64(cpu.Microseconds())/float64(changes), "cpu_µs/change")
	b.ReportMetric(float64(inCPU.Microseconds())/float64(inChanges), "inprocess_cpu_µs/change")
	b.Logf("backlog: %d devices x %d offline changes; all stored in %.2fs (%.0f changes/s, %.0f%% of automerge-go alone in memory: %.0f changes/s); device done p50 %.2fs max %.2fs; rounds p50 %d max %d",
		devices, perDevice, wall.Seconds()/float64(runs), rate, 100*rate/inRate, inRate,
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
	c := servertest.Start(b, "Latency", metricsOnAPI)
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
			if d.Member == m.MemberID {
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
	before, err := h.metrics()
	if err != nil {
		b.Fatal(err)
	}
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
				if _, err := h.syncDocs(d.Token, map[string]*automerge.SyncState{d.ledger: d.ss}, func(_ string, m *automerge.SyncMessage, arrived time.Time) {
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
	b.StopTimer()
	after, err := h.metrics()
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("server: %s", benchEngineTime(before, after))
	b.ReportMetric(benchMS(benchPercentile(lat, 50)), "p50_ms")
	b.ReportMetric(benchMS(benchPercentile(lat, 99)), "p99_ms")
	b.ReportMetric(benchMS(slices.Max(lat)), "max_ms")
	b.Logf("latency: %d changes from %d devices, one each per %v per device: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms",
		len(lat), devices, every, benchMS(benchPercentile(lat, 50)), benchMS(benchPercentile(lat, 90)), benchMS(benchPercentile(lat, 99)), benchMS(slices.Max(lat)))
}

// BenchmarkColdStart: a circle of 30 members with 50,000 ledger entries
// spread over five years, written the way phones write them (offline
// batches of single-entry changes, synced through POST /v1/sync into the
// member's current ledger segment; the server opens a new segment at 2,000
// items). Contributions are skewed, as in real circles: the most active
// member logs seven times what the least active does, so the most active
// third of the members fill two segments. The building is not measured.
//
// Then the server is stopped and started again: coldstart_ms is the time
// server.Open takes in this process. The figures on memory come from
// `circled serve` as its own process on the same data (built with go build
// into a temporary directory), so that they are the server's alone:
// proc_ready_ms is from exec to its address file being written,
// rss_rest_MB its VmRSS two seconds after, rss_after_sync_MB its VmRSS
// after one device pulled every segment of every member's ledger. It fails
// unless the restarted server lists all 50,000 entries and the device
// received all of them.
func BenchmarkColdStart(b *testing.B) {
	const (
		members = 30
		total   = 50_000
		batch   = 250 // entries a device logs offline between two syncs
		years   = 5
	)
	bin := benchBuildCircled(b)
	c := servertest.Start(b, "Five Years")
	h := newBenchHTTP(c.URL())
	devs, err := h.enrollMembers(c.FounderInvite, members)
	if err != nil {
		b.Fatal(err)
	}
	code, err := h.invite(devs[0], "device")
	if err != nil {
		b.Fatal(err)
	}
	reader, err := h.enroll(code, "Member 00")
	if err != nil {
		b.Fatal(err)
	}

	// Member i logs counts[i] entries; weights rise linearly from 0.25 to
	// 1.75 (mean 1).
	counts := make([]int, members)
	left := total
	for i := range counts {
		w := 0.25 + 1.5*float64(i)/float64(members-1)
		counts[i] = int(float64(total) * w / float64(members))
		left -= counts[i]
	}
	counts[members-1] += left
	first := time.Date(2021, 1, 1, 8, 0, 0, 0, time.UTC)
	span := time.Duration(years) * 365 * 24 * time.Hour

	buildStart := time.Now()
	if err := benchRunAll(members, func(i int) error {
		d := devs[i]
		current := func() (string, error) {
			circle, err := h.circle(d)
			if err != nil {
				return "", err
			}
			for _, m := range circle.Members {
				if m.MemberID == d.Member {
					return m.Ledgers[len(m.Ledgers)-1], nil
				}
			}
			return "", fmt.Errorf("member %s not in the circle", d.Member)
		}
		for n := 0; n < counts[i]; {
			seg, err := current()
			if err != nil {
				return err
			}
			if seg != d.ledger {
				if err := h.pullLedger(d, seg); err != nil {
					return err
				}
			}
			for k := 0; k < batch && n < counts[i]; k, n = k+1, n+1 {
				at := first.Add(time.Duration((float64(n) + 0.5) / float64(counts[i]) * float64(span)))
				if _, err := d.writeEntry(n, at); err != nil {
					return err
				}
			}
			if _, err := h.syncLedger(d); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	built := time.Since(buildStart)
	if n, err := h.countEntries(devs[0]); err != nil || n != total {
		b.Fatalf("after building, the server lists %d entries (err %v), want %d", n, err, total)
	}
	circle, err := h.circle(reader)
	if err != nil {
		b.Fatal(err)
	}
	segments := 0
	for _, m := range circle.Members {
		segments += len(m.Ledgers)
	}
	b.Logf("built %d entries of %d members (%d ledger segments) in %.1fs (%.0f entries/s)",
		total, members, segments, built.Seconds(), float64(total)/built.Seconds())
	h.close()
	c.Stop()

	// Cold start in this process: server.Open on the data just written.
	open := time.Now()
	c.Start()
	coldstart := time.Since(open)
	c.Stop()

	var ready, rest, after, peak []float64
	var syncs []time.Duration
	b.ResetTimer()
	for b.Loop() {
		p := benchStartCircled(b, bin, c.DataDir)
		ready = append(ready, benchMS(p.ready))
		time.Sleep(2 * time.Second)
		atRest, _ := p.memory(b)
		rest = append(rest, atRest)

		ph := newBenchHTTP(p.url)
		circle, err := ph.circle(reader)
		if err != nil {
			b.Fatal(err)
		}
		docs := map[string]*automerge.SyncState{}
		for _, m := range circle.Members {
			for _, l := range m.Ledgers {
				docs[l] = automerge.NewSyncState(automerge.New())
			}
		}
		t := time.Now()
		st, err := ph.syncDocs(reader.Token, docs, nil)
		if err != nil {
			b.Fatal(err)
		}
		syncs = append(syncs, time.Since(t))
		rss, hwm := p.memory(b)
		after, peak = append(after, rss), append(peak, hwm)
		// One change per entry, and the server's one change creating
		// each segment.
		if got := st.received - len(docs); got != total {
			b.Fatalf("the device received %d entry changes, want %d", got, total)
		}
		if n, err := ph.countEntries(reader); err != nil || n != total {
			b.Fatalf("the restarted server lists %d entries (err %v), want %d", n, err, total)
		}
		ph.close()
		p.stop(b)
		b.Logf("circled: ready in %.0f ms (index rebuilt in %s), RSS %.1f MB at rest, %.1f MB after a full sync of %d segments (%.1f MB of sync messages) in %.2fs (%d rounds), peak %.1f MB",
			benchMS(p.ready), p.indexTook(), atRest, rss, len(docs), float64(st.bytesIn)/(1<<20), syncs[len(syncs)-1].Seconds(), st.rounds, hwm)
	}
	b.ReportMetric(benchMS(coldstart), "coldstart_ms")
	b.ReportMetric(slices.Max(ready), "proc_ready_ms")
	b.ReportMetric(slices.Max(rest), "rss_rest_MB")
	b.ReportMetric(slices.Max(after), "rss_after_sync_MB")
	b.ReportMetric(slices.Max(peak), "rss_peak_MB")
	b.ReportMetric(total, "entries")
}

// metricsOnAPI serves /metrics on the API listener, where the benchmarks
// read their figures (off by default).
var metricsOnAPI = servertest.WithConfig(func(cfg *server.Config) { cfg.MetricsOnAPI = true })
