package authority

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/authority/fault"
	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/wire"
)

// Honours lets a holder step down and shows, publicly, everyone who
// handed power on (crdt/honours.go).
type Honours struct {
	*State
	audit *Audit
	idx   honoursIndex
}

// honoursIndex holds the audit entries that hand power on
// (role.stepped_down, role.rotated), learnt from the audit log once:
// each GET /v1/honours reads only the entries appended since the one
// before, so its cost does not grow with the log's history. The log is
// append-only (hash-chained, seq by seq), so what was read stays true.
// The index is stored in the metadata bucket (honoursKey) after each
// request that read something, so a restart reads only what came after.
type honoursIndex struct {
	mu      sync.Mutex
	loaded  bool              // the stored index was looked at
	seq     int64             // the last audit seq read
	hash    string            // its hash
	entries []crdt.AuditEntry // the handings-on among them, in seq order
	read    atomic.Int64      // audit entries read, for tests
}

// honoursKey is the metadata key of the stored index: what it read up to
// (seq and that entry's hash) and the handings-on, so a restart reads only
// what was appended since.
const honoursKey = "honours.index"

type storedHonours struct {
	Seq     int64             `json:"seq"`
	Hash    string            `json:"hash"`
	Entries []crdt.AuditEntry `json:"entries"`
}

// loadHonours adopts the stored index if the audit log still holds its
// last entry, same hash; otherwise (none, unreadable, another log) the
// index starts from the beginning. x.mu held.
func (s *Honours) loadHonours(ctx context.Context) {
	x := &s.idx
	b, _, err := s.store.Meta().Get(ctx, honoursKey)
	if err != nil {
		return
	}
	var st storedHonours
	if json.Unmarshal(b, &st) != nil || st.Seq <= 0 {
		return
	}
	es, err := s.readAuditFrom(ctx, st.Seq-1, 1)
	if err != nil || len(es) != 1 || es[0].Seq != st.Seq || es[0].Hash != st.Hash {
		s.log.Warn("honours: stored index does not match the audit log; reading it again", "seq", st.Seq)
		return
	}
	x.seq, x.hash, x.entries = st.Seq, st.Hash, st.Entries
}

// saveHonours stores the index; a failure only costs a longer read after
// the next start. x.mu held.
func (s *Honours) saveHonours(ctx context.Context) {
	x := &s.idx
	b, err := json.Marshal(storedHonours{Seq: x.seq, Hash: x.hash, Entries: x.entries})
	if err == nil {
		_, err = s.store.Meta().Put(ctx, honoursKey, b)
	}
	if err != nil {
		s.log.Warn("honours: store the index", "err", err)
	}
}

// honoursPage bounds how many audit entries one catch-up holds at once.
const honoursPage = 1000

// handings reads the audit entries appended since the last call and
// returns every handing-on of power the log holds, oldest first.
func (s *Honours) handings(ctx context.Context) ([]crdt.AuditEntry, error) {
	x := &s.idx
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.loaded {
		x.loaded = true
		s.loadHonours(ctx)
	}
	from := x.seq
	for {
		page, err := s.readAuditFrom(ctx, x.seq, honoursPage)
		if err != nil {
			return nil, err
		}
		x.read.Add(int64(len(page)))
		for _, e := range page {
			if e.Seq <= x.seq {
				continue
			}
			x.seq, x.hash = e.Seq, e.Hash
			if e.Kind == crdt.AuditRoleSteppedDown || e.Kind == crdt.AuditRoleRotated {
				x.entries = append(x.entries, e)
			}
		}
		if len(page) < honoursPage {
			break
		}
	}
	if x.seq != from {
		s.saveHonours(context.WithoutCancel(ctx))
	}
	return slices.Clone(x.entries), nil
}

// AuditEntriesRead is how many audit entries GET /v1/honours has read
// since the process started (each one once; after a restart, only those
// appended since the stored index).
func (s *Honours) AuditEntriesRead() int64 { return s.idx.read.Load() }

// EventRoleSteppedDown is sent when a holder stepped down.
const EventRoleSteppedDown = "role.stepped_down"

// StepDown vacates role id, by its holder only (403 for anyone else; an
// unknown role 404, a retired one 409). It holds s.gov, so it never
// interleaves with a proposal assigning the role or a rotation; a vacant
// role that rotates by draw stays vacant until assigned again.
func (s *Honours) StepDown(ctx context.Context, c Caller, id string) (wire.Role, error) {
	s.gov.Lock()
	defer s.gov.Unlock()
	now := s.now()
	var before, after crdt.Role
	err := s.writeRoster(ctx, func(d *automerge.Doc) error {
		r, err := crdt.ReadRoster(d)
		if err != nil {
			return err
		}
		role, ok := r.Roles[id]
		if !ok {
			return fault.Errorf(fault.NotFound, "no role %s in this circle", id)
		}
		if role.Retired() {
			return fault.Errorf(fault.Conflict, "role %q is retired", role.Name)
		}
		before = *role
		var held bool
		if after, held = crdt.StepDown(*role, c.Member, now); !held {
			return fault.Errorf(fault.Forbidden, "only the holder of role %q may step down from it", role.Name)
		}
		return crdt.PutRole(d, &after)
	})
	if err != nil {
		return wire.Role{}, err
	}
	ctx = context.WithoutCancel(ctx)
	data := map[string]any{
		"role": before.ID, "name": before.Name, "member": c.Member, "terms_served": before.TermsServed,
		"term_start": before.TermStart, "term_end": before.TermEnd, "at": now,
	}
	if err := s.audit.Append(ctx, crdt.AuditRoleSteppedDown, data); err != nil {
		s.log.Error("honours: audit entry", "role", id, "err", err)
	}
	s.log.Info("holder stepped down", "role", id, "member", c.Member)
	s.events.Publish(EventRoleSteppedDown, data)
	return wireRole(after), nil
}

// Honours lists every handing-on of power, newest first.
func (s *Honours) Honours(ctx context.Context, c Caller) (wire.Honours, error) {
	// Across every audit segment (archives.go), read once per process;
	// honours are as old as the circle.
	entries, err := s.handings(ctx)
	if err != nil {
		return wire.Honours{}, err
	}
	s.mu.RLock()
	r := s.roster
	s.mu.RUnlock()
	maxLimit := s.policies().Int("role.term_limit")
	limitOf := func(id string) int {
		if role, ok := r.Roles[id]; ok {
			return crdt.TermLimit(*role, maxLimit)
		}
		return 0
	}
	hs := crdt.HonoursFromAudit(entries, limitOf)
	out := wire.Honours{Honours: make([]wire.Honour, 0, len(hs))}
	for _, h := range slices.Backward(hs) {
		w := wire.Honour{Member: h.Member, Role: h.Role, RoleName: h.Name, Kind: h.Kind, Terms: h.Terms, At: h.At}
		if m, ok := r.Members[h.Member]; ok {
			w.MemberName = m.Name
		}
		out.Honours = append(out.Honours, w)
	}
	return out, nil
}

// wireRole renders a role as GET /v1/roles does.
func wireRole(role crdt.Role) wire.Role {
	return wire.Role{
		ID: role.ID, Name: role.Name, Purpose: role.Purpose, Term: role.Term.String(), TermLimit: role.TermLimit,
		Rotation: cmp.Or(role.Rotation, crdt.RotationVacate), Holder: role.Holder, TermStart: role.TermStart, TermEnd: role.TermEnd,
		TermsServed: role.TermsServed, PreviousHolder: role.PreviousHolder, Status: cmp.Or(role.Status, crdt.RoleActive), RetiredAt: role.RetiredAt,
	}
}
