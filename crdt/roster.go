package crdt

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/automerge/automerge-go"
)

// The roster document, written by the server only:
//
//	{ "members": { "<member id>": { "id", "name", "joined_at", "removed_at"?,
//	      "ledgers": [doc id, oldest first], "ballots": doc id,
//	      "devices": { "<device id>": { "id", "name", "public_key" (base64),
//	          "actor_id" (hex), "added_at", "revoked_at"? } } } },
//	  "roles": { "<role id>": { "id", "name", "purpose", "term", "term_limit",
//	      "rotation"?, "holder"?, "term_start"?, "term_end"?, "terms_served",
//	      "previous_holder"?, "previous_terms"?, "previous_term_end"?,
//	      "status"? ("retired"; absent while active), "retired_at"? } },
//	  "mandates": { "<mandate id>": { "id", "member", "issue", "scope",
//	      "deadline", "granted_at", "status" } } }

// Bounds on roster values.
const (
	MaxDevices  = 32 // devices of one member not revoked
	MaxSegments = 10000
	maxActorLen = 64 // hex characters of an automerge actor id
	maxScopeLen = 2000
	maxIssueLen = 2000
)

// MaxDeviceRecords bounds the devices of one member, revoked ones
// included, so the roster stays bounded.
const MaxDeviceRecords = 4 * MaxDevices

// Roster is the circle's register of members, their devices, its roles
// and its mandates.
type Roster struct {
	Members  map[string]*Member  // by member id
	Roles    map[string]*Role    // by role id
	Mandates map[string]*Mandate // by mandate id
}

// Member is one member of the circle.
type Member struct {
	ID        string
	Name      string
	JoinedAt  time.Time
	RemovedAt *time.Time
	Devices   map[string]*Device // by device id
	Ledgers   []DocID            // ledger segments, oldest first; the last is current
	Ballots   DocID              // the current ballots document
	// BallotsClosed are the member's earlier ballots documents, oldest
	// first (ballotsegments.go); devices may still write into them.
	BallotsClosed []DocID
}

// Device is one enrolled device of a member.
type Device struct {
	ID        string
	Name      string
	PublicKey []byte // raw Ed25519 public key, 32 bytes
	ActorID   string // lowercase hex automerge actor id the device writes with
	AddedAt   time.Time
	RevokedAt *time.Time
}

// How a role is filled when its holder's term ends (Role.Rotation).
const (
	RotationVacate = "vacate" // the role becomes vacant (the default)
	RotationDraw   = "draw"   // a verifiable random draw picks the next holder
)

// The statuses of a role. A retired role is kept in the roster for
// history, vacant; no proposal may assign, draw or change it again.
const (
	RoleActive  = "active" // "" reads as it
	RoleRetired = "retired"
)

// The statuses of a mandate.
const (
	MandateActive   = "active"
	MandateRecalled = "recalled" // recalled by a proposal
	MandateRevoked  = "revoked"  // revoked by a hard reset
	MandateExpired  = "expired"  // its deadline passed
	MandateDone     = "done"     // its delegate marked the task done
)

// InitRoster writes the root of a new roster: empty "members", "roles"
// and "mandates" maps. It does not commit.
func InitRoster(doc *automerge.Doc) error {
	root := doc.RootMap()
	for _, key := range []string{"members", "roles", "mandates"} {
		if err := root.Set(key, automerge.NewMap()); err != nil {
			return fmt.Errorf("init roster %s: %w", key, err)
		}
	}
	return nil
}

// ActiveAt reports whether the member had joined and not been removed at
// now.
func (m *Member) ActiveAt(now time.Time) bool {
	return !now.Before(m.JoinedAt) && (m.RemovedAt == nil || now.Before(*m.RemovedAt))
}

// ActiveAt reports whether the device had been added and not revoked at
// now.
func (d *Device) ActiveAt(now time.Time) bool {
	return !now.Before(d.AddedAt) && (d.RevokedAt == nil || now.Before(*d.RevokedAt))
}

// CurrentLedger returns the member's current ledger segment, "" if none.
func (m *Member) CurrentLedger() DocID {
	if len(m.Ledgers) == 0 {
		return ""
	}
	return m.Ledgers[len(m.Ledgers)-1]
}

// DeviceByActor finds the device that writes with the automerge actor id
// actor, and its member, whether or not either is still active (check
// ActiveAt). Actor ids compare case-insensitively.
func (r *Roster) DeviceByActor(actor string) (*Member, *Device, bool) {
	for _, m := range r.Members {
		for _, d := range m.Devices {
			if strings.EqualFold(d.ActorID, actor) {
				return m, d, true
			}
		}
	}
	return nil, nil, false
}

