package server_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/server/servertest"
)

// BenchmarkFirstSync: a circle of 10 members with 4,500 ledger entries
// each (one change per entry, written as phones write them: offline
// batches of 250 synced through POST /v1/sync; segments close at the
// default bound of 2,000 items and are compacted when they close). The
// building is not measured.
//
// Then, each time on a cold `circled serve` of that data running as its
// own process (so that its memory is its own), brand-new member devices
// fetch every ledger segment of the circle, 1 device and then 5 at once,
// two ways:
//
//   - replay: the way before snapshots, by automerge sync messages from
//     empty documents (POST /v1/sync, all documents batched per round);
//   - snapshots: each segment's whole save first (GET
//     /v1/docs/{doc}/snapshot/{hash} by the hash GET /v1/circle names,
//     else GET /v1/docs/{doc}/snapshot), loaded with automerge, then the
//     same sync, which then carries only what the snapshots lack.
//
// It prints, per way and number of devices: the bytes each device
// received over HTTP (bodies: JSON and base64 for sync, raw for
// snapshots) against the saved size of what it ended up holding; the
// slowest device's time (from GET /v1/circle to the end of its sync)
// against loading those saved documents locally, as many loads at once as
// devices (the devices run in this process and share its cores); and the
// server's RSS at rest (5 s after start), its peak during the syncs
// (VmHWM, reset before them), and, with 5 devices, again after its idle
// eviction (65 s). CIRCLES_BENCH_CIRCLED=/path/to/circled measures
// another build of circled instead (a server without snapshots answers
// their requests 404 and the snapshots way falls back to replay). It fails unless every device ends
// with every entry.
func BenchmarkFirstSync(b *testing.B) {
	const (
		members   = 10
		perMember = 4500
		batch     = 250
		total     = members * perMember
	)
	bin := benchBuildCircled(b)
	if other := os.Getenv("CIRCLES_BENCH_CIRCLED"); other != "" {
		// Another build of circled for the measured phases (an older
		// one, for figures before a change); the circle is built by this
		// tree's server.
		bin = other
	}
	c := servertest.Start(b, "Long History")
	h := newBenchHTTP(c.URL())
	devs, err := h.enrollMembers(c.FounderInvite, members)
	if err != nil {
		b.Fatal(err)
	}
	first := time.Date(2022, 1, 1, 8, 0, 0, 0, time.UTC)
	buildStart := time.Now()
	if err := benchRunAll(members, func(i int) error {
		d := devs[i]
		for n := 0; n < perMember; {
			circle, err := h.circle(d)
			if err != nil {
				return err
			}
			if seg := circle.Docs["ledger"]; seg != d.ledger {
				if err := h.pullLedger(d, seg); err != nil {
					return err
				}
			}
			for k := 0; k < batch && n < perMember; k, n = k+1, n+1 {
				if _, err := d.writeEntry(n, first.Add(time.Duration(n)*time.Hour)); err != nil {
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
	if n, err := h.countEntries(devs[0]); err != nil || n != total {
		b.Fatalf("after building, the server lists %d entries (err %v), want %d", n, err, total)
	}
	// Closed segments are compacted in the background when they close.
	var closed int
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		circle, err := h.circle(devs[0])
		if err != nil {
			b.Fatal(err)
		}
		docs := closedOf(circle)
		closed = len(docs)
		if !slices.ContainsFunc(docs, func(d string) bool { return circle.Snapshots[d] == "" }) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("closed segments not compacted after 5 minutes")
		}
	}
	// Brand-new devices, enrolled now (their tokens last 15 minutes).
	var readers []*benchDevice
	for k := 0; k < 2*(1+5); k++ {
		code, err := h.invite(devs[k%members], "device")
		if err != nil {
			b.Fatal(err)
		}
		r, err := h.enroll(code, "")
		if err != nil {
			b.Fatal(err)
		}
		readers = append(readers, r)
	}
	b.Logf("built %d entries of %d members (%d closed segments) in %.1fs", total, members, closed, time.Since(buildStart).Seconds())
	h.close()
	c.Stop()
	if dir := os.Getenv("CIRCLES_BENCH_COPY_DATA"); dir != "" {
		// For looking at the built circle afterwards (circled serve --data).
		if out, err := exec.Command("cp", "-a", c.DataDir, dir).CombinedOutput(); err != nil {
			b.Fatalf("copy the data to %s: %v %s", dir, err, out)
		}
	}

	b.ResetTimer()
	for b.Loop() {
		next := 0
		for _, way := range []string{"replay", "snapshots"} {
			for _, n := range []int{1, 5} {
				devices := readers[next : next+n]
				next += n
				r := benchFirstSyncPhase(b, bin, c.DataDir, way, devices, total, n == 5)
				if way == "snapshots" {
					b.ReportMetric(r.wireRatio, fmt.Sprintf("wire_ratio_%ddev", n))
					b.ReportMetric(r.timeRatio, fmt.Sprintf("time_ratio_%ddev", n))
					b.ReportMetric(r.peak, fmt.Sprintf("rss_peak_MB_%ddev", n))
					if n == 5 {
						b.ReportMetric(r.idle, "rss_idle_MB")
					}
				}
			}
		}
	}
}

type firstSyncResult struct {
	wireRatio, timeRatio float64
	rest, peak, after    float64
	idle                 float64 // after the idle eviction, if measured
}

// countingTransport counts the response body bytes of its requests.
type countingTransport struct {
	rt http.RoundTripper
	n  atomic.Int64
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(req)
	if err == nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &t.n}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// firstSyncDevice is what one device did.
type firstSyncDevice struct {
	took   time.Duration
	wire   int64
	saved  [][]byte
	snaps  int
	rounds int
}

// benchFirstSyncPhase starts circled cold on data, lets devices fetch
// every ledger segment at once the given way, checks they hold all total
// entries, and prints and returns the figures.
func benchFirstSyncPhase(b *testing.B, bin, data, way string, devices []*benchDevice, total int, idle bool) firstSyncResult {
	b.Helper()
	p := benchStartCircled(b, bin, data)
	defer p.stop(b)
	time.Sleep(5 * time.Second) // start-up work (rebuilding the index) settles
	var res firstSyncResult
	res.rest, _ = p.memory(b)
	// Reset the peak (VmHWM) to the current RSS, so the peak is this phase's.
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.cmd.Process.Pid), []byte("5"), 0); err != nil {
		b.Fatalf("reset circled's peak RSS: %v", err)
	}
	out := make([]firstSyncDevice, len(devices))
	if err := benchRunAll(len(devices), func(i int) error {
		var err error
		out[i], err = benchFirstSyncDevice(p.url, devices[i], way, total)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	res.after, res.peak = p.memory(b)
	ph := newBenchHTTP(p.url)
	m, err := ph.metrics()
	ph.close()
	if err != nil {
		b.Fatal(err)
	}

	// A local load of what the devices ended up holding, as many at once
	// as there were devices (on this machine the devices' own loads of
	// the snapshots share its cores the same way).
	var saved int64
	for _, s := range out[0].saved {
		saved += int64(len(s))
	}
	t := time.Now()
	if err := benchRunAll(len(out), func(i int) error {
		for _, s := range out[i].saved {
			if _, err := automerge.Load(s); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	load := time.Since(t)
	var wire int64
	var took time.Duration
	for _, d := range out {
		wire += d.wire
		took = max(took, d.took)
	}
	wire /= int64(len(out))
	res.wireRatio = float64(wire) / float64(saved)
	res.timeRatio = float64(took) / float64(load)
	if idle {
		time.Sleep(65 * time.Second) // past the engine's idle eviction (1 min)
		res.idle, _ = p.memory(b)
	}
	b.Logf("%-9s %d device(s): server: %.0f documents loaded, %.0f compacted, %.0f in-sync answers, Go heap in use %.1f MB, outside the Go heap %.1f MB",
		way, len(devices), m["circles_sync_doc_loads_total"], m["circles_sync_compactions_total"], m["circles_sync_in_sync_answers_total"],
		m["go_memstats_heap_inuse_bytes"]/(1<<20), m["circles_process_outside_go_bytes"]/(1<<20))
	b.Logf("%-9s %d device(s): %d docs (%d from snapshots) per device; received %.2f MB (%.2f× the %.2f MB saved); slowest %.2fs (%.2f× %d local load(s) at once: %.2fs); circled RSS %.1f MB at rest, peak %.1f MB, %.1f MB after%s",
		way, len(devices), len(out[0].saved), out[0].snaps, float64(wire)/1e6, res.wireRatio, float64(saved)/1e6,
		took.Seconds(), res.timeRatio, len(out), load.Seconds(), res.rest, res.peak, res.after,
		map[bool]string{true: fmt.Sprintf(", %.1f MB after its idle eviction", res.idle), false: ""}[idle])
	return res
}

// benchFirstSyncDevice is one brand-new device fetching every ledger
// segment of the circle.
func benchFirstSyncDevice(url string, d *benchDevice, way string, total int) (firstSyncDevice, error) {
	var out firstSyncDevice
	h := newBenchHTTP(url)
	defer h.close()
	ct := &countingTransport{rt: h.HTTP.Transport}
	h.HTTP.Transport = ct
	start := time.Now()
	circle, err := h.circle(d)
	if err != nil {
		return out, err
	}
	docs := map[string]*automerge.Doc{}
	states := map[string]*automerge.SyncState{}
	for _, m := range circle.Members {
		for _, l := range m.Ledgers {
			doc := automerge.New()
			if way == "snapshots" {
				path := "/v1/docs/" + l + "/snapshot"
				if hash := circle.Snapshots[l]; hash != "" {
					path += "/" + hash
				}
				data, status, err := benchGetBytes(h, path, d.Token)
				switch {
				case err != nil:
					return out, err
				case status == http.StatusOK:
					if doc, err = automerge.Load(data); err != nil {
						return out, fmt.Errorf("load snapshot of %s: %w", l, err)
					}
					out.snaps++
				case status != http.StatusNotFound:
					return out, fmt.Errorf("GET %s: %d %s", path, status, data)
				}
			}
			docs[l], states[l] = doc, automerge.NewSyncState(doc)
		}
	}
	st, err := h.syncDocs(d.Token, states, nil)
	if err != nil {
		return out, err
	}
	out.took = time.Since(start)
	out.wire = ct.n.Load()
	out.rounds = st.rounds
	changes := 0
	for _, doc := range docs {
		out.saved = append(out.saved, doc.Save())
		all, err := doc.Changes()
		if err != nil {
			return out, err
		}
		changes += len(all)
	}
	// One change per entry, and the server's one creating each segment.
	if changes != total+len(docs) {
		return out, fmt.Errorf("the device holds %d changes in %d segments, want %d", changes, len(docs), total+len(docs))
	}
	return out, nil
}

// benchGetBytes GETs path (following redirects) and returns the body and
// status.
func benchGetBytes(h *benchHTTP, path, token string) ([]byte, int, error) {
	req, err := http.NewRequest("GET", h.Base+path, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := h.HTTP.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return data, resp.StatusCode, err
}
