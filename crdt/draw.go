package crdt

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/automerge/automerge-go"
)

// Verifiable random draws ("randomized stewardship", DESIGN.md §1): a
// role's next holder, or a meeting's facilitator, picked at random among
// the eligible members, in a way any member can recompute from the audit
// log. DrawPick is a pure function of a seed and the eligible list; the
// role.drawn (or meeting.created) entry reveals the seed, the eligible
// members (sorted), those left out, and the pick.
//
// Where the seed comes from: a commit–reveal round over the members'
// devices (drawround.go), named in the entry ("round"); drawseed.go says
// which round each draw must use. The one exception is a new circle's
// first meetings, before any facilitation round closed: their seed is
// the server's own, committed first (draw.committed, its SHA-256) and
// revealed with the draw ("seed_source": "server"). Such a seed cannot
// be changed after the commitment, but a dishonest server could try many
// seeds before committing (the derivation, an HMAC under the circle's
// private key, cannot be checked by members). Role draws in logs written
// before rounds existed used the same committed seeds and name no round;
// VerifyAuditDraws still checks them that way.
//
// In the governance document, written by the server only:
//
//	"draws": { "<draw id>": { "id", "role", "proposal"?, "commitment",
//	    "committed_at", "round"?, "seed_source"?, and once drawn: "seed",
//	    "eligible": [member id], "excluded": [member id], "holder"?,
//	    "drawn_at" } }
//
// For a draw from a round, commitment is the round's server_commitment
// (or, for a meeting, the SHA-256 of its derived seed) and committed_at
// when the round opened.
//
// A draw's id is the role.draw proposal's id, or for the draw at the end
// of a term "rotation:<role id>:<term end, Unix seconds>" (RotationDrawID;
// before draws used commit–reveal rounds it was "<role id>@<term end>").

// Audit entry kinds of draws.
const (
	AuditDrawCommitted = "draw.committed"
	AuditRoleDrawn     = "role.drawn"
)

// DrawSeedBytes is the length of a draw's seed.
const DrawSeedBytes = 32

// maxDrawMembers bounds the eligible and excluded lists of a draw.
const maxDrawMembers = 10000

// Draw is one verifiable random draw as the governance document keeps it.
type Draw struct {
	ID          string
	Role        string
	Proposal    string // the role.draw proposal; "" for the draw at the end of a term
	Commitment  string // hex SHA-256 of the seed
	CommittedAt time.Time
	// Set once drawn.
	Seed     string   // hex
	Eligible []string // sorted member ids
	Excluded []string // sorted member ids left out for the term limit
	Holder   string   // "" if nobody was eligible
	DrawnAt  *time.Time
	// Round is the commit–reveal round whose seed the draw uses
	// (drawseed.go), SeedSource "round" or "server"; both "" for a draw
	// from the server's committed seed made before rounds.
	Round      string
	SeedSource string
}

// RotationDrawID names the draw that picks role's next holder when the
// term ending at termEnd ends.
func RotationDrawID(role string, termEnd time.Time) string {
	return "rotation:" + role + ":" + strconv.FormatInt(termEnd.Unix(), 10)
}

// DrawCommitment returns the commitment to seed: its hex SHA-256.
func DrawCommitment(seed []byte) string {
	h := sha256.Sum256(seed)
	return hex.EncodeToString(h[:])
}

// DrawPick picks one of eligible with seed: the SHA-256 of
// "circles-draw-v1", the seed and the sorted member ids, each followed by
// a newline, read as a big-endian number, modulo the number of members.
// The order of eligible does not matter. It returns "" for an empty list.
func DrawPick(seed []byte, eligible []string) string {
	if len(eligible) == 0 {
		return ""
	}
	sorted := slices.Clone(eligible)
	slices.Sort(sorted)
	h := sha256.New()
	h.Write([]byte("circles-draw-v1\n"))
	h.Write([]byte(hex.EncodeToString(seed) + "\n"))
	for _, m := range sorted {
		h.Write([]byte(m + "\n"))
	}
	n := new(big.Int).SetBytes(h.Sum(nil))
	i := n.Mod(n, big.NewInt(int64(len(sorted)))).Int64()
	return sorted[i]
}

// DrawEligible returns who may be drawn for role r at now among the
// members of roster, both sorted: every member active at now, except
// those who have served the role's limit of consecutive terms
// (CheckTermLimit), who are returned as excluded.
func DrawEligible(r Role, roster *Roster, now time.Time, maxTermLimit int) (eligible, excluded []string) {
	for _, m := range roster.Active(now) {
		if CheckTermLimit(r, m.ID, now, maxTermLimit) != nil {
			excluded = append(excluded, m.ID)
		} else {
			eligible = append(eligible, m.ID)
		}
	}
	return eligible, excluded
}

