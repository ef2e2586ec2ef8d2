package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/circles-coop/circles/federation"
	"github.com/circles-coop/circles/federation/hub"
)

type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time       { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) move(d time.Duration) { c.offset.Add(int64(d)) }
func mustUserKey(t *testing.T) nkeys.KeyPair {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func pub(t *testing.T, kp nkeys.KeyPair) string {
	t.Helper()
	p, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// mustHub serves a hub with clock c; it returns the hub, its directory
// and its first invite.
func mustHub(t *testing.T, c *clock) (*hub.Hub, string, string) {
	t.Helper()
	dir := t.TempDir()
	res, err := hub.Init(dir, "Energy co-op", c.now())
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	h, err := hub.Open(context.Background(), hub.Config{DataDir: dir, Listen: "127.0.0.1:0", LeafListen: "127.0.0.1:0", Now: c.now})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	return h, dir, res.Invite
}

type answer struct {
	status int
	code   string
	msg    string
	body   []byte
}

func post(t *testing.T, h *hub.Hub, path string, body []byte) answer {
	t.Helper()
	res, err := http.Post("http://"+h.HTTPAddr()+path, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var eb federation.ErrorBody
	_ = json.Unmarshal(b, &eb)
	return answer{res.StatusCode, eb.Error.Code, eb.Error.Message, b}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readState(t *testing.T, dir string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestJoinRefusals(t *testing.T) {
	c := &clock{}
	h, dir, invite := mustHub(t, c)
	good := federation.JoinRequest{Invite: invite, CircleID: "circleA", Name: "Circle A", NKey: pub(t, mustUserKey(t))}
	acct, _ := nkeys.CreateAccount()
	acctPub, _ := acct.PublicKey()
	long := strings.Repeat("x", federation.MaxIDLen+1)
	with := func(f func(r *federation.JoinRequest)) []byte {
		r := good
		f(&r)
		return mustJSON(t, r)
	}
	before := readState(t, dir)
	for _, tc := range []struct {
		name   string
		body   []byte
		status int
		msg    string
	}{
		{"unknown invite", with(func(r *federation.JoinRequest) { r.Invite = "nope" }), 403, "invite unknown"},
		{"empty invite", with(func(r *federation.JoinRequest) { r.Invite = "" }), 403, "invite unknown"},
		{"dot in circle id", with(func(r *federation.JoinRequest) { r.CircleID = "a.b" }), 400, "circle id"},
		{"wildcard circle id", with(func(r *federation.JoinRequest) { r.CircleID = "*" }), 400, "circle id"},
		{"full wildcard circle id", with(func(r *federation.JoinRequest) { r.CircleID = ">" }), 400, "circle id"},
		{"space in circle id", with(func(r *federation.JoinRequest) { r.CircleID = "a b" }), 400, "circle id"},
		{"empty circle id", with(func(r *federation.JoinRequest) { r.CircleID = "" }), 400, "circle id"},
		{"long circle id", with(func(r *federation.JoinRequest) { r.CircleID = long }), 400, "circle id"},
		{"no name", with(func(r *federation.JoinRequest) { r.Name = " " }), 400, "name"},
		{"account key", with(func(r *federation.JoinRequest) { r.NKey = acctPub }), 400, "nkey"},
		{"a seed instead of a key", with(func(r *federation.JoinRequest) { s, _ := mustUserKey(t).Seed(); r.NKey = string(s) }), 400, "nkey"},
		{"unknown field", []byte(`{"invite":"x","circle_id":"a","name":"A","nkey":"U","admin":true}`), 400, "unknown field"},
		{"not JSON", []byte(`{`), 400, "JSON"},
		{"too large", bytes.Repeat([]byte(" "), federation.MaxRequestLen+10), 413, "bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := post(t, h, federation.PathJoin, tc.body)
			if got.status != tc.status || !strings.Contains(got.msg, tc.msg) {
				t.Fatalf("POST /v1/join = %d %s, want %d with %q", got.status, got.body, tc.status, tc.msg)
			}
			if after := readState(t, dir); !bytes.Equal(after, before) {
				t.Fatalf("a refused join changed the hub's state")
			}
			if n := len(h.Members()); n != 0 {
				t.Fatalf("Members() = %d after a refused join, want 0", n)
			}
		})
	}

	// The invite works once.
	if got := post(t, h, federation.PathJoin, mustJSON(t, good)); got.status != 200 {
		t.Fatalf("join: %d %s", got.status, got.body)
	}
	before = readState(t, dir)
	reuse := good
	reuse.CircleID, reuse.NKey = "circleB", pub(t, mustUserKey(t))
	if got := post(t, h, federation.PathJoin, mustJSON(t, reuse)); got.status != 403 || !strings.Contains(got.msg, "already used") {
		t.Fatalf("reused invite: %d %s, want 403 invite already used", got.status, got.body)
	}
	// A member cannot join again, even with a new invite; another circle
	// cannot take its key.
	inv, err := h.Invite(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	before = readState(t, dir)
	again := good
	again.Invite = inv.Invite
	if got := post(t, h, federation.PathJoin, mustJSON(t, again)); got.status != 409 {
		t.Fatalf("member joins again: %d %s, want 409", got.status, got.body)
	}
	stolen := reuse
	stolen.Invite, stolen.NKey = inv.Invite, good.NKey
	if got := post(t, h, federation.PathJoin, mustJSON(t, stolen)); got.status != 409 {
		t.Fatalf("another circle with a member's key: %d %s, want 409", got.status, got.body)
	}
	if !bytes.Equal(readState(t, dir), before) {
		t.Fatal("a refused join changed the hub's state")
	}
	// A circle that left cannot come back in its name with another key.
	if err := h.Expel("circleA"); err != nil {
		t.Fatal(err)
	}
	before = readState(t, dir)
	impostor := again
	impostor.NKey = pub(t, mustUserKey(t))
	if got := post(t, h, federation.PathJoin, mustJSON(t, impostor)); got.status != 409 || !strings.Contains(got.msg, "another nkey") {
		t.Fatalf("another key in a former member's name: %d %s, want 409", got.status, got.body)
	}
	if !bytes.Equal(readState(t, dir), before) {
		t.Fatal("a refused join changed the hub's state")
	}

	// An invite expires.
	c.move(2 * time.Hour)
	reuse.Invite = inv.Invite
	if got := post(t, h, federation.PathJoin, mustJSON(t, reuse)); got.status != 403 || !strings.Contains(got.msg, "expired") {
		t.Fatalf("expired invite: %d %s, want 403 invite expired", got.status, got.body)
	}
	if !bytes.Equal(readState(t, dir), before) {
		t.Fatal("a refused join changed the hub's state")
	}
	if _, err := h.Invite(0); err == nil {
		t.Fatal("Invite(0) made an invite")
	}
}

func TestLeaveNeedsTheCirclesKey(t *testing.T) {
	c := &clock{}
	h, dir, invite := mustHub(t, c)
	kp := mustUserKey(t)
	if got := post(t, h, federation.PathJoin, mustJSON(t, federation.JoinRequest{Invite: invite, CircleID: "circleA", Name: "A", NKey: pub(t, kp)})); got.status != 200 {
		t.Fatalf("join: %d %s", got.status, got.body)
	}
	notice := func(signer nkeys.KeyPair, n federation.Notice) []byte {
		sn, err := federation.SignNotice(signer, n)
		if err != nil {
			t.Fatal(err)
		}
		return mustJSON(t, sn)
	}
	leave := federation.Notice{Type: federation.NoticeLeave, FederationID: h.FederationID(), CircleID: "circleA", IssuedAt: c.now().UnixMilli()}
	before := readState(t, dir)
	for _, tc := range []struct {
		name   string
		body   []byte
		status int
	}{
		{"signed by another key", notice(mustUserKey(t), leave), 401},
		{"old notice", notice(kp, federation.Notice{Type: leave.Type, FederationID: leave.FederationID, CircleID: leave.CircleID, IssuedAt: c.now().Add(-time.Hour).UnixMilli()}), 401},
		{"other federation", notice(kp, federation.Notice{Type: leave.Type, FederationID: "other", CircleID: leave.CircleID, IssuedAt: leave.IssuedAt}), 401},
		{"a status notice", notice(kp, federation.Notice{Type: federation.NoticeStatus, FederationID: leave.FederationID, CircleID: leave.CircleID, IssuedAt: leave.IssuedAt}), 401},
		{"unknown circle", notice(kp, federation.Notice{Type: leave.Type, FederationID: leave.FederationID, CircleID: "circleZ", IssuedAt: leave.IssuedAt}), 401},
		{"bad circle id", notice(kp, federation.Notice{Type: leave.Type, FederationID: leave.FederationID, CircleID: "a.>", IssuedAt: leave.IssuedAt}), 400},
		{"signature of other bytes", func() []byte {
			sn, _ := federation.SignNotice(kp, leave)
			other, _ := federation.SignNotice(kp, federation.Notice{Type: "status", FederationID: leave.FederationID, CircleID: "circleA", IssuedAt: leave.IssuedAt})
			sn.Signature = other.Signature
			return mustJSON(t, sn)
		}(), 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := post(t, h, federation.PathLeave, tc.body); got.status != tc.status {
				t.Fatalf("POST /v1/leave = %d %s, want %d", got.status, got.body, tc.status)
			}
			if len(h.Members()) != 1 || !bytes.Equal(readState(t, dir), before) {
				t.Fatal("a refused leave notice changed the membership")
			}
		})
	}
	if got := post(t, h, federation.PathLeave, notice(kp, leave)); got.status != 200 || !strings.Contains(string(got.body), `"left"`) {
		t.Fatalf("leave: %d %s", got.status, got.body)
	}
	if len(h.Members()) != 0 {
		t.Fatal("the circle is still a member after leaving")
	}
	st := federation.Notice{Type: federation.NoticeStatus, FederationID: h.FederationID(), CircleID: "circleA", IssuedAt: c.now().UnixMilli()}
	if got := post(t, h, federation.PathStatus, notice(kp, st)); got.status != 200 || !strings.Contains(string(got.body), `"left"`) {
		t.Fatalf("status after leaving: %d %s", got.status, got.body)
	}
}

func TestOfflineInviteAndExpel(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	if _, err := hub.Init(dir, "Tool libraries", now); err != nil {
		t.Fatal(err)
	}
	if _, err := hub.Init(dir, "Again", now); !errors.Is(err, hub.ErrInitialized) {
		t.Fatalf("Init twice: %v, want ErrInitialized", err)
	}
	if _, err := hub.Init(t.TempDir(), " ", now); err == nil {
		t.Fatal("Init with no name succeeded")
	}
	// No hub serves: the invite is written to the state.
	inv, err := hub.MakeInvite(context.Background(), dir, time.Hour, now)
	if err != nil || inv.Invite == "" {
		t.Fatalf("MakeInvite offline: %v", err)
	}
	if err := hub.ExpelCircle(context.Background(), dir, "nobody"); err == nil || !errors.Is(err, hub.ErrNotMember) {
		t.Fatalf("ExpelCircle of a stranger: %v, want ErrNotMember", err)
	}
	if err := hub.ExpelCircle(context.Background(), dir, "bad.id"); !errors.Is(err, federation.ErrBadID) {
		t.Fatalf("ExpelCircle(bad.id) = %v, want ErrBadID", err)
	}
	h, err := hub.Open(context.Background(), hub.Config{DataDir: dir, Listen: "127.0.0.1:0", LeafListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, f := range []string{"hub.sock", "keys.json", "state.json"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s has mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	if _, err := hub.Open(context.Background(), hub.Config{DataDir: dir, Listen: "127.0.0.1:0", LeafListen: "127.0.0.1:0"}); !errors.Is(err, hub.ErrLocked) {
		t.Fatalf("a second hub on the same directory: %v, want ErrLocked", err)
	}
	// The offline invite works on the serving hub, once.
	kp := mustUserKey(t)
	if got := post(t, h, federation.PathJoin, mustJSON(t, federation.JoinRequest{Invite: inv.Invite, CircleID: "c1", Name: "C1", NKey: pub(t, kp)})); got.status != 200 {
		t.Fatalf("join with the offline invite: %d %s", got.status, got.body)
	}
	// Expel through the serving hub's control socket.
	if err := hub.ExpelCircle(context.Background(), dir, "c1"); err != nil {
		t.Fatalf("ExpelCircle: %v", err)
	}
	if len(h.Members()) != 0 {
		t.Fatal("expelled circle still a member")
	}
	if err := hub.ExpelCircle(context.Background(), dir, "c1"); err == nil {
		t.Fatal("expelling an expelled circle succeeded")
	}
}
