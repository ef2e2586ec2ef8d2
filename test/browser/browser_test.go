// Package browser_test runs the phone app (mobile-api/app) in a real
// browser, Debian's chromium driven by playwright-core, against a real
// circle, and checks through the REST API that the server holds what the
// phone did. It needs node, chromium (/usr/bin/chromium or $CHROMIUM) and
// the app built with its packages installed (make app).
package browser_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/circles-coop/circles/mobile-api/client"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// updateScreenshots saves the screenshots into docs/screenshots (make
// screenshots) instead of a temporary directory.
var updateScreenshots = flag.Bool("update-screenshots", false, "save the phone app's screenshots into docs/screenshots")

// summary is what phone.mjs prints as its last line.
type summary struct {
	Scenario      string              `json:"scenario"`
	MemberID      string              `json:"member_id"`
	Notes         []string            `json:"notes"`
	Screens       []string            `json:"screens"`
	Axe           map[string][]string `json:"axe"`
	OfflineReload bool                `json:"offline_reload"`
	ResetSigned   bool                `json:"reset_signed"`
	Audit         string              `json:"audit"`
	Refused       string              `json:"refused"`
	TamperCaught  bool                `json:"audit_tamper_caught"`
	Transport     string              `json:"transport"`
	// The device scenario: the second device's member, and whether the
	// used device invite was refused.
	SecondMemberID    string `json:"second_member_id"`
	UsedInviteRefused bool   `json:"used_invite_refused"`
	// The recover scenario: the refused vote's state on the phone.
	RefusedVote string   `json:"refused_vote"`
	Proposals   []string `json:"proposals"`
	Error       string   `json:"error"`
	Screen      string   `json:"screen"`
}

