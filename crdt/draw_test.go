package crdt_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/circles-coop/circles/crdt"
)

// TestDrawPick: the pick depends only on the seed and the set of eligible
// members, and every member can be picked.
func TestDrawPick(t *testing.T) {
	members := []string{"m_carol", "m_alice", "m_bob"}
	seed := bytes.Repeat([]byte{7}, crdt.DrawSeedBytes)
	got := crdt.DrawPick(seed, members)
	if again := crdt.DrawPick(seed, []string{"m_alice", "m_bob", "m_carol"}); again != got {
		t.Errorf("DrawPick() in another order = %q, want %q", again, got)
	}
	if crdt.DrawPick(seed, nil) != "" {
		t.Errorf("DrawPick(nobody) is not empty")
	}
	// A known answer, so the rule cannot drift without anyone noticing
	// (every circle's past draws depend on it). Computed apart from Go:
	//   m = sorted(members); h = sha256(b"circles-draw-v1\n" + (seed.hex()+"\n").encode()
	//       + b"".join((x+"\n").encode() for x in m)).digest()
	//   m[int.from_bytes(h, "big") % len(m)]
	if got != "m_carol" {
		t.Errorf("DrawPick(7…7, alice bob carol) = %q, want m_carol", got)
	}
	picked := map[string]int{}
	for i := range 300 {
		s := bytes.Repeat([]byte{byte(i), byte(i >> 8)}, crdt.DrawSeedBytes/2)
		picked[crdt.DrawPick(s, members)]++
	}
	for _, m := range members {
		if picked[m] < 60 {
			t.Errorf("over 300 seeds %s was picked %d times, want about 100", m, picked[m])
		}
	}
}

// TestDrawEligible: active members, without those at the term limit.
func TestDrawEligible(t *testing.T) {
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	r := testRoster(now, "m_alice", "m_bob", "m_carol")
	gone := now.Add(-time.Hour)
	r.Members["m_carol"].RemovedAt = &gone
	start := now.Add(-24 * time.Hour)
	end := start.Add(48 * time.Hour)
	role := crdt.Role{ID: "r", Name: "steward", Term: 48 * time.Hour, TermLimit: 1, Holder: "m_alice", TermStart: &start, TermEnd: &end, TermsServed: 1}
	eligible, excluded := crdt.DrawEligible(role, r, now, 2)
	if strings.Join(eligible, ",") != "m_bob" || strings.Join(excluded, ",") != "m_alice" {
		t.Errorf("DrawEligible() = %v, %v; want [m_bob], [m_alice]", eligible, excluded)
	}
	role.TermLimit = 2
	if eligible, excluded := crdt.DrawEligible(role, r, now, 2); len(eligible) != 2 || len(excluded) != 0 {
		t.Errorf("DrawEligible(limit 2) = %v, %v; want alice and bob eligible", eligible, excluded)
	}
}

func testRoster(joined time.Time, ids ...string) *crdt.Roster {
	r := &crdt.Roster{Members: map[string]*crdt.Member{}, Roles: map[string]*crdt.Role{}, Mandates: map[string]*crdt.Mandate{}}
	for _, id := range ids {
		r.Members[id] = &crdt.Member{ID: id, Name: id, JoinedAt: joined.Add(-30 * 24 * time.Hour)}
	}
	return r
}

