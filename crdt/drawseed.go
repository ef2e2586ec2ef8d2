package crdt

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/automerge/automerge-go"
)

// Where the seed of a role's or a facilitator's draw comes from (issue 10,
// item 6): a commit–reveal round (drawround.go) over the members'
// devices, never a seed the server alone chose — with one exception,
// recorded as such.
//
//   - A role that rotates by draw: the round RotationDrawID(role, term
//     end) opens when the term starts, commits until the last reveal
//     window before the term ends and reveals until the term's end; at
//     the end of the term the holder is DrawPick of that round's seed
//     among the members eligible then. The role.drawn entry names the
//     round ("round", equal to its "draw", "seed_source": "round").
//   - A passed role.draw proposal opens the round named by the
//     proposal's id; the role is assigned when that round closes, among
//     the members eligible then (role.draw.pending, then role.drawn).
//   - A meeting's facilitator: the circle keeps a series of
//     facilitation rounds ("facilitation:1", "facilitation:2", …); at
//     most one is open at a time, and a meeting called when none is open
//     opens the next one first. A meeting's seed is FacilitationSeed of
//     the latest closed facilitation round's seed and the meeting's
//     sequence number in the circle (not its id, which the caller
//     chooses: a caller cannot grind ids). Until the first facilitation
//     round has closed (a new circle) the seed is the server's committed
//     one (draw.go) and the meeting.created entry says so
//     ("seed_source": "server").
//
// VerifyAuditDraws checks each of these from the log alone: the seed is
// the named round's closed seed (its draw.closed entry, which
// VerifyAuditRounds recomputes) or the documented derivation of it; a
// role's round is used once and by that role's draw only; a meeting uses
// the newest facilitation round closed when it was drawn (and none whose
// reveals had closed a second before), never an older one than a meeting
// before it, only once the round after it was opened, and falls back to
// the server's seed only while no facilitation round had closed.

// Seed sources named by role.drawn and meeting.created entries.
const (
	SeedSourceRound  = "round"
	SeedSourceServer = "server"
)

// AuditRoleDrawPending records that a passed role.draw proposal opened
// its round; the role is assigned when the round closes (role.drawn).
const AuditRoleDrawPending = "role.draw.pending"

// AuditRoleDrawVoid records that a pending role draw assigned nobody: the
// role was retired before its round closed.
const AuditRoleDrawVoid = "role.draw.void"

// FacilitationRoundPrefix starts the id of every facilitation round.
const FacilitationRoundPrefix = "facilitation:"

// FacilitationRoundID names the n-th facilitation round of a circle.
func FacilitationRoundID(n int) string { return FacilitationRoundPrefix + strconv.Itoa(n) }

