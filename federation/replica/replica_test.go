package replica_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/circles-coop/circles/authority/fault"
	"github.com/circles-coop/circles/federation/replica"
)

func threeCircles(t *testing.T, extra func(*replica.ManagerConfig)) (a, b, c *circle) {
	t.Helper()
	hub := mustHub(t, "A", "B", "C")
	a, b, c = newCircle(t, hub, "A", extra), newCircle(t, hub, "B", extra), newCircle(t, hub, "C", extra)
	for _, x := range []*circle{a, b, c} {
		x.src.setDelegates(replica.Delegate{Member: "m-" + x.id, Name: "Delegate of " + x.id, Mandate: "md-" + x.id, Issue: "food council", Deadline: time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second)})
		x.rep.Refresh()
	}
	waitSynced(t, 10*time.Second, a, b, c)
	return a, b, c
}

// waitSynced waits until every circle's view lists every circle with
// the same content, and the proposals and balances agree.
func waitSynced(t *testing.T, d time.Duration, cs ...*circle) {
	t.Helper()
	waitFor(t, d, "circles to agree", func() bool {
		first := cs[0].rep.View().Circles
		if len(first) != len(cs) {
			return false
		}
		for _, x := range cs[1:] {
			if !sameCircles(first, x.rep.View().Circles) {
				return false
			}
			if !reflect.DeepEqual(cs[0].rep.Proposals(), x.rep.Proposals()) || !reflect.DeepEqual(cs[0].rep.Balances(), x.rep.Balances()) {
				return false
			}
		}
		return true
	})
}

func sameCircles(a, b []replica.CircleView) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]string{}
	for _, c := range a {
		j, _ := json.Marshal(c)
		m[c.CircleID] = string(j)
	}
	for _, c := range b {
		j, _ := json.Marshal(c)
		if m[c.CircleID] != string(j) {
			return false
		}
	}
	return true
}

