package server_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// BenchmarkSoak is the soak run of `make soak` (it runs only with
// CIRCLES_SOAK=1): SOAK_DEVICES members (default 200), each with a phone,
// against `circled serve` as its own process for SOAK_DURATION (default
// 30m). Every phone logs a contribution and syncs its ledger every few
// seconds, looks for open proposals and votes on them, and trades a new
// assertion for a token before its token expires; a proposer opens a
// proposal every minute; SOAK_STREAMS phones (default 20) keep an event
// stream open, reconnecting when it ends. Every 10 s it samples the
// server's RSS and goroutines; with SOAK_PROFILES=DIR it also saves the
// server's heap profile and goroutines there at rest before the load,
// after the warm-up, at the end, and at rest after it. It reports RSS growth after the warm-up (the first sixth of
// the run; aim: under 5 %), as one sample against another and as the
// median of the sixth after the warm-up against the last sixth's, goroutines at rest before and after the load,
// with no connection open (aim: no growth), and every error (aim: none).
func BenchmarkSoak(b *testing.B) {
	if os.Getenv("CIRCLES_SOAK") == "" {
		b.Skip("the soak runs with make soak (CIRCLES_SOAK=1)")
	}
	duration := envDuration(b, "SOAK_DURATION", 30*time.Minute)
	devices := envInt(b, "SOAK_DEVICES", 200)
	streams := envInt(b, "SOAK_STREAMS", 20)
	warmup := duration / 6
	for range b.N {
		soak(b, duration, warmup, devices, streams)
	}
}

type soakStats struct {
	entries, syncs, votes, proposals, refreshes, events, reconnects, switches atomic.Int64
	mu                                                                        sync.Mutex
	errs                                                                      []string
}

func (s *soakStats) fail(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, fmt.Sprintf(format, args...))
}

type soakSample struct {
	at         time.Duration
	rss        float64
	goroutines float64
	// heap is the Go heap in use and loaded the engine's loaded
	// documents (circles_sync_loaded_bytes), both in MB: RSS growing
	// while they stay flat is memory outside the Go heap (automerge's).
	heap, loaded float64
	// outside is the memory outside the Go runtime's, in MB
	// (circles_process_outside_go_bytes): automerge's C memory, mostly.
	outside float64
	// cheap is the C heap in use (circles_process_c_heap_bytes), in MB;
	// live the automerge documents not yet collected and docs those
	// loaded (circles_sync_live_docs, circles_sync_loaded_docs).
	cheap, live, docs float64
	// finq is the Go runtime's queue of finalizers and cleanups not run
	// yet (circles_process_finalizer_queue): automerge-go frees C memory
	// in them.
	finq float64
	// threads is the process's OS threads (go_threads): each that ran
	// automerge keeps a per-thread malloc cache, counted as in use.
	threads float64
}

