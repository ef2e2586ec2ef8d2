package crdt

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/golang-jwt/jwt/v5"
)

// Draws that no one controls, not even the server (issue 10, item 6): a
// commit–reveal protocol between the server and the members' devices.
//
//  1. Opening (audit draw.opened): the server fixes the draw's purpose,
//     its candidates, how many it picks, two deadlines (commit_by and
//     reveal_by), and publishes server_commitment, the SHA-256 of a
//     32-byte value of its own that it keeps secret until the end.
//  2. Commit phase, until commit_by: each participating device (of any
//     active member, candidate or not) picks a
//     secret 32-byte value and sends a commitment statement: a JWT it
//     signs with its device key (EdDSA, kid = device), claims exactly
//     typ "draw.commit", iss (the device), aud (the circle), draw (the
//     draw id), commitment and iat. The commitment is DrawValueCommitment
//     of the circle, the draw, the member and the value, so a statement
//     is bound to one circle, one draw and one member: it cannot be
//     replayed in another draw or circle, and copying another member's
//     commitment does not let one reveal their value as one's own. One
//     commitment per member counts (the first). Each accepted commitment
//     is written to the audit log at once (draw.commitment).
//  3. Reveal phase, after commit_by until reveal_by: the device reveals
//     its value; it must hash to its commitment. Each accepted reveal is
//     written to the audit log at once (draw.reveal).
//  4. Closing (draw.closed), at the first tick at or after reveal_by: the
//     server reveals its own value and the seed is DrawRoundSeed of the
//     server's value and every reveal recorded in the log before the
//     closing; DrawPickN picks from the candidates. A reveal arriving
//     after reveal_by is refused, and one recorded after the closing
//     would not change the result (VerifyAuditRounds refuses such a log).
//     Members who committed but did not reveal are listed as withheld.
//     With no reveal at all the seed comes from the server's value alone
//     and the entry says so (server_only: true).
//
// Who can steer the outcome, and how far:
//
//   - The server committed to its value before any device committed, so
//     once one honest device has committed it can no longer choose its
//     value to suit; and it cannot reveal another value (the commitment
//     would not match).
//   - A device does not know the server's value until the closing, after
//     every reveal: withholding its own reveal changes the outcome, but
//     to an outcome it cannot compute, so the "last revealer" gains no
//     choice. Withholding is recorded publicly (withheld).
//   - What remains: a server colluding with a member's device can tell
//     it its value, and that device then chooses between two outcomes by
//     revealing or not (one bit per colluding member, each recorded as
//     withheld); and a server can refuse a device's commitment or reveal
//     at the door — the device is answered with the refusal and its
//     member can say so, but the log cannot show it. With no device
//     taking part, the server's value alone decides: the server derives
//     it from its key and the draw id and could grind draw ids (the
//     entry's server_only flag says so).
//
// In the governance document, written by the server only, each value
// written once (JSON strings, so that the document's history grows by
// what is added, not by rewrites):
//
//	"draw_rounds": { "<draw id>": { "opened": "<JSON of DrawRoundOpen>",
//	    "commitments": { "<member>": "<JSON of DrawRoundCommitment>" },
//	    "reveals": { "<member>": "<JSON of DrawRoundReveal>" },
//	    "result"?: "<JSON of DrawRoundResult>" } }

// Audit entry kinds of commit–reveal draws.
const (
	AuditDrawOpened     = "draw.opened"
	AuditDrawCommitment = "draw.commitment"
	AuditDrawReveal     = "draw.reveal"
	AuditDrawClosed     = "draw.closed"
)

// DrawCommitTyp is the typ claim of a commitment statement.
const DrawCommitTyp = "draw.commit"

// RuleDraw names the rule a commitment or reveal breaks.
const RuleDraw = "draw"

// DrawValueBytes is the length of a device's or the server's value.
const DrawValueBytes = 32

// MaxDrawRoundCandidates bounds a draw's candidates.
const MaxDrawRoundCandidates = 1000

// DrawRoundOpen is what the opening of a draw fixes.
type DrawRoundOpen struct {
	Draw             string    `json:"draw"`
	Purpose          string    `json:"purpose"`
	Candidates       []string  `json:"candidates"`
	Picks            int       `json:"picks"`
	ServerCommitment string    `json:"server_commitment"`
	OpenedAt         time.Time `json:"opened_at"`
	CommitBy         time.Time `json:"commit_by"`
	RevealBy         time.Time `json:"reveal_by"`
}

