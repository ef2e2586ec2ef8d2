package crdt

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/automerge/automerge-go"
)

// The governance document keeps every proposal the circle has seen, with
// its votes and outcome, written by the server only:
//
//	"proposals": { "<proposal id>": {
//	    "id", "kind", "title", "body", "payload": {name: string|number|bool},
//	    "author": "<member id>", "at": "<author's time>",
//	    "opened_at", "closes_at", "status": "open"|"passed"|"rejected",
//	    "votes": { "<member id>": { "choice", "reason"?, "at" } },
//	    "decided_at"?, "reason"?, "applied"?: bool } },
//	"open_proposals": { "<author id>": { "<proposal id>": "<opened_at>" } },
//	"recent_proposals": { "<author id>": { "<proposal id>": "<opened_at>" } },
//	"pending_votes_by_member": { "<member id>": { "<proposal id>": { "choice", "reason"?, "at" } } }
//
// "applied" is set once a passed proposal's effect has been carried out.
// "open_proposals" indexes each author's open proposals, so that the bound
// MaxOpenProposalsPerMember costs one lookup; "recent_proposals" keeps
// each author's proposals of the last 24 hours, for
// MaxProposalsPerMemberPerDay. "pending_votes_by_member"
// holds votes that arrived, inside ballots documents, before the proposal
// they are on, at most MaxPendingVotesPerMember per member: they are
// counted when it opens. (Earlier versions kept them by proposal under
// "pending_votes"; TakePendingVotes still reads and clears that map.)
//
// A member writes their own ballots document freely, up to 20,000 new
// proposals and votes per sync message, so both bounds are what keeps one
// member from growing the governance document without end.

// Audit entry kinds of proposals and their effects.
const (
	AuditProposalOpened  = "proposal.opened"
	AuditProposalDecided = "proposal.decided"
	AuditRoleCreated     = "role.created"
	AuditRoleAssigned    = "role.assigned"
	AuditRoleChanged     = "role.changed"
	AuditRoleRetired     = "role.retired"
	AuditRoleRotated     = "role.rotated" // the scheduler rotated a holder out at the end of their term
	AuditPolicySet       = "policy.set"
	AuditCharterRatified = "charter.ratified"
	// The scheduler opened the re-ratification of the charter
	// (charter.renewal_notice before it expires).
	AuditCharterRenewalOpened = "charter.renewal_opened"
	AuditCharterLapsed        = "charter.lapsed" // it expired without being ratified again
	AuditMandateGranted       = "mandate.granted"
	AuditMandateRecalled      = "mandate.recalled"
	AuditMandateExpired       = "mandate.expired" // the scheduler ended a mandate at its deadline
	AuditMandateDone          = "mandate.done"    // its delegate marked it done
	AuditMemberRemoved        = "member.removed"
	// A member.admit passed: a one-time member invite exists for its
	// author to hand over (the code is never in the log).
	AuditMemberAdmitted = "member.admitted"
)

// CastVote is a member's vote as the governance document counts it.
type CastVote struct {
	Choice string
	Reason string
	At     time.Time // when the server counted it
}

// ProposalState is a proposal as the governance document keeps it.
type ProposalState struct {
	Proposal         // as its author made it
	Author    string // member id
	OpenedAt  time.Time
	ClosesAt  time.Time
	Status    string              // one of the Proposal* statuses
	Votes     map[string]CastVote // by member id
	DecidedAt *time.Time
	Reason    string // why it was decided so
	Applied   bool   // a passed proposal's effect has been carried out
	// Recorded says the decision (and, once applied, its effect) is in the
	// audit log: the last step of deciding a proposal.
	Recorded bool
	// EffectAudit is the audit entry of a passed proposal's effect, planned
	// when it passed and kept until it is carried out, so a server that
	// stops between carrying out the effect and recording it can still
	// record it (PlanEffectAudit).
	EffectAudit *PlannedAudit
}

// maxPlannedAudit bounds the data of a planned audit entry (bytes of JSON).
const maxPlannedAudit = 64 << 10

// PlannedAudit is an audit entry to write: its kind and its data (JSON).
type PlannedAudit struct {
	Kind string
	Data string
}