func soak(b *testing.B, duration, warmup time.Duration, devices, streams int) {
	bin := benchBuildCircled(b)
	// A circle in its steady state: ledger segments small enough to close
	// several times in the run, each member's current one already part
	// full (below), so the documents the phones write into stay the same
	// size on average. With the default bound (2,000 changes) 200 members
	// writing every 5 s would only grow their segments for the whole run,
	// and with them what every sync of an evicted document loads: growth
	// of the load, not of the server.
	segment := envInt(b, "SOAK_SEGMENT", 200)
	policies := crdt.DefaultPolicies()
	if err := policies.Set("ledger.segment_changes", strconv.Itoa(segment)); err != nil {
		b.Fatal(err)
	}
	c := servertest.Init(b, "Soak Circle", policies)
	profiles := os.Getenv("SOAK_PROFILES")
	var extra []string
	var pprofURL string
	if profiles != "" {
		addr := freeLoopbackAddr(b)
		extra = []string{"--metrics-listen", addr, "--pprof"}
		pprofURL = "http://" + addr + "/debug/pprof/"
	}
	p := benchStartCircled(b, bin, c.DataDir, extra...)
	h := newBenchHTTP(p.url)
	defer h.close()
	devs, err := h.enrollWithLedgers(c.FounderInvite, devices)
	if err != nil {
		b.Fatal(err)
	}
	// Each member's segment starts between empty and nearly full.
	var prefilled atomic.Int64
	if err := benchRunAll(len(devs), func(i int) error {
		d := devs[i]
		k := rand.New(rand.NewPCG(uint64(i), 11)).IntN(segment)
		prefilled.Add(int64(k))
		for n := range k {
			if _, err := d.writeEntry(1_000_000+n, time.Now()); err != nil {
				return err
			}
		}
		_, err := h.syncLedger(d)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	circle, err := h.circle(devs[0])
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("soak: %d phones, %d event streams, %s (warm-up %s); ledger segments of %d changes, %d entries before the load", devices, streams, duration, warmup, segment, prefilled.Load())
	restBefore := restingGoroutines(b, h, &soakStats{})
	if pprofURL != "" {
		saveProfiles(b, pprofURL, profiles, "start")
	}

	var st soakStats
	start := time.Now()
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(duration))
	defer cancel()
	var wg sync.WaitGroup
	for i, d := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			soakPhone(ctx, h, circle.CircleID, d, i, &st)
		}()
	}
	for i := range min(streams, len(devs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			soakStream(ctx, h, devs[i], &st)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		soakProposer(ctx, h, devs[0], &st)
	}()

	var samples []soakSample
	tick := time.NewTicker(10 * time.Second)
	profiled := false
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
			if pprofURL != "" && !profiled && time.Since(start) >= warmup {
				profiled = true
				saveProfiles(b, pprofURL, profiles, "warm")
			}
			samples = append(samples, sampleMemory(b, p, h, &st, time.Since(start)))
		}
	}
	tick.Stop()
	wg.Wait()
	_, peak := p.memory(b)
	if pprofURL != "" {
		saveProfiles(b, pprofURL, profiles, "end")
	}

	var warm, last soakSample
	for _, s := range samples {
		if s.at >= warmup && warm.at == 0 {
			warm = s
		}
		last = s
	}
	growth := 100 * (last.rss - warm.rss) / max(warm.rss, 1)
	// One 10-s sample is at the mercy of where the collector is in its
	// cycle and of JetStream's write caches, which fill to a block's size
	// (4–8 MiB each) and empty when the block is full. The medians of the
	// window after the warm-up and of the last window of the same length
	// show the trend instead.
	var early, late []float64
	for _, s := range samples {
		switch {
		case s.at >= warmup && s.at < 2*warmup:
			early = append(early, s.rss)
		case s.at >= duration-warmup:
			late = append(late, s.rss)
		}
	}
	earlyMed, lateMed := median(early), median(late)
	medGrowth := 100 * (lateMed - earlyMed) / max(earlyMed, 1)
	b.ReportMetric(earlyMed, "rss_warm_median_MB")
	b.ReportMetric(lateMed, "rss_end_median_MB")
	b.ReportMetric(medGrowth, "rss_growth_median_%")
	b.ReportMetric(warm.rss, "rss_warm_MB")
	b.ReportMetric(last.rss, "rss_end_MB")
	b.ReportMetric(peak, "rss_peak_MB")
	b.ReportMetric(growth, "rss_growth_%")
	restAfter := restingGoroutines(b, h, &st)
	// What memory stays once the engine had a quiet spell to collect and
	// hand memory back (sync/engine/quiet.go releases after 15 s of
	// quiet): what is still there is held, not garbage waiting for a
	// collection or its finalizers.
	time.Sleep(25 * time.Second)
	rest := sampleMemory(b, p, h, &st, time.Since(start))
	b.ReportMetric(rest.rss, "rss_rest_MB")
	if pprofURL != "" {
		saveProfiles(b, pprofURL, profiles, "rest") // what is left with nothing in flight
	}
	b.ReportMetric(warm.goroutines, "goroutines_warm")
	b.ReportMetric(last.goroutines, "goroutines_end")
	b.ReportMetric(restBefore, "goroutines_rest_before")
	b.ReportMetric(restAfter, "goroutines_rest_after")
	b.ReportMetric(float64(len(st.errs)), "errors")
	b.Logf("soak: %d entries, %d syncs, %d votes on %d proposals, %d token refreshes, %d events heard, %d stream reconnects, %d moves to a new ledger segment",
		st.entries.Load(), st.syncs.Load(), st.votes.Load(), st.proposals.Load(), st.refreshes.Load(), st.events.Load(), st.reconnects.Load(), st.switches.Load())
	b.Logf("soak: RSS %.1f MB after warm-up, %.1f MB at the end (%+.1f %%), peak %.1f MB; goroutines %.0f → %.0f under load, %.0f → %.0f at rest",
		warm.rss, last.rss, growth, peak, warm.goroutines, last.goroutines, restBefore, restAfter)
	b.Logf("soak: RSS median %.1f MB in the %s after the warm-up (%d samples), %.1f MB in the last %s (%d samples): %+.1f %%",
		earlyMed, warmup, len(early), lateMed, warmup, len(late), medGrowth)
	// The samples go to stdout: a benchmark's log keeps only its first
	// lines.
	for i, s := range samples {
		if i%3 == 0 || i == len(samples)-1 {
			fmt.Println("soak:", s)
		}
	}
	fmt.Println("soak: at rest after the load (25 s quiet):", rest)
	if len(st.errs) > 0 {
		sort.Strings(st.errs)
		b.Errorf("soak: %d errors; the first: %s", len(st.errs), strings.Join(st.errs[:min(5, len(st.errs))], "; "))
	}
}