// PutDraw writes d into the governance document's "draws", replacing what
// was stored under its id. It does not commit.
func PutDraw(doc *automerge.Doc, d Draw) error {
	if d.ID == "" || len(d.ID) > 2*maxIDLen || !isID(d.Role) || len(d.Commitment) != 64 {
		return schemaErr("draw %q: id, role and commitment are required", truncate(d.ID, maxIDLen))
	}
	draws, err := ensureMap(doc, "draws")
	if err != nil {
		return err
	}
	m := automerge.NewMap()
	if err := draws.Set(d.ID, m); err != nil {
		return err
	}
	pairs := []kv{
		{"id", d.ID},
		{"role", d.Role},
		{"proposal", d.Proposal},
		{"commitment", d.Commitment},
		{"committed_at", formatTime(d.CommittedAt)},
		{"round", d.Round},
		{"seed_source", d.SeedSource},
	}
	if d.DrawnAt != nil {
		pairs = append(pairs,
			kv{"seed", d.Seed},
			kv{"eligible", stringList(d.Eligible)},
			kv{"excluded", stringList(d.Excluded)},
			kv{"holder", d.Holder},
			kv{"drawn_at", formatTime(*d.DrawnAt)},
		)
	}
	return setAll(m, pairs)
}

func stringList(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// LookupDraw reads the draw id from the governance document. It reports
// false, and no error, when there is none.
func LookupDraw(doc *automerge.Doc, id string) (Draw, bool, error) {
	v, err := doc.Path("draws", id).Get()
	if err != nil || v.IsVoid() {
		return Draw{}, false, err
	}
	o, err := readObject(v, "draw")
	if err != nil {
		return Draw{}, false, err
	}
	d := Draw{
		ID:          o.str("id", true, 2*maxIDLen),
		Role:        o.str("role", true, maxIDLen),
		Proposal:    o.str("proposal", false, maxIDLen),
		Commitment:  o.str("commitment", true, 64),
		CommittedAt: o.time("committed_at", true),
		Seed:        o.str("seed", false, 2*DrawSeedBytes),
		Eligible:    o.strings("eligible", false, maxDrawMembers, maxIDLen),
		Excluded:    o.strings("excluded", false, maxDrawMembers, maxIDLen),
		Holder:      o.str("holder", false, maxIDLen),
		DrawnAt:     o.optTime("drawn_at"),
		Round:       o.str("round", false, 2*maxIDLen),
		SeedSource:  o.str("seed_source", false, maxIDLen),
	}
	return d, true, o.done()
}

// drawnData is the data of a role.drawn audit entry that
// VerifyAuditDraws checks.
type drawnData struct {
	Draw       string    `json:"draw"`
	Seed       string    `json:"seed"`
	Eligible   []string  `json:"eligible"`
	Excluded   []string  `json:"excluded"`
	Holder     string    `json:"holder"`
	DrawnAt    time.Time `json:"drawn_at"`
	Round      string    `json:"round"`
	SeedSource string    `json:"seed_source"`
	Seq        int64     `json:"seq"`
	Role       string    `json:"role"`
	Proposal   string    `json:"proposal"`
}

// VerifyAuditDraws recomputes every random draw in the log: each
// role.drawn entry (and each meeting.created one, whose facilitator is
// drawn the same way) must use a seed the log fixed before it — the
// closed seed of the commit–reveal round it names, or that seed's
// documented derivation (drawseed.go says which round a draw must use,
// and that a round's seed is used once), or, for a draw that names no
// round (a new circle's first meetings, and draws made before rounds),
// the seed committed earlier under the same draw id (draw.committed; a
// draw id is committed to one value only) — list its eligible members
// sorted and without repeats, be drawn once, and name as holder the
// member DrawPick picks. With a roster (r not nil) it also checks the
// lists: the eligible and excluded members together must be exactly the
// members active when the draw ran. The rounds' own seeds are
// recomputed by VerifyAuditRounds. The error wraps ErrAuditBroken and
// names the first entry that does not hold.
func VerifyAuditDraws(entries []AuditEntry, r *Roster) error {
	committed := map[string]string{}
	drawn := map[string]bool{}
	rounds := newRoundSeeds()
	fail := func(e AuditEntry, format string, args ...any) error {
		return fmt.Errorf("%w: entry %d (%s): %s", ErrAuditBroken, e.Seq, e.Kind, fmt.Sprintf(format, args...))
	}
	for _, e := range entries {
		switch e.Kind {
		case AuditDrawOpened:
			rounds.observeOpened(e)
		case AuditDrawClosed:
			rounds.observe(e)
		case AuditDrawCommitted:
			var data struct {
				Draw       string `json:"draw"`
				Commitment string `json:"commitment"`
			}
			if err := json.Unmarshal(e.Data, &data); err != nil || data.Draw == "" || len(data.Commitment) != 64 {
				return fail(e, "not a draw commitment")
			}
			if old, ok := committed[data.Draw]; ok && old != data.Commitment {
				return fail(e, "draw %s was already committed to another seed", data.Draw)
			}
			committed[data.Draw] = data.Commitment
		case AuditRoleDrawn, AuditMeetingCreated:
			data, what, err := drawnOf(e)
			if err != nil {
				return fail(e, "%v", err)
			}
			var seed []byte
			switch {
			case data.Round != "" || data.SeedSource == SeedSourceRound:
				if seed, err = rounds.seedOf(e.Kind, data); err != nil {
					return fail(e, "%v", err)
				}
			case e.Kind == AuditRoleDrawn && data.SeedSource != "":
				return fail(e, "role draw %s names no round; a role is drawn with a commit–reveal round", data.Draw)
			default:
				seed, err = hex.DecodeString(data.Seed)
				switch {
				case err != nil || len(seed) != DrawSeedBytes:
					return fail(e, "the seed of draw %s is not %d bytes of hex", data.Draw, DrawSeedBytes)
				case committed[data.Draw] == "":
					return fail(e, "draw %s reveals a seed that was never committed before it", data.Draw)
				case DrawCommitment(seed) != committed[data.Draw]:
					return fail(e, "the seed of draw %s is not the one committed", data.Draw)
				}
				if e.Kind == AuditMeetingCreated {
					if err := rounds.serverSeedAllowed(data); err != nil {
						return fail(e, "%v", err)
					}
				}
			}
			switch {
			case drawn[data.Draw]:
				return fail(e, "draw %s was drawn twice", data.Draw)
			case !slices.IsSorted(data.Eligible) || len(slices.Compact(slices.Clone(data.Eligible))) != len(data.Eligible):
				return fail(e, "the eligible members of draw %s are not sorted and distinct", data.Draw)
			}
			drawn[data.Draw] = true
			if got := DrawPick(seed, data.Eligible); got != data.Holder {
				return fail(e, "draw %s records %s %q but its seed and eligible members pick %q", data.Draw, what, data.Holder, got)
			}
			if r != nil {
				if err := checkDrawLists(data, r); err != nil {
					return fail(e, "draw %s: %v", data.Draw, err)
				}
			}
		}
	}
	return nil
}

// drawnOf reads the draw a role.drawn or meeting.created entry reveals,
// and what it names the member picked ("holder", "facilitator").
func drawnOf(e AuditEntry) (drawnData, string, error) {
	if e.Kind == AuditMeetingCreated {
		var m meetingDrawData
		if err := json.Unmarshal(e.Data, &m); err != nil || m.Draw == "" {
			return drawnData{}, "", errors.New("not a meeting with a draw")
		}
		return drawnData(m), "facilitator", nil
	}
	var d drawnData
	if err := json.Unmarshal(e.Data, &d); err != nil || d.Draw == "" {
		return drawnData{}, "", errors.New("not a draw")
	}
	return d, "holder", nil
}

// checkDrawLists checks that the eligible and excluded members of a draw
// are exactly the members of r active when it ran.
func checkDrawLists(data drawnData, r *Roster) error {
	listed := map[string]bool{}
	for _, m := range append(slices.Clone(data.Eligible), data.Excluded...) {
		if listed[m] {
			return fmt.Errorf("member %s is listed twice", m)
		}
		listed[m] = true
		mem, ok := r.Members[m]
		if !ok || !mem.ActiveAt(data.DrawnAt) {
			return fmt.Errorf("member %s was not an active member at %s", m, formatTime(data.DrawnAt))
		}
	}
	var missing []string
	for _, m := range r.Active(data.DrawnAt) {
		if !listed[m.ID] {
			missing = append(missing, m.ID)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("active members left out of the draw: %s", strings.Join(missing, ", "))
	}
	return nil
}