// TestVerifyAuditDraws: an honest draw verifies; each way of cheating is
// caught and names the entry.
func TestVerifyAuditDraws(t *testing.T) {
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	roster := testRoster(now, "m_alice", "m_bob", "m_carol")
	seed := bytes.Repeat([]byte{42}, crdt.DrawSeedBytes)
	eligible := []string{"m_alice", "m_bob", "m_carol"}
	pick := crdt.DrawPick(seed, eligible)
	var other string
	for _, m := range eligible {
		if m != pick {
			other = m
		}
	}
	commit := map[string]any{"draw": "d1", "role": "r", "commitment": crdt.DrawCommitment(seed)}
	drawn := func(change func(map[string]any)) map[string]any {
		d := map[string]any{"draw": "d1", "seed": hex.EncodeToString(seed), "eligible": eligible, "excluded": []string{}, "holder": pick, "drawn_at": now}
		if change != nil {
			change(d)
		}
		return d
	}
	// A meeting.created entry reveals its facilitator's draw the same way.
	meeting := func(change func(map[string]any)) map[string]any {
		d := drawn(nil)
		delete(d, "holder")
		d["meeting"], d["facilitator"] = "m1", pick
		if change != nil {
			change(d)
		}
		return d
	}
	tests := []struct {
		name  string
		log   []map[string]any // alternately kind and data: {"kind": ..., "data": ...}
		words string           // "" when it verifies
	}{
		{"honest", []map[string]any{{"k": crdt.AuditDrawCommitted, "d": commit}, {"k": crdt.AuditRoleDrawn, "d": drawn(nil)}}, ""},
		{"another holder", []map[string]any{{"k": crdt.AuditDrawCommitted, "d": commit}, {"k": crdt.AuditRoleDrawn, "d": drawn(func(d map[string]any) { d["holder"] = other })}}, "entry 2 (role.drawn): draw d1 records holder"},
		{"never committed", []map[string]any{{"k": crdt.AuditRoleDrawn, "d": drawn(nil)}}, "never committed"},
		{"committed after", []map[string]any{{"k": crdt.AuditRoleDrawn, "d": drawn(nil)}, {"k": crdt.AuditDrawCommitted, "d": commit}}, "entry 1"},
		{"another seed", []map[string]any{{"k": crdt.AuditDrawCommitted, "d": commit}, {"k": crdt.AuditRoleDrawn, "d": drawn(func(d map[string]any) {
			d["seed"] = hex.EncodeToString(bytes.Repeat([]byte{1}, crdt.DrawSeedBytes))
		})}}, "not the one committed"},
		{"committed twice to different seeds", []map[string]any{{"k": crdt.AuditDrawCommitted, "d": commit}, {"k": crdt.AuditDrawCommitted, "d": map[string]any{"draw": "d1", "commitment": strings.Repeat("0", 64)}}}, "entry 2 (draw.committed)"},
		{"drawn twice", []map[string]any{{"k": crdt.AuditDrawCommitted, "d": commit}, {"k": crdt.AuditRoleDrawn, "d": drawn(nil)}, {"k": crdt.AuditRoleDrawn, "d": drawn(nil)}}, "entry 3 (role.drawn): draw d1 was drawn twice"},
		{"unsorted list", []map[string]any{{"k": crdt.AuditDrawCommitted, "d": commit}, {"k": crdt.AuditRoleDrawn, "d": drawn(func(d map[string]any) {
			d["eligible"] = []string{"m_bob", "m_alice", "m_carol"}
		})}}, "not sorted"},
		{"a member left out", []map[string]any{{"k": crdt.AuditDrawCommitted, "d": commit}, {"k": crdt.AuditRoleDrawn, "d": drawn(func(d map[string]any) {
			d["eligible"] = []string{"m_alice", "m_bob"}
			d["holder"] = crdt.DrawPick(seed, []string{"m_alice", "m_bob"})
		})}}, "left out of the draw: m_carol"},
		{"honest meeting", []map[string]any{{"k": crdt.AuditDrawCommitted, "d": commit}, {"k": crdt.AuditMeetingCreated, "d": meeting(nil)}}, ""},
		{"another facilitator", []map[string]any{{"k": crdt.AuditDrawCommitted, "d": commit}, {"k": crdt.AuditMeetingCreated, "d": meeting(func(d map[string]any) { d["facilitator"] = other })}}, "entry 2 (meeting.created): draw d1 records facilitator"},
		{"a meeting's seed never committed", []map[string]any{{"k": crdt.AuditMeetingCreated, "d": meeting(nil)}}, "never committed"},
		{"a role's draw reused for a meeting", []map[string]any{{"k": crdt.AuditDrawCommitted, "d": commit}, {"k": crdt.AuditRoleDrawn, "d": drawn(nil)}, {"k": crdt.AuditMeetingCreated, "d": meeting(nil)}}, "entry 3 (meeting.created): draw d1 was drawn twice"},
		{"a meeting without a draw", []map[string]any{{"k": crdt.AuditMeetingCreated, "d": map[string]any{"meeting": "m1"}}}, "not a meeting with a draw"},
		{"a stranger listed", []map[string]any{{"k": crdt.AuditDrawCommitted, "d": commit}, {"k": crdt.AuditRoleDrawn, "d": drawn(func(d map[string]any) {
			d["excluded"] = []string{"m_zed"}
		})}}, "m_zed was not an active member"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var entries []crdt.AuditEntry
			var prev *crdt.AuditEntry
			for _, item := range tt.log {
				e, err := crdt.NewAuditEntry(prev, now, item["k"].(string), item["d"])
				if err != nil {
					t.Fatal(err)
				}
				entries = append(entries, e)
				prev = &entries[len(entries)-1]
			}
			if err := crdt.VerifyAudit(entries); err != nil {
				t.Fatalf("VerifyAudit() = %v", err)
			}
			err := crdt.VerifyAuditDraws(entries, roster)
			switch {
			case tt.words == "" && err != nil:
				t.Errorf("VerifyAuditDraws() = %v, want nil", err)
			case tt.words != "" && (!errors.Is(err, crdt.ErrAuditBroken) || !strings.Contains(err.Error(), tt.words)):
				t.Errorf("VerifyAuditDraws() = %v, want ErrAuditBroken naming %q", err, tt.words)
			}
		})
	}
}
