//go:build unix

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/mobile-api/client"
	"github.com/circles-coop/circles/sync/store"
	"github.com/circles-coop/circles/wire"
)

// Real processes for cluster mode: nats-server built from the module
// go.mod requires, three nodes clustered over routes on loopback, and
// circled processes on them.

// buildNATSServer compiles nats-server from the required module.
func buildNATSServer(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "nats-server")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/nats-io/nats-server/v2")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build nats-server: %v\n%s", err, out)
	}
	return bin
}

// freePorts returns n distinct free loopback ports.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var lns []net.Listener
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// natsNode is one nats-server process of a cluster; it can be killed and
// started again on the same ports and store directory.
type natsNode struct {
	bin, name, dir string
	port, cport    int
	routes         string
	conf           string // a config file instead of the flags, if set
	cmd            *exec.Cmd
	logs           *lockedBuffer
	done           chan struct{}
}

func (n *natsNode) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

func (n *natsNode) start(t testing.TB) {
	t.Helper()
	n.logs, n.done = &lockedBuffer{}, make(chan struct{})
	n.cmd = exec.Command(n.bin, "-a", "127.0.0.1", "-p", fmt.Sprint(n.port), "-n", n.name,
		"-js", "-sd", n.dir, "--cluster_name", "circles-test",
		"--cluster", fmt.Sprintf("nats://127.0.0.1:%d", n.cport), "--routes", n.routes)
	if n.conf != "" {
		n.cmd = exec.Command(n.bin, "-c", n.conf)
	}
	n.cmd.Stdout, n.cmd.Stderr = n.logs, n.logs
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", n.name, err)
	}
	go func() {
		_ = n.cmd.Wait()
		close(n.done)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", n.port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not listen within 20 s:\n%s", n.name, n.logs.tail(20))
		}
		select {
		case <-n.done:
			t.Fatalf("%s exited:\n%s", n.name, n.logs.tail(20))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// kill sends SIGKILL and waits (at most 10 s) for the end.
func (n *natsNode) kill() {
	_ = n.cmd.Process.Kill()
	select {
	case <-n.done:
	case <-time.After(10 * time.Second):
	}
}

// startNATSCluster runs three nats-server processes with JetStream,
// clustered on loopback, and waits (at most 30 s) until JetStream answers.
func startNATSCluster(t testing.TB, bin string) ([]*natsNode, string) {
	t.Helper()
	ports := freePorts(t, 6)
	var routes []string
	for i := range 3 {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[3+i]))
	}
	var nodes []*natsNode
	var urls []string
	for i := range 3 {
		n := &natsNode{bin: bin, name: fmt.Sprintf("node%d", i), dir: t.TempDir(), port: ports[i], cport: ports[3+i], routes: strings.Join(routes, ",")}
		n.start(t)
		t.Cleanup(n.kill)
		nodes = append(nodes, n)
		urls = append(urls, n.url())
	}
	all := strings.Join(urls, ",")
	nc, err := nats.Connect(all)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := js.AccountInfo(ctx)
		cancel()
		if err == nil {
			return nodes, all
		}
		if time.Now().After(deadline) {
			t.Fatalf("JetStream cluster not ready in 30 s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// initCircle runs `circled init --json` with extra flags and returns the
// founder invite.
func initCircle(t testing.TB, bin, data string, extra ...string) string {
	t.Helper()
	args := append([]string{"init", "--data", data, "--name", "Cluster Test", "--json"}, extra...)
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		t.Fatalf("circled init: %v", err)
	}
	var res struct{ Invite string }
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("init --json printed %q: %v", out, err)
	}
	return res.Invite
}

// writeLoad is REST writers creating entries against whichever URL
// target gives, each bounded in count; it records every acknowledged
// entry and when it was acknowledged.
type writeLoad struct {
	mu     sync.Mutex
	acked  map[string]time.Time
	failed atomic.Int64
	stop   chan struct{}
	wg     sync.WaitGroup
}

