package server_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/google/uuid"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

func getCharter(t *testing.T, url string, d *servertest.Device) wire.Charter {
	t.Helper()
	r := servertest.Call(t, url, "GET", "/v1/charter", d.Token, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /v1/charter: %d %s", r.Status, r.Body)
	}
	var ch wire.Charter
	if err := json.Unmarshal(r.Body, &ch); err != nil {
		t.Fatal(err)
	}
	return ch
}

func openProposals(t *testing.T, url string, d *servertest.Device) []wire.Proposal {
	t.Helper()
	var l wire.ProposalList
	_ = json.Unmarshal(servertest.Call(t, url, "GET", "/v1/proposals?status=open", d.Token, nil).Body, &l)
	return l.Proposals
}

// TestCharterRenewalAndLapse: a ratified charter gets its re-ratification
// proposal by itself charter.renewal_notice before it expires, once; not
// ratified again, it lapses at its expiry — written to the charter
// document, shown by GET /v1/charter, in the audit log and as an event —
// and the circle keeps working, until it is ratified again.
func TestCharterRenewalAndLapse(t *testing.T) {
	c, clk, _, devs := resetCircle(t, "Alice", "Bob")
	url := c.URL()
	alice := devs[0]
	pass := passer(t, url, devs)
	events := followEvents(t, url, alice)

	ch := getCharter(t, url, alice)
	if ch.Status != "draft" || ch.Version != 0 || ch.Name != "Reset Circle" || ch.Policies["charter.term"] != "8760h" || !ch.RenewalDue || ch.Principles == nil {
		t.Fatalf("GET /v1/charter before any ratification = %+v", ch)
	}
	if r := servertest.Call(t, url, "GET", "/v1/charter", "", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("GET /v1/charter without a token: %d, want 401", r.Status)
	}

	draft := servertest.MustCircle(t, url, alice).Docs[string(crdt.KindCharterDraft)]
	msg := servertest.MustChangeMessage(t, url, alice, draft, alice.Actor, func(d *automerge.Doc) error {
		v, err := d.Path("text").Get()
		if err != nil {
			return err
		}
		if err := v.Text().Insert(0, "We share a garden."); err != nil {
			return err
		}
		return d.Path("principles").List().Append("Nobody owns the hose.")
	})
	if r := servertest.Call(t, url, "POST", "/v1/sync", alice.Token, servertest.SyncBody(t, wire.SyncMessage{Doc: draft, Data: msg})); r.Status != http.StatusOK {
		t.Fatalf("draft edit: %d %s", r.Status, r.Body)
	}
	if p := pass("charter.ratify", "Ratify", nil); p.Status != "passed" {
		t.Fatalf("charter.ratify: %s (%s)", p.Status, p.Reason)
	}
	ch = getCharter(t, url, alice)
	if ch.Status != "ratified" || ch.Version != 1 || ch.Text != "We share a garden." || len(ch.Principles) != 1 || ch.RatifiedAt == nil || ch.ExpiresAt == nil ||
		!ch.ExpiresAt.Equal(ch.RatifiedAt.Add(8760*time.Hour)) || ch.RenewalDue {
		t.Fatalf("GET /v1/charter after ratification = %+v", ch)
	}
	expires := time.Until(*ch.ExpiresAt) // as a clock offset, roughly

	// Just before the notice: nothing opens.
	moveTo(t, c, clk, expires-721*time.Hour, devs)
	if open := openProposals(t, url, alice); len(open) != 0 {
		t.Fatalf("open proposals before the renewal notice: %+v", open)
	}
	// Within the notice: the circle opens the re-ratification, once.
	moveTo(t, c, clk, expires-719*time.Hour, devs)
	moveTo(t, c, clk, expires-718*time.Hour, devs)
	open := openProposals(t, url, alice)
	if len(open) != 1 || open[0].Kind != "charter.ratify" || open[0].Author != "circle" {
		t.Fatalf("open proposals within the renewal notice = %+v, want one charter.ratify by the circle", open)
	}
	if !getCharter(t, url, alice).RenewalDue {
		t.Errorf("renewal_due is false within the notice")
	}
	audit := auditKinds(t, url, alice)
	wantAudit(t, audit, crdt.AuditCharterRenewalOpened, open[0].ID, `"version":1`)
	if n := countAudit(audit, crdt.AuditCharterRenewalOpened); n != 1 {
		t.Errorf("%d charter.renewal_opened entries, want 1", n)
	}

	// Nobody votes: the renewal is rejected when its period ends, and the
	// charter lapses at its expiry.
	moveTo(t, c, clk, expires-time.Minute, devs)
	if p := getProposal(t, url, alice, open[0].ID); p.Status != "rejected" {
		t.Errorf("the unvoted renewal after its period: %s, want rejected", p.Status)
	}
	if ch := getCharter(t, url, alice); ch.Status != "ratified" {
		t.Errorf("a minute before expiry the charter is %s, want ratified", ch.Status)
	}
	moveTo(t, c, clk, expires+time.Minute, devs)
	ch = getCharter(t, url, alice)
	if ch.Status != "lapsed" || ch.Version != 1 || ch.Text != "We share a garden." || ch.Policies["charter.term"] != "8760h" {
		t.Fatalf("GET /v1/charter after expiry = %+v, want lapsed, keeping its text and policies", ch)
	}
	doc, _ := servertest.MustPull(t, url, alice, servertest.MustCircle(t, url, alice).Docs["charter"], automerge.NewActorID())
	if stored, err := crdt.ReadCharter(doc); err != nil || stored.Status != crdt.CharterLapsed {
		t.Errorf("the charter document after expiry: %+v, %v; want status lapsed written", stored, err)
	}
	waitEvent(t, events, "charter.lapsed")
	audit = auditKinds(t, url, alice)
	wantAudit(t, audit, crdt.AuditCharterLapsed, `"version":1`)
	moveTo(t, c, clk, expires+time.Hour, devs)
	if n := countAudit(auditKinds(t, url, alice), crdt.AuditCharterLapsed); n != 1 {
		t.Errorf("%d charter.lapsed entries after another Tick, want 1", n)
	}
	if open := openProposals(t, url, alice); len(open) != 0 {
		t.Errorf("a second renewal opened for the same ratification: %+v", open)
	}

	// The circle keeps working: entries, and ratifying again.
	entry := servertest.ValidEntry(uuid.NewString())
	entry["at"] = clk.Now().UTC().Format(time.RFC3339)
	if r := servertest.Call(t, url, "POST", "/v1/ledger/entries", alice.Token, servertest.MustJSON(t, entry)); r.Status != http.StatusCreated {
		t.Errorf("an entry under a lapsed charter: %d %s", r.Status, r.Body)
	}
	if p := pass("charter.ratify", "Ratify again", nil); p.Status != "passed" {
		t.Fatalf("charter.ratify after the lapse: %s (%s)", p.Status, p.Reason)
	}
	if ch := getCharter(t, url, alice); ch.Status != "ratified" || ch.Version != 2 || !ch.ExpiresAt.After(clk.Now().Add(8000*time.Hour)) {
		t.Errorf("GET /v1/charter after ratifying again = %+v", ch)
	}
}
