package jsclient_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/circles-coop/circles/server"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// ballotsReport is what client.mjs prints in ballots mode.
type ballotsReport struct {
	Mode     string   `json:"mode"`
	MemberID string   `json:"member_id"`
	First    string   `json:"first"`
	Current  string   `json:"current"`
	Closed   []string `json:"closed"`
	Voted    []struct {
		Proposal string `json:"proposal"`
		Choice   string `json:"choice"`
		Doc      string `json:"doc"`
	} `json:"voted"`
}

// TestJSClientBallotsSwitch: the JS phone (a second device of the
// founder) fills its member's ballots document, the server opens the next
// one (authority/ballotsegments.go); the vote the phone then writes into
// the old one, not knowing yet, counts, and it follows the switch for the
// next vote.
func TestJSClientBallotsSwitch(t *testing.T) {
	js := mustJS(t)
	tc := servertest.Start(t, "JS Ballots Circle", servertest.WithConfig(func(c *server.Config) { c.BallotsSegmentEntries = 3 }))
	base := tc.URL()
	founder := mustEnroll(t, base, tc.FounderInvite, "Founder")
	var ids []string
	for i := range 5 {
		var p wire.Proposal
		founder.call(t, http.MethodPost, "/v1/proposals", wire.ProposalRequest{ID: uuid.NewString(), Kind: "member.admit", Title: fmt.Sprint("Admit guest ", i), Payload: map[string]any{"name": fmt.Sprint("Guest ", i)}}, http.StatusCreated, &p)
		ids = append(ids, p.ID)
	}
	var inv wire.InviteResponse
	founder.call(t, http.MethodPost, "/v1/invites", wire.InviteRequest{For: "device"}, http.StatusCreated, &inv)

	var got ballotsReport
	js.run(t, &got, "--server", base, "--invite", inv.Code, "--mode", "ballots", "--proposals", strings.Join(ids, ","), "--member-name", "Founder")
	if got.Mode != "ballots" || got.First == "" || got.Current == "" || got.Current == got.First {
		t.Fatalf("client summary = %+v, want two different ballots documents", got)
	}
	if !slices.Equal(got.Closed, []string{got.First}) {
		t.Errorf("the phone saw ballots_closed %v, want [%s]", got.Closed, got.First)
	}
	if len(got.Voted) != 5 || got.Voted[3].Doc != got.First || got.Voted[4].Doc != got.Current {
		t.Fatalf("the phone voted %+v, want 5 votes, the fourth into the old document and the fifth into the new one", got.Voted)
	}
	// Every vote counts, the offline one too (counted in the background).
	for _, v := range got.Voted {
		deadline := time.Now().Add(20 * time.Second)
		for {
			var p wire.Proposal
			founder.call(t, http.MethodGet, "/v1/proposals/"+v.Proposal, nil, http.StatusOK, &p)
			if cast, ok := p.Votes[got.MemberID]; ok {
				if cast.Choice != v.Choice {
					t.Errorf("proposal %s: vote %q, the phone wrote %q", v.Proposal, cast.Choice, v.Choice)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("proposal %s: the phone's vote (into %s) not counted after 20 s", v.Proposal, v.Doc)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