func startWriters(ctx context.Context, n, each int, target func() *client.Client) *writeLoad {
	l := &writeLoad{acked: map[string]time.Time{}, stop: make(chan struct{})}
	for range n {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; i < each; i++ {
				select {
				case <-l.stop:
					return
				case <-ctx.Done():
					return
				default:
				}
				id := uuid.NewString()
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := target().CreateEntry(cctx, wire.Entry{ID: id, Kind: "hours", Quantity: 1, Note: "cluster load", At: time.Now().UTC()})
				cancel()
				if err != nil {
					l.failed.Add(1)
					time.Sleep(20 * time.Millisecond)
					continue
				}
				l.mu.Lock()
				l.acked[id] = time.Now()
				l.mu.Unlock()
			}
		}()
	}
	return l
}

// ids are the entries acknowledged so far.
func (l *writeLoad) ids() map[string]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]bool, len(l.acked))
	for id := range l.acked {
		out[id] = true
	}
	return out
}

// finish stops the writers and waits for them.
func (l *writeLoad) finish() {
	close(l.stop)
	l.wg.Wait()
}

// ackedSince counts the entries acknowledged after t.
func (l *writeLoad) ackedSince(t time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, at := range l.acked {
		if at.After(t) {
			n++
		}
	}
	return n
}

// longestPauseSince is the longest time after t without an
// acknowledged write (from t to the first, then between acks).
func (l *writeLoad) longestPauseSince(t time.Time) time.Duration {
	l.mu.Lock()
	var ats []time.Time
	for _, at := range l.acked {
		if at.After(t) {
			ats = append(ats, at)
		}
	}
	l.mu.Unlock()
	slices.SortFunc(ats, time.Time.Compare)
	var longest time.Duration
	prev := t
	for _, at := range ats {
		longest = max(longest, at.Sub(prev))
		prev = at
	}
	return longest
}

// streamLeader is the node leading stream.
func streamLeader(t *testing.T, urls string, nodes []*natsNode, stream string) *natsNode {
	t.Helper()
	nc, err := nats.Connect(urls)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil || info.Cluster == nil {
		t.Fatalf("stream %s info: %v", stream, err)
	}
	for _, n := range nodes {
		if n.name == info.Cluster.Leader {
			return n
		}
	}
	t.Fatalf("stream %s leader %q is none of the nodes", stream, info.Cluster.Leader)
	return nil
}

// listAll lists every entry id the circle has.
func listAll(ctx context.Context, t testing.TB, cl *client.Client) map[string]bool {
	t.Helper()
	stored := map[string]bool{}
	cursor := ""
	for page := 0; page < 1000; page++ {
		list, err := cl.ListEntries(ctx, client.ListOptions{Limit: 1000, Cursor: cursor})
		if err != nil {
			t.Fatalf("list entries: %v", err)
		}
		for _, e := range list.Entries {
			stored[e.ID] = true
		}
		if cursor = list.NextCursor; cursor == "" {
			break
		}
	}
	return stored
}

// lostOf counts the acknowledged ids not stored.
func lostOf(acked map[string]time.Time, stored map[string]bool) int {
	lost := 0
	for id := range acked {
		if !stored[id] {
			lost++
		}
	}
	return lost
}

