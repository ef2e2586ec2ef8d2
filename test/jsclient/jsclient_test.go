// Package jsclient_test runs the JavaScript phone client (tools/js/client.mjs,
// @automerge/automerge from npm) against a real circle server and checks
// through the REST API that the server holds exactly what the client wrote.
// It needs node on PATH and tools/js/node_modules (make js-deps).
package jsclient_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/circles-coop/circles/authority/fault"

	"github.com/google/go-cmp/cmp"

	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// summary is what client.mjs prints in ledger mode.
type summary struct {
	Mode           string       `json:"mode"`
	CircleID       string       `json:"circle_id"`
	MemberID       string       `json:"member_id"`
	DeviceID       string       `json:"device_id"`
	Ledger         string       `json:"ledger"`
	EntriesWritten int          `json:"entries_written"`
	Entries        []wire.Entry `json:"entries"`
	Rounds         int          `json:"rounds"`
	TokenExchanged bool         `json:"token_exchanged"`
	ReplayStatus   int          `json:"replay_status"`
}

// forbiddenReport is what client.mjs prints in forbidden mode.
type forbiddenReport struct {
	Mode    string `json:"mode"`
	Target  string `json:"target"`
	Doc     string `json:"doc"`
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Refused bool   `json:"refused"`
}

func TestJSClientLedger(t *testing.T) {
	js := mustJS(t)
	tc := servertest.Start(t, "JS Client Circle")
	base := tc.URL()

	// A Go device takes the founder invite and invites the JS phone, so the
	// phone has another member to name as counterparty and to not write as.
	founder := mustEnroll(t, base, tc.FounderInvite, "Founder")

	const n = 5
	var got summary
	js.run(t, &got, "--server", base, "--invite", founder.invite(t), "--entries", fmt.Sprint(n), "--member-name", "JS Phone")

	if got.Mode != "ledger" || got.MemberID == "" || got.DeviceID == "" || got.Ledger == "" {
		t.Fatalf("client summary = %+v, want mode ledger with member, device and ledger ids", got)
	}
	if got.CircleID != founder.circleID {
		t.Errorf("client circle_id = %q, want %q", got.CircleID, founder.circleID)
	}
	if got.EntriesWritten != n || len(got.Entries) != n {
		t.Fatalf("client wrote %d entries (listed %d), want %d", got.EntriesWritten, len(got.Entries), n)
	}
	if got.Rounds < 2 {
		t.Errorf("client sync rounds = %d, want at least 2 (pull, then push)", got.Rounds)
	}
	if !got.TokenExchanged {
		t.Errorf("client token_exchanged = false, want true")
	}
	if got.ReplayStatus != http.StatusUnauthorized {
		t.Errorf("replayed assertion answered %d, want %d", got.ReplayStatus, http.StatusUnauthorized)
	}

	// The phone is a member with the ledger it synced.
	var circle wire.Circle
	founder.call(t, http.MethodGet, "/v1/circle", nil, http.StatusOK, &circle)
	var phone *wire.CircleMember
	for i := range circle.Members {
		if circle.Members[i].MemberID == got.MemberID {
			phone = &circle.Members[i]
		}
	}
	if phone == nil {
		t.Fatalf("GET /v1/circle members = %+v, want one with member_id %q", circle.Members, got.MemberID)
	}
	if !slices.Contains(phone.Ledgers, got.Ledger) {
		t.Errorf("phone's ledgers = %v, want them to include %q", phone.Ledgers, got.Ledger)
	}

	want := make([]wire.Entry, len(got.Entries))
	for i, e := range got.Entries {
		e.Member = got.MemberID
		want[i] = e
	}
	sortEntries(want)

	// Exactly the phone's entries, seen by another member...
	if diff := cmp.Diff(want, founder.entries(t, got.MemberID)); diff != "" {
		t.Errorf("GET /v1/ledger/entries?member=<phone> differs from what the JS client wrote (-want +got):\n%s", diff)
	}
	// ...and nothing else in the whole circle: the founder wrote nothing.
	if diff := cmp.Diff(want, founder.entries(t, "")); diff != "" {
		t.Errorf("GET /v1/ledger/entries differs from what the JS client wrote (-want +got):\n%s", diff)
	}

	// Writes the server must refuse, each from a fresh phone. None of them
	// may leave a trace in the ledger listing.
	for _, tt := range []struct {
		target string
		want   []int
	}{
		{"roster", []int{http.StatusUnprocessableEntity}},
		{"bad-entry", []int{http.StatusUnprocessableEntity}},
		// 403 if reading another member's ledger is itself refused.
		{"other-ledger", []int{http.StatusUnprocessableEntity, http.StatusForbidden}},
	} {
		t.Run("forbidden/"+tt.target, func(t *testing.T) {
			var rep forbiddenReport
			js.run(t, &rep, "--server", base, "--invite", founder.invite(t), "--mode", "forbidden", "--target", tt.target)
			if !rep.Refused || !slices.Contains(tt.want, rep.Status) {
				t.Fatalf("forbidden write into %s answered %d %s (%q), want one of %v", tt.target, rep.Status, rep.Code, rep.Message, tt.want)
			}
			if rep.Status == http.StatusUnprocessableEntity && rep.Code != fault.RuleViolation {
				t.Errorf("error code = %q, want %q", rep.Code, fault.RuleViolation)
			}
			if diff := cmp.Diff(want, founder.entries(t, "")); diff != "" {
				t.Errorf("ledger entries changed after a refused write (-want +got):\n%s", diff)
			}
		})
	}
}

