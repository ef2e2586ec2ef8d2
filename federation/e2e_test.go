package federation_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/circles-coop/circles/federation"
	"github.com/circles-coop/circles/federation/hub"
	srv "github.com/circles-coop/circles/server"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/sync/store"
	"github.com/circles-coop/circles/wire"
)

// testHub serves a fresh hub on loopback; it returns the hub, its data
// directory and its first invite.
func testHub(t *testing.T) (*hub.Hub, string, string) {
	t.Helper()
	return testHubClock(t, time.Now)
}

// stoppableHub initialises a hub named name in a new directory and
// returns it, its first invite and open, which serves it on the given
// addresses ("127.0.0.1:0" for any): a test stops it with Close and opens
// it again on the same addresses.
func stoppableHub(t *testing.T, name string) (string, hub.InitResult, func(httpAddr, leafAddr string) *hub.Hub) {
	t.Helper()
	dir := t.TempDir()
	res, err := hub.Init(dir, name, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return dir, res, func(httpAddr, leafAddr string) *hub.Hub {
		t.Helper()
		h, err := hub.Open(context.Background(), hub.Config{DataDir: dir, Listen: httpAddr, LeafListen: leafAddr})
		if err != nil {
			t.Fatalf("hub.Open: %v", err)
		}
		return h
	}
}

// testHubClock is testHub with the hub reading time from now.
func testHubClock(t *testing.T, now func() time.Time) (*hub.Hub, string, string) {
	t.Helper()
	dir := t.TempDir()
	res, err := hub.Init(dir, "Food alliance", time.Now())
	if err != nil {
		t.Fatalf("hub.Init: %v", err)
	}
	h, err := hub.Open(context.Background(), hub.Config{DataDir: dir, Listen: "127.0.0.1:0", LeafListen: "127.0.0.1:0", Now: now})
	if err != nil {
		t.Fatalf("hub.Open: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	return h, dir, res.Invite
}

func newInvite(t *testing.T, dir string) string {
	t.Helper()
	inv, err := hub.MakeInvite(context.Background(), dir, time.Hour, time.Now())
	if err != nil {
		t.Fatalf("hub.MakeInvite: %v", err)
	}
	return inv.Invite
}

// member is a circle served for the test, with its founder's device.
type member struct {
	*servertest.Circle
	name    string
	founder *servertest.Device
}

func newMember(t *testing.T, name string) *member {
	t.Helper()
	c := servertest.Start(t, name, servertest.WithConfig(func(c *srv.Config) { c.FederationWatch = 100 * time.Millisecond }))
	d := servertest.MustEnroll(t, c.URL(), c.FounderInvite, "Founder of "+name)
	return &member{Circle: c, name: name, founder: d}
}

func (m *member) conn() *nats.Conn { return m.Server.Federation().Conn() }

// decide proposes kind with payload as the founder (the only member) and
// votes yes, which decides it; it returns the proposal.
func (m *member) decide(t *testing.T, kind string, payload map[string]any) wire.Proposal {
	t.Helper()
	id := uuid.NewString()
	r := servertest.Call(t, m.URL(), "POST", "/v1/proposals", m.founder.Token, servertest.MustJSON(t, wire.ProposalRequest{ID: id, Kind: kind, Title: kind, Payload: payload}))
	if r.Status != http.StatusCreated {
		t.Fatalf("%s: propose %s: %d %s", m.name, kind, r.Status, r.Body)
	}
	r = servertest.Call(t, m.URL(), "POST", "/v1/proposals/"+id+"/votes", m.founder.Token, servertest.MustJSON(t, wire.VoteRequest{Choice: "yes"}))
	if r.Status != http.StatusOK {
		t.Fatalf("%s: vote on %s: %d %s", m.name, kind, r.Status, r.Body)
	}
	var p wire.Proposal
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func (m *member) federations(t *testing.T) []wire.Federation {
	t.Helper()
	var out wire.Federations
	servertest.MustGetJSON(t, m.URL(), m.founder, "/v1/federations", &out)
	return out.Federations
}

func (m *member) federation(t *testing.T, id string) (wire.Federation, bool) {
	t.Helper()
	for _, f := range m.federations(t) {
		if f.ID == id {
			return f, true
		}
	}
	return wire.Federation{}, false
}

func (m *member) join(t *testing.T, hubURL, invite string) string {
	t.Helper()
	p := m.decide(t, "federation.join", map[string]any{"hub": hubURL, "invite": invite})
	if p.Status != "passed" {
		t.Fatalf("%s: federation.join is %s (%s), want passed", m.name, p.Status, p.Reason)
	}
	fs := m.federations(t)
	for _, f := range fs {
		if f.Status == "joining" || f.Status == "joined" {
			return f.ID
		}
	}
	t.Fatalf("%s: after joining GET /v1/federations = %+v", m.name, fs)
	return ""
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

// inbox collects what a circle receives on the federation's subjects.
type inbox struct {
	ch  chan *nats.Msg
	sub *nats.Subscription
}

func listen(t *testing.T, nc *nats.Conn, fed string) *inbox {
	t.Helper()
	in := &inbox{ch: make(chan *nats.Msg, 1024)}
	sub, err := nc.ChanSubscribe(federation.FederationWildcard(fed), in.ch)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	in.sub = sub
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return in
}

// expect waits (at most d) for a message with data want, skipping others.
func (in *inbox) expect(t *testing.T, who, want string, d time.Duration) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case m := <-in.ch:
			if string(m.Data) == want {
				return
			}
		case <-timeout:
			t.Fatalf("%s did not receive %q within %s", who, want, d)
		}
	}
}

// none checks that nothing with data in bad arrives within d.
func (in *inbox) none(t *testing.T, who string, d time.Duration, bad ...string) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case m := <-in.ch:
			for _, b := range bad {
				if string(m.Data) == b {
					t.Fatalf("%s received %q on %s, want nothing", who, m.Data, m.Subject)
				}
			}
		case <-timeout:
			return
		}
	}
}