// memberClient is a REST client of the device's member at url.
func memberClient(t testing.TB, dev *client.Device, url string) *client.Client {
	t.Helper()
	info := dev.Info()
	key, err := readDeviceKey(dev.Home())
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(url, client.WithCredentials(client.Credentials{CircleID: info.CircleID, DeviceID: info.DeviceID, Key: key}))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// readyz is GET /readyz's status and body.
type readyz struct {
	code     int
	Status   string `json:"status"`
	Role     string `json:"role"`
	Instance string `json:"instance"`
	Serving  *struct {
		Instance string `json:"instance"`
		URL      string `json:"url"`
	} `json:"serving"`
}

func getReadyz(addr string) (readyz, error) {
	hc := &http.Client{Timeout: time.Second}
	resp, err := hc.Get("http://" + addr + "/readyz")
	if err != nil {
		return readyz{}, err
	}
	defer resp.Body.Close()
	var r readyz
	err = json.NewDecoder(resp.Body).Decode(&r)
	r.code = resp.StatusCode
	return r, err
}

// waitServing polls addr's /readyz every 20 ms until it answers 200 as
// the serving instance, for at most limit; it returns how long that took.
func waitServing(t testing.TB, addr string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		r, err := getReadyz(addr)
		if err == nil && r.code == http.StatusOK && r.Role == "serving" {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("%s not serving after %s: %+v %v", addr, limit, r, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitCaughtUp waits (at most 30 s) until every replica of every stream
// in the account is current with no lag, as the cluster's leaders see it.
func waitCaughtUp(t testing.TB, urls string, node string) {
	t.Helper()
	nc, err := nats.Connect(urls)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	deadline := time.Now().Add(30 * time.Second)
	for {
		behind := ""
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		names := js.StreamNames(ctx)
		n := 0
		for name := range names.Name() {
			n++
			st, err := js.Stream(ctx, name)
			if err != nil {
				behind = name + ": " + err.Error()
				break
			}
			info, err := st.Info(ctx)
			if err != nil || info.Cluster == nil {
				behind = fmt.Sprintf("%s: %v", name, err)
				break
			}
			found := info.Cluster.Leader == node
			for _, r := range info.Cluster.Replicas {
				if r.Name == node {
					found = true
					if !r.Current || r.Lag > 0 {
						behind = fmt.Sprintf("%s: %s current=%v lag=%d", name, node, r.Current, r.Lag)
					}
				}
			}
			if !found {
				behind = fmt.Sprintf("%s: %s is not a replica", name, node)
			}
			if behind != "" {
				break
			}
		}
		cancel()
		if behind == "" && n >= 6 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not catch up in 30 s: %s (%d streams)", node, behind, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestClusterNodeKillUnderWriteLoad: a circle on a three-node cluster with
// --replicas 3 keeps accepting and serving writes while one node is
// killed (SIGKILL) under write load — if the node led streams, after
// the pause JetStream needs to elect new leaders (logged) — nothing
// acknowledged is lost; the node comes back and catches up (every
// stream's replica on it current, no lag).
func TestClusterNodeKillUnderWriteLoad(t *testing.T) {
	bin, natsBin := buildCircled(t), buildNATSServer(t)
	nodes, urls := startNATSCluster(t, natsBin)
	data := filepath.Join(t.TempDir(), "circle")
	invite := initCircle(t, bin, data, "--nats-url", urls, "--replicas", "3")
	p, err := serve(bin, data, "127.0.0.1:0", "--nats-url", urls, "--replicas", "3")
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	ctx := context.Background()
	dev, err := client.Join(ctx, t.TempDir(), "http://"+p.addr, invite, "Alice", "phone")
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	cl, _ := dev.Client()

	load := startWriters(ctx, 4, 4000, func() *client.Client { return cl })
	time.Sleep(time.Second)
	victim := streamLeader(t, urls, nodes, store.ChunkStream) // the worst case: writes wait for an election
	killedAt := time.Now()
	victim.kill()
	// Writes go on; if the node led streams they pause until JetStream
	// has elected new leaders (its Raft election timeout is seconds).
	deadline := time.Now().Add(30 * time.Second)
	for load.ackedSince(killedAt) < 200 {
		if time.Now().After(deadline) {
			load.finish()
			t.Fatalf("only %d writes acknowledged in the 30 s after %s was killed (%d failed)", load.ackedSince(killedAt), victim.name, load.failed.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	gap := load.longestPauseSince(killedAt)
	afterKill := load.ackedSince(killedAt)
	victim.start(t)
	time.Sleep(time.Second)
	load.finish()
	waitCaughtUp(t, urls, victim.name)
	stored := listAll(ctx, t, cl)
	if lost := lostOf(load.acked, stored); lost > 0 {
		t.Fatalf("%d of %d acknowledged entries lost", lost, len(load.acked))
	}
	t.Logf("%d entries acknowledged (%d after the kill; longest time without an acknowledgement after the kill %s; %d writes failed); all stored; %s (the chunk stream's leader) caught up",
		len(load.acked), afterKill, gap.Round(time.Millisecond), load.failed.Load(), victim.name)
}

// TestFailoverKill9UnderWriteLoad: two `circled serve --failover` of one
// circle on a three-node cluster. One serves, the other stands by
// (503 with the serving instance named; /readyz says so). The serving
// one is killed with SIGKILL under write load: the standby serves within
// 5 s, nothing acknowledged is lost, and the device syncs on with it.
// Then the new server is paused (SIGSTOP) until the other — restarted —
// takes over, and on waking it must refuse writes: no split brain.
func TestFailoverKill9UnderWriteLoad(t *testing.T) {
	bin, natsBin := buildCircled(t), buildNATSServer(t)
	_, urls := startNATSCluster(t, natsBin)
	dataA := filepath.Join(t.TempDir(), "a")
	invite := initCircle(t, bin, dataA, "--nats-url", urls, "--replicas", "3")
	dataB := filepath.Join(t.TempDir(), "b")
	if err := os.MkdirAll(dataB, 0o700); err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(filepath.Join(dataA, "circle.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataB, "circle.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	fo := []string{"--nats-url", urls, "--replicas", "3", "--failover", "--tick-every", "1s"}
	a, b := serveFailoverPair(t, bin, dataA, dataB, fo)

	// b stands by: /readyz and writes say a serves.
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, err := getReadyz(b.addr)
		if err == nil && r.code == http.StatusServiceUnavailable && r.Role == "standby" && r.Serving != nil && r.Serving.Instance == "a" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("standby b's /readyz: %+v %v", r, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctx := context.Background()
	dev, err := client.Join(ctx, t.TempDir(), "http://"+a.addr, invite, "Alice", "phone")
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	resp, err := http.Post("http://"+b.addr+"/v1/ledger/entries", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		resp.Header.Get("Circle-Serving-Instance") != "a" || resp.Header.Get("Circle-Serving-URL") != "http://"+a.addr {
		t.Fatalf("a write to the standby: %d %v", resp.StatusCode, resp.Header)
	}

	// The device logs offline and syncs with a.
	var synced []string
	for range 10 {
		e, err := dev.Log(entryOffline())
		if err != nil {
			t.Fatal(err)
		}
		synced = append(synced, e.ID)
	}
	if _, err := dev.Sync(ctx, nil); err != nil {
		t.Fatalf("sync with a: %v", err)
	}

	clA, clB := memberClient(t, dev, "http://"+a.addr), memberClient(t, dev, "http://"+b.addr)
	var target atomic.Pointer[client.Client]
	target.Store(clA)
	load := startWriters(ctx, 4, 3000, func() *client.Client { return target.Load() })
	time.Sleep(time.Second)
	a.kill() // SIGKILL
	killed := time.Now()
	took := waitServing(t, b.addr, 10*time.Second)
	target.Store(clB)
	time.Sleep(time.Second)
	load.finish()
	t.Logf("takeover: b served %s after a was killed", took.Round(time.Millisecond))
	if took >= 5*time.Second {
		t.Fatalf("takeover took %s, want < 5 s", took)
	}
	if n := load.ackedSince(killed); n == 0 {
		t.Fatalf("no write acknowledged by b after the takeover (%d failed)", load.failed.Load())
	}
	stored := listAll(ctx, t, clB)
	if lost := lostOf(load.acked, stored); lost > 0 {
		t.Fatalf("%d of %d acknowledged entries lost in the failover", lost, len(load.acked))
	}
	for _, id := range synced {
		if !stored[id] {
			t.Fatalf("entry %s synced with a is not on b", id)
		}
	}

	// The device syncs on with b: what it logs now arrives, what it had
	// is still there.
	if err := pointDevice(dev.Home(), "http://"+b.addr); err != nil {
		t.Fatal(err)
	}
	devB, err := client.OpenDevice(dev.Home())
	if err != nil {
		t.Fatal(err)
	}
	e, err := devB.Log(entryOffline())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := devB.Sync(ctx, nil); err != nil {
		t.Fatalf("sync with b after the failover: %v", err)
	}
	if !listAll(ctx, t, clB)[e.ID] {
		t.Fatalf("entry synced with b after the failover is not stored")
	}
	t.Logf("%d entries acknowledged under load (%d failed while no one served), all stored; the device synced on with b",
		len(load.acked), load.failed.Load())

	// Split brain: a comes back as a standby; b is paused until a takes
	// over; woken, b must refuse writes.
	a2, err := serve(bin, dataA, "127.0.0.1:0", append(fo, "--instance", "a")...)
	if err != nil {
		t.Fatal(err)
	}
	defer a2.kill()
	if r, err := getReadyz(a2.addr); err != nil || r.Role != "standby" {
		t.Fatalf("restarted a's /readyz: %+v %v", r, err)
	}
	if err := b.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	took = waitServing(t, a2.addr, 10*time.Second)
	t.Logf("takeover from a paused b: %s", took.Round(time.Millisecond))
	clA2 := memberClient(t, dev, "http://"+a2.addr)
	if _, err := clA2.CreateEntry(ctx, wire.Entry{ID: uuid.NewString(), Kind: "hours", Quantity: 1, At: time.Now().UTC()}); err != nil {
		t.Fatalf("write to a after it took over: %v", err)
	}
	if err := b.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	id := uuid.NewString()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = clB.CreateEntry(cctx, wire.Entry{ID: id, Kind: "hours", Quantity: 1, Note: "to a woken old server", At: time.Now().UTC()})
	cancel()
	if err == nil {
		t.Fatalf("b, paused past its lease, accepted a write after waking: split brain")
	}
	if listAll(ctx, t, clA2)[id] {
		t.Fatalf("the write refused by woken b is stored")
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		r, err := getReadyz(b.addr)
		if err == nil && r.Role == "standby" && r.Serving != nil && r.Serving.Instance == "a" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("woken b's /readyz: %+v %v", r, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// entryOffline is an entry a device logs in its offline store.
func entryOffline() crdt.Entry {
	return crdt.Entry{ID: uuid.NewString(), Kind: "hours", Quantity: 1, Note: "offline", At: time.Now().UTC()}
}

// TestFailoverNodeKill: two failover instances on a three-node cluster;
// the node leading the lease bucket's stream is killed under write load.
// Renewals stall until JetStream elects a new leader, so the serving
// instance may lose the lease and an instance take over: writes pause
// and resume (the test waits for 100 more), nothing acknowledged is
// lost, and /readyz, sampled every 50 ms on both, never shows both
// serving at once.
func TestFailoverNodeKill(t *testing.T) {
	bin, natsBin := buildCircled(t), buildNATSServer(t)
	nodes, urls := startNATSCluster(t, natsBin)
	dataA := filepath.Join(t.TempDir(), "a")
	invite := initCircle(t, bin, dataA, "--nats-url", urls, "--replicas", "3")
	dataB := filepath.Join(t.TempDir(), "b")
	if err := copyTree(dataA, dataB); err != nil {
		t.Fatal(err)
	}
	fo := []string{"--nats-url", urls, "--replicas", "3", "--failover"}
	a, b := serveFailoverPair(t, bin, dataA, dataB, fo)
	ctx := context.Background()
	dev, err := client.Join(ctx, t.TempDir(), "http://"+a.addr, invite, "Alice", "phone")
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	clients := map[string]*client.Client{a.addr: memberClient(t, dev, "http://"+a.addr), b.addr: memberClient(t, dev, "http://"+b.addr)}
	var target atomic.Pointer[client.Client]
	target.Store(clients[a.addr])

	// The monitor routes writers to the serving instance, as a load
	// balancer would, and watches for two serving at once.
	var both, switches atomic.Int64
	stopMon := make(chan struct{})
	monDone := make(chan struct{})
	go func() {
		defer close(monDone)
		serving := a.addr
		for {
			select {
			case <-stopMon:
				return
			case <-time.After(50 * time.Millisecond):
			}
			ra, errA := getReadyz(a.addr)
			rb, errB := getReadyz(b.addr)
			sa := errA == nil && ra.code == http.StatusOK
			sb := errB == nil && rb.code == http.StatusOK
			if sa && sb {
				both.Add(1)
			}
			now := serving
			if sa && !sb {
				now = a.addr
			} else if sb && !sa {
				now = b.addr
			}
			if now != serving {
				switches.Add(1)
				serving = now
				target.Store(clients[now])
			}
		}
	}()
	load := startWriters(ctx, 4, 4000, func() *client.Client { return target.Load() })
	time.Sleep(time.Second)
	victim := streamLeader(t, urls, nodes, "KV_"+"circ_lease")
	killedAt := time.Now()
	victim.kill()
	deadline := time.Now().Add(45 * time.Second)
	for load.ackedSince(killedAt) < 100 {
		if time.Now().After(deadline) {
			load.finish()
			close(stopMon)
			t.Fatalf("only %d writes acknowledged in the 45 s after %s was killed (%d failed)\na:\n%s\nb:\n%s\nlease: %s", load.ackedSince(killedAt), victim.name, load.failed.Load(), a.logs.tail(15), b.logs.tail(15), leaseState(urls))
		}
		time.Sleep(50 * time.Millisecond)
	}
	pause := load.longestPauseSince(killedAt)
	victim.start(t)
	load.finish()
	close(stopMon)
	<-monDone
	if n := both.Load(); n > 0 {
		t.Fatalf("/readyz showed both instances serving in %d samples", n)
	}
	// The restarted node's return can move leaders again: wait (at most
	// 30 s) for an instance serving.
	var serving *client.Client
	deadline = time.Now().Add(30 * time.Second)
	for serving == nil {
		for _, addr := range []string{a.addr, b.addr} {
			if r, err := getReadyz(addr); err == nil && r.code == http.StatusOK {
				serving = clients[addr]
			}
		}
		if serving == nil && time.Now().After(deadline) {
			t.Fatalf("no instance serves 30 s after %s came back\na:\n%s\nb:\n%s", victim.name, a.logs.tail(15), b.logs.tail(15))
		}
		time.Sleep(50 * time.Millisecond)
	}
	stored := listAll(ctx, t, serving)
	if lost := lostOf(load.acked, stored); lost > 0 {
		t.Fatalf("%d of %d acknowledged entries lost", lost, len(load.acked))
	}
	t.Logf("%s (the lease's stream leader) killed: longest pause in acknowledged writes %s, %d changes of serving instance, %d entries acknowledged, all stored",
		victim.name, pause.Round(time.Millisecond), switches.Load(), len(load.acked))
}

// leaseState describes the lease bucket's stream and entry, for a
// failure message.
func leaseState(urls string) string {
	nc, err := nats.Connect(urls)
	if err != nil {
		return err.Error()
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out := ""
	if st, err := js.Stream(ctx, "KV_circ_lease"); err == nil {
		if info, err := st.Info(ctx); err == nil {
			out += fmt.Sprintf("stream msgs=%d first=%d last=%d leader=%v max_age=%s; ", info.State.Msgs, info.State.FirstSeq, info.State.LastSeq, info.Cluster, info.Config.MaxAge)
		} else {
			out += "stream info: " + err.Error() + "; "
		}
	}
	if kv, err := js.KeyValue(ctx, "circ_lease"); err == nil {
		if e, err := kv.Get(ctx, "serving"); err == nil {
			out += fmt.Sprintf("entry rev=%d created=%s (%s ago) value=%s", e.Revision(), e.Created().Format(time.RFC3339Nano), time.Since(e.Created()).Round(time.Millisecond), e.Value())
		} else {
			out += "get: " + err.Error()
		}
	}
	return out
}

// serveFailoverPair starts instance a on dataA and, once a serves,
// instance b on dataB, both with the flags fo (--failover among them):
// a holds the lease and b stands by. Both are killed when the test ends.
func serveFailoverPair(t *testing.T, bin, dataA, dataB string, fo []string) (a, b *proc) {
	t.Helper()
	a, err := serve(bin, dataA, "127.0.0.1:0", append(fo, "--instance", "a")...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.kill)
	waitServing(t, a.addr, 20*time.Second)
	if b, err = serve(bin, dataB, "127.0.0.1:0", append(fo, "--instance", "b")...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.kill)
	return a, b
}
