package link_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/circles-coop/circles/federation"
	"github.com/circles-coop/circles/federation/link"
)

// TestNKeyMadeOnce: the circle's nkey is made on first use, kept 0600, and
// the same key is loaded again.
func TestNKeyMadeOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "federation")
	l1, err := link.New(link.Config{Dir: dir, CircleID: "c1", CircleName: "One"})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "circle.nk"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("circle.nk mode = %v, want 0600", fi.Mode().Perm())
	}
	l2, err := link.New(link.Config{Dir: dir, CircleID: "c1", CircleName: "One"})
	if err != nil {
		t.Fatal(err)
	}
	if l1.PublicKey() != l2.PublicKey() || l1.PublicKey()[0] != 'U' {
		t.Fatalf("PublicKey() = %q then %q, want the same user key", l1.PublicKey(), l2.PublicKey())
	}
	if fs := l2.Federations(); len(fs) != 0 {
		t.Fatalf("Federations() = %v, want none", fs)
	}
	if err := os.WriteFile(filepath.Join(dir, "circle.nk"), []byte("not a seed"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := link.New(link.Config{Dir: dir, CircleID: "c1"}); err == nil {
		t.Fatal("New with a broken nkey file succeeded")
	}
	if _, err := link.New(link.Config{Dir: t.TempDir(), CircleID: "c.1"}); !errors.Is(err, federation.ErrBadID) {
		t.Fatalf("New with circle id c.1 = %v, want ErrBadID", err)
	}
}

func TestCheckJoin(t *testing.T) {
	for _, hub := range []string{"http://hub:7480", "https://hub.example.org", "http://127.0.0.1:1/"} {
		if err := link.CheckJoin(hub, "invite"); err != nil {
			t.Errorf("CheckJoin(%q) = %v, want nil", hub, err)
		}
	}
	for _, hub := range []string{"", "hub:7480", "ftp://hub", "http://", "http://u:p@hub", "http://hub/v1/join", "http://hub?x=1", "http://hub#f", "nats://hub:7422"} {
		if err := link.CheckJoin(hub, "invite"); err == nil {
			t.Errorf("CheckJoin(%q) = nil, want an error", hub)
		}
	}
	if err := link.CheckJoin("http://hub", " "); err == nil {
		t.Error("CheckJoin with an empty invite = nil")
	}
}

// TestNoServer: without an embedded nats-server (external NATS) a join is
// refused before any hub is called, and a leave of nothing is refused.
func TestNoServer(t *testing.T) {
	l, err := link.New(link.Config{Dir: t.TempDir(), CircleID: "c1", CircleName: "One"})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Join(context.Background(), "p1", "http://127.0.0.1:1", "code"); !errors.Is(err, link.ErrNoServer) {
		t.Fatalf("Join without a server = %v, want ErrNoServer", err)
	}
	if _, err := l.Leave(context.Background(), "p2", "F"); !errors.Is(err, link.ErrNotMember) {
		t.Fatalf("Leave of no federation = %v, want ErrNotMember", err)
	}
	if l.Member("F") || l.Linked("F") || l.Linked("bad.id") {
		t.Fatal("a link with no memberships says it is a member or linked")
	}
}