// FacilitationRoundNumber reads n from a facilitation round's id.
func FacilitationRoundNumber(id string) (int, bool) {
	s, ok := strings.CutPrefix(id, FacilitationRoundPrefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || strconv.Itoa(n) != s {
		return 0, false
	}
	return n, true
}

// FacilitationSeed is the seed of the facilitator draw of the meeting
// with sequence number seq, from a closed facilitation round's seed: the
// SHA-256 of "circles-facilitation-seed-v1", the round's hex seed and
// seq in decimal, each followed by a newline.
func FacilitationSeed(roundSeed []byte, seq int64) []byte {
	h := sha256.Sum256([]byte("circles-facilitation-seed-v1\n" + hex.EncodeToString(roundSeed) + "\n" + strconv.FormatInt(seq, 10) + "\n"))
	return h[:]
}

// ReadDraws reads the draws of the governance document's "draws" whose
// id keep accepts (nil: all), by id.
func ReadDraws(doc *automerge.Doc, keep func(id string) bool) (map[string]Draw, error) {
	out := map[string]Draw{}
	v, err := doc.Path("draws").Get()
	if err != nil || v.IsVoid() {
		return out, err
	}
	if v.Kind() != automerge.KindMap {
		return nil, schemaErr("draws must be a map")
	}
	keys, err := v.Map().Keys()
	if err != nil {
		return nil, err
	}
	for _, id := range keys {
		if keep != nil && !keep(id) {
			continue
		}
		d, ok, err := LookupDraw(doc, id)
		if err != nil {
			return nil, err
		}
		if ok {
			out[id] = d
		}
	}
	return out, nil
}

// roundSeeds follows the closed rounds of an audit log and the draws that
// use their seeds (VerifyAuditDraws).
type roundSeeds struct {
	due     map[string]time.Time // facilitation round → its reveal_by
	closed  map[string]DrawRoundResult
	used    map[string]string // round → the draw that used it ("" unused); facilitation rounds: "facilitation"
	seqs    map[int64]bool    // meetings' sequence numbers seen
	lastFac int               // newest facilitation round a meeting used
}

func newRoundSeeds() *roundSeeds {
	return &roundSeeds{due: map[string]time.Time{}, closed: map[string]DrawRoundResult{}, used: map[string]string{}, seqs: map[int64]bool{}}
}

// observe notes a draw.closed entry (VerifyAuditRounds checks it).
func (t *roundSeeds) observe(e AuditEntry) {
	var res DrawRoundResult
	if json.Unmarshal(e.Data, &res) != nil || res.Draw == "" {
		return
	}
	if _, ok := t.closed[res.Draw]; !ok {
		t.closed[res.Draw] = res
	}
}

// observeOpened notes a facilitation round's draw.opened entry.
func (t *roundSeeds) observeOpened(e AuditEntry) {
	var o DrawRoundOpen
	if json.Unmarshal(e.Data, &o) != nil {
		return
	}
	if _, ok := FacilitationRoundNumber(o.Draw); ok {
		if _, seen := t.due[o.Draw]; !seen {
			t.due[o.Draw] = o.RevealBy
		}
	}
}

// closeSlack is how long after a facilitation round's reveal deadline a
// meeting may still be drawn without it: the server closes a round whose
// reveals closed before it draws a facilitator, and its clock reading
// for the draw comes a moment after the one that judged the phase.
const closeSlack = time.Second

// dueFacilitation returns the newest facilitation round whose reveals
// had closed (by closeSlack) at at, so that a meeting drawn then must
// use it or a newer one: a server cannot keep a round open to go on
// using an older seed.
func (t *roundSeeds) dueFacilitation(at time.Time) (string, int) {
	best, bestN := "", 0
	for id, revealBy := range t.due {
		if n, ok := FacilitationRoundNumber(id); ok && n > bestN && revealBy.Add(closeSlack).Before(at) {
			best, bestN = id, n
		}
	}
	return best, bestN
}

// newestFacilitation returns the newest facilitation round closed at or
// before at, "" if none.
func (t *roundSeeds) newestFacilitation(at time.Time) (string, int) {
	best, bestN := "", 0
	for _, id := range slices.Sorted(maps.Keys(t.closed)) {
		if n, ok := FacilitationRoundNumber(id); ok && n > bestN && !t.closed[id].ClosedAt.After(at) {
			best, bestN = id, n
		}
	}
	return best, bestN
}

// dueAfter returns a facilitation round newer than round number n whose
// reveals had closed at at, "" if none.
func (t *roundSeeds) dueAfter(n int, at time.Time) string {
	if due, dueN := t.dueFacilitation(at); dueN > n {
		return due
	}
	return ""
}

// seedOf checks the seed of a draw that names a round (d.Round) and
// returns it.
func (t *roundSeeds) seedOf(kind string, d drawnData) ([]byte, error) {
	res, ok := t.closed[d.Round]
	if !ok {
		return nil, fmt.Errorf("draw %s names round %s, which had not closed before it", d.Draw, truncate(d.Round, maxIDLen))
	}
	rseed, err := hex.DecodeString(res.Seed)
	if err != nil || len(rseed) != sha256.Size {
		return nil, fmt.Errorf("round %s has no seed", d.Round)
	}
	var seed []byte
	if kind == AuditMeetingCreated {
		n, ok := FacilitationRoundNumber(d.Round)
		newest, _ := t.newestFacilitation(d.DrawnAt)
		switch {
		case !ok:
			return nil, fmt.Errorf("meeting draw %s names round %s, which is not a facilitation round", d.Draw, d.Round)
		case t.used[d.Round] != "" && t.used[d.Round] != "facilitation":
			return nil, fmt.Errorf("the seed of round %s is used twice", d.Round)
		case newest != d.Round:
			return nil, fmt.Errorf("meeting draw %s uses round %s, but the newest facilitation round closed when it was drawn is %s", d.Draw, d.Round, newest)
		case t.dueAfter(n, d.DrawnAt) != "":
			return nil, fmt.Errorf("meeting draw %s uses round %s, but the reveals of %s had closed when it was drawn: it should have been closed and used", d.Draw, d.Round, t.dueAfter(n, d.DrawnAt))
		case n < t.lastFac:
			return nil, fmt.Errorf("meeting draw %s goes back to round %s after a meeting used a newer one", d.Draw, d.Round)
		case d.Seq < 1 || t.seqs[d.Seq]:
			return nil, fmt.Errorf("meeting draw %s: sequence number %d is not new", d.Draw, d.Seq)
		case !t.nextOpened(n):
			return nil, fmt.Errorf("meeting draw %s uses round %s before the next facilitation round was opened", d.Draw, d.Round)
		}
		t.used[d.Round], t.lastFac, t.seqs[d.Seq] = "facilitation", n, true
		seed = FacilitationSeed(rseed, d.Seq)
	} else {
		switch {
		case d.Round != d.Draw:
			return nil, fmt.Errorf("role draw %s names round %s; a role's draw uses its own round", d.Draw, d.Round)
		case t.used[d.Round] != "":
			return nil, fmt.Errorf("the seed of round %s is used twice", d.Round)
		case d.Proposal != "" && d.Draw != d.Proposal:
			return nil, fmt.Errorf("role draw %s of proposal %s: a role.draw's round is named by its proposal", d.Draw, d.Proposal)
		case d.Proposal == "" && !strings.HasPrefix(d.Draw, "rotation:"+d.Role+":"):
			return nil, fmt.Errorf("role draw %s: the draw at the end of a term of role %s is named rotation:%s:<term end>", d.Draw, d.Role, d.Role)
		}
		t.used[d.Round] = d.Draw
		seed = rseed
	}
	if hex.EncodeToString(seed) != d.Seed {
		return nil, fmt.Errorf("the seed of draw %s is not the one round %s gives", d.Draw, d.Round)
	}
	return seed, nil
}

// serverSeedAllowed checks a meeting drawn from the server's seed: only
// while no facilitation round had closed, and never after a meeting
// used one.
func (t *roundSeeds) serverSeedAllowed(d drawnData) error {
	if t.lastFac > 0 {
		return fmt.Errorf("meeting draw %s uses the server's seed after meetings used facilitation rounds", d.Draw)
	}
	if newest, _ := t.newestFacilitation(d.DrawnAt); newest != "" {
		return fmt.Errorf("meeting draw %s uses the server's seed although facilitation round %s had closed", d.Draw, newest)
	}
	if due := t.dueAfter(0, d.DrawnAt); due != "" {
		return fmt.Errorf("meeting draw %s uses the server's seed although the reveals of facilitation round %s had closed: it should have been closed and used", d.Draw, due)
	}
	if d.SeedSource == SeedSourceServer && !t.nextOpened(0) {
		return fmt.Errorf("meeting draw %s uses the server's seed before the circle's first facilitation round was opened", d.Draw)
	}
	if d.Seq > 0 {
		t.seqs[d.Seq] = true
	}
	return nil
}

// nextOpened reports whether the facilitation round after round number
// n was opened: the server opens it before it draws a meeting from
// round n (or, n = 0, from its own seed), so that it cannot go on using
// one seed without ever letting a new round begin. Meetings recorded
// before rounds existed name no seed source and are not held to it.
func (t *roundSeeds) nextOpened(n int) bool {
	_, ok := t.due[FacilitationRoundID(n+1)]
	return ok
}
