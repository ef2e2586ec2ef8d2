// Package repoclient_test runs a phone's sync layer built on the official
// @automerge/automerge-repo packages (tools/js/repo-client.mjs: a Repo with
// the WebSocket client adapter) against a real circle server's GET
// /v1/repo, and checks through the REST API what the server holds. It
// needs node on PATH and tools/js/node_modules (make js-deps).
package repoclient_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/fxamacker/cbor/v2"
	"github.com/google/uuid"

	"github.com/circles-coop/circles/authority/fault"
	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

func TestRepoClient(t *testing.T) {
	tc := servertest.Start(t, "Repo Client Circle")
	base := tc.URL()
	founder := mustEnroll(t, base, tc.FounderInvite, "Founder")
	phone := mustEnroll(t, base, founder.invite(t), "Phone")

	var circle wire.Circle
	phone.call(t, http.MethodGet, "/v1/circle", nil, http.StatusOK, &circle)
	own := "automerge:" + circle.Docs["ledger"]
	var others string
	for _, m := range circle.Members {
		if m.MemberID == founder.memberID {
			others = "automerge:" + m.Ledgers[len(m.Ledgers)-1]
		}
	}
	if others == "" {
		t.Fatalf("GET /v1/circle lists no ledger of the founder: %+v", circle.Members)
	}

	js := startJS(t)
	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/v1/repo?token=" + url.QueryEscape(phone.token)
	js.do(t, map[string]any{"cmd": "init", "url": wsURL, "actor": phone.actor}, nil)
	var conn struct {
		ServerPeer string `json:"server_peer"`
	}
	js.do(t, map[string]any{"cmd": "connect"}, &conn)
	if !strings.HasPrefix(conn.ServerPeer, "circled-") {
		t.Errorf("the server's peer id = %q, want circled-<random>", conn.ServerPeer)
	}
	js.do(t, map[string]any{"cmd": "find", "url": own}, nil)

	// A change on the phone reaches the server and its REST view.
	e1 := entry("first entry over the WebSocket")
	js.do(t, map[string]any{"cmd": "write", "url": own, "entry": e1}, nil)
	phone.waitEntries(t, phone.memberID, []string{e1["id"].(string)})

	// A change made while disconnected arrives after reconnecting.
	js.do(t, map[string]any{"cmd": "disconnect"}, nil)
	e2 := entry("written offline")
	js.do(t, map[string]any{"cmd": "write", "url": own, "entry": e2}, nil)
	if got := phone.entryIDs(t, phone.memberID); slices.Contains(got, e2["id"].(string)) {
		t.Fatalf("the offline entry reached the server before reconnecting")
	}
	js.do(t, map[string]any{"cmd": "connect"}, nil)
	phone.waitEntries(t, phone.memberID, []string{e1["id"].(string), e2["id"].(string)})

	// Another member's ledger can be read, and a REST write by that member
	// is pushed to the connected phone without it asking again.
	e0 := founder.logEntry(t, "the founder logs before the phone looks")
	var found struct {
		Entries []string `json:"entries"`
	}
	js.do(t, map[string]any{"cmd": "find", "url": others}, &found)
	if !slices.Equal(found.Entries, []string{e0}) {
		t.Fatalf("the phone's copy of the founder's ledger holds %v, want [%s]", found.Entries, e0)
	}
	e3 := founder.logEntry(t, "the founder logs by REST")
	js.do(t, map[string]any{"cmd": "wait-entry", "url": others, "id": e3}, nil)

	// Writing into another member's ledger is refused: nothing is applied,
	// the phone is told which change and why, and its other documents
	// keep syncing.
	founderBefore := phone.entryIDs(t, founder.memberID)
	var wrote struct {
		Heads []string `json:"heads"`
	}
	js.do(t, map[string]any{"cmd": "write", "url": others, "entry": entry("not mine to write")}, &wrote)
	var got struct {
		Notice struct {
			Type    string   `json:"type"`
			Doc     string   `json:"doc"`
			Changes []string `json:"changes"`
			Rule    string   `json:"rule"`
			Message string   `json:"message"`
		} `json:"notice"`
	}
	js.do(t, map[string]any{"cmd": "wait-notice", "url": others}, &got)
	n := got.Notice
	if n.Type != "refused" || "automerge:"+n.Doc != others || n.Rule != crdt.RulePermission || n.Message == "" {
		t.Errorf("notice = %+v, want type refused for %s, rule %s, with a message", n, others, crdt.RulePermission)
	}
	if len(wrote.Heads) != 1 || !slices.Equal(n.Changes, wrote.Heads) {
		t.Errorf("notice names changes %v, want the refused change %v", n.Changes, wrote.Heads)
	}
	if after := phone.entryIDs(t, founder.memberID); !slices.Equal(after, founderBefore) {
		t.Errorf("the founder's entries changed after a refused write: %v, want %v", after, founderBefore)
	}
	e4 := entry("after the refusal")
	js.do(t, map[string]any{"cmd": "write", "url": own, "entry": e4}, nil)
	phone.waitEntries(t, phone.memberID, []string{e1["id"].(string), e2["id"].(string), e4["id"].(string)})

	// An invalid entry in its own ledger is refused too (last: the phone's
	// ledger now depends on a change the server will never take).
	bad := entry("a negative quantity")
	bad["quantity"] = -1
	js.do(t, map[string]any{"cmd": "write", "url": own, "entry": bad}, nil)
	js.do(t, map[string]any{"cmd": "wait-notice", "url": own}, &got)
	if got.Notice.Type != "refused" || got.Notice.Rule == "" || len(got.Notice.Changes) != 1 {
		t.Errorf("notice for an invalid entry = %+v, want a refusal naming its rule and change", got.Notice)
	}
	if ids := phone.entryIDs(t, phone.memberID); slices.Contains(ids, bad["id"].(string)) {
		t.Errorf("the invalid entry was applied")
	}

	// A document that does not exist is unavailable.
	var missing struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	js.try(t, map[string]any{"cmd": "find", "url": "automerge:" + string(crdt.NewDocID())}, &missing)
	if missing.OK || !strings.Contains(missing.Error, "unavailable") {
		t.Errorf("find of an unknown document = %+v, want it unavailable", missing)
	}
	js.do(t, map[string]any{"cmd": "quit"}, nil)
}