// Choices returns each voter's choice, for Decide.
func (s ProposalState) Choices() map[string]string {
	out := make(map[string]string, len(s.Votes))
	for m, v := range s.Votes {
		out[m] = v.Choice
	}
	return out
}

const (
	pendingVotes         = "pending_votes" // legacy: by proposal, then member
	pendingVotesByMember = "pending_votes_by_member"
	openProposals        = "open_proposals"
	recentProposals      = "recent_proposals"
)

// Bounds on what one member can make the governance document hold.
const (
	// MaxOpenProposalsPerMember bounds the proposals one author has open
	// at once; a proposal stops counting once it is decided.
	MaxOpenProposalsPerMember = 20
	// MaxPendingVotesPerMember bounds one member's votes kept for
	// proposals that have not opened yet.
	MaxPendingVotesPerMember = 50
	// MaxProposalsPerMemberPerDay bounds the proposals one author opens
	// in any 24 hours, decided or not: an author who objects to their own
	// proposals frees their open slots at once, and would otherwise grow
	// the governance document as fast as they can send requests.
	MaxProposalsPerMemberPerDay = 50
)

// ErrTooManyToday is returned by OpenProposal for an author who opened
// MaxProposalsPerMemberPerDay proposals in the 24 hours before its
// OpenedAt. It is a *RuleError of rule "governance".
var ErrTooManyToday = &RuleError{Rule: RuleGovernance, Message: fmt.Sprintf(
	"the author opened %d proposals in the last 24 hours; open the next one later", MaxProposalsPerMemberPerDay)}

// ErrTooManyOpen is returned by OpenProposal for an author who already has
// MaxOpenProposalsPerMember open proposals. It is a *RuleError of rule
// "governance".
var ErrTooManyOpen = &RuleError{Rule: RuleGovernance, Message: fmt.Sprintf(
	"the author already has %d open proposals; a new one can open once one of them is decided", MaxOpenProposalsPerMember)}

// ErrTooManyPending is returned by AddPendingVote for a member who already
// has MaxPendingVotesPerMember votes waiting for proposals that have not
// opened. It is a *RuleError of rule "governance".
var ErrTooManyPending = &RuleError{Rule: RuleGovernance, Message: fmt.Sprintf(
	"the member already has %d votes waiting for proposals that have not opened; vote again once they open", MaxPendingVotesPerMember)}

// OpenProposal writes a new proposal into the governance document's
// "proposals", with no votes. It does not commit. It returns
// ErrEntryExists for an id already there, ErrTooManyOpen for an author who
// has MaxOpenProposalsPerMember open proposals, a *RuleError for a
// proposal that does not validate.
func OpenProposal(doc *automerge.Doc, s ProposalState) error {
	if err := s.Proposal.Validate(); err != nil {
		return err
	}
	if !isID(s.Author) {
		return fieldErr("proposal", "author", "must be a member id")
	}
	if s.Status == "" {
		s.Status = ProposalOpen
	}
	if old, err := doc.Path("proposals", s.ID).Get(); err == nil && !old.IsVoid() {
		return fmt.Errorf("proposals %q: %w", s.ID, ErrEntryExists)
	}
	// Check both bounds before writing anything: a refusal changes nothing.
	if s.Status == ProposalOpen {
		if v, err := doc.Path(openProposals, s.Author).Get(); err != nil {
			return err
		} else if v.Kind() == automerge.KindMap && v.Map().Len() >= MaxOpenProposalsPerMember {
			return ErrTooManyOpen
		}
	}
	var stale []string
	if v, err := doc.Path(recentProposals, s.Author).Get(); err != nil {
		return err
	} else if v.Kind() == automerge.KindMap {
		if stale, err = staleRecent(v.Map(), s.OpenedAt); err != nil {
			return err
		}
		if v.Map().Len()-len(stale) >= MaxProposalsPerMemberPerDay {
			return ErrTooManyToday
		}
	}
	recent, err := recentIndex(doc, s.Author)
	if err != nil {
		return err
	}
	for _, id := range stale {
		if err := recent.Delete(id); err != nil {
			return err
		}
	}
	if err := recent.Set(s.ID, formatTime(s.OpenedAt)); err != nil {
		return err
	}
	if s.Status == ProposalOpen {
		index, err := authorIndex(doc, s.Author)
		if err != nil {
			return err
		}
		if err := index.Set(s.ID, formatTime(s.OpenedAt)); err != nil {
			return err
		}
	}
	m, err := newChild(doc, "proposals", s.ID)
	if err != nil {
		return err
	}
	payload := automerge.NewMap()
	if err := setAll(m, []kv{
		{"id", s.ID},
		{"kind", s.Kind},
		{"title", s.Title},
		{"body", s.Body},
		{"payload", payload},
		{"author", s.Author},
		{"at", formatTime(s.At)},
		{"opened_at", formatTime(s.OpenedAt)},
		{"closes_at", formatTime(s.ClosesAt)},
		{"status", s.Status},
		{"votes", automerge.NewMap()},
	}, "body"); err != nil {
		return err
	}
	for _, k := range sortedKeys(s.Payload) {
		v := s.Payload[k]
		if n, ok := wholeNumber(v); ok {
			v = float64(n)
		}
		if err := payload.Set(k, v); err != nil {
			return fmt.Errorf("write payload %s: %w", k, err)
		}
	}
	return nil
}

