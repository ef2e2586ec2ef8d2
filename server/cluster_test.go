package server_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/mobile-api/client"
	"github.com/circles-coop/circles/server"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/sync/store"
	"github.com/circles-coop/circles/wire"
)

// startCluster runs three nats-server nodes with JetStream, clustered over
// routes on loopback, each with its own store directory, until the test
// ends. It returns the nodes and their client URLs joined by commas.
func startCluster(t *testing.T) ([]*natsserver.Server, string) {
	t.Helper()
	ports := make([]int, 3)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	routes := make([]string, 3)
	for i, p := range ports {
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", p)
	}
	var nodes []*natsserver.Server
	var urls []string
	for i := range 3 {
		opts := &natsserver.Options{
			ServerName: fmt.Sprintf("node%d", i),
			Host:       "127.0.0.1",
			Port:       natsserver.RANDOM_PORT,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			Cluster:    natsserver.ClusterOpts{Name: "circles-test", Host: "127.0.0.1", Port: ports[i]},
			Routes:     natsserver.RoutesFromStr(strings.Join(routes, ",")),
			NoSigs:     true,
			NoLog:      true,
		}
		srv, err := natsserver.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		go srv.Start()
		t.Cleanup(func() {
			srv.Shutdown()
			srv.WaitForShutdown()
		})
		if !srv.ReadyForConnections(10 * time.Second) {
			t.Fatalf("node %d not ready", i)
		}
		nodes = append(nodes, srv)
		urls = append(urls, srv.ClientURL())
	}
	return nodes, strings.Join(urls, ",")
}

// waitLeaders waits (at most 20 s) until every stream of the store has a
// leader again.
func waitLeaders(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, name := range store.Streams() {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			st, err := js.Stream(ctx, name)
			var info *jetstream.StreamInfo
			if err == nil {
				info, err = st.Info(ctx)
			}
			cancel()
			if err == nil && info.Cluster != nil && info.Cluster.Leader != "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("stream %s has no leader 20 s after a node went: %v", name, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// TestClusterMode serves a circle whose store is on a three-node JetStream
// cluster (--nats-url, --replicas 3): every stream has three replicas;
// with one node shut down the circle still stores and lists entries; a
// backup taken from it restores as an embedded circle; and a restarted
// circled finds everything on the two remaining nodes.
func TestClusterMode(t *testing.T) {
	ctx := context.Background()
	nodes, urls := startCluster(t)
	c := servertest.Init(t, "Cluster Circle", crdt.DefaultPolicies(), servertest.WithConfig(func(cfg *server.Config) {
		cfg.NATSURL, cfg.Replicas = urls, 3
	}))
	c.Start()

	nc, err := nats.Connect(urls)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	for _, name := range store.Streams() {
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s on the cluster: %v", name, err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Fatalf("stream %s: %d replicas configured, cluster %+v; want 3 (a leader and 2 followers)", name, info.Config.Replicas, info.Cluster)
		}
	}

	// A second circle on the same cluster is refused before it writes.
	cfg := server.DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.NATSURL, cfg.Replicas = t.TempDir(), "127.0.0.1:0", urls, 3
	if _, err := server.Init(ctx, cfg, "Intruder", crdt.DefaultPolicies()); !errors.Is(err, server.ErrInitialized) {
		t.Fatalf("a second Init on the cluster = %v, want ErrInitialized", err)
	}

	dev, err := client.Join(ctx, t.TempDir(), c.URL(), c.FounderInvite, "Alice", "phone")
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	cl, _ := dev.Client()
	acked := map[string]bool{}
	write := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			id := uuid.NewString()
			var err error
			// After a node goes, its streams elect new leaders: a write may
			// be refused (503) for a few seconds, never half stored.
			for try := 0; try < 100; try++ {
				if _, err = cl.CreateEntry(ctx, wire.Entry{ID: id, Kind: "hours", Quantity: 1, Note: "cluster", At: time.Now().UTC()}); err == nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				t.Fatalf("write with the cluster degraded: %v", err)
			}
			acked[id] = true
		}
	}
	listed := func() map[string]bool {
		t.Helper()
		list, err := cl.ListEntries(ctx, client.ListOptions{Limit: 1000})
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		out := map[string]bool{}
		for _, e := range list.Entries {
			out[e.ID] = true
		}
		return out
	}
	write(10)

	// One node of three goes: the streams keep a quorum.
	nodes[2].Shutdown()
	nodes[2].WaitForShutdown()
	waitLeaders(t, js)
	write(10)
	got := listed()
	for id := range acked {
		if !got[id] {
			t.Fatalf("entry %s acknowledged with the cluster degraded is not listed", id)
		}
	}

	out := filepath.Join(t.TempDir(), "cluster.backup")
	// Right after a node is lost, a read may still find no responder for
	// a few seconds (the backup then fails whole and says so): retry.
	for try := 0; ; try++ {
		_, err := server.BackupFile(ctx, c.DataDir, out, nil)
		if err == nil {
			break
		}
		if try == 50 {
			t.Fatalf("BackupFile in cluster mode: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	dir := filepath.Join(t.TempDir(), "embedded")
	if _, err := server.Restore(ctx, dir, out, nil); err != nil {
		t.Fatalf("Restore of a cluster backup: %v", err)
	}

	// circled restarts against the two remaining nodes: nothing is lost.
	c.Stop()
	c.Start()
	got = listed()
	if len(got) != len(acked) {
		t.Fatalf("after restart on the degraded cluster: %d entries, want %d", len(got), len(acked))
	}
	addr := c.Server.Addr()
	c.Stop()
	// Stopped, a cluster circle is not backed up from the data directory.
	if _, err := server.BackupFile(ctx, c.DataDir, out+".2", nil); err == nil || !strings.Contains(err.Error(), "has no embedded store") {
		t.Fatalf("BackupFile of a stopped cluster circle = %v, want: no embedded store", err)
	}

	// The backup, restored as an embedded circle, holds them too.
	openRestored(t, dir, addr)
	if got = listed(); len(got) != len(acked) {
		t.Fatalf("the cluster's backup restored embedded: %d entries, want %d", len(got), len(acked))
	}
}
