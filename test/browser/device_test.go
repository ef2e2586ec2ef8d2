package browser_test

import (
	"net/http"
	"path/filepath"
	"slices"
	"testing"

	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// TestBrowserDeviceInvite: a member makes a device invite on the phone
// app's Devices screen (code, link, QR code); a second browser joins
// with its link, without typing a name, as the same member, sees the
// member's contributions and adds one, which the first device then
// shows; a used device invite is refused.
func TestBrowserDeviceInvite(t *testing.T) {
	ph := mustPhone(t)
	c := servertest.Start(t, "Device Circle")
	base := c.URL()
	founder := mustEnroll(t, base, c.FounderInvite, "Founder")

	got := ph.run(t, "--link", founder.invite(t), "--scenario", "device", "--shots", shotsDir(t))
	if got.MemberID == "" || got.SecondMemberID != got.MemberID {
		t.Fatalf("members of the two devices = %q and %q, want the same", got.MemberID, got.SecondMemberID)
	}
	if !got.UsedInviteRefused {
		t.Errorf("the used device invite was not refused")
	}
	if _, ok := got.Axe["devices"]; !ok {
		t.Errorf("axe-core did not check the devices screen")
	}

	// The server lists both entries under the one member.
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
		t.Errorf("server's entries of the member = %q, want the two devices' %q", notes, want)
	}

	// The audit log records a member enrolment and then a device
	// enrolment for that member, and no second member.
	var audit struct {
		Entries []struct {
			Kind string         `json:"kind"`
			Data map[string]any `json:"data"`
		} `json:"entries"`
	}
	founder.call(t, http.MethodGet, "/v1/audit?after=0", nil, http.StatusOK, &audit)
	var kinds []string
	members := 0
	for _, e := range audit.Entries {
		if e.Kind == "member.enrolled" {
			members++
		}
		if e.Data["member"] == got.MemberID && (e.Kind == "member.enrolled" || e.Kind == "device.enrolled") {
			kinds = append(kinds, e.Kind)
		}
	}
	if !slices.Equal(kinds, []string{"member.enrolled", "device.enrolled"}) || members != 2 {
		t.Errorf("audit enrolments of the member = %v (members enrolled in all: %d), want member.enrolled then device.enrolled, and 2 members (founder, phone)", kinds, members)
	}
}

// shotsDir is where a test's screenshots go: docs/screenshots with
// -update-screenshots (make screenshots), else a temporary directory.
func shotsDir(tb testing.TB) string {
	tb.Helper()
	if *updateScreenshots {
		return filepath.Join("..", "..", "docs", "screenshots")
	}
	return tb.TempDir()
}
