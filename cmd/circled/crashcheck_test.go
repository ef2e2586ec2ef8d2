package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/wire"
)

// What the harness checks after the restart (crash_test.go).

// state is the circle as the restarted server shows it.
type state struct {
	circle    wire.Circle
	entries   []wire.Entry
	proposals map[string]wire.Proposal
	roles     []wire.Role
	audit     []crdt.AuditEntry
	data      []map[string]any // audit entries' data, by index
	resets    wire.Resets
	epoch     int64
}

// effectKinds are the audit kinds of the effects of the proposals the
// harness makes.
var effectKinds = map[string]string{
	crdt.ProposalRoleCreate: crdt.AuditRoleCreated,
	crdt.ProposalRoleAssign: crdt.AuditRoleAssigned,
}

func (tr *trial) read(ctx context.Context) (*state, error) {
	ada := tr.founder[0]
	get := func(path string, out any) error { return tr.api.as(ctx, tr.circle, ada, "GET", path, nil, out) }
	st := &state{proposals: map[string]wire.Proposal{}}
	if err := get("/v1/circle", &st.circle); err != nil {
		return nil, err
	}
	cursor := ""
	for page := 0; ; page++ {
		if page > 1000 {
			return nil, fmt.Errorf("GET /v1/ledger/entries: more than 1000 pages")
		}
		var list wire.EntryList
		if err := get("/v1/ledger/entries?limit=1000&cursor="+url.QueryEscape(cursor), &list); err != nil {
			return nil, err
		}
		st.entries = append(st.entries, list.Entries...)
		if cursor = list.NextCursor; cursor == "" {
			break
		}
	}
	var pl wire.ProposalList
	if err := get("/v1/proposals", &pl); err != nil {
		return nil, err
	}
	for _, p := range pl.Proposals {
		st.proposals[p.ID] = p
	}
	var rl wire.RoleList
	if err := get("/v1/roles?status=all", &rl); err != nil {
		return nil, err
	}
	st.roles = rl.Roles
	after := int64(0)
	for page := 0; ; page++ {
		if page > 1000 {
			return nil, fmt.Errorf("GET /v1/audit: more than 1000 pages")
		}
		var ap wire.AuditPage
		if err := get(fmt.Sprintf("/v1/audit?after=%d&limit=5000", after), &ap); err != nil {
			return nil, err
		}
		for _, e := range ap.Entries {
			st.audit = append(st.audit, crdt.AuditEntry{Seq: e.Seq, At: e.At, Kind: e.Kind, Data: e.Data, PrevHash: e.PrevHash, Hash: e.Hash})
			var d map[string]any
			_ = json.Unmarshal(e.Data, &d)
			st.data = append(st.data, d)
		}
		if ap.Next == 0 {
			break
		}
		after = ap.Next
	}
	if err := get("/v1/resets", &st.resets); err != nil {
		return nil, err
	}
	st.epoch = st.resets.Epoch
	return st, nil
}

// find returns the indexes of the audit entries of kind whose data names
// value under key.
func (st *state) find(kind, key string, value any) []int {
	var out []int
	for i, e := range st.audit {
		if e.Kind != kind {
			continue
		}
		v, ok := st.data[i][key]
		if !ok {
			continue
		}
		if f, isNum := v.(float64); isNum {
			if n, want := value.(int64); want && f == float64(n) {
				out = append(out, i)
			}
			continue
		}
		if v == value {
			out = append(out, i)
		}
	}
	return out
}

