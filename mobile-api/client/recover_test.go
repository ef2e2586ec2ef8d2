package client_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/mobile-api/client"
	"github.com/circles-coop/circles/server/servertest"
)

// Alice logs three contributions offline; the second reuses an entry id
// Bob's ledger already holds, which only the server can know, and which
// its rules refuse. Her next sync must not strand her: the first and the
// third reach the server, the second is kept on her phone as refused
// with the server's reason, and she goes on logging and syncing.
func TestRefusedChangeDoesNotStrandTheDevice(t *testing.T) {
	ctx := t.Context()
	c := servertest.Start(t, "Recovery Circle")
	alice := mustJoin(t, c, c.FounderInvite, "Alice")
	inv, err := alice.Invite(ctx, false, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	bob := mustJoin(t, c, inv.Code, "Bob")
	taken := uuid.NewString()
	if _, err := bob.Log(crdt.Entry{ID: taken, Kind: "hours", Quantity: 1, Note: "Bob fixed the door"}); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Sync(ctx, nil); err != nil {
		t.Fatal(err)
	}

	notes := []string{"swept the shed", "oiled the saw", "lent the ladder"}
	ids := []string{uuid.NewString(), taken, uuid.NewString()}
	for i, note := range notes {
		if _, err := alice.Log(crdt.Entry{ID: ids[i], Kind: "hours", Quantity: float64(i + 1), Note: note, At: time.Now().Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := alice.Sync(ctx, nil)
	if err != nil {
		t.Fatalf("Sync() after a refused change = %v, want it recovered", err)
	}
	if len(sum.Recovered) != 1 {
		t.Fatalf("Recovered = %+v, want one document", sum.Recovered)
	}
	r := sum.Recovered[0]
	if r.Accepted != 2 || len(r.Refused) != 1 || r.Refused[0].ID != taken || !strings.Contains(r.Refused[0].Reason, "already used") {
		t.Fatalf("recovery = %+v, want 2 accepted and entry %s refused as already used", r, taken)
	}

	// The server holds the two others, in Alice's name.
	cl, err := alice.Client()
	if err != nil {
		t.Fatal(err)
	}
	list, err := cl.ListEntries(ctx, client.ListOptions{Member: alice.Info().MemberID})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range list.Entries {
		got[e.ID] = e.Note
	}
	if got[ids[0]] != notes[0] || got[ids[2]] != notes[2] || len(got) != 2 {
		t.Errorf("Alice's entries on the server = %v, want %q and %q only", got, notes[0], notes[2])
	}

	// On her phone the refused one is listed as refused, with the reason.
	entries, err := alice.Entries()
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	for _, e := range entries {
		if e.Mine && e.ID == taken {
			refused++
			if e.Refused == "" || e.Note != notes[1] {
				t.Errorf("the refused entry reads %+v, want its note and the server's reason", e)
			}
		}
	}
	if refused != 1 {
		t.Errorf("Alice's phone lists the refused entry %d times, want once", refused)
	}

	// Not stranded: the next contribution syncs as usual.
	next, err := alice.Log(crdt.Entry{Kind: "hours", Quantity: 2, Note: "painted the gate"})
	if err != nil {
		t.Fatal(err)
	}
	if sum, err := alice.Sync(ctx, nil); err != nil || len(sum.Recovered) != 0 {
		t.Fatalf("the next Sync() = %+v, %v; want a plain sync", sum, err)
	}
	list, err = cl.ListEntries(ctx, client.ListOptions{Member: alice.Info().MemberID})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range list.Entries {
		found = found || e.ID == next.ID
	}
	if !found {
		t.Errorf("the entry logged after the recovery did not reach the server")
	}
}
