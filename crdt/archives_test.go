package crdt_test

import (
	"errors"
	"testing"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
)

// TestAuditSegments: a segment started after a chain continues its seq and
// hash; read with ReadAuditRange it starts at its first_seq; the chain
// verifies only over every segment in order.
func TestAuditSegments(t *testing.T) {
	_, first := auditChain(t, 3)
	last := first[len(first)-1]
	seg := automerge.New()
	if err := crdt.InitAuditSegment(seg, last.Seq+1, last.Hash); err != nil {
		t.Fatal(err)
	}
	prev, err := crdt.LastAudit(seg)
	if err != nil || prev == nil || prev.Seq != 3 || prev.Hash != last.Hash {
		t.Fatalf("LastAudit(empty segment) = %+v, %v; want seq 3 and the hash of entry 3", prev, err)
	}
	at := last.At.Add(time.Hour)
	for i := range 3 {
		e, err := crdt.NewAuditEntry(prev, at.Add(time.Duration(i)*time.Minute), "proposal.opened", map[string]any{"n": i})
		if err != nil {
			t.Fatal(err)
		}
		if err := crdt.AppendAudit(seg, e); err != nil {
			t.Fatal(err)
		}
		prev = &e
	}
	mustCommit(t, seg)
	seg = mustReload(t, seg)
	second, err := crdt.ReadAudit(seg, 0)
	if err != nil || len(second) != 3 || second[0].Seq != 4 || second[0].PrevHash != last.Hash {
		t.Fatalf("ReadAudit(segment) = %+v, %v; want seqs 4..6 chained to entry 3", second, err)
	}
	if n, err := crdt.AuditLen(seg); err != nil || n != 3 {
		t.Fatalf("AuditLen = %d, %v; want 3", n, err)
	}
	for _, c := range []struct {
		after     int64
		limit     int
		wantFirst int64
		wantN     int
	}{{0, -1, 4, 3}, {3, 1, 4, 1}, {4, 5, 5, 2}, {5, -1, 6, 1}, {6, -1, 0, 0}, {9, 2, 0, 0}} {
		got, err := crdt.ReadAuditRange(seg, c.after, c.limit)
		if err != nil || len(got) != c.wantN || (c.wantN > 0 && got[0].Seq != c.wantFirst) {
			t.Errorf("ReadAuditRange(after %d, limit %d) = %d entries from %v, %v; want %d from %d", c.after, c.limit, len(got), got, err, c.wantN, c.wantFirst)
		}
	}
	if err := crdt.VerifyAudit(append(append([]crdt.AuditEntry{}, first...), second...)); err != nil {
		t.Fatalf("VerifyAudit(both segments) = %v", err)
	}
	if err := crdt.VerifyAudit(second); !errors.Is(err, crdt.ErrAuditBroken) {
		t.Errorf("VerifyAudit(the second segment alone) = %v, want ErrAuditBroken", err)
	}
	if err := crdt.VerifyAudit(append(append([]crdt.AuditEntry{}, second...), first...)); !errors.Is(err, crdt.ErrAuditBroken) {
		t.Errorf("VerifyAudit(segments swapped) = %v, want ErrAuditBroken", err)
	}
	found, done, err := crdt.FindAuditSegment(seg, last.At, func(e crdt.AuditEntry) bool { return e.Seq == 2 })
	if err != nil || found || done {
		t.Errorf("FindAuditSegment for an entry of the segment before = %v, %v, %v; want not found and not done", found, done, err)
	}
	if err := crdt.InitAuditSegment(automerge.New(), 0, last.Hash); err == nil {
		t.Errorf("InitAuditSegment(first_seq 0) = nil, want an error")
	}
}

