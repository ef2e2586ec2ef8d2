package browser_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
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

// TestBrowserBallotsSwitch: the phone app votes offline into its
// member's ballots document while the member's other device fills it and
// the server opens the next one (authority/ballotsegments.go); after an
// offline reload and reconnecting, the vote counts, and the next one goes
// into the new document (ballots.mjs).
func TestBrowserBallotsSwitch(t *testing.T) {
	ph := mustPhone(t)
	c := servertest.Start(t, "Ballots Circle", servertest.WithConfig(func(cfg *server.Config) { cfg.BallotsSegmentEntries = 3 }))
	base := c.URL()
	founder := mustEnroll(t, base, c.FounderInvite, "Founder")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ben, err := client.Join(ctx, t.TempDir(), base, inviteCode(t, founder.invite(t)), "Ben", "laptop")
	if err != nil {
		t.Fatalf("client.Join: %v", err)
	}
	var ids []string
	for i := range 5 {
		var p wire.Proposal
		founder.call(t, http.MethodPost, "/v1/proposals", wire.ProposalRequest{ID: uuid.NewString(), Kind: "member.admit", Title: fmt.Sprint("Admit guest ", i), Payload: map[string]any{"name": fmt.Sprint("Guest ", i)}}, http.StatusCreated, &p)
		ids = append(ids, p.ID)
	}
	if _, err := ben.Sync(ctx, nil); err != nil {
		t.Fatal(err)
	}
	inv, err := ben.Invite(ctx, true, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// The trigger: Ben's laptop votes on three proposals, which fills the
	// ballots document; it answers once the server opened the next one.
	trigger := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, id := range ids[:3] {
			if _, err := ben.Vote(id, "yes", "", time.Now()); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		if _, err := ben.Sync(r.Context(), nil); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			var circle wire.Circle
			founder.call(t, http.MethodGet, "/v1/circle", nil, http.StatusOK, &circle)
			for _, m := range circle.Members {
				if m.MemberID == ben.Info().MemberID && len(m.BallotsClosed) > 0 {
					return
				}
			}
		}
		http.Error(w, "the server did not open a new ballots document", http.StatusGatewayTimeout)
	}))
	defer trigger.Close()

	got := runScript[struct {
		MemberID string `json:"member_id"`
		First    string `json:"first"`
		Current  string `json:"current"`
	}](t, ph, "ballots.mjs", "--link", inv.URL, "--base", base, "--token", founder.token, "--trigger", trigger.URL, "--proposals", ids[3]+","+ids[4])
	if got.MemberID != ben.Info().MemberID {
		t.Fatalf("the phone joined as %s, want Ben (%s)", got.MemberID, ben.Info().MemberID)
	}
	// The offline vote sits in the first document, the next in the new one.
	votes := func(doc string) []string {
		var r servertest.Response
		deadline := time.Now().Add(20 * time.Second)
		for {
			r = servertest.Call(t, base, http.MethodGet, "/v1/docs/"+doc+"/snapshot", founder.token, nil)
			if r.Status == http.StatusOK || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if r.Status != http.StatusOK {
			t.Fatalf("GET snapshot of %s: %d %s", doc, r.Status, r.Body)
		}
		d, err := automerge.Load(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		b, err := crdt.ReadBallots(d)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for id := range b.Votes {
			out = append(out, id)
		}
		slices.Sort(out)
		return out
	}
	first, current := votes(got.First), votes(got.Current)
	if !slices.Contains(first, ids[3]) || len(first) != 4 {
		t.Errorf("the first ballots document holds votes on %v, want the laptop's three and the phone's offline one (%s)", first, ids[3])
	}
	if !slices.Equal(current, []string{ids[4]}) {
		t.Errorf("the new ballots document holds votes on %v, want only the phone's next one (%s)", current, ids[4])
	}
}