// TestBrowserPhoneApp: a member joins from the invite link, logs a
// contribution, logs three more offline, reloads offline (the service
// worker serves the app) and sees them pending, comes back online and sees
// them synced; then uses every screen, each checked with axe-core. The
// server must then hold exactly those entries, the vote, and the reset
// signature. With -update-screenshots (make screenshots) the phone-sized
// screenshots it takes replace those in docs/screenshots.
func TestBrowserPhoneApp(t *testing.T) {
	ph := mustPhone(t)
	c := servertest.Start(t, "Browser Circle")
	base := c.URL()
	founder := mustEnroll(t, base, c.FounderInvite, "Founder")

	// Bea, a Go device (mobile-api/client), writes the charter draft
	// first; the phone must load her text and add to it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bea, err := client.Join(ctx, t.TempDir(), base, inviteCode(t, founder.invite(t)), "Bea", "laptop")
	if err != nil {
		t.Fatalf("client.Join: %v", err)
	}
	if _, err := bea.EditCharterDraft(beaDraft); err != nil {
		t.Fatalf("EditCharterDraft: %v", err)
	}
	if _, err := bea.Sync(ctx, nil); err != nil {
		t.Fatalf("Bea's Sync: %v", err)
	}

	// The circle has a role before the phone joins: founder and Bea pass
	// its proposal between them.
	beaClient, err := bea.Client()
	if err != nil {
		t.Fatal(err)
	}
	var role wire.Proposal
	founder.call(t, http.MethodPost, "/v1/proposals", wire.ProposalRequest{
		ID: uuid.NewString(), Kind: "role.create", Title: "A treasurer",
		Payload: map[string]any{"name": "treasurer", "purpose": "Keeps the cash box and the accounts", "term": "2160h", "term_limit": 2},
	}, http.StatusCreated, &role)
	founder.call(t, http.MethodPost, "/v1/proposals/"+role.ID+"/votes", wire.VoteRequest{Choice: "yes"}, http.StatusOK, nil)
	if p, err := beaClient.CastVote(ctx, role.ID, wire.VoteRequest{Choice: "yes"}); err != nil || p.Status != "passed" {
		t.Fatalf("Bea's vote on the role: %+v, %v; want the proposal passed", p, err)
	}

	shots := t.TempDir()
	if *updateScreenshots {
		shots = filepath.Join("..", "..", "docs", "screenshots")
	}
	got := ph.run(t, "--link", founder.invite(t), "--shots", shots)
	// POST /v1/sync while GET /v1/repo answers 501, automerge-repo over
	// WebSocket once it is served: the scenario holds for both.
	t.Logf("the app synced over %s", got.Transport)
	if got.Transport != "http" && got.Transport != "websocket" {
		t.Errorf("the app's transport = %q, want http or websocket", got.Transport)
	}
	for _, name := range []string{"join", "home", "home-offline", "home-refused", "ledger", "proposals", "roles", "charter", "reset", "audit"} {
		if fi, err := os.Stat(filepath.Join(shots, name+".png")); err != nil || fi.Size() == 0 {
			t.Errorf("screenshot %s.png: %v, want a picture", name, err)
		}
	}

	if !got.OfflineReload {
		t.Errorf("phone summary offline_reload = false, want true")
	}
	wantScreens := []string{"Ledger", "Proposals", "Roles", "Charter", "Reset", "Audit"}
	if !slices.Equal(got.Screens, wantScreens) {
		t.Errorf("screens checked = %v, want %v", got.Screens, wantScreens)
	}
	for _, s := range append([]string{"join", "home"}, "ledger", "proposals", "roles", "charter", "reset", "audit") {
		if _, ok := got.Axe[s]; !ok {
			t.Errorf("axe-core did not check the %s screen", s)
		}
	}

	// The server stored exactly the phone's four entries.
	var list wire.EntryList
	founder.call(t, http.MethodGet, "/v1/ledger/entries?member="+got.MemberID+"&limit=100", nil, http.StatusOK, &list)
	var notes []string
	for _, e := range list.Entries {
		notes = append(notes, e.Note)
		if e.Kind != "hours" || e.Quantity <= 0 || e.At.IsZero() {
			t.Errorf("stored entry %+v, want kind hours, a quantity and a time", e)
		}
	}
	slices.Sort(notes)
	want := slices.Clone(got.Notes)
	slices.Sort(want)
	if len(want) != 4 || !slices.Equal(notes, want) {
		t.Errorf("server's entries of the phone = %q, want the four the phone logged %q (not the refused one)", notes, want)
	}
	if !strings.Contains(got.Refused, "2000") {
		t.Errorf("the refused entry's state on the phone = %q, want refused with the server's reason (years 2000 to 2200)", got.Refused)
	}

	// The vote written offline-first into the ballots document counted.
	var props wire.ProposalList
	founder.call(t, http.MethodGet, "/v1/proposals", nil, http.StatusOK, &props)
	var voted bool
	for _, p := range props.Proposals {
		if p.Title == "Meet every second week" {
			voted = p.Votes[got.MemberID].Choice == "yes"
		}
	}
	if !voted {
		t.Errorf("proposals = %+v, want the phone's yes vote on \"Meet every second week\"", props.Proposals)
	}

	// The reset statement, signed with the device key in the browser,
	// reached the server through the ballots document and verified; it
	// does not count yet, since the phone joined less than
	// reset.min_membership ago.
	var resets wire.Resets
	founder.call(t, http.MethodGet, "/v1/resets", nil, http.StatusOK, &resets)
	if len(resets.Pending) != 1 || resets.Pending[0].Member != got.MemberID || resets.Pending[0].Counts ||
		!strings.Contains(resets.Pending[0].Problem, "reset.min_membership") || resets.Signatures != 0 {
		t.Errorf("GET /v1/resets = %+v, want the phone's one signature, not counting for reset.min_membership", resets)
	}
	// The phone's edit of the shared draft reached Bea's device.
	// A deadline of its own: the phone's run above may take minutes on a
	// busy machine.
	ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := bea.Sync(ctx, nil); err != nil {
		t.Fatalf("Bea's Sync: %v", err)
	}
	draft, err := bea.CharterDraft()
	if err != nil {
		t.Fatalf("CharterDraft: %v", err)
	}
	if want := beaDraft + phoneDraft; draft.Text != want {
		t.Errorf("the charter draft on Bea's device = %q, want %q (hers, then the phone's line)", draft.Text, want)
	}

	if !strings.HasPrefix(got.Audit, "verified:") || !got.TamperCaught {
		t.Errorf("the app's audit check = %q (tampered copy caught: %v), want verified, and a tampered copy caught", got.Audit, got.TamperCaught)
	}
}

