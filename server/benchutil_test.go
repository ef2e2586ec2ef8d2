package server_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/google/uuid"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/crdt/amchange"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// Helpers of the benchmarks in bench_test.go. They return errors instead of
// failing the benchmark, so that the devices' goroutines can use them.

// Errors of the devices' goroutines.
var (
	errBenchTimeout = errors.New("scenario ran past its time bound")
	errBenchNoAck   = errors.New("the server's answers never acknowledged the change")
)

// benchMaxRounds bounds the POST /v1/sync rounds of one sync of a device.
const benchMaxRounds = 50

// benchHTTP talks to one circle over loopback HTTP, with the methods the
// benchmarks add to servertest.Client.
type benchHTTP struct{ *servertest.Client }

func newBenchHTTP(base string) *benchHTTP { return &benchHTTP{servertest.NewClient(base)} }

func (h *benchHTTP) close() { h.Close() }

// benchDevice is a member's phone: its credentials and its local copy of
// one ledger segment with the sync state that goes with it.
type benchDevice struct {
	*servertest.Device

	ledger string // document id of the segment doc holds
	doc    *automerge.Doc
	ss     *automerge.SyncState
}

// enroll redeems invite as a new device (and, for a member invite, a new
// member named name).
func (h *benchHTTP) enroll(invite, name string) (*benchDevice, error) {
	d, err := h.Enroll(invite, name)
	if err != nil {
		return nil, err
	}
	return &benchDevice{Device: d}, nil
}

// invite makes an invite ("member" or "device") as d.
func (h *benchHTTP) invite(d *benchDevice, forWhat string) (string, error) {
	return h.Invite(d.Device, forWhat)
}

// enrollMembers enrols n members with one device each: the first with the
// founder invite, the others with member invites made by the first.
func (h *benchHTTP) enrollMembers(founderInvite string, n int) ([]*benchDevice, error) {
	ds, err := h.EnrollMembers(founderInvite, n)
	if err != nil {
		return nil, err
	}
	devs := make([]*benchDevice, len(ds))
	for i, d := range ds {
		devs[i] = &benchDevice{Device: d}
	}
	return devs, nil
}

func (h *benchHTTP) circle(d *benchDevice) (wire.Circle, error) { return h.Circle(d.Device) }

// benchSyncStats counts what one sync did.
type benchSyncStats struct {
	rounds   int
	sent     int // changes sent
	received int // changes received
	bytesIn  int // bytes of the server's sync messages
}

// syncDocs syncs the device's local copies docs (document id → copy and
// sync state) with the server in batched rounds, one POST /v1/sync per
// round, until neither side has anything to send. onAnswer, if not nil,
// sees every message the server answers with and when its HTTP answer
// arrived.
func (h *benchHTTP) syncDocs(token string, docs map[string]*automerge.SyncState, onAnswer func(doc string, m *automerge.SyncMessage, arrived time.Time)) (benchSyncStats, error) {
	var st benchSyncStats
	ids := make([]string, 0, len(docs))
	for id := range docs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for round := 1; round <= benchMaxRounds; round++ {
		var out []wire.SyncMessage
		for _, id := range ids {
			if m, ok := docs[id].GenerateMessage(); ok {
				data := m.Bytes()
				out = append(out, wire.SyncMessage{Doc: id, Data: data})
				st.sent += benchCountChanges(data)
			}
		}
		if len(out) == 0 {
			return st, nil
		}
		st.rounds = round
		var resp wire.SyncResponse
		if err := h.Do("POST", "/v1/sync", token, http.StatusOK, wire.SyncRequest{Messages: out}, &resp); err != nil {
			return st, err
		}
		arrived := time.Now()
		for _, m := range resp.Messages {
			ss, ok := docs[m.Doc]
			if !ok {
				return st, fmt.Errorf("sync: answer for unasked document %s", m.Doc)
			}
			sm, err := ss.ReceiveMessage(m.Data)
			if err != nil {
				return st, fmt.Errorf("sync %s: receive: %w", m.Doc, err)
			}
			st.received += benchCountChanges(m.Data)
			st.bytesIn += len(m.Data)
			if onAnswer != nil {
				onAnswer(m.Doc, sm, arrived)
			}
		}
	}
	return st, fmt.Errorf("sync: not in step after %d rounds", benchMaxRounds)
}

