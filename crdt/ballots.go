package crdt

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/automerge/automerge-go"
)

// A member's ballots document (API.md, "The shape of member documents"):
//
//	{ "member": "<member id>",
//	  "proposals": { "<proposal id>": { "id", "title", "body", "kind", "at",
//	                                    "payload": { name: string|number|bool } } },
//	  "votes": { "<proposal id>": { "choice", "reason"?, "at" } },
//	  "resets": { "<jti>": "<reset statement JWT, verbatim>" } }

// Bounds on ballot values.
const (
	MaxTitleLen     = 200   // characters of a proposal title
	MaxBodyLen      = 10000 // characters of a proposal body
	MaxReasonLen    = 2000  // characters of a vote's reason
	MaxPayloadKeys  = 16    // fields of a proposal payload
	MaxPayloadValue = 2000  // characters of a payload string
	MaxStatementLen = 4096  // bytes of a reset statement JWT
)

// VoteChoices lists the choices of a vote.
var VoteChoices = []string{"yes", "no", "object", "abstain"}

// Proposal is a proposal as its author wrote it in their ballots document.
// Payload values are strings, float64 numbers or booleans (whole numbers
// written as Go ints read back as float64, as from JSON).
type Proposal struct {
	ID      string
	Title   string
	Body    string
	Kind    string // one of ProposalKinds
	Payload map[string]any
	At      time.Time
}

// Vote is a member's vote on one proposal.
type Vote struct {
	Proposal string // the proposal id; the vote's key in "votes"
	Choice   string // one of VoteChoices
	Reason   string
	At       time.Time
}

// Ballots is the content of a member's ballots document.
type Ballots struct {
	Member    string
	Proposals map[string]Proposal // by proposal id
	Votes     map[string]Vote     // by proposal id
	Resets    map[string]string   // reset statement JWTs by jti
}

// InitBallots writes the root of a new ballots document: empty
// "proposals", "votes" and "resets" maps and the owning member. It does not
// commit.
func InitBallots(doc *automerge.Doc, member string) error {
	if !isID(member) {
		return fieldErr("ballots", "member", "must be a member id")
	}
	root := doc.RootMap()
	for _, p := range []kv{
		{"member", member},
		{"proposals", automerge.NewMap()},
		{"votes", automerge.NewMap()},
		{"resets", automerge.NewMap()},
	} {
		if err := root.Set(p.key, p.val); err != nil {
			return fmt.Errorf("init ballots %s: %w", p.key, err)
		}
	}
	return nil
}

// Validate checks the proposal's fields and that its payload carries what
// its kind needs. It returns a *RuleError of rule "schema" naming the
// field (or "policy" for a policy.set with a bad policy).
func (p Proposal) Validate() error {
	if !isUUID(p.ID) {
		return fieldErr("proposal", "id", "must be a UUID in canonical lowercase form")
	}
	need, ok := payloadFields[p.Kind]
	if !ok {
		return fieldErr("proposal", "kind", "must be one of "+strings.Join(ProposalKinds, ", "))
	}
	if strings.TrimSpace(p.Title) == "" {
		return fieldErr("proposal", "title", "is missing")
	}
	if err := checkText("proposal", "title", p.Title, MaxTitleLen); err != nil {
		return err
	}
	if err := checkText("proposal", "body", p.Body, MaxBodyLen); err != nil {
		return err
	}
	if err := checkTime("proposal", "at", p.At); err != nil {
		return err
	}
	if len(p.Payload) > MaxPayloadKeys {
		return fieldErr("proposal", "payload", fmt.Sprintf("must hold at most %d fields", MaxPayloadKeys))
	}
	for k, v := range p.Payload {
		if k == "" || len(k) > maxIDLen || !utf8.ValidString(k) {
			return fieldErr("proposal", "payload", "has a field name that is empty or too long")
		}
		if err := checkPayloadValue(k, v); err != nil {
			return err
		}
	}
	for _, k := range need {
		if _, ok := p.Payload[k]; !ok {
			return fieldErr("proposal", "payload."+k, "is missing for kind "+p.Kind)
		}
	}
	return checkPayloadKind(p.Kind, p.Payload)
}

func checkPayloadValue(k string, v any) error {
	switch v := v.(type) {
	case string:
		return checkText("proposal", "payload."+k, v, MaxPayloadValue)
	case bool:
		return nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fieldErr("proposal", "payload."+k, "must be a finite number")
		}
		return nil
	case int, int64:
		return nil
	}
	return fieldErr("proposal", "payload."+k, "must be a string, a number or a boolean")
}

// Same reports whether p and o hold the same values (times compared as
// instants, whole payload numbers equal whatever their Go type).
func (p Proposal) Same(o Proposal) bool {
	if !p.At.Equal(o.At) || p.ID != o.ID || p.Title != o.Title || p.Body != o.Body || p.Kind != o.Kind {
		return false
	}
	norm := func(m map[string]any) map[string]any {
		out := make(map[string]any, len(m))
		for k, v := range m {
			if n, ok := wholeNumber(v); ok {
				v = float64(n)
			}
			out[k] = v
		}
		return out
	}
	return maps.Equal(norm(p.Payload), norm(o.Payload))
}

