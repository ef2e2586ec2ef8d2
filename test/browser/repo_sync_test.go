package browser_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// TestBrowserRepoSync: the phone app syncs through automerge-repo's
// WebSocket adapter on GET /v1/repo, with no POST /v1/sync after joining:
// two contributions logged offline reach the server over the socket.

func TestBrowserRepoSync(t *testing.T) {
	ph := mustPhone(t)
	c := servertest.Start(t, "Repo Sync Circle")
	base := c.URL()
	founder := mustEnroll(t, base, c.FounderInvite, "Founder")

	got := ph.run(t, "--link", founder.invite(t), "--scenario", "repo")
	if got.Transport != "websocket" {
		t.Fatalf("the app synced over %q, want websocket", got.Transport)
	}

	var list wire.EntryList
	founder.call(t, http.MethodGet, "/v1/ledger/entries?member="+got.MemberID+"&limit=100", nil, http.StatusOK, &list)
	var notes []string
	for _, e := range list.Entries {
		notes = append(notes, e.Note)
	}
	slices.Sort(notes)
	want := slices.Clone(got.Notes)
	slices.Sort(want)
	if len(want) != 2 || !slices.Equal(notes, want) {
		t.Errorf("server's entries of the phone = %q, want the two it logged %q", notes, want)
	}
}
