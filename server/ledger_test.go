package server_test

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// TestCreateEntryIsIdempotent: the same entry sent again (a retry after a
// lost response) is answered 200 with the stored entry, also when the
// copies race; other content under the same id is a 409; and the entry is
// stored once.
func TestCreateEntryIsIdempotent(t *testing.T) {
	c := servertest.Start(t, "Garden")
	url := c.URL()
	alice := servertest.MustEnroll(t, url, c.FounderInvite, "Alice")
	id := uuid.NewString()
	body := servertest.MustJSON(t, servertest.ValidEntry(id))

	const copies = 8
	statuses := make(chan int, copies)
	var wg sync.WaitGroup
	for i := 0; i < copies; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- servertest.Call(t, url, "POST", "/v1/ledger/entries", alice.Token, body).Status
		}()
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	if count[http.StatusCreated] != 1 || count[http.StatusOK] != copies-1 {
		t.Errorf("statuses %v, want one 201 and %d × 200", count, copies-1)
	}

	r := servertest.Call(t, url, "POST", "/v1/ledger/entries", alice.Token, body)
	var got wire.Entry
	if err := json.Unmarshal(r.Body, &got); err != nil || r.Status != http.StatusOK || got.ID != id || got.Member != alice.Member || got.Quantity != 2 {
		t.Errorf("retry = %d %s, want 200 with the stored entry", r.Status, r.Body)
	}
	changed := servertest.ValidEntry(id)
	changed["note"] = "fixed two bikes"
	if r := servertest.Call(t, url, "POST", "/v1/ledger/entries", alice.Token, servertest.MustJSON(t, changed)); r.Status != http.StatusConflict {
		t.Errorf("same id, other content = %d, want 409", r.Status)
	}
	bob := servertest.MustEnroll(t, url, servertest.MustInvite(t, url, alice, "member", ""), "Bob")
	if r := servertest.Call(t, url, "POST", "/v1/ledger/entries", bob.Token, body); r.Status != http.StatusConflict {
		t.Errorf("Alice's entry id sent by Bob = %d, want 409", r.Status)
	}

	r = servertest.Call(t, url, "GET", "/v1/ledger/entries", alice.Token, nil)
	var list wire.EntryList
	_ = json.Unmarshal(r.Body, &list)
	if len(list.Entries) != 1 {
		t.Errorf("stored %d entries, want 1", len(list.Entries))
	}
}