// TestRepoAuth: the upgrade needs a valid token, as ?token= or a bearer
// header; without one it is refused with 401 and the API's error body.
func TestRepoAuth(t *testing.T) {
	tc := servertest.Start(t, "Repo Auth Circle")
	base := tc.URL()
	m := mustEnroll(t, base, tc.FounderInvite, "Founder")
	upgrade := http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-WebSocket-Version": {"13"}, "Sec-WebSocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}}
	for _, tt := range []struct {
		name   string
		query  string
		header http.Header
		status int
		code   string
	}{
		{"no token", "", upgrade, http.StatusUnauthorized, fault.Unauthenticated},
		{"bad token", "?token=not-a-token", upgrade, http.StatusUnauthorized, fault.Unauthenticated},
		{"forged bearer", "", withAuth(upgrade, "Bearer eyJhbGciOiJub25lIn0.e30."), http.StatusUnauthorized, fault.Unauthenticated},
		{"valid token, no upgrade", "?token=" + url.QueryEscape(m.token), nil, http.StatusBadRequest, fault.InvalidRequest},
		{"valid bearer", "", withAuth(upgrade, "Bearer "+m.token), http.StatusSwitchingProtocols, ""},
		{"valid query token", "?token=" + url.QueryEscape(m.token), upgrade, http.StatusSwitchingProtocols, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, base+"/v1/repo"+tt.query, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.header {
				req.Header[k] = v
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d", res.StatusCode, tt.status)
			}
			if tt.code == "" {
				return
			}
			var body wire.ErrorBody
			if err := json.NewDecoder(res.Body).Decode(&body); err != nil || body.Error.Code != tt.code || body.Error.Message == "" {
				t.Errorf("body = %+v (%v), want the error body with code %s", body, err, tt.code)
			}
		})
	}
}