// DrawRoundCommitment is one member's accepted commitment.
type DrawRoundCommitment struct {
	Draw       string    `json:"draw"`
	Member     string    `json:"member"`
	Device     string    `json:"device"`
	Commitment string    `json:"commitment"`
	Statement  string    `json:"statement"`
	At         time.Time `json:"at"`
}

// DrawRoundReveal is one member's accepted reveal.
type DrawRoundReveal struct {
	Draw   string    `json:"draw"`
	Member string    `json:"member"`
	Value  string    `json:"value"` // hex
	At     time.Time `json:"at"`
}

// DrawRoundResult is a closed draw.
type DrawRoundResult struct {
	Draw        string    `json:"draw"`
	ServerValue string    `json:"server_value"` // hex
	Seed        string    `json:"seed"`         // hex
	Revealed    []string  `json:"revealed"`     // members whose reveal counts, sorted
	Withheld    []string  `json:"withheld"`     // members who committed and did not reveal, sorted
	ServerOnly  bool      `json:"server_only"`  // no reveal: the server's value alone
	Picked      []string  `json:"picked"`       // in the order DrawPickN ranks them
	ClosedAt    time.Time `json:"closed_at"`
}

// DrawRound is a draw as the governance document holds it.
type DrawRound struct {
	Open        DrawRoundOpen
	Commitments map[string]DrawRoundCommitment // by member
	Reveals     map[string]DrawRoundReveal     // by member
	Result      *DrawRoundResult
}

// Phase names where the draw stands at now: "commit", "reveal",
// "closing" (reveals closed, result not written yet) or "closed".
func (d DrawRound) Phase(now time.Time) string {
	switch {
	case d.Result != nil:
		return "closed"
	case !now.After(d.Open.CommitBy):
		return "commit"
	case !now.After(d.Open.RevealBy):
		return "reveal"
	}
	return "closing"
}

func drawErr(format string, args ...any) error {
	return &RuleError{Rule: RuleDraw, Message: fmt.Sprintf(format, args...)}
}

// DrawValueCommitment is a device's commitment to value in draw of
// circle for member: the hex SHA-256 of "circles-draw-commit-v1", the
// circle, the draw, the member and the hex value, each followed by a
// newline.
func DrawValueCommitment(circle, draw, member string, value []byte) string {
	h := sha256.Sum256([]byte("circles-draw-commit-v1\n" + circle + "\n" + draw + "\n" + member + "\n" + hex.EncodeToString(value) + "\n"))
	return hex.EncodeToString(h[:])
}

// DrawRoundSeed is the seed of a closed draw: the SHA-256 of
// "circles-draw-seed-v2", the circle, the draw, the server's hex value,
// then one line "<member> <hex value>" per reveal in member order.
func DrawRoundSeed(circle, draw string, serverValue []byte, reveals map[string][]byte) []byte {
	h := sha256.New()
	h.Write([]byte("circles-draw-seed-v2\n" + circle + "\n" + draw + "\n" + hex.EncodeToString(serverValue) + "\n"))
	for _, m := range slices.Sorted(maps.Keys(reveals)) {
		h.Write([]byte(m + " " + hex.EncodeToString(reveals[m]) + "\n"))
	}
	return h.Sum(nil)
}

