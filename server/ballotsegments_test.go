package server_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/google/uuid"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/mobile-api/client"
	"github.com/circles-coop/circles/server"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// Ballots segments (authority/ballotsegments.go): once a member's ballots
// document holds its bound of items, the server opens the next one and
// names it; a vote written offline into the old one still counts.

func smallBallots(n int) servertest.Option {
	return servertest.WithConfig(func(c *server.Config) { c.BallotsSegmentEntries = n })
}

// ballotsOf returns member's current and closed ballots documents as GET
// /v1/circle names them to d.
func ballotsOf(t *testing.T, d *client.Device, member string) (string, []string) {
	t.Helper()
	c, err := d.Client()
	if err != nil {
		t.Fatal(err)
	}
	circle, err := c.Circle(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range circle.Members {
		if m.MemberID == member {
			return m.Ballots, m.BallotsClosed
		}
	}
	t.Fatalf("GET /v1/circle has no member %s", member)
	return "", nil
}

// waitClosed polls until member has at least n closed ballots documents
// (the server opens the next one in the background), for up to 20 s.
func waitClosed(t *testing.T, d *client.Device, member string, n int) (string, []string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		cur, closed := ballotsOf(t, d, member)
		if len(closed) >= n {
			return cur, closed
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s %s has %d closed ballots documents, want %d", member, len(closed), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ballotsItems loads doc's snapshot from the server (GET
// /v1/docs/{doc}/snapshot, which compacts it first) and counts its items.
func ballotsItems(t testing.TB, url string, d *servertest.Device, doc string) int {
	t.Helper()
	r := servertest.Call(t, url, "GET", "/v1/docs/"+doc+"/snapshot", d.Token, nil)
	if r.Status != 200 {
		t.Fatalf("GET snapshot of %s: %d %s", doc, r.Status, r.Body)
	}
	am, err := automerge.Load(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	n, err := crdt.BallotsLen(am)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitVote polls until proposal id holds member's vote, for up to 20 s
// (votes inside ballots documents are counted in the background).
func waitVote(t *testing.T, url string, d *servertest.Device, id, member, choice string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		p := getProposal(t, url, d, id)
		if v, ok := p.Votes[member]; ok {
			if v.Choice != choice {
				t.Fatalf("proposal %s: %s voted %q, want %q", id, member, v.Choice, choice)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("proposal %s: %s's vote not counted after 20 s: %+v", id, member, p.Votes)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ballotsCircle is the start of the ballots segment tests: Ana has
// proposed admitting guests, and Ben, who joined from his laptop, has
// synced them.
type ballotsCircle struct {
	url       string
	ana       *servertest.Device
	ben       *client.Device
	benID     string
	proposals []wire.Proposal
	first     string // Ben's ballots document then
}

func startBallots(t *testing.T, c *servertest.Circle, proposals int) ballotsCircle {
	t.Helper()
	b := ballotsCircle{url: c.URL()}
	b.ana = servertest.MustEnroll(t, b.url, c.FounderInvite, "Ana")
	var err error
	b.ben, err = client.Join(t.Context(), t.TempDir(), b.url, servertest.MustInvite(t, b.url, b.ana, "member", ""), "Ben", "laptop")
	if err != nil {
		t.Fatal(err)
	}
	b.benID = b.ben.Info().MemberID
	for i := range proposals {
		b.proposals = append(b.proposals, mustPropose(t, b.url, b.ana, "member.admit", fmt.Sprint("Admit guest ", i), map[string]any{"name": fmt.Sprint("Guest ", i)}))
	}
	if _, err := b.ben.Sync(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	b.first = b.ben.Info().Circle.Docs["ballots"]
	return b
}

// TestBallotsSegmentOfflineVote: Ben's ballots document fills up and the
// server opens the next one while his device still names the old one; the
// vote he then writes offline goes into the old document and counts when
// he syncs, his next vote goes into the new one, the old one is served
// as a snapshot, and a restart keeps it all.
func TestBallotsSegmentOfflineVote(t *testing.T) {
	c := servertest.Start(t, "Ballots Circle", smallBallots(4))
	b := startBallots(t, c, 6)
	url, ana, ben, benID, ps, first := b.url, b.ana, b.ben, b.benID, b.proposals, b.first

	// Four votes fill the first ballots document.
	for _, p := range ps[:4] {
		if _, err := ben.Vote(p.ID, "yes", "", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ben.Sync(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	cur, closed := waitClosed(t, ben, benID, 1)
	if !slices.Equal(closed, []string{first}) || cur == first || cur == "" {
		t.Fatalf("after the bound: ballots %s, closed %v; want a new one and [%s]", cur, closed, first)
	}
	for _, p := range ps[:4] {
		waitVote(t, url, ana, p.ID, benID, "yes")
	}

	// The device still names the first document: the vote it writes
	// offline goes there, and counts once it syncs.
	if got := ben.Info().Circle.Docs["ballots"]; got != first {
		t.Fatalf("the device names ballots %s before syncing, want the old %s", got, first)
	}
	if _, err := ben.Vote(ps[4].ID, "no", "written offline", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := ben.Sync(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	waitVote(t, url, ana, ps[4].ID, benID, "no")
	if got := ben.Info().Circle.Docs["ballots"]; got != cur {
		t.Fatalf("after a sync the device names ballots %s, want the new %s", got, cur)
	}
	if n := ballotsItems(t, url, ana, first); n != 5 {
		t.Errorf("the closed ballots document holds %d items, want the 4 votes and the offline one", n)
	}

	// The next vote goes into the new document.
	if _, err := ben.Vote(ps[5].ID, "yes", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := ben.Sync(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	waitVote(t, url, ana, ps[5].ID, benID, "yes")
	if n := ballotsItems(t, url, ana, cur); n != 1 {
		t.Errorf("the new ballots document holds %d items, want 1", n)
	}
	// The closed one is served as a snapshot.
	deadline := time.Now().Add(20 * time.Second)
	for {
		circle := servertest.MustCircle(t, url, ana)
		if circle.Snapshots[first] != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /v1/circle names no snapshot of the closed ballots document %s: %v", first, circle.Snapshots)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Another member cannot write into Ben's closed ballots document: 422,
	// nothing stored.
	before := servertest.MustStoredDocs(t, c)
	msg := servertest.MustChangeMessage(t, url, ana, first, ana.Actor, func(d *automerge.Doc) error {
		return d.Path("votes", ps[5].ID).Set(automerge.NewMap())
	})
	if r := servertest.Call(t, url, "POST", "/v1/sync", ana.Token, servertest.SyncBody(t, wire.SyncMessage{Doc: first, Data: msg})); r.Status != 422 || !strings.Contains(string(r.Body), "another member") {
		t.Fatalf("another member's write into the closed ballots document = %d %s, want 422 permission", r.Status, r.Body)
	}
	servertest.MustStoreUnchanged(t, c, before)

	// A restart keeps the switch and the votes; Ben's device still syncs
	// the closed document.
	c.Stop()
	c.Start()
	url = c.URL()
	if cur2, closed2 := ballotsOf(t, ben, benID); cur2 != cur || !slices.Equal(closed2, closed) {
		t.Fatalf("after a restart: ballots %s, closed %v; want %s, %v", cur2, closed2, cur, closed)
	}
	for i, p := range ps {
		want := "yes"
		if i == 4 {
			want = "no"
		}
		waitVote(t, url, ana, p.ID, benID, want)
	}
	if _, err := ben.Sync(t.Context(), nil); err != nil {
		t.Fatalf("sync after a restart: %v", err)
	}
}

// TestBallotsSegmentBounded: a member who writes 2,000 votes keeps a live
// ballots document of at most the bound; the rest sits in closed
// documents.
func TestBallotsSegmentBounded(t *testing.T) {
	const bound, votes = 100, 2000
	c := servertest.Start(t, "Ballots Circle", smallBallots(bound))
	url := c.URL()
	ana := servertest.MustEnroll(t, url, c.FounderInvite, "Ana")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ben, err := client.Join(ctx, t.TempDir(), url, servertest.MustInvite(t, url, ana, "member", ""), "Ben", "laptop")
	if err != nil {
		t.Fatal(err)
	}
	benID := ben.Info().MemberID
	if _, err := ben.Sync(ctx, nil); err != nil {
		t.Fatal(err)
	}
	for i := range votes / bound {
		for range bound {
			// Votes on proposals the circle has not seen: each is an item
			// of the ballots document like any other.
			if _, err := ben.Vote(uuid.NewString(), "yes", "", time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := ben.Sync(ctx, nil); err != nil {
			t.Fatal(err)
		}
		waitClosed(t, ben, benID, i+1)
		// The device learns the new document at its next sync.
		if _, err := ben.Sync(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	cur, closed := ballotsOf(t, ben, benID)
	if len(closed) != votes/bound {
		t.Errorf("%d closed ballots documents, want %d", len(closed), votes/bound)
	}
	if n := ballotsItems(t, url, ana, cur); n > bound {
		t.Errorf("the live ballots document holds %d items, want at most %d", n, bound)
	}
	total := 0
	for _, doc := range closed {
		total += ballotsItems(t, url, ana, doc)
	}
	if total != votes {
		t.Errorf("the closed ballots documents hold %d items, want all %d votes", total, votes)
	}
}

// TestBallotsSegmentInterrupted: the roster's write fails while the next
// ballots document is opened (as a crash between creating it and naming
// it): the member keeps the old one, nothing is lost, and after a restart
// the next stored change opens the next one.
func TestBallotsSegmentInterrupted(t *testing.T) {
	var armed atomic.Bool
	var roster atomic.Value
	roster.Store("")
	c := servertest.Start(t, "Interrupted Ballots", smallBallots(4), servertest.WithConfig(func(cfg *server.Config) {
		server.FailWrites(cfg, func(doc string) bool { return armed.Load() && doc == roster.Load().(string) })
	}))
	b := startBallots(t, c, 5)
	url, ana, ben, benID, ps, first := b.url, b.ana, b.ben, b.benID, b.proposals, b.first
	roster.Store(servertest.MustCircle(t, url, ana).Docs["roster"])
	armed.Store(true)
	for _, p := range ps[:4] {
		if _, err := ben.Vote(p.ID, "yes", "", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ben.Sync(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	for _, p := range ps[:4] {
		waitVote(t, url, ana, p.ID, benID, "yes")
	}
	c.Stop() // waits for the background switch, which failed at the roster
	armed.Store(false)
	c.Start()
	url = c.URL()
	if cur, closed := ballotsOf(t, ben, benID); cur != first || len(closed) != 0 {
		t.Fatalf("after the failed switch: ballots %s, closed %v; want still %s and none closed", cur, closed, first)
	}
	// The next stored change opens the next document.
	if _, err := ben.Vote(ps[4].ID, "no", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := ben.Sync(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	cur, closed := waitClosed(t, ben, benID, 1)
	if cur == first || !slices.Equal(closed, []string{first}) {
		t.Fatalf("after the restart: ballots %s, closed %v; want a new one and [%s]", cur, closed, first)
	}
	for i, p := range ps {
		want := "yes"
		if i == 4 {
			want = "no"
		}
		waitVote(t, url, ana, p.ID, benID, want)
	}
}

// TestBallotsSegmentClosedBound: a closed ballots document takes late
// writes up to twice the bound; past it a write is refused (422, rule
// schema, naming the current document) and nothing of it is stored. The
// Go device, refused, writes its items again one by one (Device.Recover):
// those that fit are accepted and counted, the rest are listed as refused
// with the server's reason, none dropped silently.
func TestBallotsSegmentClosedBound(t *testing.T) {
	c := servertest.Start(t, "Ballots Circle", smallBallots(2))
	b := startBallots(t, c, 5)
	url, ana, ben, benID, ps, first := b.url, b.ana, b.ben, b.benID, b.proposals, b.first
	for _, p := range ps[:2] {
		if _, err := ben.Vote(p.ID, "yes", "", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ben.Sync(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	cur, _ := waitClosed(t, ben, benID, 1)
	// Three more into the closed one, in one change each: 5 > 2×2.
	for _, p := range ps[2:] {
		if _, err := ben.Vote(p.ID, "no", "", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := ben.Sync(t.Context(), nil)
	if err != nil {
		t.Fatalf("Sync = %v, want the refusal recovered", err)
	}
	if len(sum.Recovered) != 1 || sum.Recovered[0].Doc != first || sum.Recovered[0].Accepted != 2 || len(sum.Recovered[0].Refused) != 1 {
		t.Fatalf("recovered %+v, want the closed document %s with 2 votes accepted and 1 refused", sum.Recovered, first)
	}
	refused := sum.Recovered[0].Refused[0]
	if refused.Container != "votes" || !strings.Contains(refused.Reason, "closed") || !strings.Contains(refused.Reason, cur) {
		t.Errorf("refused %+v, want a vote refused because the document is closed, naming %s", refused, cur)
	}
	if n := ballotsItems(t, url, ana, first); n != 4 {
		t.Errorf("the closed ballots document holds %d items, want twice the bound (4)", n)
	}
	counted := 0
	for _, p := range ps[2:] {
		if p.ID == refused.ID {
			if v, ok := getProposal(t, url, ana, p.ID).Votes[benID]; ok {
				t.Errorf("proposal %s counted the refused vote %+v", p.ID, v)
			}
			continue
		}
		waitVote(t, url, ana, p.ID, benID, "no")
		counted++
	}
	if counted != 2 {
		t.Errorf("%d late votes counted, want 2", counted)
	}
}

// TestBallotsSegmentSyncInterrupted: the device's sync that first learns
// of the switch fails while delivering the vote it wrote offline into the
// old ballots document (the store refuses that document's write); the
// device now names the new document, and its next sync still delivers the
// vote (mobile-api/client closedBallotsHeld: closed documents it holds
// with changes the server lacks).
func TestBallotsSegmentSyncInterrupted(t *testing.T) {
	var failing atomic.Value
	failing.Store("")
	c := servertest.Start(t, "Ballots Circle", smallBallots(2), servertest.WithConfig(func(cfg *server.Config) {
		server.FailWrites(cfg, func(doc string) bool { return doc == failing.Load().(string) })
	}))
	b := startBallots(t, c, 3)
	url, ana, ben, benID, ps, first := b.url, b.ana, b.ben, b.benID, b.proposals, b.first
	for _, p := range ps[:2] {
		if _, err := ben.Vote(p.ID, "yes", "", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ben.Sync(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	cur, _ := waitClosed(t, ben, benID, 1)
	if _, err := ben.Vote(ps[2].ID, "no", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	failing.Store(first)
	if _, err := ben.Sync(t.Context(), nil); err == nil {
		t.Fatal("Sync succeeded while the store refused the old ballots document")
	}
	if got := ben.Info().Circle.Docs["ballots"]; got != cur {
		t.Fatalf("after the failed sync the device names ballots %s, want the new %s", got, cur)
	}
	if _, ok := getProposal(t, url, ana, ps[2].ID).Votes[benID]; ok {
		t.Fatal("the vote was counted although its write failed")
	}
	failing.Store("")
	if _, err := ben.Sync(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	waitVote(t, url, ana, ps[2].ID, benID, "no")
}