// Validate checks the vote's fields. It returns a *RuleError of rule
// "schema" naming the field.
func (v Vote) Validate() error {
	if !isID(v.Proposal) {
		return fieldErr("vote", "proposal", "must be a proposal id")
	}
	if !slices.Contains(VoteChoices, v.Choice) {
		return fieldErr("vote", "choice", "must be one of "+strings.Join(VoteChoices, ", "))
	}
	if err := checkText("vote", "reason", v.Reason, MaxReasonLen); err != nil {
		return err
	}
	return checkTime("vote", "at", v.At)
}

// PutProposal validates p and writes it into "proposals". It does not
// commit. It returns ErrEntryExists for a proposal id already there, or
// ErrNotInitialized.
func PutProposal(doc *automerge.Doc, p Proposal) error {
	if err := p.Validate(); err != nil {
		return err
	}
	m, err := newChild(doc, "proposals", p.ID)
	if err != nil {
		return err
	}
	payload := automerge.NewMap()
	if err := setAll(m, []kv{
		{"id", p.ID},
		{"title", p.Title},
		{"body", p.Body},
		{"kind", p.Kind},
		{"at", formatTime(p.At)},
		{"payload", payload},
	}, "body"); err != nil {
		return err
	}
	for k, v := range p.Payload {
		if n, ok := v.(int); ok {
			v = float64(n)
		} else if n, ok := v.(int64); ok {
			v = float64(n)
		}
		if err := payload.Set(k, v); err != nil {
			return fmt.Errorf("write payload %s: %w", k, err)
		}
	}
	return nil
}

// PutVote validates v and writes it as votes[v.Proposal]. It does not
// commit. A member votes once per proposal from their ballots document:
// like every accepted value, a vote is never rewritten (the sync write
// rules refuse it), so PutVote returns ErrEntryExists for a proposal the
// document already holds a vote on. It may also return ErrNotInitialized.
func PutVote(doc *automerge.Doc, v Vote) error {
	if err := v.Validate(); err != nil {
		return err
	}
	m, err := newChild(doc, "votes", v.Proposal)
	if err != nil {
		return err
	}
	return setAll(m, []kv{{"choice", v.Choice}, {"reason", v.Reason}, {"at", formatTime(v.At)}})
}

// LookupProposal reads the proposal stored under id. It reports false, and
// no error, when there is none; it returns a *RuleError of rule "schema"
// when the stored value has the wrong shape or its id differs from its key.
func LookupProposal(doc *automerge.Doc, id string) (Proposal, bool, error) {
	v, err := doc.Path("proposals", id).Get()
	if err != nil || v.IsVoid() {
		return Proposal{}, false, err
	}
	p, err := ReadProposal(v)
	if err != nil {
		return Proposal{}, true, err
	}
	if p.ID != id {
		return Proposal{}, true, schemaErr("proposals[%q]: id %q differs from its key", truncate(id, maxIDLen), p.ID)
	}
	return p, true, nil
}

// LookupVote reads the vote stored on the proposal id, like
// LookupProposal.
func LookupVote(doc *automerge.Doc, proposal string) (Vote, bool, error) {
	v, err := doc.Path("votes", proposal).Get()
	if err != nil || v.IsVoid() {
		return Vote{}, false, err
	}
	vote, err := ReadVote(proposal, v)
	return vote, true, err
}

// LookupResetStatement reads the reset statement stored under jti, like
// LookupProposal; a statement that is not a compact JWS is a schema error.
func LookupResetStatement(doc *automerge.Doc, jti string) (string, bool, error) {
	v, err := doc.Path("resets", jti).Get()
	if err != nil || v.IsVoid() {
		return "", false, err
	}
	s, ok, err := valueString(v, MaxStatementLen)
	if !ok || err != nil {
		return "", true, fieldErr("reset", "statement", "must be a string of at most 4096 bytes")
	}
	if err := checkStatement(jti, s); err != nil {
		return "", true, err
	}
	return s, true, nil
}

// PutResetStatement stores a signed reset statement verbatim as
// resets[jti]. Only its shape is checked here (a compact JWS of at most
// MaxStatementLen bytes); its signature and claims are checked by whoever
// counts it. It does not commit. It returns ErrEntryExists for a jti
// already there.
func PutResetStatement(doc *automerge.Doc, jti, jwt string) error {
	if err := checkStatement(jti, jwt); err != nil {
		return err
	}
	resets, err := mapIn(doc, "resets")
	if err != nil {
		return err
	}
	old, err := resets.Get(jti)
	if err != nil {
		return err
	}
	if !old.IsVoid() {
		return fmt.Errorf("resets %q: %w", jti, ErrEntryExists)
	}
	return resets.Set(jti, jwt)
}