// DrawPickN picks n of candidates with seed, in rank order: each
// candidate's rank is the SHA-256 of "circles-draw-rank-v1", the hex seed
// and its id; the n lowest ranks win (ties, which do not happen, by id).
// The order of candidates does not matter; n above their number picks
// them all.
func DrawPickN(seed []byte, candidates []string, n int) []string {
	type ranked struct {
		id   string
		rank string
	}
	rs := make([]ranked, 0, len(candidates))
	for _, c := range slices.Compact(slices.Sorted(slices.Values(candidates))) {
		h := sha256.Sum256([]byte("circles-draw-rank-v1\n" + hex.EncodeToString(seed) + "\n" + c + "\n"))
		rs = append(rs, ranked{c, hex.EncodeToString(h[:])})
	}
	slices.SortFunc(rs, func(a, b ranked) int {
		if c := strings.Compare(a.rank, b.rank); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	out := []string{}
	for i := 0; i < n && i < len(rs); i++ {
		out = append(out, rs[i].id)
	}
	return out
}

// DrawCommitClaims are the claims of a commitment statement.
type DrawCommitClaims struct {
	Typ        string `json:"typ"`
	Draw       string `json:"draw"`
	Commitment string `json:"commitment"`
	jwt.RegisteredClaims
}

var drawCommitClaimNames = []string{"typ", "draw", "commitment", "iss", "aud", "iat"}

// SignDrawCommit makes a commitment statement with a device key: what a
// member's device sends in the commit phase.
func SignDrawCommit(key ed25519.PrivateKey, device, circle, draw, commitment string, now time.Time) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, DrawCommitClaims{
		Typ: DrawCommitTyp, Draw: draw, Commitment: commitment,
		RegisteredClaims: jwt.RegisteredClaims{Issuer: device, Audience: jwt.ClaimStrings{circle}, IssuedAt: jwt.NewNumericDate(now)},
	})
	t.Header["kid"] = device
	return t.SignedString(key)
}

// ParseDrawCommit checks a commitment statement: signed (EdDSA only) by
// the enrolled device of r named in kid; claims exactly typ
// "draw.commit", draw, commitment (64 hex digits), iss (that device), aud
// (circle, only) and iat. It returns the statement's member, device, draw
// and commitment. It does not judge time or the draw's phase. Every
// refusal is a *RuleError of rule "draw".
func ParseDrawCommit(statement, circle string, r *Roster) (DrawRoundCommitment, error) {
	if len(statement) > MaxStatementLen {
		return DrawRoundCommitment{}, drawErr("the statement is longer than %d bytes", MaxStatementLen)
	}
	var claims DrawCommitClaims
	member, device, _, problem := deviceStatement(statement, &claims, r, drawCommitClaimNames, "a commitment")
	if problem != "" {
		return DrawRoundCommitment{}, drawErr("%s", problem)
	}
	aud, err := claims.GetAudience()
	switch {
	case claims.Typ != DrawCommitTyp:
		return DrawRoundCommitment{}, drawErr("the statement's typ must be %q", DrawCommitTyp)
	case err != nil || len(aud) != 1 || aud[0] != circle:
		return DrawRoundCommitment{}, drawErr("the statement's aud must be this circle (%s) and only it", circle)
	case claims.Issuer == "" || claims.Issuer != device:
		return DrawRoundCommitment{}, drawErr("the statement's iss must be the device in its kid header")
	case !isDrawID(claims.Draw):
		return DrawRoundCommitment{}, drawErr("the statement needs draw, the id of the draw it commits to")
	case !isHex(claims.Commitment, 32):
		return DrawRoundCommitment{}, drawErr("the statement's commitment must be 64 hex digits")
	case claims.IssuedAt == nil || checkTime("draw", "iat", claims.IssuedAt.Time) != nil:
		return DrawRoundCommitment{}, drawErr("the statement needs iat between the years %d and %d", minYear, maxYear)
	}
	return DrawRoundCommitment{Draw: claims.Draw, Member: member, Device: device, Commitment: claims.Commitment, Statement: statement}, nil
}

// isDrawID: an id (isID) of at most 128 characters.
func isDrawID(s string) bool {
	if s == "" || len(s) > 2*maxIDLen {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._:-", c)) {
			return false
		}
	}
	return true
}

// IsDrawID reports whether s may name a draw.
func IsDrawID(s string) bool { return isDrawID(s) }