// median is the middle of xs (0 for none).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	ys := slices.Clone(xs)
	slices.Sort(ys)
	if n := len(ys); n%2 == 0 {
		return (ys[n/2-1] + ys[n/2]) / 2
	}
	return ys[len(ys)/2]
}

// sampleMemory reads the server's memory at t: RSS from /proc, the rest
// from its metrics.
func sampleMemory(b *testing.B, p *benchProc, h *benchHTTP, st *soakStats, t time.Duration) soakSample {
	rss, _ := p.memory(b)
	m, err := h.metrics()
	if err != nil {
		st.fail("metrics: %v", err)
	}
	return soakSample{at: t, rss: rss, goroutines: m["go_goroutines"],
		heap: m["go_memstats_heap_inuse_bytes"] / (1 << 20), loaded: m["circles_sync_loaded_bytes"] / (1 << 20),
		outside: m["circles_process_outside_go_bytes"] / (1 << 20), cheap: m["circles_process_c_heap_bytes"] / (1 << 20),
		live: m["circles_sync_live_docs"], docs: m["circles_sync_loaded_docs"], finq: m["circles_process_finalizer_queue"], threads: m["go_threads"]}
}

func (s soakSample) String() string {
	return fmt.Sprintf("t=%s rss=%.1f MB heap=%.1f MB outside=%.1f MB cheap=%.1f MB loaded=%.1f MB docs=%.0f/%.0f live finq=%.0f threads=%.0f goroutines=%.0f",
		s.at.Round(time.Second), s.rss, s.heap, s.outside, s.cheap, s.loaded, s.docs, s.live, s.finq, s.threads, s.goroutines)
}

// restingGoroutines is the server's goroutine count with no request in
// flight and no connection open: the phones' idle keep-alive
// connections are closed (each holds a goroutine on the server until it
// closes) and the count is read once it has settled. Under load the count
// follows the number of open connections; at rest, before and after, it
// shows what the load left behind.
func restingGoroutines(b *testing.B, h *benchHTTP, st *soakStats) float64 {
	var last float64 = -1
	for range 20 {
		h.HTTP.CloseIdleConnections()
		time.Sleep(250 * time.Millisecond)
		m, err := h.metrics()
		if err != nil {
			st.fail("metrics: %v", err)
			return 0
		}
		n := m["go_goroutines"]
		if n == last {
			return n
		}
		last = n
	}
	return last
}

// saveProfiles writes the server's heap profile and its goroutines (as
// text) into dir, named after the moment: compare them with
// `go tool pprof -base warm-heap.pb.gz end-heap.pb.gz`.
func saveProfiles(b *testing.B, base, dir, moment string) {
	for name, path := range map[string]string{"heap.pb.gz": "heap", "goroutines.txt": "goroutine?debug=1"} {
		resp, err := http.Get(base + path)
		if err != nil {
			b.Errorf("profile %s: %v", path, err)
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, moment+"-"+name), body, 0o644)
		}
		if err != nil {
			b.Errorf("profile %s: %v", path, err)
		}
	}
}