// TestReplicate: each circle's profile, scorecard, delegates and
// blueprints reach the others through the hub; an adopted blueprint
// credits its origin and spreads as the adopter's own.
func TestReplicate(t *testing.T) {
	a, b, c := threeCircles(t, nil)
	v := c.rep.View()
	ca, ok := circleView(v, "A")
	if !ok || ca.Name != "Circle A" || len(ca.Delegates) != 1 || ca.Delegates[0].Member != "m-A" || string(ca.Scorecard) != `{"period":"quarter"}` {
		t.Fatalf("C's view of A = %+v", ca)
	}
	if v.Circles[0].CircleID != "C" {
		t.Errorf("a circle's own entry comes first: got %s", v.Circles[0].CircleID)
	}
	ctx := context.Background()
	bp, created, err := a.mgr.PublishBlueprint(ctx, replica.Blueprint{ID: "rotate", Title: "Rotating facilitation", Body: "Each meeting the next person in the list facilitates."})
	if err != nil || !created {
		t.Fatalf("PublishBlueprint: %v %v", created, err)
	}
	waitFor(t, 5*time.Second, "B to see A's blueprint", func() bool { _, ok := b.rep.Blueprint("A", "rotate"); return ok })
	got, created, err := b.mgr.AdoptBlueprint(ctx, "rotate", fed, "A")
	if err != nil || !created {
		t.Fatalf("AdoptBlueprint: %v %v", created, err)
	}
	if got.Origin == nil || *got.Origin != (replica.Origin{Federation: fed, CircleID: "A", Blueprint: "rotate"}) || got.Body != bp.Body {
		t.Errorf("adopted = %+v, want A's body with origin A", got)
	}
	// C adopts B's copy: the origin stays A.
	waitFor(t, 5*time.Second, "C to see B's copy", func() bool { _, ok := c.rep.Blueprint("B", "rotate"); return ok })
	got, _, err = c.mgr.AdoptBlueprint(ctx, "rotate", fed, "B")
	if err != nil || got.Origin == nil || got.Origin.CircleID != "A" {
		t.Errorf("adopting a copy: %+v %v, want origin A", got, err)
	}
	for _, tc := range []struct {
		name            string
		id, fed, circle string
		code            string
	}{
		{"unknown blueprint", "nope", fed, "A", fault.NotFound},
		{"unknown federation", "rotate", "energy", "A", fault.NotFound},
		{"own blueprint", "rotate", fed, "B", fault.InvalidRequest},
		{"bad circle id", "rotate", fed, "a.b", fault.InvalidRequest},
	} {
		if _, _, err := b.mgr.AdoptBlueprint(ctx, tc.id, tc.fed, tc.circle); fault.CodeOf(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	if _, _, err := a.mgr.PublishBlueprint(ctx, replica.Blueprint{ID: "rotate", Title: "Other", Body: "x"}); fault.CodeOf(err) != fault.Conflict {
		t.Errorf("another blueprint with a used id: %v, want conflict", err)
	}
	waitSynced(t, 5*time.Second, a, b, c)
}

// TestPartitionHeal: C's link stops; A and C both change; the others
// keep serving from their replicas; after the link is back everyone
// converges with nothing lost.
func TestPartitionHeal(t *testing.T) {
	a, b, c := threeCircles(t, nil)
	ctx := context.Background()
	now := time.Now()
	c.setLink(false)
	if _, _, err := a.rep.Propose(ctx, "m-A", replica.ProposalRequest{ID: "p1", Kind: replica.KindText, Title: "Joint seed order"}, now); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if _, _, err := a.rep.Credit(ctx, "m-A", replica.CreditRequest{ID: "a" + itoa(i), ToCircle: "B", Amount: 0.5, Note: "transport"}, now); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := c.rep.Credit(ctx, "m-C", replica.CreditRequest{ID: "c1", ToCircle: "A", Amount: 3, Note: "offline credit"}, now); err != nil {
		t.Fatal(err)
	}
	c.src.setDelegates() // C's delegate's mandate ended while partitioned
	c.rep.Refresh()
	waitFor(t, 5*time.Second, "B to see A's proposal", func() bool { return len(b.rep.Proposals()) == 1 })
	if _, err := b.rep.Vote(ctx, "m-B", "p1", "yes"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // several announcements go unanswered meanwhile
	if len(c.rep.Proposals()) != 0 {
		t.Fatalf("C saw a proposal while partitioned")
	}
	if cc, _ := circleView(c.rep.View(), "A"); cc.Name != "Circle A" {
		t.Errorf("C's replica of A while partitioned: %+v", cc)
	}
	c.setLink(true)
	waitSynced(t, 10*time.Second, a, b, c)
	bal := map[string]float64{}
	for _, x := range c.rep.Balances() {
		bal[x.CircleID] = x.Balance
	}
	if want := map[string]float64{"A": -25 + 3, "B": 25, "C": -3}; !reflect.DeepEqual(bal, want) {
		t.Errorf("balances after heal = %v, want %v", bal, want)
	}
	if cv, _ := circleView(a.rep.View(), "C"); len(cv.Delegates) != 0 {
		t.Errorf("A still lists C's ended delegate: %+v", cv.Delegates)
	}
	p := c.rep.Proposals()[0]
	if p.Votes["B"] != "yes" || p.Status != replica.StatusOpen {
		t.Errorf("proposal after heal = %+v", p)
	}
}

func itoa(i int) string { return string(rune('a'+i/26)) + string(rune('a'+i%26)) }

// TestRestartFromReplica: with the hub gone, a circle restarted from its
// own store still answers the federation view from its replica; when the
// hub is back it catches up on what it missed.
func TestRestartFromReplica(t *testing.T) {
	a, b, c := threeCircles(t, nil)
	ctx := context.Background()
	c.setLink(false)
	c.stop()
	// Nothing arrives while C is down; A changes.
	if _, _, err := a.rep.Credit(ctx, "m-A", replica.CreditRequest{ID: "x1", ToCircle: "C", Amount: 2, Note: "while C was down"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	restartDisabled(t, c)
	v := c.rep.View()
	if len(v.Circles) != 3 {
		t.Fatalf("C's view after restart, offline: %d circles, want 3", len(v.Circles))
	}
	if cv, _ := circleView(v, "B"); cv.Name != "Circle B" || len(cv.Delegates) != 1 {
		t.Errorf("C's stored replica of B: %+v", cv)
	}
	c.setLink(true)
	waitSynced(t, 10*time.Second, a, b, c)
}

// restartDisabled starts c again with its (disabled) leaf remote.
func restartDisabled(t *testing.T, c *circle) {
	t.Helper()
	opts := c.opts.Clone()
	opts.LeafNode.Remotes = []*server.RemoteLeafOpts{{URLs: []*url.URL{c.leafURL()}, Disabled: true}}
	c.startWith(opts)
}

// TestForgedChangeRefused: a change on A's subject written with B's
// actor, and a change with A's actor arriving on B's subject, are both
// refused whole; the hub refuses A publishing on B's subject at all.
func TestForgedChangeRefused(t *testing.T) {
	a, b, c := threeCircles(t, nil)
	before := c.rep.View()
	forge := func(actor string) []byte {
		d := automerge.New()
		if err := d.SetActorID(actor); err != nil {
			t.Fatal(err)
		}
		if err := d.RootMap().Set("profile", `{"name":"Forged"}`); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Commit("forged"); err != nil {
			t.Fatal(err)
		}
		chs, _ := d.Changes()
		raw := chs[0].Save()
		return append(uvarint(len(raw)), raw...)
	}
	// A publishes, on its own subject, a change made to look like B's.
	if err := a.nc.Publish(replica.CircleSubject(fed, "A", replica.SuffixChanges), forge(replica.ActorFor(fed, "B"))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "B and C to refuse the forged change", func() bool { return b.rep.Refused() >= 1 && c.rep.Refused() >= 1 })
	// A change with A's actor injected on B's subject (as if a link
	// carried it there) is refused too.
	if err := c.nc.Publish(replica.CircleSubject(fed, "B", replica.SuffixChanges), forge(replica.ActorFor(fed, "A"))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "C to refuse the change on the wrong subject", func() bool { return c.rep.Refused() >= 2 })
	// Malformed bytes are refused without harm.
	if err := c.nc.Publish(replica.CircleSubject(fed, "B", replica.SuffixChanges), []byte{5, 1, 2, 3, 4, 5}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "C to refuse malformed bytes", func() bool { return c.rep.Refused() >= 3 })
	// The hub refuses A's credentials on B's subject.
	hc, err := nats.Connect(c.hub.ClientURL(), nats.UserInfo("A", "A-pw"), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	got := make(chan struct{}, 1)
	sub, err := b.nc.Subscribe(replica.CircleSubject(fed, "B", "probe"), func(*nats.Msg) { got <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	_ = b.nc.Flush()
	time.Sleep(100 * time.Millisecond) // interest reaches the hub
	_ = hc.Publish(replica.CircleSubject(fed, "B", "probe"), []byte("x"))
	_ = hc.Flush()
	select {
	case <-got:
		t.Errorf("A's credentials published on B's subject")
	case <-time.After(500 * time.Millisecond):
	}
	after := c.rep.View()
	if !sameCircles(before.Circles, after.Circles) {
		t.Errorf("the view changed after refused changes:\nbefore %+v\nafter  %+v", before.Circles, after.Circles)
	}
	for _, x := range []*circle{a, b, c} {
		for _, cv := range x.rep.View().Circles {
			if cv.Name == "Forged" {
				t.Errorf("%s lists a forged profile for %s", x.id, cv.CircleID)
			}
		}
	}
}

func uvarint(n int) []byte {
	var out []byte
	for n >= 0x80 {
		out = append(out, byte(n)|0x80)
		n >>= 7
	}
	return append(out, byte(n))
}

// TestCouncil: delegates propose and vote, one vote per circle, decided
// by a majority of member circles; OnDecided hears a passed expel once;
// a member who is not a delegate is refused.
func TestCouncil(t *testing.T) {
	var mu sync.Mutex
	decided := map[string][]string{}
	a, b, c := threeCircles(t, func(cfg *replica.ManagerConfig) {
		circle := cfg.Circle
		cfg.OnDecided = func(f string, p replica.Proposal) {
			mu.Lock()
			decided[circle] = append(decided[circle], p.ID+"="+p.Status)
			mu.Unlock()
		}
	})
	ctx := context.Background()
	now := time.Now()
	expel := replica.ProposalRequest{ID: "ex1", Kind: replica.KindExpel, Title: "Expel C", Payload: json.RawMessage(`{"circle_id":"C"}`)}
	for _, tc := range []struct {
		name   string
		member string
		req    replica.ProposalRequest
		code   string
	}{
		{"not a delegate", "m-B", expel, fault.Forbidden},
		{"unknown kind", "m-A", replica.ProposalRequest{ID: "k", Kind: "federation.rule", Title: "x"}, fault.InvalidRequest},
		{"no title", "m-A", replica.ProposalRequest{ID: "k", Kind: replica.KindText}, fault.InvalidRequest},
		{"bad id", "m-A", replica.ProposalRequest{ID: "a b", Kind: replica.KindText, Title: "x"}, fault.InvalidRequest},
		{"expel a stranger", "m-A", replica.ProposalRequest{ID: "k", Kind: replica.KindExpel, Title: "x", Payload: json.RawMessage(`{"circle_id":"Z"}`)}, fault.InvalidRequest},
		{"admit a member", "m-A", replica.ProposalRequest{ID: "k", Kind: replica.KindAdmit, Title: "x", Payload: json.RawMessage(`{"circle_id":"B"}`)}, fault.Conflict},
		{"payload without circle", "m-A", replica.ProposalRequest{ID: "k", Kind: replica.KindAdmit, Title: "x", Payload: json.RawMessage(`{"circle":"D"}`)}, fault.InvalidRequest},
	} {
		if _, _, err := a.rep.Propose(ctx, tc.member, tc.req, now); fault.CodeOf(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	if _, created, err := a.rep.Propose(ctx, "m-A", expel, now); err != nil || !created {
		t.Fatalf("propose: %v %v", created, err)
	}
	if _, created, err := a.rep.Propose(ctx, "m-A", expel, now); err != nil || created {
		t.Errorf("the same proposal again: %v %v, want a safe retry", created, err)
	}
	waitFor(t, 5*time.Second, "B to see the proposal", func() bool { return len(b.rep.Proposals()) == 1 })
	if _, _, err := b.rep.Propose(ctx, "m-B", replica.ProposalRequest{ID: "ex1", Kind: replica.KindText, Title: "other"}, now); fault.CodeOf(err) != fault.Conflict {
		t.Errorf("another proposal with a used id: %v, want conflict", err)
	}
	if _, err := b.rep.Vote(ctx, "m-A", "ex1", "yes"); fault.CodeOf(err) != fault.Forbidden {
		t.Errorf("a vote by someone not B's delegate: %v, want forbidden", err)
	}
	if _, err := b.rep.Vote(ctx, "m-B", "ex1", "maybe"); fault.CodeOf(err) != fault.InvalidRequest {
		t.Errorf("a bad choice: %v", err)
	}
	if _, err := b.rep.Vote(ctx, "m-B", "nope", "yes"); fault.CodeOf(err) != fault.NotFound {
		t.Errorf("an unknown proposal: %v", err)
	}
	p, err := a.rep.Vote(ctx, "m-A", "ex1", "yes")
	if err != nil || p.Status != replica.StatusOpen {
		t.Fatalf("first vote: %+v %v, want open (1 of 3)", p, err)
	}
	if _, err := a.rep.Vote(ctx, "m-A", "ex1", "no"); fault.CodeOf(err) != fault.Conflict {
		t.Errorf("a second vote of the same circle: %v, want conflict", err)
	}
	if _, err := a.rep.Vote(ctx, "m-A", "ex1", "yes"); err != nil {
		t.Errorf("the same vote again: %v, want a safe retry", err)
	}
	waitFor(t, 5*time.Second, "B to see A's vote", func() bool { return b.rep.Proposals()[0].Votes["A"] == "yes" })
	p, err = b.rep.Vote(ctx, "m-B", "ex1", "yes")
	if err != nil || p.Status != replica.StatusPassed {
		t.Fatalf("second vote: %+v %v, want passed (2 of 3)", p, err)
	}
	waitSynced(t, 5*time.Second, a, b, c)
	if _, err := c.rep.Vote(ctx, "m-C", "ex1", "no"); fault.CodeOf(err) != fault.Conflict {
		t.Errorf("a vote on a decided proposal: %v, want conflict", err)
	}
	waitFor(t, 5*time.Second, "every circle's OnDecided", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(decided) == 3
	})
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	for _, id := range []string{"A", "B", "C"} {
		if !reflect.DeepEqual(decided[id], []string{"ex1=passed"}) {
			t.Errorf("OnDecided in %s: %v, want ex1=passed once", id, decided[id])
		}
	}
	mu.Unlock()
	// A rejected proposal: two circles against.
	if _, _, err := c.rep.Propose(ctx, "m-C", replica.ProposalRequest{ID: "t2", Kind: replica.KindText, Title: "Move the fair"}, now); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "A to see t2", func() bool { return len(a.rep.Proposals()) == 2 })
	_, _ = a.rep.Vote(ctx, "m-A", "t2", "no")
	waitFor(t, 5*time.Second, "B to see A's vote", func() bool { return b.rep.Proposals()[1].Votes["A"] == "no" })
	if p, err := b.rep.Vote(ctx, "m-B", "t2", "abstain"); err != nil || p.Status != replica.StatusRejected {
		t.Errorf("t2 after no and abstain: %+v %v, want rejected", p, err)
	}
}

// TestCreditsSumToZero: delegates credit hours between circles; bad
// credits change nothing; every circle computes the same balances, which
// sum to zero.
func TestCreditsSumToZero(t *testing.T) {
	a, b, c := threeCircles(t, nil)
	ctx := context.Background()
	now := time.Now()
	for _, tc := range []struct {
		name   string
		member string
		req    replica.CreditRequest
		code   string
	}{
		{"not a delegate", "m-B", replica.CreditRequest{ID: "x", ToCircle: "B", Amount: 1}, fault.Forbidden},
		{"to itself", "m-A", replica.CreditRequest{ID: "x", ToCircle: "A", Amount: 1}, fault.InvalidRequest},
		{"to a stranger", "m-A", replica.CreditRequest{ID: "x", ToCircle: "Z", Amount: 1}, fault.InvalidRequest},
		{"zero", "m-A", replica.CreditRequest{ID: "x", ToCircle: "B", Amount: 0}, fault.InvalidRequest},
		{"negative", "m-A", replica.CreditRequest{ID: "x", ToCircle: "B", Amount: -2}, fault.InvalidRequest},
		{"too much", "m-A", replica.CreditRequest{ID: "x", ToCircle: "B", Amount: 1e6}, fault.InvalidRequest},
		{"thousandths", "m-A", replica.CreditRequest{ID: "x", ToCircle: "B", Amount: 0.001}, fault.InvalidRequest},
		{"NaN", "m-A", replica.CreditRequest{ID: "x", ToCircle: "B", Amount: math.NaN()}, fault.InvalidRequest},
	} {
		if _, _, err := a.rep.Credit(ctx, tc.member, tc.req, now); fault.CodeOf(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	credits := []struct {
		from *circle
		id   string
		to   string
		amt  float64
	}{{a, "a1", "B", 3.5}, {b, "b1", "C", 2}, {c, "c1", "A", 1.25}, {a, "a2", "C", 0.1}, {b, "b2", "A", 0.2}}
	for _, x := range credits {
		if _, _, err := x.from.rep.Credit(ctx, "m-"+x.from.id, replica.CreditRequest{ID: x.id, ToCircle: x.to, Amount: x.amt, Note: "help"}, now); err != nil {
			t.Fatalf("credit %s: %v", x.id, err)
		}
	}
	if _, _, err := a.rep.Credit(ctx, "m-A", replica.CreditRequest{ID: "a1", ToCircle: "B", Amount: 4}, now); fault.CodeOf(err) != fault.Conflict {
		t.Errorf("another credit with a used id: %v, want conflict", err)
	}
	waitSynced(t, 5*time.Second, a, b, c)
	var sum int64
	got := map[string]float64{}
	for _, x := range b.rep.Balances() {
		got[x.CircleID] = x.Balance
		sum += int64(math.Round(x.Balance * 100))
	}
	if sum != 0 {
		t.Errorf("balances %v sum to %d hundredths, want 0", got, sum)
	}
	if want := map[string]float64{"A": -3.5 - 0.1 + 1.25 + 0.2, "B": 3.5 - 2 - 0.2, "C": 2 - 1.25 + 0.1}; !close(got, want) {
		t.Errorf("balances = %v, want %v", got, want)
	}
}

func close(got, want map[string]float64) bool {
	if len(got) != len(want) {
		return false
	}
	for k, w := range want {
		if math.Abs(got[k]-w) > 1e-9 {
			return false
		}
	}
	return true
}

// TestDelegateEndsWithin2s: when a circle's delegate stops being one (the
// Source no longer lists them) and the circle refreshes, the other
// circles stop listing that delegate within 2 s.
func TestDelegateEndsWithin2s(t *testing.T) {
	a, b, c := threeCircles(t, nil)
	start := time.Now()
	a.src.setDelegates()
	a.mgr.RefreshAll()
	for _, x := range []*circle{b, c} {
		waitFor(t, 2*time.Second-time.Since(start), x.id+" to stop listing A's delegate", func() bool {
			cv, _ := circleView(x.rep.View(), "A")
			return len(cv.Delegates) == 0
		})
	}
	var unused error
	_ = errors.Is(unused, nil)
}

// TestDepartedCircle: a circle the hub no longer lists keeps its last state in
// the view, marked, and no longer counts for a majority.
func TestDepartedCircle(t *testing.T) {
	a, b, _ := threeCircles(t, nil)
	ctx := context.Background()
	if _, _, err := a.rep.Propose(ctx, "m-A", replica.ProposalRequest{ID: "t1", Kind: replica.KindText, Title: "Shared van"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := a.rep.Vote(ctx, "m-A", "t1", "yes"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "B to see t1", func() bool { return len(b.rep.Proposals()) == 1 })
	if _, err := b.rep.Vote(ctx, "m-B", "t1", "no"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "A to see B's vote", func() bool { return a.rep.Proposals()[0].Votes["B"] == "no" })
	if s := a.rep.Proposals()[0].Status; s != replica.StatusOpen {
		t.Fatalf("yes and no of three circles: %s, want open", s)
	}
	a.rep.FollowListing(map[string]bool{"A": true, "B": true}) // the hub no longer lists C
	cv, ok := circleView(a.rep.View(), "C")
	if !ok || !cv.Departed || cv.Name != "Circle C" {
		t.Errorf("C after departing: %+v, want its last state, departed", cv)
	}
	if s := a.rep.Proposals()[0].Status; s != replica.StatusRejected {
		t.Errorf("yes and no of two member circles: %s, want rejected", s)
	}
	a.rep.FollowListing(map[string]bool{"A": true, "B": true, "C": true}) // C is back
	if cv, _ := circleView(a.rep.View(), "C"); cv.Departed {
		t.Errorf("C listed again: %+v, want not departed", cv)
	}
}

// TestDecisionsSurviveRestart: a decision is recorded in the circle's
// store; after a restart OnDecided is not told again, and the decision
// stands.
func TestDecisionsSurviveRestart(t *testing.T) {
	var mu sync.Mutex
	told := map[string]int{}
	a, b, c := threeCircles(t, func(cfg *replica.ManagerConfig) {
		id := cfg.Circle
		cfg.OnDecided = func(string, replica.Proposal) {
			mu.Lock()
			told[id]++
			mu.Unlock()
		}
	})
	ctx := context.Background()
	if _, _, err := a.rep.Propose(ctx, "m-A", replica.ProposalRequest{ID: "t1", Kind: replica.KindText, Title: "Joint fair"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	_, _ = a.rep.Vote(ctx, "m-A", "t1", "yes")
	waitFor(t, 5*time.Second, "B to see A's vote", func() bool { p := b.rep.Proposals(); return len(p) == 1 && p[0].Votes["A"] == "yes" })
	_, _ = b.rep.Vote(ctx, "m-B", "t1", "yes")
	waitSynced(t, 5*time.Second, a, b, c)
	waitFor(t, 5*time.Second, "C to be told", func() bool { mu.Lock(); defer mu.Unlock(); return told["C"] == 1 })
	c.stop()
	c.start()
	waitSynced(t, 10*time.Second, a, b, c)
	time.Sleep(300 * time.Millisecond) // several recounts
	mu.Lock()
	defer mu.Unlock()
	if told["C"] != 1 {
		t.Errorf("C was told %d times of one decision across a restart, want 1", told["C"])
	}
	if p := c.rep.Proposals(); len(p) != 1 || p[0].Status != replica.StatusPassed {
		t.Errorf("after restart: %+v", p)
	}
}

// TestOutOfBoundsRecordsIgnored: a circle may write anything into its
// own document; what breaks the bounds the API enforces (a credit to
// itself, a huge amount, a proposal of an unknown kind or an oversized
// title, a blueprint without body) is not shown by the others, and the
// balances still sum to zero.
func TestOutOfBoundsRecordsIgnored(t *testing.T) {
	a, b, c := threeCircles(t, nil)
	ctx := context.Background()
	big := make([]byte, replica.MaxTitle+1)
	for i := range big {
		big[i] = 'x'
	}
	for _, w := range []struct{ m, id, rec string }{
		{"credits", "self", `{"id":"self","to_circle":"A","amount":5}`},
		{"credits", "huge", `{"id":"huge","to_circle":"B","amount":1e12}`},
		{"credits", "neg", `{"id":"neg","to_circle":"B","amount":-3}`},
		{"credits", "thou", `{"id":"thou","to_circle":"B","amount":0.001}`},
		{"credits", "ok", `{"id":"ok","to_circle":"B","amount":2}`},
		{"credits", "mismatch", `{"id":"other","to_circle":"B","amount":2}`},
		{"proposals", "k", `{"id":"k","kind":"federation.dissolve","title":"x"}`},
		{"proposals", "t", `{"id":"t","kind":"federation.text","title":"` + string(big) + `"}`},
		{"proposals", "e", `{"id":"e","kind":"federation.expel","title":"x","payload":{"circle_id":"a.b"}}`},
		{"blueprints", "nobody", `{"id":"nobody","title":"x","body":""}`},
		{"votes", "ok", "maybe"},
	} {
		if err := a.rep.WriteRecord(ctx, w.m, w.id, w.rec); err != nil {
			t.Fatal(err)
		}
	}
	waitSynced(t, 5*time.Second, a, b, c)
	got := map[string]float64{}
	for _, x := range c.rep.Balances() {
		got[x.CircleID] = x.Balance
	}
	if want := map[string]float64{"A": -2, "B": 2, "C": 0}; !reflect.DeepEqual(got, want) {
		t.Errorf("balances = %v, want only the valid credit: %v", got, want)
	}
	if p := c.rep.Proposals(); len(p) != 0 {
		t.Errorf("proposals = %+v, want none", p)
	}
	if cv, _ := circleView(c.rep.View(), "A"); len(cv.Blueprints) != 0 {
		t.Errorf("blueprints = %+v, want none", cv.Blueprints)
	}
}

// TestReplicaBound: a circle writing without end into its own document
// stops being replicated once its document reaches the bound the others
// keep; what was replicated stays.
func TestReplicaBound(t *testing.T) {
	a, b, c := threeCircles(t, func(cfg *replica.ManagerConfig) { cfg.MaxReplicaBytes = 16 << 10 })
	ctx := context.Background()
	before := b.rep.Refused()
	body := strings.Repeat("x", 1024)
	for i := range 40 {
		if err := a.rep.WriteRecord(ctx, "blueprints", "b"+itoa(i), `{"id":"b`+itoa(i)+`","title":"t","body":"`+body+`"}`); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "B to refuse A's changes past the bound", func() bool { return b.rep.Refused() > before })
	time.Sleep(500 * time.Millisecond)
	if slices.Equal(b.rep.Heads("A"), a.rep.Heads("A")) {
		t.Errorf("B replicated all of A's 40 KB past a 16 KB bound")
	}
	if cv, _ := circleView(b.rep.View(), "A"); cv.Name != "Circle A" {
		t.Errorf("B's replica of A lost what it had: %+v", cv)
	}
	_ = c
}
