package replica_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/circles-coop/circles/federation/replica"
)

// The harness: a hub nats-server with a leaf node listener and one user
// per circle whose permissions mirror the federation's contract (publish
// only fed.F.c.<circle>.>, subscribe fed.F.>, nothing else), and one
// embedded nats-server with JetStream per circle, linked to the hub as a
// leaf node with that user. Everything on 127.0.0.1.

const fed = "food"

func mustHub(tb testing.TB, circles ...string) *server.Server {
	tb.Helper()
	opts := &server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true, ServerName: "hub"}
	opts.LeafNode.Host, opts.LeafNode.Port = "127.0.0.1", -1
	for _, c := range circles {
		opts.Users = append(opts.Users, &server.User{Username: c, Password: c + "-pw", Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{replica.CircleSubject(fed, c, ">")}},
			Subscribe: &server.SubjectPermission{Allow: []string{replica.FederationWildcard(fed)}},
		}})
	}
	s := mustServer(tb, opts)
	// nats-server writes the port it bound into the options it was given.
	hubLeafPort[s] = opts.LeafNode.Port
	return s
}

// hubLeafPort is the leaf node port of each hub a test started.
var hubLeafPort = map[*server.Server]int{}

func mustServer(tb testing.TB, opts *server.Options) *server.Server {
	tb.Helper()
	s, err := server.NewServer(opts)
	if err != nil {
		tb.Fatalf("nats-server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		tb.Fatalf("nats-server %s not ready", opts.ServerName)
	}
	tb.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// memberSource is what a test circle shares; the delegates are set by
// the test (the real Source, from mandates, is tested in package server).
type memberSource struct {
	name string
	mu   sync.Mutex
	dels []replica.Delegate
}

func (s *memberSource) Profile() replica.Profile { return replica.Profile{Name: s.name} }
func (s *memberSource) Delegates(string) []replica.Delegate {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]replica.Delegate(nil), s.dels...)
}
func (s *memberSource) Scorecard(context.Context) (json.RawMessage, error) {
	return json.RawMessage(`{"period":"quarter"}`), nil
}
func (s *memberSource) setDelegates(d ...replica.Delegate) {
	s.mu.Lock()
	s.dels = d
	s.mu.Unlock()
}

// circle is a test circle: its nats-server, linked to the hub, and its
// replica manager.
type circle struct {
	tb    testing.TB
	id    string
	dir   string
	hub   *server.Server
	ns    *server.Server
	opts  *server.Options
	nc    *nats.Conn
	src   *memberSource
	mgr   *replica.Manager
	rep   *replica.Replica
	extra func(*replica.ManagerConfig)
}

func newCircle(tb testing.TB, hub *server.Server, id string, extra func(*replica.ManagerConfig)) *circle {
	tb.Helper()
	c := &circle{tb: tb, id: id, dir: tb.TempDir(), hub: hub, src: &memberSource{name: "Circle " + id}, extra: extra}
	c.start()
	tb.Cleanup(c.stop)
	return c
}

func (c *circle) leafURL() *url.URL {
	u, _ := url.Parse(fmt.Sprintf("nats-leaf://%s:%s-pw@127.0.0.1:%d", c.id, c.id, hubLeafPort[c.hub]))
	return u
}

// start starts the circle's nats-server (with its stored data) and
// attaches the replica.
func (c *circle) start() {
	c.tb.Helper()
	opts := &server.Options{ServerName: "circle-" + c.id, DontListen: true, JetStream: true, StoreDir: c.dir, NoSigs: true, NoLog: true}
	opts.LeafNode.Remotes = []*server.RemoteLeafOpts{{URLs: []*url.URL{c.leafURL()}}}
	c.startWith(opts)
}

// startWith starts the circle with opts (its leaf remote maybe disabled).
func (c *circle) startWith(opts *server.Options) {
	c.tb.Helper()
	c.opts = opts
	s, err := server.NewServer(c.opts.Clone())
	if err != nil {
		c.tb.Fatalf("circle nats-server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		c.tb.Fatalf("circle %s nats-server not ready", c.id)
	}
	c.ns = s
	nc, err := nats.Connect(s.ClientURL(), nats.InProcessServer(s))
	if err != nil {
		c.tb.Fatalf("connect: %v", err)
	}
	c.nc = nc
	js, err := jetstream.New(nc)
	if err != nil {
		c.tb.Fatal(err)
	}
	cfg := replica.ManagerConfig{Circle: c.id, JS: js, Source: c.src, AnnounceEvery: 300 * time.Millisecond, RefreshEvery: 100 * time.Millisecond}
	if c.extra != nil {
		c.extra(&cfg)
	}
	c.mgr = replica.NewManager(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.mgr.Open(ctx); err != nil {
		c.tb.Fatalf("manager open: %v", err)
	}
	r, err := c.mgr.Attach(ctx, nc, fed, "Food alliance")
	if err != nil {
		c.tb.Fatalf("attach: %v", err)
	}
	c.rep = r
	if !opts.LeafNode.Remotes[0].Disabled {
		waitFor(c.tb, 10*time.Second, "leaf link of "+c.id, func() bool { return s.NumLeafNodes() == 1 })
	}
}

func (c *circle) stop() {
	if c.ns == nil {
		return
	}
	c.mgr.Close()
	c.nc.Close()
	c.ns.Shutdown()
	c.ns.WaitForShutdown()
	c.ns = nil
}

// setLink enables or disables the circle's leaf remote at runtime.
func (c *circle) setLink(up bool) {
	c.tb.Helper()
	o := c.opts.Clone()
	// A new remote value: Clone shares the old one with the running server.
	o.LeafNode.Remotes = []*server.RemoteLeafOpts{{URLs: []*url.URL{c.leafURL()}, Disabled: !up}}
	if err := c.ns.ReloadOptions(o); err != nil {
		c.tb.Fatalf("reload leaf remote: %v", err)
	}
	c.opts = o
	want := 0
	if up {
		want = 1
	}
	waitFor(c.tb, 10*time.Second, "leaf link state of "+c.id, func() bool { return c.ns.NumLeafNodes() == want })
}

// waitFor polls cond every 10 ms until it holds or d passes.
func waitFor(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// circleView finds circle id in the federation view v.
func circleView(v replica.FederationView, id string) (replica.CircleView, bool) {
	for _, c := range v.Circles {
		if c.CircleID == id {
			return c, true
		}
	}
	return replica.CircleView{}, false
}