// enrollWithLedgers enrolls n members like enrollMembers, and each
// device then pulls its member's current ledger segment.
func (h *benchHTTP) enrollWithLedgers(founderInvite string, n int) ([]*benchDevice, error) {
	devs, err := h.enrollMembers(founderInvite, n)
	if err != nil {
		return nil, err
	}
	circle, err := h.circle(devs[0])
	if err != nil {
		return nil, err
	}
	for _, d := range devs {
		for _, m := range circle.Members {
			if m.MemberID == d.Member {
				if err := h.pullLedger(d, m.Ledgers[len(m.Ledgers)-1]); err != nil {
					return nil, err
				}
			}
		}
	}
	return devs, nil
}

// pullLedger gives d a fresh local copy of the ledger segment doc, synced
// from the server, which d then writes into with its own actor.
func (h *benchHTTP) pullLedger(d *benchDevice, doc string) error {
	local := automerge.New()
	if err := local.SetActorID(d.Actor); err != nil {
		return err
	}
	ss := automerge.NewSyncState(local)
	if _, err := h.syncDocs(d.Token, map[string]*automerge.SyncState{doc: ss}, nil); err != nil {
		return fmt.Errorf("pull %s: %w", doc, err)
	}
	d.ledger, d.doc, d.ss = doc, local, ss
	return nil
}

// syncLedger syncs d's ledger copy until both sides are in step.
func (h *benchHTTP) syncLedger(d *benchDevice) (benchSyncStats, error) {
	return h.syncDocs(d.Token, map[string]*automerge.SyncState{d.ledger: d.ss}, nil)
}

var benchKinds = []string{"hours", "lend", "meal", "skill", "other"}

// writeEntry writes one entry into d's local copy and commits it as one
// change, the way the app logs one contribution.
func (d *benchDevice) writeEntry(n int, at time.Time) (automerge.ChangeHash, error) {
	e := crdt.Entry{
		ID:       uuid.NewString(),
		Kind:     benchKinds[n%len(benchKinds)],
		Quantity: float64(n%8 + 1),
		Unit:     "h",
		Note:     fmt.Sprintf("contribution %d of %s", n, d.Member),
		At:       at,
	}
	if err := crdt.PutEntry(d.doc, e); err != nil {
		return automerge.ChangeHash{}, err
	}
	return d.doc.Commit("log entry")
}

// countEntries pages through GET /v1/ledger/entries and counts every
// member's entries.
func (h *benchHTTP) countEntries(d *benchDevice) (int, error) {
	n, cursor := 0, ""
	for page := 0; page < 10_000; page++ {
		q := url.Values{"limit": {"1000"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var l wire.EntryList
		if err := h.Do("GET", "/v1/ledger/entries?"+q.Encode(), d.Token, http.StatusOK, nil, &l); err != nil {
			return n, err
		}
		n += len(l.Entries)
		if l.NextCursor == "" {
			return n, nil
		}
		cursor = l.NextCursor
	}
	return n, fmt.Errorf("count entries: more than 10,000 pages")
}

// benchRunAll runs fn for every index below n in its own goroutine and returns
// the first error.
func benchRunAll(n int, fn func(i int) error) error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(i)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// benchPercentile returns the p-th percentile (0..100, nearest rank) of xs.
func benchPercentile(xs []time.Duration, p float64) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func benchMS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func benchMedian(xs []int) int {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// benchBuildCircled compiles cmd/circled into a temporary directory.
func benchBuildCircled(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "circled")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/circles-coop/circles/cmd/circled")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build circled: %v\n%s", err, out)
	}
	return bin
}

// benchProc is `circled serve` running as its own process.
type benchProc struct {
	cmd   *exec.Cmd
	url   string
	ready time.Duration // from exec to the address file
	logs  *syncBuffer
}

// syncBuffer is a bytes.Buffer safe for the process's writes and our reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// benchStartCircled serves the circle in data with bin on a free loopback
// port and waits (at most 60 s) until it wrote its address file.
func benchStartCircled(tb testing.TB, bin, data string, extra ...string) *benchProc {
	tb.Helper()
	addrFile := filepath.Join(tb.TempDir(), "addr")
	p := &benchProc{logs: &syncBuffer{}}
	args := append([]string{"serve", "--data", data, "--listen", "127.0.0.1:0", "--addr-file", addrFile, "--metrics-on-api"}, extra...)
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	start := time.Now()
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("start circled: %v", err)
	}
	tb.Cleanup(func() { p.stop(tb) })
	for deadline := start.Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if b, err := os.ReadFile(addrFile); err == nil && strings.HasSuffix(string(b), "\n") {
			p.ready = time.Since(start)
			p.url = "http://" + strings.TrimSpace(string(b))
			return p
		}
	}
	tb.Fatalf("circled was not ready after 60 s; its output:\n%s", p.logs.String())
	return nil
}

