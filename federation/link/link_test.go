package link_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/circles-coop/circles/federation"
	"github.com/circles-coop/circles/federation/hub"
	"github.com/circles-coop/circles/federation/link"
	"github.com/circles-coop/circles/sync/store"
)

// testHub serves a fresh hub on loopback.
func testHub(t *testing.T) (*hub.Hub, string, string) {
	t.Helper()
	dir := t.TempDir()
	res, err := hub.Init(dir, "Food alliance", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	h, err := hub.Open(context.Background(), hub.Config{DataDir: dir, Listen: "127.0.0.1:0", LeafListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h, dir, res.Invite
}

type circle struct {
	id   string
	nats *store.NATS
	link *link.Link
	dir  string
}

func newCircle(t *testing.T, id string) *circle {
	t.Helper()
	dir := t.TempDir()
	n, err := store.StartNATS(context.Background(), store.NATSConfig{Dir: filepath.Join(dir, "nats"), ServerName: "circle-" + id})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s := time.Now(); n.Close(); t.Logf("close %s: %s", id, time.Since(s)) })
	l, err := link.New(link.Config{Dir: filepath.Join(dir, "federation"), NATS: n, CircleID: id, CircleName: "Circle " + id, WatchEvery: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return &circle{id: id, nats: n, link: l, dir: dir}
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMechanics(t *testing.T) {
	h, dir, inv := testHub(t)
	fed := h.FederationID()
	hubURL := "http://" + h.HTTPAddr()
	cs := []*circle{newCircle(t, "A"), newCircle(t, "B"), newCircle(t, "C")}
	for i, c := range cs {
		code := inv
		if i > 0 {
			in, err := hub.MakeInvite(context.Background(), dir, time.Hour, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			code = in.Invite
		}
		if _, err := c.link.Join(context.Background(), "p-"+c.id, hubURL, code); err != nil {
			t.Fatalf("join %s: %v", c.id, err)
		}
	}
	for _, c := range cs {
		c := c
		waitFor(t, c.id+" connected", 10*time.Second, func() bool { f, _ := c.link.Federation(fed); return f.Connected })
	}
	subs := map[string]*nats.Subscription{}
	for _, c := range cs {
		s, err := c.nats.Conn().SubscribeSync(federation.FederationWildcard(fed))
		if err != nil {
			t.Fatal(err)
		}
		subs[c.id] = s
		lit, err := c.nats.Conn().SubscribeSync(federation.CircleSubject(fed, "A", "lit"))
		if err != nil {
			t.Fatal(err)
		}
		subs[c.id+"lit"] = lit
	}
	time.Sleep(500 * time.Millisecond)
	a := cs[0].nats.Conn()
	a.Publish(federation.CircleSubject(fed, "A", "x"), []byte("hello"))
	a.Publish(federation.CircleSubject(fed, "B", "x"), []byte("forged"))
	a.Publish(federation.CircleSubject(fed, "A", "lit"), []byte("literal"))
	a.Flush()
	for _, id := range []string{"B", "C"} {
		for i := 0; i < 3; i++ {
			m, err := subs[id].NextMsg(2 * time.Second)
			if err != nil {
				t.Logf("%s: %v", id, err)
				break
			}
			t.Logf("%s got %s %q", id, m.Subject, m.Data)
		}
		m, err := subs[id+"lit"].NextMsg(2 * time.Second)
		t.Logf("%s literal: %v %v", id, m, err)
	}
	fmt.Fprintln(os.Stderr, "expel A")
	if err := hub.ExpelCircle(context.Background(), dir, "A"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "A expelled", 10*time.Second, func() bool { f, _ := cs[0].link.Federation(fed); return f.Status == link.StatusExpelled })
}