// check reads the circle and lists every way it falls short; nil means it
// holds.
func (tr *trial) check(ctx context.Context) (*state, []string) {
	st, err := tr.read(ctx)
	if err != nil {
		return nil, []string{"read the circle after restart: " + err.Error()}
	}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	tr.ack.mu.Lock()
	ack := acked{restEntries: tr.ack.restEntries, synced: tr.ack.synced, enrolled: tr.ack.enrolled,
		votes: tr.ack.votes, proposals: tr.ack.proposals, resetSigs: tr.ack.resetSigs, resetDone: tr.ack.resetDone}
	tr.ack.mu.Unlock()

	// The audit chain verifies.
	if err := crdt.VerifyAudit(st.audit); err != nil {
		bad("audit chain: %v", err)
	}

	// Every acknowledged entry is listed, and none twice.
	listed := map[string]int{}
	for _, e := range st.entries {
		listed[e.ID]++
	}
	for id, n := range listed {
		if n > 1 {
			bad("entry %s is listed %d times", id, n)
		}
	}
	lost := func(ids []string, how string) {
		n := 0
		for _, id := range ids {
			if listed[id] == 0 {
				n++
			}
		}
		if n > 0 {
			bad("%d of %d acknowledged %s entries are lost", n, len(ids), how)
		}
	}
	lost(ack.restEntries, "REST")
	lost(ack.synced, "synced")

	// Every acknowledged enrolment's device gets a token, and is recorded
	// once; every member of the roster has exactly one member.enrolled.
	for _, m := range ack.enrolled {
		if _, err := tr.api.tokenFor(ctx, tr.circle, m, true); err != nil {
			bad("%s's device %s, enrolled before the kill, gets no token: %v", m.name, m.deviceID, err)
		}
		n := len(st.find(crdt.AuditMemberEnrolled, "device", m.deviceID)) + len(st.find(crdt.AuditDeviceEnrolled, "device", m.deviceID))
		if n != 1 {
			bad("device %s (%s) has %d enrolment audit entries, want 1", m.deviceID, m.name, n)
		}
	}
	for _, m := range st.circle.Members {
		if n := len(st.find(crdt.AuditMemberEnrolled, "member", m.MemberID)); n != 1 {
			bad("member %s (%s) of the roster has %d member.enrolled audit entries, want 1", m.MemberID, m.Name, n)
		}
	}

	// Every acknowledged proposal exists; every acknowledged vote is in it.
	for _, a := range ack.proposals {
		if _, ok := st.proposals[a.id]; !ok {
			bad("proposal %s (%s), acknowledged before the kill, is gone", a.id, a.kind)
		}
	}
	for _, v := range ack.votes {
		p, ok := st.proposals[v.proposal]
		if !ok {
			continue // reported above
		}
		got, voted := p.Votes[v.member]
		switch {
		case voted && got.Choice != v.choice:
			bad("vote of %s on %s is %q, acknowledged %q", v.member, v.proposal, got.Choice, v.choice)
		case !voted && (!v.ballots || p.Status == crdt.ProposalOpen):
			// A vote synced in a ballots document is counted in the
			// background; the proposal may be decided without it first.
			bad("acknowledged vote of %s on %s (ballots: %v) is not in the proposal (%s)", v.member, v.proposal, v.ballots, p.Status)
		}
	}

	// Each proposal: opened once, decided once if decided, its effect
	// carried out and recorded exactly once if it passed.
	active := map[string]bool{}
	for _, m := range st.circle.Members {
		active[m.MemberID] = true
	}
	for id, p := range st.proposals {
		if n := len(st.find(crdt.AuditProposalOpened, "id", id)); n != 1 {
			bad("proposal %s has %d proposal.opened entries, want 1", id, n)
		}
		decided := len(st.find(crdt.AuditProposalDecided, "id", id))
		effects := 0
		for _, k := range effectKinds {
			effects += len(st.find(k, "proposal", id))
		}
		switch p.Status {
		case crdt.ProposalOpen:
			if decided+effects > 0 {
				bad("open proposal %s has %d decision and %d effect entries", id, decided, effects)
			}
			all := true
			for m := range active {
				if _, ok := p.Votes[m]; !ok {
					all = false
				}
			}
			if all {
				bad("proposal %s is still open although every member voted", id)
			}
		case crdt.ProposalPassed:
			if decided != 1 {
				bad("passed proposal %s has %d proposal.decided entries, want 1", id, decided)
			}
			if n := len(st.find(effectKinds[p.Kind], "proposal", id)); n != 1 || effects != 1 {
				bad("passed proposal %s (%s) has %d %s entries (%d effect entries in all), want exactly 1", id, p.Kind, n, effectKinds[p.Kind], effects)
			}
			if !p.Applied {
				bad("passed proposal %s (%s) is not applied", id, p.Kind)
			}
			if p.Kind == crdt.ProposalRoleCreate && !slices.ContainsFunc(st.roles, func(r wire.Role) bool { return r.ID == id }) {
				bad("passed role.create %s made no role", id)
			}
		case crdt.ProposalCancelled:
			// Cancelled by a hard reset: the reset's entry names it, and
			// it has no decision or effect of its own.
			named := 0
			for i, e := range st.audit {
				if e.Kind != crdt.AuditResetExecuted {
					continue
				}
				ids, _ := st.data[i]["proposals_cancelled"].([]any)
				for _, x := range ids {
					if x == id {
						named++
					}
				}
			}
			if named != 1 || decided+effects != 0 {
				bad("cancelled proposal %s is named by %d reset.executed entries and has %d decision and %d effect entries, want 1, 0 and 0", id, named, decided, effects)
			}
		default:
			if decided != 1 || effects != 0 {
				bad("%s proposal %s has %d decision and %d effect entries, want 1 and 0", p.Status, id, decided, effects)
			}
		}
	}

	// The reset: executed once if it executed, and executed if three
	// signatures were acknowledged; no role held by an assignment recorded
	// before it.
	signed := map[string]bool{}
	for _, m := range ack.resetSigs {
		signed[m] = true
	}
	executed := st.find(crdt.AuditResetExecuted, "epoch", int64(0))
	resetSeq := int64(-1)
	var resetAt time.Time
	switch {
	case st.epoch == 0:
		if len(signed) >= 3 || ack.resetDone {
			bad("epoch 0 after restart, although %d members' reset signatures were acknowledged (executed: %v)", len(signed), ack.resetDone)
		}
		if len(executed) != 0 {
			bad("epoch 0 but %d reset.executed entries", len(executed))
		}
	case st.epoch == 1:
		if len(executed) != 1 {
			bad("epoch 1 but %d reset.executed entries for epoch 0, want 1", len(executed))
		} else {
			resetSeq = st.audit[executed[0]].Seq
		}
		if len(st.resets.Past) != 1 {
			bad("epoch 1 but %d past resets", len(st.resets.Past))
		} else {
			resetAt = st.resets.Past[0].At
		}
	default:
		bad("epoch %d after one reset", st.epoch)
	}
	for _, r := range st.roles {
		if r.Holder == "" {
			continue
		}
		idx := st.find(crdt.AuditRoleAssigned, "role", r.ID)
		if len(idx) == 0 {
			bad("role %s is held by %s with no role.assigned entry", r.ID, r.Holder)
			continue
		}
		last := idx[len(idx)-1]
		if who, _ := st.data[last]["member"].(string); who != r.Holder {
			bad("role %s is held by %s, but its last role.assigned entry names %s", r.ID, r.Holder, who)
		}
		if resetSeq >= 0 && st.audit[last].Seq < resetSeq {
			bad("role %s is held by %s after the reset (audit #%d), assigned before it (audit #%d)", r.ID, r.Holder, resetSeq, st.audit[last].Seq)
		}
		if !resetAt.IsZero() {
			prop, _ := st.data[last]["proposal"].(string)
			if p, ok := st.proposals[prop]; ok && p.DecidedAt != nil && p.DecidedAt.Before(resetAt) {
				bad("role %s is held by %s after the reset at %s by proposal %s, which passed before it (%s)", r.ID, r.Holder, resetAt.Format(time.RFC3339Nano), prop, p.DecidedAt.Format(time.RFC3339Nano))
			}
		}
	}

	// Nothing recorded twice.
	keys := map[string]int{}
	for i, e := range st.audit {
		var k string
		switch e.Kind {
		case crdt.AuditProposalOpened, crdt.AuditProposalDecided:
			k = fmt.Sprint(e.Kind, " ", st.data[i]["id"])
		case crdt.AuditRoleCreated, crdt.AuditRoleAssigned:
			k = fmt.Sprint(e.Kind, " ", st.data[i]["proposal"])
		case crdt.AuditResetExecuted:
			k = fmt.Sprint(e.Kind, " epoch ", st.data[i]["epoch"])
		case crdt.AuditMemberEnrolled, crdt.AuditDeviceEnrolled:
			k = fmt.Sprint("enrolled ", st.data[i]["device"])
		}
		if k != "" {
			keys[k]++
		}
	}
	for k, n := range keys {
		if n > 1 {
			bad("audit log records %q %d times", k, n)
		}
	}
	return st, problems
}