// TestRepoRevokedDevice: revoking a device closes its open socket (1008)
// within the re-check interval, and its token no longer opens one.
func TestRepoRevokedDevice(t *testing.T) {
	tc := servertest.Start(t, "Repo Revoke Circle")
	base := tc.URL()
	first := mustEnroll(t, base, tc.FounderInvite, "Founder")
	second := mustEnroll(t, base, first.inviteFor(t, "device"), "Founder")
	if second.memberID != first.memberID {
		t.Fatalf("the device invite enrolled member %s, want %s", second.memberID, first.memberID)
	}
	ws, ctx := dialJoin(t, base, second.token)
	ended := make(chan error, 1)
	go func() {
		for {
			if _, _, err := ws.Read(ctx); err != nil {
				ended <- err
				return
			}
		}
	}()
	first.call(t, http.MethodPost, "/v1/devices/"+second.deviceID+"/revoke", nil, http.StatusOK, nil)
	select {
	case err := <-ended:
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation || !strings.Contains(ce.Reason, "revoked") {
			t.Errorf("socket ended with %v, want 1008 saying the device was revoked", err)
		}
	case <-ctx.Done():
		t.Fatalf("the revoked device's socket stayed open")
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/repo?token="+url.QueryEscape(second.token), nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("upgrade with the revoked device's token = %d, want 401", res.StatusCode)
	}
}

// dialJoin opens a socket to GET /v1/repo with a bearer token and joins.
func dialJoin(t *testing.T, base, token string) (*websocket.Conn, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/v1/repo", &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + token}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	join, err := cbor.Marshal(map[string]any{"type": "join", "senderId": "go-peer", "peerMetadata": map[string]any{}, "supportedProtocolVersions": []string{"1"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.Write(ctx, websocket.MessageBinary, join); err != nil {
		t.Fatal(err)
	}
	var peer struct {
		Type     string `cbor:"type"`
		TargetID string `cbor:"targetId"`
	}
	_, b, err := ws.Read(ctx)
	if err != nil || cbor.Unmarshal(b, &peer) != nil || peer.Type != "peer" || peer.TargetID != "go-peer" {
		t.Fatalf("answer to join = %+v (%v), want a peer message", peer, err)
	}
	return ws, ctx
}

// TestRepoShutdown: stopping the server closes open sockets with 1001
// (going away), promptly, so the clients reconnect elsewhere or later.
func TestRepoShutdown(t *testing.T) {
	tc := servertest.Start(t, "Repo Shutdown Circle")
	base := tc.URL()
	m := mustEnroll(t, base, tc.FounderInvite, "Founder")
	ws, ctx := dialJoin(t, base, m.token)
	ended := make(chan error, 1)
	go func() {
		for {
			if _, _, err := ws.Read(ctx); err != nil {
				ended <- err
				return
			}
		}
	}()
	start := time.Now()
	tc.Stop()
	select {
	case err := <-ended:
		if code := websocket.CloseStatus(err); code != websocket.StatusGoingAway {
			t.Errorf("socket ended with %v (%v), want %v", code, err, websocket.StatusGoingAway)
		}
	case <-ctx.Done():
		t.Fatalf("the socket was not closed after the server stopped")
	}
	t.Logf("server stopped and socket closed in %s", time.Since(start).Round(time.Millisecond))
}

func withAuth(h http.Header, v string) http.Header {
	out := h.Clone()
	out.Set("Authorization", v)
	return out
}

func entry(note string) map[string]any {
	return map[string]any{
		"id": uuid.NewString(), "kind": "hours", "quantity": 2, "unit": "h",
		"note": note, "at": time.Now().UTC().Format(time.RFC3339),
	}
}

// jsRepo is repo-client.mjs running in node, driven line by line.
type jsRepo struct {
	stdin io.WriteCloser
	lines chan string
	cmd   *exec.Cmd
}

func startJS(tb testing.TB) *jsRepo {
	tb.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		tb.Fatalf("node is not on PATH (%v): install Node.js 18 or later, then run `make js-deps`", err)
	}
	dir, err := filepath.Abs(filepath.Join("..", "..", "tools", "js"))
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@automerge", "automerge-repo-network-websocket", "package.json")); err != nil {
		tb.Fatalf("the JS packages are not installed (%v): run `make js-deps`", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "repo-client.mjs"))
	cmd.Env = append(os.Environ(), "NODE_NO_WARNINGS=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	j := &jsRepo{stdin: stdin, lines: make(chan string, 16), cmd: cmd}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(j.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			j.lines <- sc.Text()
		}
	}()
	tb.Cleanup(func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			tb.Logf("repo-client.mjs ended: %v", err)
		}
		cancel()
		<-done
		if s := strings.TrimSpace(stderr.String()); s != "" {
			tb.Logf("repo-client.mjs stderr:\n%s", s)
		}
	})
	return j
}

