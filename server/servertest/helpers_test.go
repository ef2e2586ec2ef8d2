package servertest_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/circles-coop/circles/server/servertest"
)

// TestClock: a fixed clock stands still until Set moves it; the zero
// Clock follows the wall clock.
func TestClock(t *testing.T) {
	start := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	fixed := servertest.FixedClock(start)
	if got := fixed.Now(); !got.Equal(start) {
		t.Errorf("FixedClock(%v).Now() = %v", start, got)
	}
	fixed.Set(90 * time.Minute)
	if got, want := fixed.Now(), start.Add(90*time.Minute); !got.Equal(want) {
		t.Errorf("after Set(90m): Now() = %v, want %v", got, want)
	}
	var wall servertest.Clock
	wall.Set(time.Hour)
	if d := time.Until(wall.Now()); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("zero Clock after Set(1h) is %v from the wall clock, want 1h", d)
	}
}

// TestStoreUnchanged: MustStoreUnchanged passes while nothing was written
// and names the document a write changed.
func TestStoreUnchanged(t *testing.T) {
	c := servertest.Start(t, "Store Circle")
	url := c.URL()
	alice := servertest.MustEnroll(t, url, c.FounderInvite, "Alice")
	before := servertest.MustStoredDocs(t, c)
	if len(before) == 0 {
		t.Fatal("MustStoredDocs of a circle = no documents")
	}
	servertest.Call(t, url, "GET", "/v1/circle", alice.Token, nil)
	servertest.MustStoreUnchanged(t, c, before)

	if r := servertest.Call(t, url, "POST", "/v1/ledger/entries", alice.Token, servertest.MustJSON(t, servertest.ValidEntry(uuid.NewString()))); r.Status != http.StatusCreated {
		t.Fatalf("POST /v1/ledger/entries = %d %s", r.Status, r.Body)
	}
	rec := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		servertest.MustStoreUnchanged(rec, c, before)
	}()
	<-done
	ledger := servertest.MustCircle(t, url, alice).Docs["ledger"]
	if len(rec.failures) != 1 || !strings.Contains(rec.failures[0], "document "+ledger+" changed") {
		t.Errorf("after an entry: failures %q, want the ledger %s named", rec.failures, ledger)
	}
}