// memory reads the process's resident set and its peak, in MB, from
// /proc/<pid>/status.
func (p *benchProc) memory(tb testing.TB) (rss, peak float64) {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		tb.Fatalf("read circled's memory: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 64)
		if err != nil {
			tb.Fatalf("read circled's memory: %q: %v", line, err)
		}
		if name == "VmRSS" {
			rss = kb / 1024
		} else {
			peak = kb / 1024
		}
	}
	return rss, peak
}

// indexTook is the "took" of the server's "index rebuilt" log line.
func (p *benchProc) indexTook() string {
	for _, line := range strings.Split(p.logs.String(), "\n") {
		var rec struct {
			Msg  string `json:"msg"`
			Took string `json:"took"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "index rebuilt" {
			return rec.Took
		}
	}
	return "?"
}

// stop ends the process with SIGTERM (SIGKILL after 30 s) and waits for it.
func (p *benchProc) stop(tb testing.TB) {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
		tb.Errorf("circled did not stop within 30 s of SIGTERM")
	}
}

// metrics reads the server's unlabelled Prometheus samples (counters,
// gauges, and histograms' _sum and _count) from GET /metrics.
func (h *benchHTTP) metrics() (map[string]float64, error) {
	resp, err := h.HTTP.Get(h.Base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		name, value, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(name, "#") || strings.Contains(name, "{") {
			continue
		}
		if v, err := strconv.ParseFloat(value, 64); err == nil {
			out[name] = v
		}
	}
	return out, nil
}

// benchEngineTime describes, from two readings of the server's metrics,
// how many sync requests it handled in between and the mean time of a
// request in the engine and of a store write.
func benchEngineTime(before, after map[string]float64) string {
	d := func(name string) float64 { return after[name] - before[name] }
	reqs, writes := d("circles_sync_request_seconds_count"), d("circles_store_write_seconds_count")
	return fmt.Sprintf("%.0f sync requests, %.2f ms mean in the engine (%.2fs in all); %.0f store writes, %.2f ms mean",
		reqs, 1000*d("circles_sync_request_seconds_sum")/max(reqs, 1), d("circles_sync_request_seconds_sum"),
		writes, 1000*d("circles_store_write_seconds_sum")/max(writes, 1))
}

// benchProfile starts a CPU profile of one measured part of a benchmark
// when BENCH_CPUPROFILE names a file, and an execution trace when
// BENCH_TRACE does: iteration i writes FILE.i, so that the set-up between
// the measured parts stays out of it. Merge CPU profiles with
// go tool pprof FILE.*; read a trace with go tool trace FILE.i. The
// returned function stops both.
func benchProfile(b *testing.B, i int) (stop func()) {
	var stops []func()
	for _, p := range []struct {
		env   string
		start func(io.Writer) error
		stop  func()
	}{
		{"BENCH_CPUPROFILE", pprof.StartCPUProfile, pprof.StopCPUProfile},
		{"BENCH_TRACE", trace.Start, trace.Stop},
	} {
		path := os.Getenv(p.env)
		if path == "" {
			continue
		}
		f, err := os.Create(fmt.Sprintf("%s.%d", path, i))
		if err != nil {
			b.Fatal(err)
		}
		if err := p.start(f); err != nil {
			b.Fatal(err)
		}
		stops = append(stops, func() {
			p.stop()
			if err := f.Close(); err != nil {
				b.Error(err)
			}
		})
	}
	return func() {
		for _, stop := range stops {
			stop()
		}
	}
}

// benchProcessCPU returns the CPU time (user and system) this process has
// used so far: the server, its embedded NATS and the benchmark's clients.
func benchProcessCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchCountChanges returns how many changes a sync message carries,
// reading only its framing: cheaper than automerge's SyncMessage.Changes,
// which builds every change, so the devices' bookkeeping takes less of
// the CPU the server shares with them.
func benchCountChanges(data []byte) int {
	raws, _ := amchange.SplitSyncMessage(data)
	return len(raws)
}
