package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// TestInviteCapPerMember: a member holds at most 3 open member invites
// and 3 open device invites; the next is refused with 429 rate_limited,
// saying how one frees. Using an invite frees its place.
func TestInviteCapPerMember(t *testing.T) {
	c := servertest.Start(t, "Invite Cap")
	url := c.URL()
	ada := servertest.MustEnroll(t, url, c.FounderInvite, "Ada")
	var memberCodes []string
	for _, kind := range []string{"member", "device"} {
		for i := 0; i < 3; i++ {
			code := servertest.MustInvite(t, url, ada, kind, "1h")
			if kind == "member" {
				memberCodes = append(memberCodes, code)
			}
		}
		r := servertest.Call(t, url, "POST", "/v1/invites", ada.Token, servertest.MustJSON(t, wire.InviteRequest{For: kind}))
		if r.Status != http.StatusTooManyRequests || r.Code != "rate_limited" {
			t.Fatalf("4th open %s invite: %d %q %s, want 429 rate_limited", kind, r.Status, r.Code, r.Body)
		}
		if !strings.Contains(string(r.Body), "used or expires") {
			t.Errorf("4th open %s invite: message %s does not say how one frees", kind, r.Body)
		}
	}
	bo := servertest.MustEnroll(t, url, memberCodes[0], "Bo")
	servertest.MustInvite(t, url, ada, "member", "1h") // Bo used one: its place is free
	servertest.MustInvite(t, url, bo, "member", "1h")  // Bo's invites are his own
}

// TestInviteBurstCapped: 200 concurrent invite requests of one member
// make 3 invites, not 200.
func TestInviteBurstCapped(t *testing.T) {
	c := servertest.Start(t, "Invite Burst")
	url := c.URL()
	ada := servertest.MustEnroll(t, url, c.FounderInvite, "Ada")
	var created, limited atomic.Int32
	err := race(200, func(i int) error {
		status, _, err := post(url, "/v1/invites", ada.Token, wire.InviteRequest{For: "member"})
		switch status {
		case http.StatusCreated:
			created.Add(1)
		case http.StatusTooManyRequests:
			limited.Add(1)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if created.Load() != 3 || limited.Load() != 197 {
		t.Errorf("200 concurrent invites: %d created, %d refused; want 3 and 197", created.Load(), limited.Load())
	}
}

func inviteStored(t *testing.T, c *servertest.Circle, code string) bool {
	t.Helper()
	sum := sha256.Sum256([]byte(code))
	keys, err := c.Server.Store().Invites().Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k == hex.EncodeToString(sum[:]) {
			return true
		}
	}
	return false
}

// TestInvitesPurged: the scheduler deletes used invites and expired ones
// a day after; open invites stay and still work.
func TestInvitesPurged(t *testing.T) {
	clk := &servertest.Clock{}
	c := servertest.Start(t, "Invite Purge", servertest.WithClock(clk.Now))
	url := c.URL()
	ada := servertest.MustEnroll(t, url, c.FounderInvite, "Ada")
	used := servertest.MustInvite(t, url, ada, "member", "1h")
	expiring := servertest.MustInvite(t, url, ada, "device", "1m")
	open := servertest.MustInvite(t, url, ada, "member", "720h")
	servertest.MustEnroll(t, url, used, "Bo")
	for _, code := range []string{c.FounderInvite, used, expiring, open} {
		if !inviteStored(t, c, code) {
			t.Fatalf("invite %.6s… is not stored before the purge", code)
		}
	}
	if err := c.Server.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !inviteStored(t, c, used) {
		t.Errorf("an invite used a moment ago is purged at once, want kept a day")
	}
	clk.Set(25 * time.Hour)
	if err := c.Server.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, code := range []string{c.FounderInvite, used, expiring} {
		if inviteStored(t, c, code) {
			t.Errorf("used or expired invite %.6s… is still stored a day later", code)
		}
	}
	if !inviteStored(t, c, open) {
		t.Fatalf("the open invite was purged")
	}
	servertest.MustEnroll(t, url, open, "Cy")
}

// TestLateJoinerDoesNotVote: members who joined after a proposal opened
// neither vote on it nor count for its quorum: sock puppets invited once
// it opened change nothing.
func TestLateJoinerDoesNotVote(t *testing.T) {
	c := servertest.Start(t, "Sock Puppets")
	url := c.URL()
	ada := servertest.MustEnroll(t, url, c.FounderInvite, "Ada")
	bo := servertest.MustEnroll(t, url, servertest.MustInvite(t, url, ada, "member", "1h"), "Bo")
	p := mustPropose(t, url, ada, "role.create", "A treasurer", treasurer(2))
	var socks []*servertest.Device
	for i := 0; i < 3; i++ {
		socks = append(socks, servertest.MustEnroll(t, url, servertest.MustInvite(t, url, bo, "member", "1h"), "Sock"))
	}
	r := vote(t, url, socks[0], p.ID, "object")
	if r.Status != http.StatusForbidden || r.Code != "forbidden" {
		t.Errorf("a late joiner's vote: %d %q %s, want 403 forbidden", r.Status, r.Code, r.Body)
	}
	if got := getProposal(t, url, ada, p.ID); got.Tally.Eligible != 2 || len(got.Votes) != 0 {
		b, _ := json.Marshal(got.Tally)
		t.Errorf("tally %s with %d votes, want 2 eligible and no vote", b, len(got.Votes))
	}
	mustVote(t, url, ada, p.ID, "yes")
	if got := mustVote(t, url, bo, p.ID, "yes"); got.Status != "passed" {
		t.Errorf("after both members at its opening voted yes the proposal is %s (eligible %d), want passed", got.Status, got.Tally.Eligible)
	}
	// A proposal opened after they joined is theirs to vote on.
	q := mustPropose(t, url, ada, "role.create", "A scribe", map[string]any{"name": "scribe", "purpose": "writes it down", "term": "2160h", "term_limit": 2})
	if got := mustVote(t, url, socks[0], q.ID, "no"); got.Tally.Eligible != 5 {
		t.Errorf("a proposal opened after they joined: %d eligible, want 5", got.Tally.Eligible)
	}
}