// TestLiveGovernance: archiving keeps every root value and the open or
// unrecorded proposals in the new live document, and names the others
// with their status.
func TestLiveGovernance(t *testing.T) {
	d := automerge.New()
	if err := crdt.InitGovernance(d); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	ids := []string{"11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222", "33333333-3333-4333-8333-333333333333"}
	for _, id := range ids {
		p := crdt.Proposal{ID: id, Kind: "charter.ratify", Title: "Ratify " + id[:4], Payload: map[string]any{}, At: now}
		if err := crdt.OpenProposal(d, crdt.ProposalState{Proposal: p, Author: "m_ada", OpenedAt: now, ClosesAt: now.Add(time.Hour), Status: crdt.ProposalOpen}); err != nil {
			t.Fatal(err)
		}
	}
	// 1: decided and recorded; 2: decided, not recorded; 3: open.
	for _, id := range ids[:2] {
		if err := crdt.DecideProposal(d, id, crdt.ProposalRejected, "no", now); err != nil {
			t.Fatal(err)
		}
	}
	if err := crdt.MarkRecorded(d, ids[0]); err != nil {
		t.Fatal(err)
	}
	mustCommit(t, d)
	stays := func(st crdt.ProposalState) bool { return st.Status == crdt.ProposalOpen || !st.Recorded }
	live, left, total, err := crdt.LiveGovernance(d, stays)
	if err != nil || total != 3 || len(left) != 1 || left[ids[0]] != crdt.ProposalRejected {
		t.Fatalf("LiveGovernance = left %v of %d, %v; want only %s, rejected", left, total, err, ids[0])
	}
	next := automerge.New()
	if err := crdt.WriteLiveGovernance(next, live); err != nil {
		t.Fatal(err)
	}
	mustCommit(t, next)
	next = mustReload(t, next)
	states, err := crdt.ReadProposalStates(next)
	if err != nil || len(states) != 2 || states[0].ID == ids[0] || states[1].ID == ids[0] {
		t.Fatalf("the new document's proposals = %+v, %v; want %s and %s", states, err, ids[1], ids[2])
	}
	if epoch, err := crdt.ReadEpoch(next); err != nil || epoch != 0 {
		t.Fatalf("the new document's epoch = %d, %v", epoch, err)
	}
	// The open proposal's author index came along: the bound still counts it.
	if v, err := next.Path("open_proposals", "m_ada", ids[2]).Get(); err != nil || v.IsVoid() {
		t.Fatalf("open_proposals lost %s in the new document: %v", ids[2], err)
	}
}

// TestRosterArchives: the roster names no archives until the first move,
// then the circle's first documents and every one after, in order.
func TestRosterArchives(t *testing.T) {
	d := automerge.New()
	if err := d.RootMap().Set("members", automerge.NewMap()); err != nil {
		t.Fatal(err)
	}
	mustCommit(t, d)
	a, err := crdt.ReadArchives(d)
	if err != nil || len(a.Governance)+len(a.Audit) != 0 {
		t.Fatalf("ReadArchives(a roster that never moved) = %+v, %v", a, err)
	}
	first := crdt.Archives{Governance: []crdt.DocID{"gov1"}, Audit: []crdt.AuditSegment{{Doc: "aud1", FirstSeq: 1}}}
	if err := crdt.AddAuditSegment(d, "aud2", 1001, first); err != nil {
		t.Fatal(err)
	}
	if err := crdt.AddGovernanceDoc(d, "gov2", first); err != nil {
		t.Fatal(err)
	}
	if err := crdt.AddAuditSegment(d, "aud3", 2001, first); err != nil {
		t.Fatal(err)
	}
	mustCommit(t, d)
	a, err = crdt.ReadArchives(mustReload(t, d))
	want := crdt.Archives{Governance: []crdt.DocID{"gov1", "gov2"}, Audit: []crdt.AuditSegment{{"aud1", 1}, {"aud2", 1001}, {"aud3", 2001}}}
	if err != nil || len(a.Governance) != 2 || a.Governance[1] != want.Governance[1] || len(a.Audit) != 3 || a.Audit[2] != want.Audit[2] || a.Audit[0] != want.Audit[0] {
		t.Fatalf("ReadArchives = %+v, %v; want %+v", a, err, want)
	}
	if _, err := crdt.ReadRoster(d); err != nil {
		t.Fatalf("ReadRoster with archives = %v", err)
	}
}
