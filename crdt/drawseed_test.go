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

// TestVerifyRoundSeededDraws: role and facilitator draws whose seed comes
// from a commit–reveal round verify when they use the round the rules
// name, as the rules derive it; every other choice of seed is caught.
func TestVerifyRoundSeededDraws(t *testing.T) {
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	roster := testRoster(now, "m_alice", "m_bob", "m_carol")
	eligible := []string{"m_alice", "m_bob", "m_carol"}
	seedOf := func(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }
	closed := func(id string, seed []byte, at time.Time) map[string]any {
		return map[string]any{"draw": id, "seed": hex.EncodeToString(seed), "closed_at": at, "revealed": []string{}, "withheld": []string{}, "picked": []string{}}
	}
	roleDrawn := func(id string, seed []byte, change func(map[string]any)) map[string]any {
		d := map[string]any{"draw": id, "round": id, "seed_source": "round", "role": "r", "seed": hex.EncodeToString(seed), "eligible": eligible, "excluded": []string{}, "holder": crdt.DrawPick(seed, eligible), "drawn_at": now}
		if change != nil {
			change(d)
		}
		return d
	}
	meeting := func(id, round string, roundSeed []byte, seq int64, change func(map[string]any)) map[string]any {
		seed := crdt.FacilitationSeed(roundSeed, seq)
		d := map[string]any{"meeting": id, "draw": "meeting:" + id, "round": round, "seed_source": "round", "seq": seq, "seed": hex.EncodeToString(seed), "eligible": eligible, "excluded": []string{}, "facilitator": crdt.DrawPick(seed, eligible), "drawn_at": now}
		if change != nil {
			change(d)
		}
		return d
	}
	serverMeeting := func(id string, seq int64) []map[string]any {
		seed := seedOf(byte(seq))
		return []map[string]any{
			{"k": crdt.AuditDrawCommitted, "d": map[string]any{"draw": "meeting:" + id, "commitment": crdt.DrawCommitment(seed)}},
			{"k": crdt.AuditMeetingCreated, "d": map[string]any{"meeting": id, "draw": "meeting:" + id, "seed_source": "server", "seq": seq, "seed": hex.EncodeToString(seed), "eligible": eligible, "excluded": []string{}, "facilitator": crdt.DrawPick(seed, eligible), "drawn_at": now}},
		}
	}
	r1, f1, f2 := seedOf(1), seedOf(2), seedOf(3)
	opened := func(n int) []map[string]any {
		return []map[string]any{{"k": crdt.AuditDrawOpened, "d": map[string]any{"draw": crdt.FacilitationRoundID(n), "reveal_by": now.Add(time.Hour)}}}
	}
	early := now.Add(-time.Hour)
	log := func(items ...[]map[string]any) []map[string]any {
		var out []map[string]any
		for _, it := range items {
			out = append(out, it...)
		}
		return out
	}
	one := func(kind string, data map[string]any) []map[string]any {
		return []map[string]any{{"k": kind, "d": data}}
	}
	tests := []struct {
		name  string
		log   []map[string]any
		words string
	}{
		{"a role drawn with its round", log(one(crdt.AuditDrawClosed, closed("rotation:r:1", r1, early)), one(crdt.AuditRoleDrawn, roleDrawn("rotation:r:1", r1, nil))), ""},
		{"a role drawn before its round closed", log(one(crdt.AuditRoleDrawn, roleDrawn("rotation:r:1", r1, nil)), one(crdt.AuditDrawClosed, closed("rotation:r:1", r1, early))), "entry 1 (role.drawn): draw rotation:r:1 names round rotation:r:1, which had not closed"},
		{"a role drawn with a seed not the round's", log(one(crdt.AuditDrawClosed, closed("rotation:r:1", r1, early)), one(crdt.AuditRoleDrawn, roleDrawn("rotation:r:1", f1, nil))), "not the one round rotation:r:1 gives"},
		{"a role drawn with another draw's round", log(one(crdt.AuditDrawClosed, closed("rotation:r:1", r1, early)), one(crdt.AuditRoleDrawn, roleDrawn("rotation:r:2", r1, func(d map[string]any) { d["round"] = "rotation:r:1" }))), "a role's draw uses its own round"},
		{"a role drawn with another role's round", log(one(crdt.AuditDrawClosed, closed("rotation:q:1", r1, early)), one(crdt.AuditRoleDrawn, roleDrawn("rotation:q:1", r1, nil))), "is named rotation:r:<term end>"},
		{"a role.draw drawn with a round not its proposal's", log(one(crdt.AuditDrawClosed, closed("p-other", r1, early)), one(crdt.AuditRoleDrawn, roleDrawn("p-other", r1, func(d map[string]any) { d["proposal"] = "p1" }))), "is named by its proposal"},
		{"a role.draw drawn with its proposal's round", log(one(crdt.AuditDrawClosed, closed("p1", r1, early)), one(crdt.AuditRoleDrawn, roleDrawn("p1", r1, func(d map[string]any) { d["proposal"] = "p1" }))), ""},
		{"a round's seed used twice", log(one(crdt.AuditDrawClosed, closed("facilitation:1", f1, early)), opened(2), one(crdt.AuditMeetingCreated, meeting("m1", "facilitation:1", f1, 1, nil)), one(crdt.AuditRoleDrawn, roleDrawn("facilitation:1", f1, nil))), "entry 4 (role.drawn): the seed of round facilitation:1 is used twice"},
		{"a role drawn with no round", log(one(crdt.AuditRoleDrawn, roleDrawn("rotation:r:1", r1, func(d map[string]any) { delete(d, "round"); d["seed_source"] = "server" }))), "names no round"},
		{"a pick not the seed's", log(one(crdt.AuditDrawClosed, closed("rotation:r:1", r1, early)), one(crdt.AuditRoleDrawn, roleDrawn("rotation:r:1", r1, func(d map[string]any) {
			for _, m := range eligible {
				if m != d["holder"] {
					d["holder"] = m
				}
			}
		}))), "records holder"},
		{"meetings from the newest round, each with its number", log(opened(1), serverMeeting("m1", 1), one(crdt.AuditDrawClosed, closed("facilitation:1", f1, early)),
			opened(2), one(crdt.AuditMeetingCreated, meeting("m2", "facilitation:1", f1, 2, nil)), one(crdt.AuditMeetingCreated, meeting("m3", "facilitation:1", f1, 3, nil)),
			one(crdt.AuditDrawClosed, closed("facilitation:2", f2, early)), opened(3), one(crdt.AuditMeetingCreated, meeting("m4", "facilitation:2", f2, 4, nil))), ""},
		{"a meeting from a round before the next was opened", log(one(crdt.AuditDrawClosed, closed("facilitation:1", f1, early)), one(crdt.AuditMeetingCreated, meeting("m2", "facilitation:1", f1, 2, nil))), "before the next facilitation round was opened"},
		{"a meeting from the server's seed before the first round was opened", serverMeeting("m1", 1), "before the circle's first facilitation round was opened"},
		{"a meeting whose seed is not derived from its number", log(one(crdt.AuditDrawClosed, closed("facilitation:1", f1, early)), opened(2), one(crdt.AuditMeetingCreated, meeting("m2", "facilitation:1", f1, 2, func(d map[string]any) { d["seq"] = 3 }))), "not the one round facilitation:1 gives"},
		{"a meeting number used twice", log(one(crdt.AuditDrawClosed, closed("facilitation:1", f1, early)), opened(2), one(crdt.AuditMeetingCreated, meeting("m2", "facilitation:1", f1, 2, nil)), one(crdt.AuditMeetingCreated, meeting("m3", "facilitation:1", f1, 2, nil))), "sequence number 2 is not new"},
		{"a meeting with an older round than the newest closed", log(one(crdt.AuditDrawClosed, closed("facilitation:1", f1, early)), one(crdt.AuditDrawClosed, closed("facilitation:2", f2, early)), one(crdt.AuditMeetingCreated, meeting("m2", "facilitation:1", f1, 2, nil))), "the newest facilitation round closed when it was drawn is facilitation:2"},
		{"a meeting with a role's round", log(one(crdt.AuditDrawClosed, closed("rotation:r:1", r1, early)), one(crdt.AuditMeetingCreated, meeting("m2", "rotation:r:1", r1, 2, nil))), "not a facilitation round"},
		{"a meeting from the server's seed after a round closed", log(one(crdt.AuditDrawClosed, closed("facilitation:1", f1, early)), serverMeeting("m2", 2)), "uses the server's seed although facilitation round facilitation:1 had closed"},
		{"a meeting drawn from an older round while a newer one's reveals had closed", log(one(crdt.AuditDrawClosed, closed("facilitation:1", f1, early)), one(crdt.AuditDrawOpened, map[string]any{"draw": "facilitation:2", "reveal_by": early}),
			one(crdt.AuditMeetingCreated, meeting("m2", "facilitation:1", f1, 2, nil))), "the reveals of facilitation:2 had closed"},
		{"a meeting from the server's seed while a round's reveals had closed", log(one(crdt.AuditDrawOpened, map[string]any{"draw": "facilitation:1", "reveal_by": early}), serverMeeting("m1", 1)), "should have been closed and used"},
		{"a round whose reveals are still open is not yet due", log(one(crdt.AuditDrawClosed, closed("facilitation:1", f1, early)), one(crdt.AuditDrawOpened, map[string]any{"draw": "facilitation:2", "reveal_by": now.Add(time.Hour)}),
			one(crdt.AuditMeetingCreated, meeting("m2", "facilitation:1", f1, 2, nil))), ""},
		{"a round closed after the meeting was drawn is not yet usable", log(opened(1), serverMeeting("m1", 1), one(crdt.AuditDrawClosed, closed("facilitation:1", f1, now.Add(time.Minute))), serverMeeting("m2", 2)), ""},
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
			err := crdt.VerifyAuditDraws(entries, roster)
			switch {
			case tt.words == "" && err != nil:
				t.Errorf("VerifyAuditDraws() = %v, want nil", err)
			case tt.words != "" && (!errors.Is(err, crdt.ErrAuditBroken) || !strings.Contains(err.Error(), tt.words)):
				t.Errorf("VerifyAuditDraws() = %v, want ErrAuditBroken naming %q", err, tt.words)
			}
		})
	}
	if crdt.FacilitationRoundID(12) != "facilitation:12" {
		t.Errorf("FacilitationRoundID(12) = %q", crdt.FacilitationRoundID(12))
	}
	for _, bad := range []string{"facilitation:0", "facilitation:01", "facilitation:x", "rotation:r:1"} {
		if _, ok := crdt.FacilitationRoundNumber(bad); ok {
			t.Errorf("FacilitationRoundNumber(%q) is ok", bad)
		}
	}
}