func checkStatement(jti, jwt string) error {
	if !isID(jti) {
		return fieldErr("reset", "jti", "must be an id of at most 64 characters from [A-Za-z0-9._:-]")
	}
	if len(jwt) > MaxStatementLen {
		return fieldErr("reset", "statement", fmt.Sprintf("must be at most %d bytes", MaxStatementLen))
	}
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return fieldErr("reset", "statement", "must be a compact JWS (three base64url parts)")
	}
	for _, part := range parts {
		for i := 0; i < len(part); i++ {
			c := part[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return fieldErr("reset", "statement", "must be a compact JWS (three base64url parts)")
			}
		}
	}
	return nil
}

var proposalFields = []string{"id", "title", "body", "kind", "at", "payload"}

// ReadProposal reads one proposal map, accepting scalar strings and text
// objects. It returns a *RuleError of rule "schema" for a wrong shape, an
// unknown field or a value that fails Validate.
func ReadProposal(v *automerge.Value) (Proposal, error) {
	o, err := readObject(v, "proposal")
	if err != nil {
		return Proposal{}, err
	}
	p := Proposal{
		ID:    o.str("id", true, maxIDLen),
		Title: o.str("title", true, MaxTitleLen),
		Body:  o.str("body", false, MaxBodyLen),
		Kind:  o.str("kind", true, maxIDLen),
		At:    o.time("at", true),
	}
	if pm := o.child("payload", false); pm != nil {
		if len(pm.vals) > MaxPayloadKeys {
			return Proposal{}, fieldErr("proposal", "payload", fmt.Sprintf("must hold at most %d fields", MaxPayloadKeys))
		}
		p.Payload = make(map[string]any, len(pm.vals))
		for k, v := range pm.vals {
			if s, ok, err := valueString(v, MaxPayloadValue); ok {
				if err != nil {
					return Proposal{}, fieldErr("proposal", "payload."+truncate(k, maxIDLen), err.Error())
				}
				p.Payload[k] = s
			} else if f, ok := valueNumber(v); ok {
				p.Payload[k] = f
			} else if v.Kind() == automerge.KindBool {
				p.Payload[k] = v.Bool()
			} else {
				return Proposal{}, fieldErr("proposal", "payload."+truncate(k, maxIDLen), "must be a string, a number or a boolean, got "+kindName(v.Kind()))
			}
		}
	}
	if err := o.done(proposalFields...); err != nil {
		return Proposal{}, err
	}
	if err := p.Validate(); err != nil {
		return Proposal{}, err
	}
	return p, nil
}

var voteFields = []string{"choice", "reason", "at"}

// ReadVote reads the vote stored under the proposal id key.
func ReadVote(key string, v *automerge.Value) (Vote, error) {
	o, err := readObject(v, fmt.Sprintf("vote %q", truncate(key, maxIDLen)))
	if err != nil {
		return Vote{}, err
	}
	vote := Vote{
		Proposal: key,
		Choice:   o.str("choice", true, maxIDLen),
		Reason:   o.str("reason", false, MaxReasonLen),
		At:       o.time("at", true),
	}
	if err := o.done(voteFields...); err != nil {
		return Vote{}, err
	}
	if err := vote.Validate(); err != nil {
		return Vote{}, err
	}
	return vote, nil
}

// ReadBallots reads a member's ballots document. Missing maps read as
// empty. It returns a *RuleError of rule "schema" for the first value of
// the wrong shape.
func ReadBallots(doc *automerge.Doc) (Ballots, error) {
	root, err := rootObject(doc, "ballots")
	if err != nil {
		return Ballots{}, err
	}
	b := Ballots{
		Member:    root.str("member", false, maxIDLen),
		Proposals: map[string]Proposal{},
		Votes:     map[string]Vote{},
		Resets:    map[string]string{},
	}
	if pm := root.child("proposals", false); pm != nil {
		for k, v := range pm.vals {
			p, err := ReadProposal(v)
			if err != nil {
				return Ballots{}, err
			}
			if p.ID != k {
				return Ballots{}, schemaErr("proposals[%q]: id %q differs from its key", truncate(k, maxIDLen), p.ID)
			}
			b.Proposals[k] = p
		}
	}
	if vm := root.child("votes", false); vm != nil {
		for k, v := range vm.vals {
			vote, err := ReadVote(k, v)
			if err != nil {
				return Ballots{}, err
			}
			b.Votes[k] = vote
		}
	}
	if rm := root.child("resets", false); rm != nil {
		for k := range rm.vals {
			jwt := rm.str(k, true, MaxStatementLen)
			if rm.err != nil {
				return Ballots{}, rm.err
			}
			if err := checkStatement(k, jwt); err != nil {
				return Ballots{}, err
			}
			b.Resets[k] = jwt
		}
	}
	if err := root.done(); err != nil {
		return Ballots{}, err
	}
	return b, nil
}