// finished says what the restarted server had to finish, from the audit
// entries written after restarted.
func (st *state) finished(restarted time.Time) []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for i, e := range st.audit {
		if e.At.Before(restarted) {
			continue
		}
		d := st.data[i]
		switch e.Kind {
		case crdt.AuditResetExecuted:
			if f, _ := d["finished_after_stop"].(bool); f {
				add("reset interrupted after the epoch moved (finished at start)")
			} else {
				add("reset executed after restart (signatures from ballots counted again)")
			}
		case crdt.AuditMemberEnrolled, crdt.AuditDeviceEnrolled, crdt.AuditProposalOpened:
			if f, _ := d["finished_after_stop"].(bool); f {
				add(e.Kind + " recorded at start (the kill came between the write and its record)")
			}
		case crdt.AuditProposalDecided, crdt.AuditRoleCreated, crdt.AuditRoleAssigned:
			id, _ := d["id"].(string)
			if e.Kind != crdt.AuditProposalDecided {
				id, _ = d["proposal"].(string)
			}
			p, ok := st.proposals[id]
			switch {
			case !ok:
			case p.DecidedAt != nil && p.DecidedAt.Before(restarted):
				add("decision interrupted: " + e.Kind + " recorded after restart")
			default:
				add("proposal decided after restart (last vote stored before the kill)")
			}
		}
	}
	return out
}