// proposalMap returns the map of proposal id in the governance document.
func proposalMap(doc *automerge.Doc, id string) (*automerge.Map, error) {
	v, err := doc.Path("proposals", id).Get()
	if err != nil {
		return nil, err
	}
	if v.Kind() != automerge.KindMap {
		return nil, fmt.Errorf("proposal %q: %w", truncate(id, maxIDLen), ErrNoProposal)
	}
	return v.Map(), nil
}

// ErrNoProposal is returned for a proposal id the governance document does
// not hold.
var ErrNoProposal = errors.New("no such proposal")

// ErrVoted is returned by AddVote for a member who has already voted on
// the proposal: a vote is final.
var ErrVoted = errors.New("this member has already voted on this proposal")

// AddVote records member's vote on the proposal id. It does not commit.
// It returns ErrNoProposal, ErrVoted, or a *RuleError for a bad vote.
func AddVote(doc *automerge.Doc, id, member string, v CastVote) error {
	if err := (Vote{Proposal: id, Choice: v.Choice, Reason: v.Reason, At: v.At}).Validate(); err != nil {
		return err
	}
	if !isID(member) {
		return fieldErr("vote", "member", "must be a member id")
	}
	p, err := proposalMap(doc, id)
	if err != nil {
		return err
	}
	vv, err := p.Get("votes")
	if err != nil {
		return err
	}
	if vv.Kind() != automerge.KindMap {
		return schemaErr("proposal %q: votes must be a map", id)
	}
	old, err := vv.Map().Get(member)
	if err != nil {
		return err
	}
	if !old.IsVoid() {
		return fmt.Errorf("proposal %s, member %s: %w", id, member, ErrVoted)
	}
	m := automerge.NewMap()
	if err := vv.Map().Set(member, m); err != nil {
		return err
	}
	return setAll(m, []kv{{"choice", v.Choice}, {"reason", v.Reason}, {"at", formatTime(v.At)}})
}

// DecideProposal records the outcome of the proposal id: its status,
// the reason and when. It does not commit. It returns ErrNoProposal.
func DecideProposal(doc *automerge.Doc, id, status, reason string, at time.Time) error {
	if status != ProposalPassed && status != ProposalRejected {
		return fieldErr("proposal", "status", "must be passed or rejected")
	}
	p, err := proposalMap(doc, id)
	if err != nil {
		return err
	}
	if len(reason) > MaxReasonLen {
		reason = truncate(reason, MaxReasonLen)
	}
	if err := unindexOpen(doc, p, id); err != nil {
		return err
	}
	return setAll(p, []kv{{"status", status}, {"reason", reason}, {"decided_at", formatTime(at)}})
}

// PlanEffectAudit keeps, in proposal id, the audit entry its effect will
// be recorded with. It does not commit.
func PlanEffectAudit(doc *automerge.Doc, id string, a PlannedAudit) error {
	p, err := proposalMap(doc, id)
	if err != nil {
		return err
	}
	return setAll(p, []kv{{"effect_audit_kind", a.Kind}, {"effect_audit_data", a.Data}})
}

// MarkRecorded records that a decided proposal's audit entries are
// written. It does not commit.
func MarkRecorded(doc *automerge.Doc, id string) error {
	p, err := proposalMap(doc, id)
	if err != nil {
		return err
	}
	return p.Set("recorded", true)
}