// isHex: exactly n bytes as lowercase hex.
func isHex(s string, n int) bool {
	if len(s) != 2*n || strings.ToLower(s) != s {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// ParseDrawValue decodes a revealed value: 32 bytes as lowercase hex.
func ParseDrawValue(s string) ([]byte, error) {
	if !isHex(s, DrawValueBytes) {
		return nil, drawErr("the value must be %d bytes as %d lowercase hex digits", DrawValueBytes, 2*DrawValueBytes)
	}
	b, _ := hex.DecodeString(s)
	return b, nil
}

// PutDrawRoundOpen writes a new draw into the governance document.
func PutDrawRoundOpen(doc *automerge.Doc, o DrawRoundOpen) error {
	if !isDrawID(o.Draw) {
		return schemaErr("draw %q: not an id", truncate(o.Draw, maxIDLen))
	}
	rounds, err := ensureMap(doc, "draw_rounds")
	if err != nil {
		return err
	}
	old, err := rounds.Get(o.Draw)
	if err != nil {
		return err
	}
	if !old.IsVoid() {
		return fmt.Errorf("draw %q: %w", o.Draw, ErrEntryExists)
	}
	m := automerge.NewMap()
	if err := rounds.Set(o.Draw, m); err != nil {
		return err
	}
	if err := m.Set("opened", string(mustMarshal(o))); err != nil {
		return err
	}
	if err := m.Set("commitments", automerge.NewMap()); err != nil {
		return err
	}
	return m.Set("reveals", automerge.NewMap())
}

// PutDrawRoundCommitment adds c to its draw; one per member.
func PutDrawRoundCommitment(doc *automerge.Doc, c DrawRoundCommitment) error {
	return putRoundItem(doc, c.Draw, "commitments", c.Member, c)
}

// PutDrawRoundReveal adds rv to its draw; one per member.
func PutDrawRoundReveal(doc *automerge.Doc, rv DrawRoundReveal) error {
	return putRoundItem(doc, rv.Draw, "reveals", rv.Member, rv)
}

// PutDrawRoundResult writes the result of a draw, once.
func PutDrawRoundResult(doc *automerge.Doc, res DrawRoundResult) error {
	v, err := doc.Path("draw_rounds", res.Draw).Get()
	if err != nil {
		return err
	}
	if v.Kind() != automerge.KindMap {
		return schemaErr("draw %q is not open", truncate(res.Draw, maxIDLen))
	}
	old, err := v.Map().Get("result")
	if err != nil {
		return err
	}
	if !old.IsVoid() {
		return fmt.Errorf("result of draw %q: %w", res.Draw, ErrEntryExists)
	}
	return v.Map().Set("result", string(mustMarshal(res)))
}

func putRoundItem(doc *automerge.Doc, draw, where, member string, item any) error {
	v, err := doc.Path("draw_rounds", draw, where).Get()
	if err != nil {
		return err
	}
	if v.Kind() != automerge.KindMap {
		return schemaErr("draw %q is not open", truncate(draw, maxIDLen))
	}
	old, err := v.Map().Get(member)
	if err != nil {
		return err
	}
	if !old.IsVoid() {
		return fmt.Errorf("%s of %s in draw %q: %w", where, member, draw, ErrEntryExists)
	}
	return v.Map().Set(member, string(mustMarshal(item)))
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("crdt: marshal %T: %v", v, err))
	}
	return b
}

// ReadDrawRounds reads every commit–reveal draw of the governance
// document, by id.
func ReadDrawRounds(doc *automerge.Doc) (map[string]DrawRound, error) {
	all, err := rootValues(doc, "draw_rounds", "draw_rounds")
	if err != nil {
		return nil, err
	}
	out := make(map[string]DrawRound, len(all))
	for id, rv := range all {
		d, err := readDrawRound(id, rv)
		if err != nil {
			return nil, err
		}
		out[id] = d
	}
	return out, nil
}

// LookupDrawRound reads one draw; false when there is none.
func LookupDrawRound(doc *automerge.Doc, id string) (DrawRound, bool, error) {
	v, err := doc.Path("draw_rounds", id).Get()
	if err != nil || v.IsVoid() {
		return DrawRound{}, false, err
	}
	d, err := readDrawRound(id, v)
	return d, err == nil, err
}