func publish(t *testing.T, nc *nats.Conn, subject, data string) {
	t.Helper()
	if err := nc.Publish(subject, []byte(data)); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// linked waits until each circle's messages reach each other circle
// (leaf links up and subscription interest propagated), bounded.
func linked(t *testing.T, fed string, ms []*member, ins map[string]*inbox) {
	t.Helper()
	for _, from := range ms {
		for _, to := range ms {
			if from == to {
				continue
			}
			probe := fmt.Sprintf("probe %s→%s", from.name, to.name)
			ok := false
			for i := 0; i < 50 && !ok; i++ {
				publish(t, from.conn(), federation.CircleSubject(fed, from.CircleID, "probe"), probe)
				timeout := time.After(100 * time.Millisecond)
			wait:
				for {
					select {
					case m := <-ins[to.name].ch:
						if string(m.Data) == probe {
							ok = true
							break wait
						}
					case <-timeout:
						break wait
					}
				}
			}
			if !ok {
				t.Fatalf("%s's messages do not reach %s", from.name, to.name)
			}
		}
	}
}

// TestFederation runs a hub and three circles on loopback: they join by
// proposals, a circle's message reaches the others, a circle cannot
// publish as another, a circle leaves and is cut off at once, rejoins
// with a new invite, is expelled by the hub and cut off at once (its old
// credentials cannot connect again), rejoins, and after a restart links
// again by itself.
func TestFederation(t *testing.T) {
	h, hubDir, invite := testHub(t)
	hubURL := "http://" + h.HTTPAddr()
	fed := h.FederationID()
	a, b, c := newMember(t, "Alpha"), newMember(t, "Beta"), newMember(t, "Gamma")
	all := []*member{a, b, c}

	for i, m := range all {
		code := invite
		if i > 0 {
			code = newInvite(t, hubDir)
		}
		if got := m.join(t, hubURL, code); got != fed {
			t.Fatalf("%s joined %q, want %q", m.name, got, fed)
		}
	}
	for _, m := range all {
		waitFor(t, m.name+" linked and joined", 10*time.Second, func() bool {
			f, _ := m.federation(t, fed)
			return f.Connected && f.Status == "joined"
		})
	}
	f, _ := c.federation(t, fed)
	if f.Name != "Food alliance" || len(f.Circles) != 3 {
		t.Fatalf("Gamma's GET /v1/federations = %+v, want Food alliance with 3 circles", f)
	}
	ins := map[string]*inbox{}
	for _, m := range all {
		ins[m.name] = listen(t, m.conn(), fed)
	}
	linked(t, fed, all, ins)

	// A circle's message on its own subject reaches every other circle.
	publish(t, a.conn(), federation.CircleSubject(fed, a.CircleID, "profile"), "hello from Alpha")
	ins["Beta"].expect(t, "Beta", "hello from Alpha", 2*time.Second)
	ins["Gamma"].expect(t, "Gamma", "hello from Alpha", 2*time.Second)

	// Alpha, with its own credentials, tries to publish as Beta: the
	// message reaches nobody. Alpha's next message, on its own subject,
	// arrives; the forged one, sent before it on the same link, never.
	publish(t, a.conn(), federation.CircleSubject(fed, b.CircleID, "profile"), "forged by Alpha")
	publish(t, a.conn(), "fed."+fed+".other", "outside Alpha's subjects")
	publish(t, a.conn(), federation.CircleSubject(fed, a.CircleID, "profile"), "after the forgery")
	for _, m := range []*member{b, c} {
		ins[m.name].expect(t, m.name, "after the forgery", 2*time.Second)
	}
	for _, m := range []*member{b, c} {
		ins[m.name].none(t, m.name, 200*time.Millisecond, "forged by Alpha", "outside Alpha's subjects")
	}

	// Alpha leaves: once the proposal has passed (its answer is back) it
	// receives nothing more and nothing it publishes reaches the others.
	start := time.Now()
	if p := a.decide(t, "federation.leave", map[string]any{"federation": fed}); p.Status != "passed" {
		t.Fatalf("federation.leave is %s (%s), want passed", p.Status, p.Reason)
	}
	linkDown(t, a, fed, start)
	cutOff(t, fed, a, []*member{b, c}, ins)
	if f, _ := a.federation(t, fed); f.Status != "left" || f.Connected {
		t.Fatalf("Alpha after leaving: %+v, want left and not connected", f)
	}
	waitFor(t, "the hub to revoke Alpha", 5*time.Second, func() bool { return len(h.Members()) == 2 })

	// Alpha rejoins with a new invite.
	if got := a.join(t, hubURL, newInvite(t, hubDir)); got != fed {
		t.Fatalf("Alpha rejoined %q, want %q", got, fed)
	}
	waitFor(t, "Alpha linked again", 10*time.Second, func() bool { f, _ := a.federation(t, fed); return f.Connected })
	linked(t, fed, all, ins)

	// The hub expels Alpha (through the serving hub's control socket).
	creds, err := os.ReadFile(filepath.Join(a.DataDir, "federation", fed+".creds"))
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if err := hub.ExpelCircle(context.Background(), hubDir, a.CircleID); err != nil {
		t.Fatalf("ExpelCircle: %v", err)
	}
	linkDown(t, a, fed, start)
	cutOff(t, fed, a, []*member{b, c}, ins)
	waitFor(t, "Alpha to see it was expelled", 5*time.Second, func() bool { f, _ := a.federation(t, fed); return f.Status == "expelled" && !f.Connected })

	// Alpha's old credentials cannot connect again, from anywhere.
	oldCredsCannotConnect(t, fed, a.CircleID, creds, h.LeafAddr(), b, ins)

	// A new invite lets Alpha back in.
	a.join(t, hubURL, newInvite(t, hubDir))
	waitFor(t, "Alpha linked after its expulsion", 10*time.Second, func() bool { f, _ := a.federation(t, fed); return f.Connected && f.Status == "joined" })
	linked(t, fed, all, ins)

	// Alpha's audit log records each join and leave; their entries hold no
	// invite (the proposal's own entry does: the payload is the proposal).
	var page wire.AuditPage
	servertest.MustGetJSON(t, a.URL(), a.founder, "/v1/audit?limit=500", &page)
	kinds := map[string]int{}
	for _, e := range page.Entries {
		kinds[e.Kind]++
		if strings.HasPrefix(e.Kind, "federation.") && strings.Contains(string(e.Data), invite) {
			t.Fatalf("audit entry %s holds an invite: %s", e.Kind, e.Data)
		}
	}
	if kinds["federation.joined"] != 3 || kinds["federation.left"] != 1 {
		t.Fatalf("Alpha's audit log has %d federation.joined and %d federation.left, want 3 and 1", kinds["federation.joined"], kinds["federation.left"])
	}

	// After a restart, a joined circle links to its hub again by itself.
	b.Stop()
	b.Start()
	waitFor(t, "Beta linked after a restart", 10*time.Second, func() bool { f, _ := b.federation(t, fed); return f.Connected && f.Status == "joined" })
	ins["Beta"] = listen(t, b.conn(), fed)
	linked(t, fed, all, ins)
}

// linkDown waits until m's leaf link to the hub of fed is down, and fails
// if that took more than 1 s from start.
func linkDown(t *testing.T, m *member, fed string, start time.Time) {
	t.Helper()
	for m.Server.Federation().Linked(fed) {
		if time.Since(start) > time.Second {
			t.Fatalf("%s is still linked to the hub %s after leaving or being expelled", m.name, time.Since(start))
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("%s cut off %s after the decision", m.name, time.Since(start).Round(time.Millisecond))
}

// cutOff checks that circle gone receives nothing more of the federation
// and that nothing it publishes reaches the others, which still reach
// each other.
func cutOff(t *testing.T, fed string, gone *member, others []*member, ins map[string]*inbox) {
	t.Helper()
	marker := "after " + gone.name + " went, from " + others[0].name
	publish(t, others[0].conn(), federation.CircleSubject(fed, others[0].CircleID, "x"), marker)
	publish(t, gone.conn(), federation.CircleSubject(fed, gone.CircleID, "x"), "from "+gone.name+" after it went")
	ins[others[1].name].expect(t, others[1].name, marker, 2*time.Second)
	ins[gone.name].none(t, gone.name, 300*time.Millisecond, marker)
	for _, o := range others {
		ins[o.name].none(t, o.name, 100*time.Millisecond, "from "+gone.name+" after it went")
	}
}

// oldCredsCannotConnect starts a fresh nats-server with an expelled
// circle's credentials as its leaf remote: the hub refuses it, and
// nothing it publishes reaches member circle b.
func oldCredsCannotConnect(t *testing.T, fed, circle string, creds []byte, leafAddr string, b *member, ins map[string]*inbox) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "old.creds")
	if err := os.WriteFile(path, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := store.StartNATS(context.Background(), store.NATSConfig{Dir: filepath.Join(dir, "nats"), ServerName: "intruder"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	u, _ := urlParse("nats://" + leafAddr)
	if err := n.SetLeafRemotes([]*server.RemoteLeafOpts{{URLs: u, Credentials: path}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		lz, err := n.Server().Leafz(nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(lz.Leafs) > 0 {
			t.Fatalf("a server with the expelled circle's old credentials linked to the hub: %+v", lz.Leafs[0])
		}
		publish(t, n.Conn(), federation.CircleSubject(fed, circle, "x"), "from the old credentials")
		time.Sleep(100 * time.Millisecond)
	}
	ins[b.name].none(t, b.name, 100*time.Millisecond, "from the old credentials")
}

func urlParse(s string) ([]*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	return []*url.URL{u}, nil
}

// TestJoinRefusals: a federation proposal with a bad payload is refused
// when made; a join the hub refuses (a used, unknown or expired invite, a
// hub that cannot be reached) and a leave of a federation the circle is
// not in pass the vote but are rejected with the reason; the circle's
// federations are unchanged.
func TestJoinRefusals(t *testing.T) {
	var offset atomic.Int64
	h, hubDir, invite := testHubClock(t, func() time.Time { return time.Now().Add(time.Duration(offset.Load())) })
	hubURL := "http://" + h.HTTPAddr()
	a, b := newMember(t, "Alpha"), newMember(t, "Beta")
	fed := a.join(t, hubURL, invite)

	for _, tc := range []struct {
		name    string
		kind    string
		payload map[string]any
		field   string
	}{
		{"no hub", "federation.join", map[string]any{"invite": "x"}, "payload"},
		{"ftp hub", "federation.join", map[string]any{"hub": "ftp://hub:21", "invite": "x"}, "payload.hub"},
		{"hub with a path", "federation.join", map[string]any{"hub": hubURL + "/v1/join", "invite": "x"}, "payload.hub"},
		{"hub with a user", "federation.join", map[string]any{"hub": "http://u:p@" + h.HTTPAddr(), "invite": "x"}, "payload.hub"},
		{"empty invite", "federation.join", map[string]any{"hub": hubURL, "invite": " "}, "payload.invite"},
		{"long invite", "federation.join", map[string]any{"hub": hubURL, "invite": strings.Repeat("x", 101)}, "payload.invite"},
		{"wildcard federation", "federation.leave", map[string]any{"federation": "F.>"}, "payload.federation"},
		{"empty federation", "federation.leave", map[string]any{"federation": ""}, "payload.federation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := servertest.Call(t, b.URL(), "POST", "/v1/proposals", b.founder.Token, servertest.MustJSON(t, wire.ProposalRequest{ID: uuid.NewString(), Kind: tc.kind, Title: "x", Payload: tc.payload}))
			if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), tc.field) {
				t.Fatalf("propose %s %v = %d %s, want 400 naming %s", tc.kind, tc.payload, r.Status, r.Body, tc.field)
			}
		})
	}

	// An invite made an hour ago on the hub's clock, valid for a minute.
	offset.Store(int64(-time.Hour))
	expired, err := hub.MakeInvite(context.Background(), hubDir, time.Minute, time.Now())
	offset.Store(0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, hub, invite, reason string
	}{
		{"used invite", hubURL, invite, "invite already used"},
		{"unknown invite", hubURL, "not-an-invite", "invite unknown"},
		{"expired invite", hubURL, expired.Invite, "invite expired"},
		{"no hub there", "http://127.0.0.1:1", newInvite(t, hubDir), "cannot reach the hub"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := b.decide(t, "federation.join", map[string]any{"hub": tc.hub, "invite": tc.invite})
			if p.Status != "rejected" || !strings.Contains(p.Reason, tc.reason) {
				t.Fatalf("federation.join = %s (%s), want rejected with %q", p.Status, p.Reason, tc.reason)
			}
			if fs := b.federations(t); len(fs) != 0 {
				t.Fatalf("Beta's federations after a refused join: %+v", fs)
			}
		})
	}
	if n := len(h.Members()); n != 1 {
		t.Fatalf("the hub has %d members, want only Alpha", n)
	}
	p := b.decide(t, "federation.leave", map[string]any{"federation": fed})
	if p.Status != "rejected" || !strings.Contains(p.Reason, "not a member") {
		t.Fatalf("Beta leaving a federation it is not in = %s (%s), want rejected", p.Status, p.Reason)
	}
	if f, _ := a.federation(t, fed); f.Status != "joining" && f.Status != "joined" {
		t.Fatalf("Alpha's membership changed: %+v", f)
	}
}

// TestSubscriptionKinds: a circle receives another circle's messages on a
// literal subscription to one of its subjects and on a wildcard one, not
// only on fed.F.> (what the federation's replicas subscribe to is up to
// them).
func TestSubscriptionKinds(t *testing.T) {
	h, hubDir, invite := testHub(t)
	hubURL := "http://" + h.HTTPAddr()
	a, b := newMember(t, "Alpha"), newMember(t, "Beta")
	fed := a.join(t, hubURL, invite)
	b.join(t, hubURL, newInvite(t, hubDir))
	for _, m := range []*member{a, b} {
		waitFor(t, m.name+" linked", 10*time.Second, func() bool { f, _ := m.federation(t, fed); return f.Connected })
	}
	lit := make(chan *nats.Msg, 64)
	wild := make(chan *nats.Msg, 64)
	s1, err := b.conn().ChanSubscribe(federation.CircleSubject(fed, a.CircleID, "profile"), lit)
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Unsubscribe()
	s2, err := b.conn().ChanSubscribe("fed."+fed+".c.*.scorecard", wild)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Unsubscribe()
	for _, tc := range []struct {
		subject string
		ch      chan *nats.Msg
	}{{federation.CircleSubject(fed, a.CircleID, "profile"), lit}, {federation.CircleSubject(fed, a.CircleID, "scorecard"), wild}} {
		got := false
		for i := 0; i < 50 && !got; i++ { // until the interest has reached Alpha
			publish(t, a.conn(), tc.subject, "x")
			select {
			case <-tc.ch:
				got = true
			case <-time.After(100 * time.Millisecond):
			}
		}
		if !got {
			t.Fatalf("Beta's subscription did not receive Alpha's %s", tc.subject)
		}
	}
}

// TestHubRestart: the hub keeps its members, revocations and invites
// across a restart; member circles link again by themselves, and a circle
// expelled while the hub was stopped (`circled hub expel` with no hub
// serving) stays out.
func TestHubRestart(t *testing.T) {
	dir, res, open := stoppableHub(t, "Repair cafés")
	h := open("127.0.0.1:0", "127.0.0.1:0")
	httpAddr, leafAddr, fed := h.HTTPAddr(), h.LeafAddr(), h.FederationID()
	hubURL := "http://" + httpAddr
	a, b := newMember(t, "Alpha"), newMember(t, "Beta")
	a.join(t, hubURL, res.Invite)
	b.join(t, hubURL, newInvite(t, dir))
	later := newInvite(t, dir) // made before the restart, used after
	for _, m := range []*member{a, b} {
		waitFor(t, m.name+" linked", 10*time.Second, func() bool { f, _ := m.federation(t, fed); return f.Connected })
	}
	creds, err := os.ReadFile(filepath.Join(a.DataDir, "federation", fed+".creds"))
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	for _, m := range []*member{a, b} {
		waitFor(t, m.name+" sees the hub gone", 5*time.Second, func() bool { return !m.Server.Federation().Linked(fed) })
	}
	if err := hub.ExpelCircle(context.Background(), dir, a.CircleID); err != nil {
		t.Fatalf("ExpelCircle with no hub serving: %v", err)
	}
	h = open(httpAddr, leafAddr)
	defer h.Close()
	if got := h.Members(); len(got) != 1 || got[0].CircleID != b.CircleID {
		t.Fatalf("Members() after the restart = %+v, want Beta only", got)
	}
	waitFor(t, "Beta linked again", 15*time.Second, func() bool { f, _ := b.federation(t, fed); return f.Connected && f.Status == "joined" })
	waitFor(t, "Alpha to see it was expelled", 15*time.Second, func() bool { f, _ := a.federation(t, fed); return f.Status == "expelled" })
	if a.Server.Federation().Linked(fed) {
		t.Fatal("the circle expelled while the hub was stopped linked again")
	}
	// Its old credentials are refused by the restarted hub.
	ins := map[string]*inbox{b.name: listen(t, b.conn(), fed)}
	oldCredsCannotConnect(t, fed, a.CircleID, creds, leafAddr, b, ins)
	c := newMember(t, "Gamma")
	if got := c.join(t, hubURL, later); got != fed {
		t.Fatalf("Gamma joined %q with an invite made before the restart, want %q", got, fed)
	}
}

// TestLeaveWhileHubDown: a circle leaves while its hub is stopped — the
// leave needs nobody — and tells the hub once it is back, which then
// revokes it.
func TestLeaveWhileHubDown(t *testing.T) {
	dir := t.TempDir()
	res, err := hub.Init(dir, "Bike kitchens", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	h, err := hub.Open(context.Background(), hub.Config{DataDir: dir, Listen: "127.0.0.1:0", LeafListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	httpAddr, leafAddr := h.HTTPAddr(), h.LeafAddr()
	a := newMember(t, "Alpha")
	fed := a.join(t, "http://"+httpAddr, res.Invite)
	waitFor(t, "Alpha linked", 10*time.Second, func() bool { f, _ := a.federation(t, fed); return f.Connected })
	h.Close()
	if p := a.decide(t, "federation.leave", map[string]any{"federation": fed}); p.Status != "passed" {
		t.Fatalf("federation.leave with the hub down = %s (%s), want passed", p.Status, p.Reason)
	}
	if f, _ := a.federation(t, fed); f.Status != "left" {
		t.Fatalf("Alpha after leaving = %+v, want left", f)
	}
	h, err = hub.Open(context.Background(), hub.Config{DataDir: dir, Listen: httpAddr, LeafListen: leafAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	waitFor(t, "the hub to learn Alpha left", 10*time.Second, func() bool { return len(h.Members()) == 0 })
	if a.Server.Federation().Linked(fed) {
		t.Fatal("Alpha linked to the hub again after leaving")
	}
}
