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
	alice := enrollRaw(t, url, c.FounderInvite, "Alice")
	id := uuid.NewString()
	body := mustJSON(t, goodEntry(id))

	const copies = 8
	statuses := make(chan int, copies)
	var wg sync.WaitGroup
	for i := 0; i < copies; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- call(t, url, "POST", "/v1/ledger/entries", alice.token, body).status
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

	r := call(t, url, "POST", "/v1/ledger/entries", alice.token, body)
	var got wire.Entry
	if err := json.Unmarshal(r.body, &got); err != nil || r.status != http.StatusOK || got.ID != id || got.Member != alice.member || got.Quantity != 2 {
		t.Errorf("retry = %d %s, want 200 with the stored entry", r.status, r.body)
	}
	changed := goodEntry(id)
	changed["note"] = "fixed two bikes"
	if r := call(t, url, "POST", "/v1/ledger/entries", alice.token, mustJSON(t, changed)); r.status != http.StatusConflict {
		t.Errorf("same id, other content = %d, want 409", r.status)
	}
	bob := enrollRaw(t, url, invite(t, url, alice, "member", ""), "Bob")
	if r := call(t, url, "POST", "/v1/ledger/entries", bob.token, body); r.status != http.StatusConflict {
		t.Errorf("Alice's entry id sent by Bob = %d, want 409", r.status)
	}

	r = call(t, url, "GET", "/v1/ledger/entries", alice.token, nil)
	var list wire.EntryList
	_ = json.Unmarshal(r.body, &list)
	if len(list.Entries) != 1 {
		t.Errorf("stored %d entries, want 1", len(list.Entries))
	}
}
