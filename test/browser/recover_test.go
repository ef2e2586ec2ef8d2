package browser_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// TestBrowserRecoverRefused: a refused change never strands the phone.
// Bob (REST) logs an entry; the phone, offline, logs three, the second
// with Bob's entry id, which the server's rules refuse (an entry id is
// the circle's, not the ledger's). Back online, the first and third reach
// the server, the second stays on the phone as refused with the server's
// reason (also after a reload), and a fourth logged afterwards syncs.
// Over both of the app's transports: automerge-repo over WebSocket, and
// POST /v1/sync (GET /v1/repo answering 501 in the browser).
func TestBrowserRecoverRefused(t *testing.T) {
	ph := mustPhone(t)
	for _, transport := range []string{"websocket", "http"} {
		t.Run(transport, func(t *testing.T) {
			c := servertest.Start(t, "Recovery Circle")
			base := c.URL()
			founder := mustEnroll(t, base, c.FounderInvite, "Founder")
			bob := mustEnroll(t, base, inviteCode(t, founder.invite(t)), "Bob")
			taken := uuid.NewString()
			bob.call(t, http.MethodPost, "/v1/ledger/entries", wire.Entry{
				ID: taken, Kind: "hours", Quantity: 2, Note: "Bob fixed the door", At: time.Now().UTC(),
			}, http.StatusCreated, nil)

			// The phone's votes go on two proposals the founder opens once
			// the phone has joined (a member counts only for proposals
			// opened while they were in the circle).
			args := []string{"--link", founder.invite(t), "--scenario", "recover", "--taken", taken, "--transport", transport,
				"--founder-token", founder.token}
			if transport == "websocket" {
				args = append(args, "--shots", shotsDir(t))
			}
			got := ph.run(t, args...)
			if got.Transport != transport {
				t.Fatalf("the app synced over %q, want %q", got.Transport, transport)
			}
			if !strings.Contains(got.Refused, "already used") {
				t.Errorf("the refused entry's state on the phone = %q, want refused with the server's reason (id already used)", got.Refused)
			}

			// The server holds exactly the first, third and fourth, in the
			// phone member's name.
			var list wire.EntryList
			founder.call(t, http.MethodGet, "/v1/ledger/entries?member="+got.MemberID+"&limit=100", nil, http.StatusOK, &list)
			var notes []string
			for _, e := range list.Entries {
				notes = append(notes, e.Note)
				if e.ID == taken {
					t.Errorf("the server lists the refused entry %s under the phone's member: %+v", taken, e)
				}
			}
			slices.Sort(notes)
			want := slices.Clone(got.Notes)
			slices.Sort(want)
			if len(want) != 3 || !slices.Equal(notes, want) {
				t.Errorf("server's entries of the phone = %q, want the three it did not refuse %q", notes, want)
			}
			// The refused vote stays on the phone; the other one counted.
			if !strings.Contains(got.RefusedVote, "choice") {
				t.Errorf("the refused vote's state on the phone = %q, want refused with the server's reason (choice)", got.RefusedVote)
			}
			for i, want := range []string{"", "yes"} {
				var p wire.Proposal
				if len(got.Proposals) != 2 {
					t.Fatalf("the phone opened proposals %v, want two", got.Proposals)
				}
				founder.call(t, http.MethodGet, "/v1/proposals/"+got.Proposals[i], nil, http.StatusOK, &p)
				if choice := p.Votes[got.MemberID].Choice; choice != want {
					t.Errorf("the phone's vote on proposal %d = %q, want %q", i+1, choice, want)
				}
			}

			// Bob's entry is untouched.
			var bobs wire.EntryList
			founder.call(t, http.MethodGet, "/v1/ledger/entries?member="+bob.memberID+"&limit=100", nil, http.StatusOK, &bobs)
			if len(bobs.Entries) != 1 || bobs.Entries[0].ID != taken || bobs.Entries[0].Note != "Bob fixed the door" {
				t.Errorf("Bob's entries = %+v, want his one entry %s unchanged", bobs.Entries, taken)
			}
		})
	}
}