// CancelOpenProposals cancels every proposal that was open at at, as a
// hard reset does (API.md, "After a hard reset every open proposal is
// cancelled"): status ProposalCancelled, the reason and at as decided_at,
// recorded (the reset's audit entry names them). A proposal of the ended
// epoch then takes no more votes and never takes effect, and its author's
// open proposals are free again. Proposals opened after at are left
// alone, so running it again after the reset opened new ones cancels
// nothing more. It returns the ids it cancelled, sorted. It does not
// commit.
func CancelOpenProposals(doc *automerge.Doc, reason string, at time.Time) ([]string, error) {
	v, err := doc.Path("proposals").Get()
	if err != nil || v.Kind() != automerge.KindMap {
		return nil, err
	}
	ids, err := v.Map().Keys()
	if err != nil {
		return nil, err
	}
	slices.Sort(ids)
	reason = truncate(reason, MaxReasonLen)
	var out []string
	for _, id := range ids {
		st, err := doc.Path("proposals", id, "status").Get()
		if err != nil {
			return nil, err
		}
		if st.Kind() != automerge.KindStr || st.Str() != ProposalOpen {
			continue
		}
		if opened, err := doc.Path("proposals", id, "opened_at").Get(); err == nil && opened.Kind() == automerge.KindStr {
			if t, err := parseTime(opened.Str()); err == nil && t.After(at) {
				continue
			}
		}
		p, err := proposalMap(doc, id)
		if err != nil {
			return nil, err
		}
		if err := unindexOpen(doc, p, id); err != nil {
			return nil, err
		}
		if err := setAll(p, []kv{{"status", ProposalCancelled}, {"reason", reason}, {"decided_at", formatTime(at)}, {"recorded", true}}); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, nil
}

// MarkApplied records that a passed proposal's effect has been carried
// out. It does not commit.
func MarkApplied(doc *automerge.Doc, id string) error {
	p, err := proposalMap(doc, id)
	if err != nil {
		return err
	}
	return p.Set("applied", true)
}

// AddPendingVote keeps a vote on a proposal the governance document does
// not hold yet, until it opens. It does not commit. It returns ErrVoted if
// the member already has a vote waiting on it (the first one is kept), and
// ErrTooManyPending if the member has MaxPendingVotesPerMember waiting.
func AddPendingVote(doc *automerge.Doc, id, member string, v CastVote) error {
	if err := (Vote{Proposal: id, Choice: v.Choice, Reason: v.Reason, At: v.At}).Validate(); err != nil {
		return err
	}
	if !isID(member) {
		return fieldErr("vote", "member", "must be a member id")
	}
	if old, err := doc.Path(pendingVotes, id, member).Get(); err == nil && !old.IsVoid() {
		return fmt.Errorf("pending vote on %s by %s: %w", id, member, ErrVoted)
	}
	all, err := ensureMap(doc, pendingVotesByMember)
	if err != nil {
		return err
	}
	mine, err := childMap(all, member)
	if err != nil {
		return err
	}
	if old, err := mine.Get(id); err != nil {
		return err
	} else if !old.IsVoid() {
		return fmt.Errorf("pending vote on %s by %s: %w", id, member, ErrVoted) // the first one is kept
	}
	if mine.Len() >= MaxPendingVotesPerMember {
		return ErrTooManyPending
	}
	m := automerge.NewMap()
	if err := mine.Set(id, m); err != nil {
		return err
	}
	return setAll(m, []kv{{"choice", v.Choice}, {"reason", v.Reason}, {"at", formatTime(v.At)}})
}

// TakePendingVotes returns the votes kept for proposal id, by member, and
// removes them. It does not commit.
func TakePendingVotes(doc *automerge.Doc, id string) (map[string]CastVote, error) {
	out := make(map[string]CastVote)
	if v, err := doc.Path(pendingVotes, id).Get(); err != nil {
		return nil, err
	} else if v.Kind() == automerge.KindMap {
		o, err := readObject(v, "pending votes")
		if err != nil {
			return nil, err
		}
		for member := range o.vals {
			c := o.child(member, true)
			if c == nil {
				continue
			}
			cv := readCastVote(c)
			if c.done() == nil {
				out[member] = cv
			}
		}
		if err := doc.Path(pendingVotes).Map().Delete(id); err != nil {
			return nil, err
		}
	}
	all, err := doc.Path(pendingVotesByMember).Get()
	if err != nil || all.Kind() != automerge.KindMap {
		return out, err
	}
	members, err := all.Map().Keys()
	if err != nil {
		return nil, err
	}
	for _, member := range members {
		v, err := doc.Path(pendingVotesByMember, member, id).Get()
		if err != nil || v.IsVoid() {
			continue
		}
		if c, err := readObject(v, "pending vote"); err == nil {
			cv := readCastVote(c)
			if _, dup := out[member]; !dup && c.done() == nil {
				out[member] = cv
			}
		}
		if err := doc.Path(pendingVotesByMember, member).Map().Delete(id); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func readCastVote(o *object) CastVote {
	return CastVote{Choice: o.str("choice", true, maxIDLen), Reason: o.str("reason", false, MaxReasonLen), At: o.time("at", true)}
}

// LookupProposalState reads the proposal id from the governance document.
// It reports false, and no error, when there is none.
func LookupProposalState(doc *automerge.Doc, id string) (ProposalState, bool, error) {
	v, err := doc.Path("proposals", id).Get()
	if err != nil || v.IsVoid() {
		return ProposalState{}, false, err
	}
	s, err := readProposalState(v)
	return s, true, err
}

// ReadProposalStates returns every proposal of the governance document,
// oldest first (by opened_at, then id). It returns a *RuleError of rule
// "schema" for the first that does not read.
func ReadProposalStates(doc *automerge.Doc) ([]ProposalState, error) {
	vals, err := rootValues(doc, "proposals", "governance: proposals")
	if err != nil || vals == nil {
		return nil, err
	}
	out := make([]ProposalState, 0, len(vals))
	for _, pv := range vals {
		s, err := readProposalState(pv)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b ProposalState) int {
		if c := a.OpenedAt.Compare(b.OpenedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

func readProposalState(v *automerge.Value) (ProposalState, error) {
	o, err := readObject(v, "proposal")
	if err != nil {
		return ProposalState{}, err
	}
	s := ProposalState{
		Proposal: Proposal{
			ID:    o.str("id", true, maxIDLen),
			Kind:  o.str("kind", true, maxIDLen),
			Title: o.str("title", true, MaxTitleLen),
			Body:  o.str("body", false, MaxBodyLen),
			At:    o.time("at", true),
		},
		Author:    o.str("author", true, maxIDLen),
		OpenedAt:  o.time("opened_at", true),
		ClosesAt:  o.time("closes_at", true),
		Status:    o.str("status", true, maxIDLen),
		DecidedAt: o.optTime("decided_at"),
		Reason:    o.str("reason", false, MaxReasonLen),
		Votes:     map[string]CastVote{},
	}
	if a := o.value("applied"); a != nil && a.Kind() == automerge.KindBool {
		s.Applied = a.Bool()
	}
	if r := o.value("recorded"); r != nil && r.Kind() == automerge.KindBool {
		s.Recorded = r.Bool()
	}
	if kind := o.str("effect_audit_kind", false, maxIDLen); kind != "" {
		s.EffectAudit = &PlannedAudit{Kind: kind, Data: o.str("effect_audit_data", false, maxPlannedAudit)}
	}
	if pm := o.child("payload", false); pm != nil {
		s.Payload = make(map[string]any, len(pm.vals))
		for k, pv := range pm.vals {
			if str, ok, _ := valueString(pv, MaxPayloadValue); ok {
				s.Payload[k] = str
			} else if f, ok := valueNumber(pv); ok {
				s.Payload[k] = f
			} else if pv.Kind() == automerge.KindBool {
				s.Payload[k] = pv.Bool()
			}
		}
	}
	if vm := o.child("votes", false); vm != nil {
		for member := range vm.vals {
			c := vm.child(member, true)
			if c == nil {
				return ProposalState{}, vm.err
			}
			s.Votes[member] = readCastVote(c)
			if err := c.done(); err != nil {
				return ProposalState{}, err
			}
		}
	}
	if err := o.done(); err != nil {
		return ProposalState{}, err
	}
	return s, nil
}