// jsClient is node and the path of client.mjs.
type jsClient struct {
	node   string
	script string
}

// mustJS finds node and the installed JS client. A machine without them
// fails the test: the JS client is part of what make test proves.
func mustJS(tb testing.TB) jsClient {
	tb.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		tb.Fatalf("node is not on PATH (%v): install Node.js 18 or later, then run `make js-deps`", err)
	}
	dir, err := filepath.Abs(filepath.Join("..", "..", "tools", "js"))
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@automerge", "automerge", "package.json")); err != nil {
		tb.Fatalf("the JS client's packages are not installed (%v): run `make js-deps`", err)
	}
	return jsClient{node: node, script: filepath.Join(dir, "client.mjs")}
}

// run runs client.mjs with args and decodes its JSON summary into out.
func (js jsClient) run(tb testing.TB, out any, args ...string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, js.node, append([]string{js.script}, args...)...)
	cmd.Env = append(os.Environ(), "NODE_NO_WARNINGS=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		tb.Fatalf("node client.mjs %s: %v\nstderr:\n%s\nstdout:\n%s", strings.Join(args, " "), err, stderr.String(), stdout.String())
	}
	tb.Logf("node client.mjs %s (%s): %s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond), strings.TrimSpace(stdout.String()))
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), out); err != nil {
		tb.Fatalf("client.mjs summary is not JSON: %v\nstdout:\n%s", err, stdout.String())
	}
}

// member is a Go device enrolled over the REST API.
type member struct {
	base     string
	token    string
	circleID string
	memberID string
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
	m := &member{base: base}
	var res wire.EnrollResponse
	m.call(tb, http.MethodPost, "/v1/enroll", wire.EnrollRequest{
		Invite:     invite,
		MemberName: name,
		DeviceName: "go test",
		PublicKey:  pub,
		ActorID:    hex.EncodeToString(actor),
	}, http.StatusCreated, &res)
	if res.AccessToken == "" || res.MemberID == "" {
		tb.Fatalf("POST /v1/enroll = %+v, want an access token and a member id", res)
	}
	m.token, m.circleID, m.memberID = res.AccessToken, res.CircleID, res.MemberID
	return m
}

// invite makes a one-time invite for a new member.
func (m *member) invite(tb testing.TB) string {
	tb.Helper()
	var res wire.InviteResponse
	m.call(tb, http.MethodPost, "/v1/invites", wire.InviteRequest{For: "member"}, http.StatusCreated, &res)
	if res.Code == "" {
		tb.Fatalf("POST /v1/invites = %+v, want a code", res)
	}
	return res.Code
}

// entries lists every ledger entry, of one member or of all, following
// next_cursor to the end, sorted by id.
func (m *member) entries(tb testing.TB, memberID string) []wire.Entry {
	tb.Helper()
	var all []wire.Entry
	cursor := ""
	for page := 0; ; page++ {
		if page > 100 {
			tb.Fatalf("GET /v1/ledger/entries: more than 100 pages")
		}
		q := url.Values{"limit": {"2"}} // small pages, so paging is exercised
		if memberID != "" {
			q.Set("member", memberID)
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var res wire.EntryList
		m.call(tb, http.MethodGet, "/v1/ledger/entries?"+q.Encode(), nil, http.StatusOK, &res)
		all = append(all, res.Entries...)
		if res.NextCursor == "" {
			break
		}
		cursor = res.NextCursor
	}
	sortEntries(all)
	return all
}

// call sends a JSON request and decodes a JSON answer with the wanted
// status into out; any other status fails tb with the error body.
func (m *member) call(tb testing.TB, method, path string, in any, wantStatus int, out any) {
	tb.Helper()
	servertest.MustCall(tb, m.base, method, path, m.token, in, wantStatus, out)
}

func sortEntries(es []wire.Entry) {
	slices.SortFunc(es, func(a, b wire.Entry) int { return strings.Compare(a.ID, b.ID) })
}
