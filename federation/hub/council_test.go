package hub_test

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/circles-coop/circles/federation"
	"github.com/circles-coop/circles/federation/hub"
)

// TestCouncilExpelVotes: the hub expels a circle only once a majority of
// the member circles each told it, signed with their own nkey, that they
// voted yes on the same council proposal to expel it. One circle's word,
// told twice, or votes split over two proposals do not; a forged or
// misaddressed notice changes nothing.
func TestCouncilExpelVotes(t *testing.T) {
	c := &clock{}
	h, dir, invite := mustHub(t, c)
	keys := map[string]nkeys.KeyPair{}
	for _, id := range []string{"circleA", "circleB", "circleC", "circleD"} {
		keys[id] = mustUserKey(t)
		if invite == "" {
			inv, err := hub.MakeInvite(t.Context(), dir, time.Hour, c.now())
			if err != nil {
				t.Fatal(err)
			}
			invite = inv.Invite
		}
		if got := post(t, h, federation.PathJoin, mustJSON(t, federation.JoinRequest{Invite: invite, CircleID: id, Name: id, NKey: pub(t, keys[id])})); got.status != 200 {
			t.Fatalf("join %s: %d %s", id, got.status, got.body)
		}
		invite = ""
	}
	vote := func(signer nkeys.KeyPair, voter, proposal, target string) answer {
		t.Helper()
		sn, err := federation.SignNotice(signer, federation.Notice{Type: federation.NoticeExpelVote, FederationID: h.FederationID(),
			CircleID: voter, IssuedAt: c.now().UnixMilli(), Proposal: proposal, Target: target})
		if err != nil {
			t.Fatal(err)
		}
		return post(t, h, federation.PathExpelVote, mustJSON(t, sn))
	}
	member := func(id string) bool {
		return slices.ContainsFunc(h.Members(), func(c federation.Circle) bool { return c.CircleID == id })
	}

	before := readState(t, dir)
	for _, tc := range []struct {
		name   string
		got    answer
		status int
	}{
		{"signed by another circle's key", vote(keys["circleB"], "circleA", "p1", "circleD"), 401},
		{"a circle expelling itself", vote(keys["circleD"], "circleD", "p1", "circleD"), 400},
		{"a bad target", vote(keys["circleA"], "circleA", "p1", "c.>"), 400},
		{"no proposal", vote(keys["circleA"], "circleA", "", "circleD"), 400},
	} {
		if tc.got.status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, tc.got.status, tc.got.body, tc.status)
		}
	}
	if !bytes.Equal(readState(t, dir), before) {
		t.Fatal("a refused expel vote changed the hub's state")
	}

	// Four members: three yes votes on one proposal are needed.
	for _, v := range []struct{ voter, proposal string }{{"circleA", "p1"}, {"circleA", "p1"}, {"circleB", "p2"}, {"circleB", "p1"}} {
		if got := vote(keys[v.voter], v.voter, v.proposal, "circleD"); got.status != 200 {
			t.Fatalf("vote of %s on %s: %d %s", v.voter, v.proposal, got.status, got.body)
		}
		if !member("circleD") {
			t.Fatalf("circleD expelled after %s's vote on %s: two circles' word on one proposal is not a majority of four", v.voter, v.proposal)
		}
	}
	if got := vote(keys["circleC"], "circleC", "p1", "circleD"); got.status != 200 {
		t.Fatalf("vote of circleC: %d %s", got.status, got.body)
	}
	if member("circleD") {
		t.Fatal("circleD is still a member after three of four circles voted to expel it")
	}
	// Now a former member: its vote no longer counts.
	if got := vote(keys["circleD"], "circleD", "p9", "circleA"); got.status != 403 {
		t.Fatalf("an expelled circle's vote: %d %s, want 403", got.status, got.body)
	}
}