// Active returns the members active at now, sorted by id.
func (r *Roster) Active(now time.Time) []*Member {
	var out []*Member
	for _, m := range r.Members {
		if m.ActiveAt(now) {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b *Member) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Validate checks the member and its devices. It returns a *RuleError of
// rule "schema" naming the field.
func (m *Member) Validate() error {
	if !isID(m.ID) {
		return fieldErr("member", "id", "must be an id")
	}
	if err := checkName("member", m.Name); err != nil {
		return err
	}
	if err := checkTime("member", "joined_at", m.JoinedAt); err != nil {
		return err
	}
	if m.RemovedAt != nil {
		if err := checkTime("member", "removed_at", *m.RemovedAt); err != nil {
			return err
		}
	}
	if len(m.Ledgers) > MaxSegments {
		return fieldErr("member", "ledgers", fmt.Sprintf("must hold at most %d segments", MaxSegments))
	}
	for _, id := range m.Ledgers {
		if _, err := ParseDocID(string(id)); err != nil {
			return fieldErr("member", "ledgers", "must hold document ids")
		}
	}
	if m.Ballots != "" {
		if _, err := ParseDocID(string(m.Ballots)); err != nil {
			return fieldErr("member", "ballots", "must be a document id")
		}
	}
	if len(m.BallotsClosed) > MaxSegments {
		return fieldErr("member", "ballots_closed", fmt.Sprintf("must hold at most %d documents", MaxSegments))
	}
	for _, id := range m.BallotsClosed {
		if _, err := ParseDocID(string(id)); err != nil {
			return fieldErr("member", "ballots_closed", "must hold document ids")
		}
	}
	active := 0
	for _, d := range m.Devices {
		if d != nil && d.RevokedAt == nil {
			active++
		}
	}
	if active > MaxDevices || len(m.Devices) > MaxDeviceRecords {
		return fieldErr("member", "devices", fmt.Sprintf("must hold at most %d devices not revoked and %d in all", MaxDevices, MaxDeviceRecords))
	}
	for key, d := range m.Devices {
		if d == nil || d.ID != key {
			return fieldErr("member", "devices", "must be keyed by device id")
		}
		if err := d.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks the device's fields. It returns a *RuleError of rule
// "schema" naming the field.
func (d *Device) Validate() error {
	if !isID(d.ID) {
		return fieldErr("device", "id", "must be an id")
	}
	if err := checkName("device", d.Name); err != nil {
		return err
	}
	if len(d.PublicKey) != ed25519.PublicKeySize {
		return fieldErr("device", "public_key", fmt.Sprintf("must be a %d-byte Ed25519 public key", ed25519.PublicKeySize))
	}
	if !isActorID(d.ActorID) {
		return fieldErr("device", "actor_id", "must be a lowercase hex automerge actor id")
	}
	if err := checkTime("device", "added_at", d.AddedAt); err != nil {
		return err
	}
	if d.RevokedAt != nil {
		return checkTime("device", "revoked_at", *d.RevokedAt)
	}
	return nil
}

// isActorID reports whether s is an even number (2..64) of lowercase hex
// digits.
func isActorID(s string) bool {
	if len(s) == 0 || len(s) > maxActorLen || len(s)%2 != 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func checkName(object, name string) error {
	if strings.TrimSpace(name) == "" {
		return fieldErr(object, "name", "is missing")
	}
	return checkText(object, "name", name, MaxNameLen)
}

// PutMember validates m and writes it as members[m.ID], replacing what was
// stored for that member. It does not commit. It returns a *RuleError of
// rule "schema", or ErrNotInitialized.
func PutMember(doc *automerge.Doc, m *Member) error {
	if err := m.Validate(); err != nil {
		return err
	}
	members, err := mapIn(doc, "members")
	if err != nil {
		return err
	}
	mm := automerge.NewMap()
	if err := members.Set(m.ID, mm); err != nil {
		return err
	}
	ledgers := make([]any, len(m.Ledgers))
	for i, id := range m.Ledgers {
		ledgers[i] = string(id)
	}
	devices := automerge.NewMap()
	if err := setAll(mm, []kv{
		{"id", m.ID},
		{"name", m.Name},
		{"joined_at", formatTime(m.JoinedAt)},
		{"removed_at", optTimeString(m.RemovedAt)},
		{"ledgers", ledgers},
		{"ballots", string(m.Ballots)},
		{"devices", devices},
	}); err != nil {
		return err
	}
	if len(m.BallotsClosed) > 0 {
		if err := mm.Set("ballots_closed", docIDList(m.BallotsClosed)); err != nil {
			return err
		}
	}
	for _, id := range sortedKeys(m.Devices) {
		d := m.Devices[id]
		dm := automerge.NewMap()
		if err := devices.Set(id, dm); err != nil {
			return err
		}
		if err := setAll(dm, []kv{
			{"id", d.ID},
			{"name", d.Name},
			{"public_key", base64.StdEncoding.EncodeToString(d.PublicKey)},
			{"actor_id", d.ActorID},
			{"added_at", formatTime(d.AddedAt)},
			{"revoked_at", optTimeString(d.RevokedAt)},
		}); err != nil {
			return err
		}
	}
	return nil
}

// MarkMemberRemoved writes member id's removed_at, and nothing else of
// the member: whatever was written into the member since it was read
// (a device enrolled, a new ledger segment) stays.
func MarkMemberRemoved(doc *automerge.Doc, id string, at time.Time) error {
	members, err := mapIn(doc, "members")
	if err != nil {
		return err
	}
	v, err := members.Get(id)
	if err != nil {
		return err
	}
	if v.Kind() != automerge.KindMap {
		return fmt.Errorf("roster: no member %s", id)
	}
	if err := checkTime("member", "removed_at", at); err != nil {
		return err
	}
	return v.Map().Set("removed_at", formatTime(at))
}

// ReadRoster reads the roster document. Missing maps read as empty. It
// returns a *RuleError of rule "schema" for the first value of the wrong
// shape.
func ReadRoster(doc *automerge.Doc) (*Roster, error) {
	root, err := rootObject(doc, "roster")
	if err != nil {
		return nil, err
	}
	r := &Roster{Members: map[string]*Member{}, Roles: map[string]*Role{}, Mandates: map[string]*Mandate{}}
	if mm := root.child("members", false); mm != nil {
		for key := range mm.vals {
			c := mm.child(key, true)
			if c == nil {
				return nil, mm.err
			}
			m, err := readMember(c)
			if err != nil {
				return nil, err
			}
			if m.ID != key {
				return nil, schemaErr("members[%q]: id %q differs from its key", truncate(key, maxIDLen), m.ID)
			}
			r.Members[key] = m
		}
		if mm.err != nil {
			return nil, mm.err
		}
	}
	if rm := root.child("roles", false); rm != nil {
		for key := range rm.vals {
			c := rm.child(key, true)
			if c == nil {
				return nil, rm.err
			}
			role, err := readRole(c)
			if err != nil {
				return nil, err
			}
			if role.ID != key {
				return nil, schemaErr("roles[%q]: id %q differs from its key", truncate(key, maxIDLen), role.ID)
			}
			r.Roles[key] = role
		}
		if rm.err != nil {
			return nil, rm.err
		}
	}
	if dm := root.child("mandates", false); dm != nil {
		for key := range dm.vals {
			c := dm.child(key, true)
			if c == nil {
				return nil, dm.err
			}
			m, err := readMandate(c)
			if err != nil {
				return nil, err
			}
			if m.ID != key {
				return nil, schemaErr("mandates[%q]: id %q differs from its key", truncate(key, maxIDLen), m.ID)
			}
			r.Mandates[key] = m
		}
		if dm.err != nil {
			return nil, dm.err
		}
	}
	return r, root.done()
}

func readMember(o *object) (*Member, error) {
	m := &Member{
		ID:        o.str("id", true, maxIDLen),
		Name:      o.str("name", true, MaxNameLen),
		JoinedAt:  o.time("joined_at", true),
		RemovedAt: o.optTime("removed_at"),
		Ballots:   DocID(o.str("ballots", false, maxIDLen)),
		Devices:   map[string]*Device{},
	}
	for _, s := range o.strings("ledgers", false, MaxSegments, maxIDLen) {
		m.Ledgers = append(m.Ledgers, DocID(s))
	}
	for _, s := range o.strings("ballots_closed", false, MaxSegments, maxIDLen) {
		m.BallotsClosed = append(m.BallotsClosed, DocID(s))
	}
	if dm := o.child("devices", false); dm != nil {
		if len(dm.vals) > MaxDeviceRecords {
			return nil, fieldErr("member", "devices", fmt.Sprintf("must hold at most %d devices", MaxDeviceRecords))
		}
		for key := range dm.vals {
			c := dm.child(key, true)
			if c == nil {
				return nil, dm.err
			}
			d, err := readDevice(c)
			if err != nil {
				return nil, err
			}
			m.Devices[key] = d
		}
		if dm.err != nil {
			return nil, dm.err
		}
	}
	if err := o.done(); err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

func readDevice(o *object) (*Device, error) {
	d := &Device{
		ID:        o.str("id", true, maxIDLen),
		Name:      o.str("name", true, MaxNameLen),
		ActorID:   o.str("actor_id", true, maxActorLen),
		AddedAt:   o.time("added_at", true),
		RevokedAt: o.optTime("revoked_at"),
	}
	key := o.str("public_key", true, 64)
	if err := o.done(); err != nil {
		return nil, err
	}
	pk, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		return nil, fieldErr("device", "public_key", "must be standard base64")
	}
	d.PublicKey = pk
	return d, nil // the member's Validate checks the device
}

// optTimeString formats t, or returns "" (not written) for nil.
func optTimeString(t *time.Time) string {
	if t == nil {
		return ""
	}
	return formatTime(*t)
}

// sortedKeys returns the keys of m in order, so writes are deterministic.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