// try sends a command and decodes its answer into out, whatever it says.
func (j *jsRepo) try(tb testing.TB, cmd map[string]any, out any) map[string]any {
	tb.Helper()
	b, err := json.Marshal(cmd)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := j.stdin.Write(append(b, '\n')); err != nil {
		tb.Fatalf("repo-client.mjs %s: %v", cmd["cmd"], err)
	}
	select {
	case line, ok := <-j.lines:
		if !ok {
			tb.Fatalf("repo-client.mjs ended before answering %s", cmd["cmd"])
		}
		tb.Logf("repo-client.mjs %s → %s", cmd["cmd"], line)
		var answer map[string]any
		if err := json.Unmarshal([]byte(line), &answer); err != nil {
			tb.Fatalf("repo-client.mjs answered %q: %v", line, err)
		}
		if out != nil {
			if err := json.Unmarshal([]byte(line), out); err != nil {
				tb.Fatalf("repo-client.mjs answered %q: %v", line, err)
			}
		}
		return answer
	case <-time.After(30 * time.Second):
		tb.Fatalf("repo-client.mjs did not answer %s within 30 s", cmd["cmd"])
	}
	return nil
}

// do is try for a command that must succeed.
func (j *jsRepo) do(tb testing.TB, cmd map[string]any, out any) {
	tb.Helper()
	if a := j.try(tb, cmd, out); a["ok"] != true {
		tb.Fatalf("repo-client.mjs %s failed: %v", cmd["cmd"], a["error"])
	}
}

// member is a device enrolled over the REST API.
type member struct {
	base, token, memberID, deviceID, actor string
}

func mustEnroll(tb testing.TB, base, invite, name string) *member {
	tb.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	actor := make([]byte, 16)
	if _, err := rand.Read(actor); err != nil {
		tb.Fatal(err)
	}
	m := &member{base: base, actor: hex.EncodeToString(actor)}
	var res wire.EnrollResponse
	m.call(tb, http.MethodPost, "/v1/enroll", wire.EnrollRequest{
		Invite: invite, MemberName: name, DeviceName: "go test", PublicKey: pub, ActorID: m.actor,
	}, http.StatusCreated, &res)
	m.token, m.memberID, m.deviceID = res.AccessToken, res.MemberID, res.DeviceID
	return m
}

func (m *member) invite(tb testing.TB) string { return m.inviteFor(tb, "member") }

func (m *member) inviteFor(tb testing.TB, what string) string {
	tb.Helper()
	var res wire.InviteResponse
	m.call(tb, http.MethodPost, "/v1/invites", wire.InviteRequest{For: what}, http.StatusCreated, &res)
	return res.Code
}

// logEntry writes an entry by REST and returns its id.
func (m *member) logEntry(tb testing.TB, note string) string {
	tb.Helper()
	id := uuid.NewString()
	m.call(tb, http.MethodPost, "/v1/ledger/entries", map[string]any{
		"id": id, "kind": "hours", "quantity": 1, "note": note, "at": time.Now().UTC().Format(time.RFC3339),
	}, http.StatusCreated, nil)
	return id
}

// entryIDs lists the ids of a member's entries (GET /v1/ledger/entries).
func (m *member) entryIDs(tb testing.TB, memberID string) []string {
	tb.Helper()
	var res wire.EntryList
	m.call(tb, http.MethodGet, "/v1/ledger/entries?limit=500&member="+url.QueryEscape(memberID), nil, http.StatusOK, &res)
	ids := []string{}
	for _, e := range res.Entries {
		ids = append(ids, e.ID)
	}
	slices.Sort(ids)
	return ids
}

// waitEntries waits (10 s at most) until the member's entries are want.
func (m *member) waitEntries(tb testing.TB, memberID string, want []string) {
	tb.Helper()
	want = slices.Clone(want)
	slices.Sort(want)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := m.entryIDs(tb, memberID)
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("GET /v1/ledger/entries?member=%s = %v, want %v", memberID, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (m *member) call(tb testing.TB, method, path string, in any, wantStatus int, out any) {
	tb.Helper()
	servertest.MustCall(tb, m.base, method, path, m.token, in, wantStatus, out)
}