// The charter draft: Bea's text, then the line phone.mjs adds.
const (
	beaDraft   = "We share tools and time."
	phoneDraft = "\nWe meet every second week."
)

// inviteCode is the code in an invite URL's fragment.
func inviteCode(tb testing.TB, link string) string {
	tb.Helper()
	u, err := url.Parse(link)
	if err != nil || u.Fragment == "" {
		tb.Fatalf("invite URL %q has no code in its fragment", link)
	}
	return u.Fragment
}

// phone is node and the path of phone.mjs.
type phone struct {
	node, script, chromium string
}

// mustPhone finds node, chromium and the built app. A machine without
// them fails the test: the phone app is part of what make test proves.
func mustPhone(tb testing.TB) phone {
	tb.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		tb.Fatalf("node is not on PATH (%v): install Node.js 20 or later", err)
	}
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		tb.Fatalf("no browser at %s (%v): apt-get install chromium (or set CHROMIUM)", chromium, err)
	}
	dir, err := filepath.Abs(filepath.Join("..", "..", "mobile-api", "app"))
	if err != nil {
		tb.Fatal(err)
	}
	for _, f := range []string{"node_modules/playwright-core/package.json", "node_modules/axe-core/axe.min.js", "dist/index.html"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			tb.Fatalf("the phone app is not built or its packages are not installed (%v): run `make app`", err)
		}
	}
	return phone{node: node, script: filepath.Join(dir, "test", "phone.mjs"), chromium: chromium}
}

// run runs phone.mjs with args and decodes its JSON summary.
func (p phone) run(tb testing.TB, args ...string) summary {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.node, append([]string{p.script}, args...)...)
	cmd.Env = append(os.Environ(), "NODE_NO_WARNINGS=1", "CHROMIUM="+p.chromium)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	runErr := cmd.Run()
	tb.Logf("node phone.mjs (%s):\n%s", time.Since(start).Round(time.Millisecond), stderr.String())
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var s summary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &s); err != nil {
		tb.Fatalf("phone.mjs: %v; its summary is not JSON (%v):\n%s", runErr, err, stdout.String())
	}
	if runErr != nil || s.Error != "" {
		tb.Fatalf("phone.mjs failed (%v): %s\nthe screen showed:\n%s", runErr, s.Error, s.Screen)
	}
	return s
}

// member is a Go device enrolled over the REST API.
type member struct {
	base, token, memberID string
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
		Invite: invite, MemberName: name, DeviceName: "go test", PublicKey: pub, ActorID: hex.EncodeToString(actor),
	}, http.StatusCreated, &res)
	m.token, m.memberID = res.AccessToken, res.MemberID
	return m
}

// invite makes a one-time invite for a new member and returns its URL,
// what the invite's QR code holds.
func (m *member) invite(tb testing.TB) string {
	tb.Helper()
	var res wire.InviteResponse
	m.call(tb, http.MethodPost, "/v1/invites", wire.InviteRequest{For: "member"}, http.StatusCreated, &res)
	if res.Code == "" || res.URL != m.base+"/join#"+res.Code {
		tb.Fatalf("POST /v1/invites = %+v, want a code and the URL %s/join#<code>", res, m.base)
	}
	return res.URL
}

// call sends a JSON request and decodes a JSON answer with the wanted
// status into out.
func (m *member) call(tb testing.TB, method, path string, in any, wantStatus int, out any) {
	tb.Helper()
	servertest.MustCall(tb, m.base, method, path, m.token, in, wantStatus, out)
}