// freeLoopbackAddr is a loopback address with a port free right now.
func freeLoopbackAddr(tb testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// soakPhone logs and syncs every 3–7 s, votes on open proposals every
// 30 s, and refreshes its token every 10 minutes, until ctx ends.
func soakPhone(ctx context.Context, h *benchHTTP, circle string, d *benchDevice, i int, st *soakStats) {
	rng := rand.New(rand.NewPCG(uint64(i), 7))
	voted := map[string]bool{}
	// Refreshes are spread over minutes 5 to 10, as phones' would be.
	nextVote := time.Now().Add(time.Duration(rng.IntN(30)) * time.Second)
	nextRefresh := time.Now().Add(5*time.Minute + time.Duration(rng.IntN(300))*time.Second)
	prevLedger := d.ledger
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(3*time.Second + time.Duration(rng.IntN(4000))*time.Millisecond):
		}
		if time.Now().After(nextRefresh) {
			if err := soakRefresh(h, circle, d); err != nil {
				st.fail("refresh %s: %v", d.ID, err)
			} else {
				st.refreshes.Add(1)
			}
			nextRefresh = time.Now().Add(10 * time.Minute)
		}
		// Like the app, it moves to the member's new ledger segment once
		// the server opened one (a closed segment still takes late writes).
		if n%10 == 9 {
			if err := soakFollowLedger(h, d); err != nil {
				st.fail("follow ledger %s: %v", d.ID, err)
			} else if d.ledger != "" && d.ledger != prevLedger {
				st.switches.Add(1)
			}
			prevLedger = d.ledger
		}
		if _, err := d.writeEntry(n, time.Now()); err != nil {
			st.fail("write entry: %v", err)
			continue
		}
		st.entries.Add(1)
		if _, err := h.syncLedger(d); err != nil {
			if ctx.Err() == nil {
				st.fail("sync %s: %v", d.ID, err)
			}
			continue
		}
		st.syncs.Add(1)
		if time.Now().Before(nextVote) {
			continue
		}
		nextVote = time.Now().Add(30 * time.Second)
		var open wire.ProposalList
		if err := h.Do("GET", "/v1/proposals?status=open", d.Token, http.StatusOK, nil, &open); err != nil {
			st.fail("list proposals: %v", err)
			continue
		}
		for _, p := range open.Proposals {
			if voted[p.ID] {
				continue
			}
			voted[p.ID] = true
			err := h.Do("POST", "/v1/proposals/"+p.ID+"/votes", d.Token, http.StatusOK, wire.VoteRequest{Choice: "yes"}, nil)
			if err != nil && !strings.Contains(err.Error(), "409") { // decided meanwhile: fine
				st.fail("vote: %v", err)
				continue
			}
			st.votes.Add(1)
		}
	}
}

// soakFollowLedger moves d to its member's current ledger segment if the
// server opened a new one.
func soakFollowLedger(h *benchHTTP, d *benchDevice) error {
	circle, err := h.circle(d)
	if err != nil {
		return err
	}
	for _, m := range circle.Members {
		if m.MemberID == d.Member && len(m.Ledgers) > 0 {
			if cur := m.Ledgers[len(m.Ledgers)-1]; cur != d.ledger {
				return h.pullLedger(d, cur)
			}
		}
	}
	return nil
}

// soakRefresh trades a new device assertion for a token.
func soakRefresh(h *benchHTTP, circle string, d *benchDevice) error {
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"iss": d.ID, "aud": circle, "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(), "jti": uuid.NewString(),
	})
	tok.Header["kid"] = d.ID
	a, err := tok.SignedString(d.Key)
	if err != nil {
		return err
	}
	var tr wire.TokenResponse
	if err := h.DoRetrying("POST", "/v1/token", "", http.StatusOK, wire.TokenRequest{Assertion: a}, &tr); err != nil {
		return err
	}
	d.Token = tr.AccessToken
	return nil
}

// soakProposer opens a policy.set proposal every minute.
func soakProposer(ctx context.Context, h *benchHTTP, d *benchDevice, st *soakStats) {
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Minute):
		}
		req := wire.ProposalRequest{ID: uuid.NewString(), Kind: "policy.set", Title: fmt.Sprintf("silence after %d days", 20+n%10),
			Payload: map[string]any{"name": "signals.silent_after", "value": fmt.Sprintf("%dh", 24*(20+n%10))}}
		if err := h.Do("POST", "/v1/proposals", d.Token, http.StatusCreated, req, nil); err != nil {
			st.fail("propose: %v", err)
			continue
		}
		st.proposals.Add(1)
	}
}

// soakStream keeps one event stream open, counting the events it hears
// and reconnecting when the server ends it.
func soakStream(ctx context.Context, h *benchHTTP, d *benchDevice, st *soakStats) {
	hc := &http.Client{Transport: h.HTTP.Transport}
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, "GET", h.Base+"/v1/events", nil)
		req.Header.Set("Authorization", "Bearer "+d.Token)
		resp, err := hc.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				st.fail("events: %v", err)
				time.Sleep(time.Second)
			}
			continue
		}
		if resp.StatusCode != http.StatusOK {
			st.fail("events: status %d", resp.StatusCode)
			resp.Body.Close()
			time.Sleep(time.Second)
			continue
		}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "event: ") {
				st.events.Add(1)
			}
		}
		resp.Body.Close()
		if ctx.Err() == nil {
			st.reconnects.Add(1)
		}
	}
}

func envDuration(tb testing.TB, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		tb.Fatalf("%s=%q: %v", name, v, err)
	}
	return d
}

func envInt(tb testing.TB, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var n int
	if _, err := fmt.Sscan(v, &n); err != nil || n <= 0 {
		tb.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}
