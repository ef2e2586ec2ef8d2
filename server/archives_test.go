package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
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

// Governance archives and audit segments (authority/archives.go): with
// small bounds, decided proposals move into archive documents and the
// audit log into segments; everything stays readable, the chain verifies
// across segments, a restart and an interrupted move keep everything, and
// no member can write into an archive.

// smallArchives makes governance archives of 6 proposals and audit
// segments of 10 entries.
var smallArchives = servertest.WithConfig(func(c *server.Config) {
	c.GovernanceArchiveProposals = 6
	c.AuditSegmentEntries = 10
})

// waitArchives polls GET /v1/circle until it lists at least gov
// governance archives and audit audit segments (the server moves on in
// the background), for up to 20 s.
func waitArchives(t *testing.T, url string, d *servertest.Device, gov, audit int) wire.Circle {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c := servertest.MustCircle(t, url, d)
		if a := c.Archives; a != nil && len(a.Governance) >= gov && len(a.Audit) >= audit {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /v1/circle archives = %+v after 20 s, want at least %d governance archives and %d audit segments", c.Archives, gov, audit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// archProposal is a proposal a test made and the status it must have.
type archProposal struct {
	id, title, status string
}

// decideProposals opens n member.admit proposals as d, the only member,
// passing even ones and rejecting odd ones by d's vote.
func decideProposals(t *testing.T, url string, d *servertest.Device, n int) []archProposal {
	t.Helper()
	var out []archProposal
	for i := range n {
		title := fmt.Sprintf("Admit %s %d", uuid.NewString()[:8], i)
		p := mustPropose(t, url, d, "member.admit", title, map[string]any{"name": title})
		choice, want := "yes", "passed"
		if i%2 == 1 {
			choice, want = "no", "rejected"
		}
		if got := mustVote(t, url, d, p.ID, choice); got.Status != want {
			t.Fatalf("proposal %d after the vote: %s, want %s", i, got.Status, want)
		}
		out = append(out, archProposal{p.ID, title, want})
	}
	return out
}

// allAudit reads the whole audit log through GET /v1/audit, page by page.
func allAudit(t *testing.T, url string, d *servertest.Device) []wire.AuditEntry {
	t.Helper()
	var out []wire.AuditEntry
	var after int64
	for range 1000 {
		var page wire.AuditPage
		servertest.MustGetJSON(t, url, d, fmt.Sprintf("/v1/audit?after=%d&limit=7", after), &page)
		if len(page.Entries) == 0 {
			return out
		}
		out = append(out, page.Entries...)
		after = page.Entries[len(page.Entries)-1].Seq
	}
	t.Fatal("audit log: no end after 1000 pages")
	return nil
}

// checkArchived checks that every proposal reads as made, the list holds
// each once, and the audit log verifies with one proposal.opened each.
func checkArchived(t *testing.T, url string, d *servertest.Device, want []archProposal) []wire.AuditEntry {
	t.Helper()
	for _, w := range want {
		got := getProposal(t, url, d, w.id)
		if got.ID != w.id || got.Title != w.title || got.Status != w.status {
			t.Fatalf("GET /v1/proposals/%s = %s %q %s, want %q %s", w.id, got.ID, got.Title, got.Status, w.title, w.status)
		}
	}
	var list wire.ProposalList
	servertest.MustGetJSON(t, url, d, "/v1/proposals", &list)
	seen := map[string]int{}
	for _, p := range list.Proposals {
		seen[p.ID]++
	}
	for _, w := range want {
		if seen[w.id] != 1 {
			t.Fatalf("GET /v1/proposals lists %s %d times, want once (%d listed)", w.id, seen[w.id], len(list.Proposals))
		}
	}
	if len(list.Proposals) != len(want) {
		t.Fatalf("GET /v1/proposals lists %d proposals, want %d", len(list.Proposals), len(want))
	}
	entries := allAudit(t, url, d)
	mustVerifyAudit(t, entries)
	opened := map[string]int{}
	for _, e := range entries {
		if e.Kind == crdt.AuditProposalOpened {
			var data struct{ ID string }
			_ = json.Unmarshal(e.Data, &data)
			opened[data.ID]++
		}
	}
	for _, w := range want {
		if opened[w.id] != 1 {
			t.Fatalf("audit log has %d proposal.opened for %s, want 1", opened[w.id], w.id)
		}
	}
	return entries
}

func TestGovernanceArchives(t *testing.T) {
	c := servertest.Start(t, "Archive Circle", smallArchives)
	url := c.URL()
	ada := servertest.MustEnroll(t, url, c.FounderInvite, "Ada")
	first := servertest.MustCircle(t, url, ada)

	// One proposal stays open across every archive.
	open := mustPropose(t, url, ada, "member.admit", "Admit a slow one", map[string]any{"name": "Slow"})
	made := append([]archProposal{{open.ID, "Admit a slow one", "open"}}, decideProposals(t, url, ada, 20)...)

	circle := waitArchives(t, url, ada, 2, 3)
	if circle.Archives.Governance[0] != first.Docs["governance"] || circle.Archives.Audit[0].Doc != first.Docs["audit"] || circle.Archives.Audit[0].FirstSeq != 1 {
		t.Fatalf("the first archives are %v and %v, want the circle's first documents %s and %s",
			circle.Archives.Governance[0], circle.Archives.Audit[0], first.Docs["governance"], first.Docs["audit"])
	}
	if circle.Docs["governance"] == first.Docs["governance"] || circle.Docs["audit"] == first.Docs["audit"] {
		t.Fatalf("docs.governance and docs.audit still name the first documents")
	}

	entries := checkArchived(t, url, ada, made)
	// The segments' first seqs are where the chain crosses documents.
	for i, seg := range circle.Archives.Audit {
		if i > 0 && (seg.FirstSeq <= circle.Archives.Audit[i-1].FirstSeq || seg.FirstSeq > int64(len(entries))) {
			t.Fatalf("audit segment %d starts at %d; segments %+v, %d entries", i, seg.FirstSeq, circle.Archives.Audit, len(entries))
		}
	}
	// A page that starts in one segment and ends in the next.
	cross := circle.Archives.Audit[1].FirstSeq - 2
	var page wire.AuditPage
	servertest.MustGetJSON(t, url, ada, fmt.Sprintf("/v1/audit?after=%d&limit=4", cross), &page)
	if len(page.Entries) != 4 || page.Entries[0].Seq != cross+1 || page.Entries[3].Seq != cross+4 || page.Entries[1].Hash != page.Entries[2].PrevHash {
		t.Fatalf("GET /v1/audit?after=%d&limit=4 across a segment = %+v", cross, page.Entries)
	}

	// An archived proposal takes no vote, and its id is taken.
	archived := made[1]
	if r := vote(t, url, ada, archived.id, "yes"); r.Status != http.StatusConflict {
		t.Fatalf("vote on an archived proposal = %d %s, want 409", r.Status, r.Body)
	}
	if r := propose(t, url, ada, archived.id, "member.admit", "Something else", map[string]any{"name": "Other"}); r.Status != http.StatusConflict {
		t.Fatalf("a new proposal with an archived proposal's id = %d %s, want 409", r.Status, r.Body)
	}
	var open1 wire.ProposalList
	servertest.MustGetJSON(t, url, ada, "/v1/proposals?status=open", &open1)
	if len(open1.Proposals) != 1 || open1.Proposals[0].ID != open.ID {
		t.Fatalf("GET /v1/proposals?status=open = %+v, want only %s", open1.Proposals, open.ID)
	}

	// Restarted, everything reads the same; the carried proposal still
	// takes its vote.
	c.Stop()
	c.Start()
	url = c.URL()
	checkArchived(t, url, ada, made)
	if got := mustVote(t, url, ada, open.ID, "yes"); got.Status != "passed" {
		t.Fatalf("the proposal carried across archives: %s after the vote, want passed", got.Status)
	}
	made[0].status = "passed"
	made = append(made, decideProposals(t, url, ada, 8)...)
	checkArchived(t, url, ada, made)

	// A device reads an archive (the first governance document holds the
	// archived proposals) but cannot write into it, nor into an audit
	// segment.
	circle = servertest.MustCircle(t, url, ada)
	doc, _ := servertest.MustPull(t, url, ada, circle.Archives.Governance[0], ada.Actor)
	if _, ok, err := crdt.LookupProposalState(doc, archived.id); err != nil || !ok {
		t.Fatalf("the pulled governance archive lacks proposal %s: %v", archived.id, err)
	}
	before := servertest.MustStoredDocs(t, c)
	for _, target := range []string{circle.Archives.Governance[0], circle.Archives.Audit[0].Doc, circle.Docs["governance"]} {
		msg := servertest.MustChangeMessage(t, url, ada, target, ada.Actor, func(d *automerge.Doc) error {
			return d.RootMap().Set("epoch", int64(99))
		})
		r := servertest.Call(t, url, "POST", "/v1/sync", ada.Token, servertest.SyncBody(t, wire.SyncMessage{Doc: target, Data: msg}))
		if r.Status != http.StatusUnprocessableEntity {
			t.Fatalf("a member's change to %s = %d %s, want 422", target, r.Status, r.Body)
		}
	}
	servertest.MustStoreUnchanged(t, c, before)
}

// TestArchiveInterrupted stops the server between creating the next
// governance document or audit segment and naming it in the roster (the
// roster's write fails, as if the server died there): after a restart the
// old documents are still live, nothing is lost, and the next decisions
// move on.
func TestArchiveInterrupted(t *testing.T) {
	var armed atomic.Bool
	var roster atomic.Value
	roster.Store("")
	c := servertest.Start(t, "Interrupted Archive", smallArchives, servertest.WithConfig(func(cfg *server.Config) {
		server.FailWrites(cfg, func(doc string) bool { return armed.Load() && doc == roster.Load().(string) })
	}))
	url := c.URL()
	ada := servertest.MustEnroll(t, url, c.FounderInvite, "Ada")
	first := servertest.MustCircle(t, url, ada)
	roster.Store(first.Docs["roster"])
	armed.Store(true)
	made := decideProposals(t, url, ada, 9)
	if got := servertest.MustCircle(t, url, ada); got.Archives != nil || got.Docs["governance"] != first.Docs["governance"] || got.Docs["audit"] != first.Docs["audit"] {
		t.Fatalf("with the roster failing, GET /v1/circle = %+v %v, want the first documents and no archives", got.Docs, got.Archives)
	}
	checkArchived(t, url, ada, made)
	c.Stop()
	armed.Store(false)
	c.Start()
	url = c.URL()
	checkArchived(t, url, ada, made)
	made = append(made, decideProposals(t, url, ada, 4)...)
	waitArchives(t, url, ada, 1, 1)
	checkArchived(t, url, ada, made)
}

// TestDeviceVerifiesAuditAcrossSegments: a member's device syncs the audit
// log's archived segments with the live one and verifies the chain across
// them offline (circlectl audit verify).
func TestDeviceVerifiesAuditAcrossSegments(t *testing.T) {
	c := servertest.Start(t, "Archive Circle", smallArchives)
	url := c.URL()
	ada := servertest.MustEnroll(t, url, c.FounderInvite, "Ada")
	decideProposals(t, url, ada, 12)
	waitArchives(t, url, ada, 1, 2)
	phone, err := client.Join(t.Context(), t.TempDir(), url, servertest.MustInvite(t, url, ada, "device", ""), "Ada", "phone")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := phone.Sync(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	if a := phone.Info().Circle.Archives; a == nil || len(a.Audit) < 2 {
		t.Fatalf("the device knows the archives %+v, want at least 2 audit segments", a)
	}
	entries, err := phone.AuditLog()
	if err != nil {
		t.Fatalf("AuditLog() across segments = %v", err)
	}
	if want := allAudit(t, url, ada); len(entries) != len(want) || entries[len(entries)-1].Hash != want[len(want)-1].Hash {
		t.Fatalf("the device's audit log has %d entries, the server's %d", len(entries), len(want))
	}
}

// TestBallotVoteOnArchived: a vote written offline into a ballots document
// on a proposal already archived is not counted, and does not wait as a
// pending vote either; a vote on an open proposal in the same sync is.
func TestBallotVoteOnArchived(t *testing.T) {
	c := servertest.Start(t, "Archive Circle", smallArchives)
	url := c.URL()
	ada := servertest.MustEnroll(t, url, c.FounderInvite, "Ada")
	made := decideProposals(t, url, ada, 10)
	waitArchives(t, url, ada, 1, 1)
	archived := made[0]
	before := getProposal(t, url, ada, archived.id)
	open := mustPropose(t, url, ada, "member.admit", "Admit a latecomer", map[string]any{"name": "Latecomer"})

	phone, err := client.Join(t.Context(), t.TempDir(), url, servertest.MustInvite(t, url, ada, "device", ""), "Ada", "phone")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := phone.Vote(archived.id, "no", "late", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := phone.Vote(open.ID, "yes", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := phone.Sync(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for getProposal(t, url, ada, open.ID).Status != "passed" {
		if time.Now().After(deadline) {
			t.Fatalf("the ballots vote on the open proposal was not counted in 20 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	after := getProposal(t, url, ada, archived.id)
	if after.Status != before.Status || len(after.Votes) != 1 || after.Votes[ada.Member].Choice != before.Votes[ada.Member].Choice {
		t.Fatalf("the archived proposal after a ballots vote = %s %+v, want %s %+v", after.Status, after.Votes, before.Status, before.Votes)
	}
	live := servertest.MustCircle(t, url, ada).Docs["governance"]
	doc, _ := servertest.MustPull(t, url, ada, live, ada.Actor)
	if v, err := doc.Path("pending_votes_by_member", ada.Member, archived.id).Get(); err != nil || !v.IsVoid() {
		t.Fatalf("the vote on the archived proposal waits as a pending vote: %v %v", v, err)
	}
}

// TestArchivesServedAsSnapshots: governance archives and old audit
// segments never change, so like closed ledger segments they are kept
// compacted and GET /v1/circle names their snapshots; a new device loads
// each whole and holds exactly the archive's heads.
func TestArchivesServedAsSnapshots(t *testing.T) {
	c := servertest.Start(t, "Archive Snapshots", smallArchives)
	url := c.URL()
	ada := servertest.MustEnroll(t, url, c.FounderInvite, "Ada")
	decideProposals(t, url, ada, 14)
	circle := waitArchives(t, url, ada, 1, 2)
	archived := append([]string{}, circle.Archives.Governance...)
	for _, seg := range circle.Archives.Audit {
		archived = append(archived, seg.Doc)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		circle = servertest.MustCircle(t, url, ada)
		missing := 0
		for _, d := range archived {
			if circle.Snapshots[d] == "" {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s GET /v1/circle names snapshots %v, want one for each archive %v", circle.Snapshots, archived)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, d := range archived {
		r := servertest.Call(t, url, http.MethodGet, "/v1/docs/"+d+"/snapshot/"+circle.Snapshots[d], ada.Token, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("GET snapshot of archive %s = %d %s", d, r.Status, r.Body)
		}
		got, err := automerge.Load(r.Body)
		if err != nil {
			t.Fatalf("the snapshot of archive %s does not load: %v", d, err)
		}
		// What the server holds: the archive pulled by ordinary sync.
		want, _ := servertest.MustPull(t, url, ada, d, "00ff00ff")
		if !crdt.SameHeads(got.Heads(), want.Heads()) {
			t.Errorf("archive %s: the snapshot's heads %v, the server's %v", d, got.Heads(), want.Heads())
		}
	}
}