func readDrawRound(id string, v *automerge.Value) (DrawRound, error) {
	o, err := readObject(v, "draw "+truncate(id, maxIDLen))
	if err != nil {
		return DrawRound{}, err
	}
	d := DrawRound{Commitments: map[string]DrawRoundCommitment{}, Reveals: map[string]DrawRoundReveal{}}
	if err := json.Unmarshal([]byte(o.str("opened", true, 0)), &d.Open); o.err == nil && err != nil {
		return d, schemaErr("draw %s: opened: %v", truncate(id, maxIDLen), err)
	}
	if s := o.str("result", false, 0); s != "" {
		d.Result = &DrawRoundResult{}
		if err := json.Unmarshal([]byte(s), d.Result); err != nil {
			return d, schemaErr("draw %s: result: %v", truncate(id, maxIDLen), err)
		}
	}
	for _, part := range []string{"commitments", "reveals"} {
		c := o.child(part, true)
		if c == nil {
			break
		}
		for member := range c.vals {
			s := c.str(member, true, 0)
			var err error
			if part == "commitments" {
				var x DrawRoundCommitment
				err = json.Unmarshal([]byte(s), &x)
				d.Commitments[member] = x
			} else {
				var x DrawRoundReveal
				err = json.Unmarshal([]byte(s), &x)
				d.Reveals[member] = x
			}
			if c.err == nil && err != nil {
				return d, schemaErr("draw %s: %s of %s: %v", truncate(id, maxIDLen), part, truncate(member, maxIDLen), err)
			}
		}
		if c.err != nil {
			return d, c.err
		}
	}
	return d, o.err
}

// CloseDrawRound computes the result of the draw opened as o from the
// server's value and the reveals (by member, each already checked against
// its commitment), with committed the members who committed.
func CloseDrawRound(circle string, o DrawRoundOpen, serverValue []byte, committed []string, reveals map[string][]byte, at time.Time) DrawRoundResult {
	seed := DrawRoundSeed(circle, o.Draw, serverValue, reveals)
	res := DrawRoundResult{
		Draw: o.Draw, ServerValue: hex.EncodeToString(serverValue), Seed: hex.EncodeToString(seed),
		Revealed: slices.Sorted(maps.Keys(reveals)), Withheld: []string{}, ServerOnly: len(reveals) == 0,
		Picked: DrawPickN(seed, o.Candidates, o.Picks), ClosedAt: at.UTC(),
	}
	for _, m := range slices.Sorted(slices.Values(committed)) {
		if _, ok := reveals[m]; !ok {
			res.Withheld = append(res.Withheld, m)
		}
	}
	if res.Revealed == nil {
		res.Revealed = []string{}
	}
	return res
}

