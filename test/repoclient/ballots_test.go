package repoclient_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/circles-coop/circles/server"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// TestRepoBallotsSwitch: an automerge-repo phone votes over the WebSocket
// until its ballots document is full and the server opens the next one
// (authority/ballotsegments.go); offline, it votes into the old one (the
// one it holds), and the vote counts once it reconnects; it then writes
// into the document GET /v1/circle names.
func TestRepoBallotsSwitch(t *testing.T) {
	tc := servertest.Start(t, "Repo Ballots Circle", servertest.WithConfig(func(c *server.Config) { c.BallotsSegmentEntries = 3 }))
	base := tc.URL()
	founder := mustEnroll(t, base, tc.FounderInvite, "Founder")
	phone := mustEnroll(t, base, founder.invite(t), "Phone")
	var ids []string
	for i := range 5 {
		var p wire.Proposal
		founder.call(t, http.MethodPost, "/v1/proposals", wire.ProposalRequest{ID: uuid.NewString(), Kind: "member.admit", Title: fmt.Sprint("Admit guest ", i), Payload: map[string]any{"name": fmt.Sprint("Guest ", i)}}, http.StatusCreated, &p)
		ids = append(ids, p.ID)
	}
	ballots := func() (string, []string) {
		var c wire.Circle
		phone.call(t, http.MethodGet, "/v1/circle", nil, http.StatusOK, &c)
		for _, m := range c.Members {
			if m.MemberID == phone.memberID {
				if m.Ballots != c.Docs["ballots"] {
					t.Fatalf("GET /v1/circle: docs.ballots %s, the member's ballots %s", c.Docs["ballots"], m.Ballots)
				}
				return m.Ballots, m.BallotsClosed
			}
		}
		t.Fatal("GET /v1/circle does not list the phone's member")
		return "", nil
	}
	counted := func(id, choice string) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			var p wire.Proposal
			founder.call(t, http.MethodGet, "/v1/proposals/"+id, nil, http.StatusOK, &p)
			if v, ok := p.Votes[phone.memberID]; ok {
				if v.Choice != choice {
					t.Fatalf("proposal %s: vote %q, want %q", id, v.Choice, choice)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("proposal %s: the phone's vote not counted after 20 s", id)
			}
		}
	}

	first, _ := ballots()
	js := startJS(t)
	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/v1/repo?token=" + url.QueryEscape(phone.token)
	js.do(t, map[string]any{"cmd": "init", "url": wsURL, "actor": phone.actor}, nil)
	js.do(t, map[string]any{"cmd": "connect"}, nil)
	js.do(t, map[string]any{"cmd": "find", "url": "automerge:" + first}, nil)
	for _, id := range ids[:3] {
		js.do(t, map[string]any{"cmd": "vote", "url": "automerge:" + first, "proposal": id, "choice": "yes"}, nil)
	}
	for _, id := range ids[:3] {
		counted(id, "yes")
	}
	var cur string
	var closed []string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if cur, closed = ballots(); cur != first {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server did not open a new ballots document after three votes")
		}
	}
	if len(closed) != 1 || closed[0] != first {
		t.Fatalf("ballots_closed = %v, want [%s]", closed, first)
	}

	// Offline, the phone votes into the document it holds.
	js.do(t, map[string]any{"cmd": "disconnect"}, nil)
	js.do(t, map[string]any{"cmd": "vote", "url": "automerge:" + first, "proposal": ids[3], "choice": "no"}, nil)
	js.do(t, map[string]any{"cmd": "connect"}, nil)
	counted(ids[3], "no")

	// Then it writes where GET /v1/circle says.
	js.do(t, map[string]any{"cmd": "find", "url": "automerge:" + cur}, nil)
	js.do(t, map[string]any{"cmd": "vote", "url": "automerge:" + cur, "proposal": ids[4], "choice": "yes"}, nil)
	counted(ids[4], "yes")
}
