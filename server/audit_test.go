package server_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/gowebpki/jcs"

	"github.com/circles-coop/circles/server/servertest"
)

// TestAuditLogChainsEnrolments: enrolments and revocations are audit
// entries, and each entry's hash is what API.md says it is — checked here
// independently of the server's own code: SHA-256 of prev_hash followed by
// the RFC 8785 form of the entry without "hash".
func TestAuditLogChainsEnrolments(t *testing.T) {
	c := servertest.Start(t, "Audit Circle")
	url := c.URL()
	alice := servertest.MustEnroll(t, url, c.FounderInvite, "Alice")
	bob := servertest.MustEnroll(t, url, servertest.MustInvite(t, url, alice, "member", ""), "Bob")
	tablet := servertest.MustEnroll(t, url, servertest.MustInvite(t, url, bob, "device", ""), "Bob")
	if r := servertest.Call(t, url, "POST", "/v1/devices/"+tablet.ID+"/revoke", bob.Token, nil); r.Status != http.StatusOK {
		t.Fatalf("revoke: %d", r.Status)
	}

	r := servertest.Call(t, url, "GET", "/v1/audit", alice.Token, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /v1/audit = %d %s", r.Status, r.Body)
	}
	var page struct{ Entries []map[string]any }
	if err := json.Unmarshal(r.Body, &page); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	prev := strings.Repeat("0", 64)
	for i, e := range page.Entries {
		kinds = append(kinds, e["kind"].(string))
		if e["seq"].(float64) != float64(i+1) || e["prev_hash"] != prev {
			t.Fatalf("entry %d: seq %v prev_hash %v, want %d and %s", i+1, e["seq"], e["prev_hash"], i+1, prev)
		}
		hash := e["hash"].(string)
		delete(e, "hash")
		raw, _ := json.Marshal(e)
		canon, err := jcs.Transform(raw)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(append([]byte(prev), canon...))
		if got := hex.EncodeToString(sum[:]); got != hash {
			t.Fatalf("entry %d: hash %s, recomputed %s", i+1, hash, got)
		}
		prev = hash
	}
	want := "circle.created member.enrolled member.enrolled device.enrolled device.revoked"
	if got := strings.Join(kinds, " "); got != want {
		t.Errorf("audit kinds %q, want %q", got, want)
	}

	r = servertest.Call(t, url, "GET", "/v1/audit?after=3&limit=1", alice.Token, nil)
	var tail struct {
		Entries []struct{ Seq int64 }
		Next    int64 `json:"next_after"`
	}
	_ = json.Unmarshal(r.Body, &tail)
	if len(tail.Entries) != 1 || tail.Entries[0].Seq != 4 || tail.Next != 4 {
		t.Errorf("after=3&limit=1: %s, want entry 4 and next_after 4", r.Body)
	}
	if r := servertest.Call(t, url, "GET", "/v1/audit?after=-1", alice.Token, nil); r.Status != http.StatusBadRequest {
		t.Errorf("after=-1 = %d, want 400", r.Status)
	}
}