// VerifyAuditRounds recomputes every commit–reveal draw of the log from
// the log alone and the roster's public keys:
//
//   - draw.opened once per draw, with sorted distinct candidates and
//     commit_by ≤ reveal_by;
//   - each draw.commitment after its opening, accepted (at) by commit_by,
//     with a statement that verifies (ParseDrawCommit) for the member,
//     device, draw and commitment it records; one per member;
//   - each draw.reveal after commit_by and by reveal_by, from a member
//     who committed, hashing to that commitment; one per member;
//   - draw.closed once, written at or after reveal_by; the server's value
//     matches server_commitment; revealed and withheld are the members
//     the log shows; the seed is DrawRoundSeed of the server's value and
//     those reveals, and picked is DrawPickN of it; nothing of the draw
//     is recorded after it.
//
// The error wraps ErrAuditBroken and names the first entry that does not
// hold.
func VerifyAuditRounds(entries []AuditEntry, r *Roster, circle string) error {
	type round struct {
		open      DrawRoundOpen
		committed map[string]string // member → commitment
		reveals   map[string][]byte
		closed    bool
	}
	rounds := map[string]*round{}
	fail := func(e AuditEntry, format string, args ...any) error {
		return fmt.Errorf("%w: entry %d (%s): %s", ErrAuditBroken, e.Seq, e.Kind, fmt.Sprintf(format, args...))
	}
	get := func(e AuditEntry, id string) (*round, error) {
		rd := rounds[id]
		switch {
		case rd == nil:
			return nil, fail(e, "draw %s was never opened before it", truncate(id, maxIDLen))
		case rd.closed:
			return nil, fail(e, "draw %s is recorded after it closed", truncate(id, maxIDLen))
		}
		return rd, nil
	}
	for _, e := range entries {
		switch e.Kind {
		case AuditDrawOpened:
			var o DrawRoundOpen
			if err := json.Unmarshal(e.Data, &o); err != nil || !isDrawID(o.Draw) || !isHex(o.ServerCommitment, 32) {
				return fail(e, "not a draw opening")
			}
			if rounds[o.Draw] != nil {
				return fail(e, "draw %s is opened twice", o.Draw)
			}
			if !slices.IsSorted(o.Candidates) || len(slices.Compact(slices.Clone(o.Candidates))) != len(o.Candidates) || o.Picks < 0 || o.RevealBy.Before(o.CommitBy) {
				return fail(e, "draw %s: candidates not sorted and distinct, or deadlines out of order", o.Draw)
			}
			rounds[o.Draw] = &round{open: o, committed: map[string]string{}, reveals: map[string][]byte{}}
		case AuditDrawCommitment:
			var c DrawRoundCommitment
			if err := json.Unmarshal(e.Data, &c); err != nil {
				return fail(e, "not a draw commitment")
			}
			rd, err := get(e, c.Draw)
			if err != nil {
				return err
			}
			parsed, err := ParseDrawCommit(c.Statement, circle, r)
			switch {
			case err != nil:
				return fail(e, "draw %s: the statement of %s: %v", c.Draw, c.Member, err)
			case parsed.Draw != c.Draw || parsed.Member != c.Member || parsed.Device != c.Device || parsed.Commitment != c.Commitment:
				return fail(e, "draw %s: the statement does not say what the entry records", c.Draw)
			case c.At.After(rd.open.CommitBy) || e.At.Before(c.At):
				return fail(e, "draw %s: commitment of %s accepted after commit_by", c.Draw, c.Member)
			case rd.committed[c.Member] != "":
				return fail(e, "draw %s: %s committed twice", c.Draw, c.Member)
			}
			rd.committed[c.Member] = c.Commitment
		case AuditDrawReveal:
			var rv DrawRoundReveal
			if err := json.Unmarshal(e.Data, &rv); err != nil {
				return fail(e, "not a draw reveal")
			}
			rd, err := get(e, rv.Draw)
			if err != nil {
				return err
			}
			value, err := ParseDrawValue(rv.Value)
			switch {
			case err != nil:
				return fail(e, "draw %s: %v", rv.Draw, err)
			case rd.committed[rv.Member] == "":
				return fail(e, "draw %s: %s reveals without a commitment", rv.Draw, rv.Member)
			case DrawValueCommitment(circle, rv.Draw, rv.Member, value) != rd.committed[rv.Member]:
				return fail(e, "draw %s: the value of %s does not match its commitment", rv.Draw, rv.Member)
			case !rv.At.After(rd.open.CommitBy) || rv.At.After(rd.open.RevealBy) || e.At.Before(rv.At):
				return fail(e, "draw %s: reveal of %s outside the reveal phase", rv.Draw, rv.Member)
			case rd.reveals[rv.Member] != nil:
				return fail(e, "draw %s: %s revealed twice", rv.Draw, rv.Member)
			}
			rd.reveals[rv.Member] = value
		case AuditDrawClosed:
			var res DrawRoundResult
			if err := json.Unmarshal(e.Data, &res); err != nil {
				return fail(e, "not a draw result")
			}
			rd, err := get(e, res.Draw)
			if err != nil {
				return err
			}
			sv, err := hex.DecodeString(res.ServerValue)
			switch {
			case err != nil || len(sv) != DrawValueBytes:
				return fail(e, "draw %s: the server's value is not %d bytes of hex", res.Draw, DrawValueBytes)
			case DrawCommitment(sv) != rd.open.ServerCommitment:
				return fail(e, "draw %s: the server's value is not the one it committed to", res.Draw)
			case e.At.Before(rd.open.RevealBy):
				return fail(e, "draw %s closed before its reveal deadline", res.Draw)
			}
			want := CloseDrawRound(circle, rd.open, sv, slices.Collect(maps.Keys(rd.committed)), rd.reveals, res.ClosedAt)
			switch {
			case want.Seed != res.Seed:
				return fail(e, "draw %s: the seed is not the one the server's value and the recorded reveals give", res.Draw)
			case !slices.Equal(want.Revealed, res.Revealed) || !slices.Equal(want.Withheld, res.Withheld) || want.ServerOnly != res.ServerOnly:
				return fail(e, "draw %s: the revealed and withheld members are not those the log shows", res.Draw)
			case !slices.Equal(want.Picked, res.Picked):
				return fail(e, "draw %s records %v but its seed picks %v", res.Draw, res.Picked, want.Picked)
			}
			rd.closed = true
		}
	}
	return nil
}
