package client

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/google/uuid"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/wire"
)

// Propose writes a proposal into the member's ballots document and commits
// it as this device's change; it needs no network: the next Sync delivers
// it and the circle opens it then. An empty ID gets a new UUID, a zero At
// the current time. It returns the proposal as written; a *crdt.RuleError
// if it breaks the ballots schema (a missing or bad payload field);
// ErrNotSynced before the ballots document was fetched.
func (d *Device) Propose(p crdt.Proposal) (crdt.Proposal, error) {
	if p.ID == "" {
		p.ID = uuid.NewString()
	}
	if p.At.IsZero() {
		p.At = time.Now()
	}
	p.At = p.At.UTC()
	if p.Payload == nil {
		p.Payload = map[string]any{}
	}
	if err := p.Validate(); err != nil {
		return p, err
	}
	err := d.writeBallots("propose "+p.Kind+" "+p.ID, func(doc *automerge.Doc) error {
		return crdt.PutProposal(doc, p)
	})
	return p, err
}

// Vote writes the member's vote on a proposal into their ballots document,
// offline like Propose. A vote is final: a second vote on the same
// proposal returns crdt.ErrEntryExists.
func (d *Device) Vote(proposal, choice, reason string, now time.Time) (crdt.Vote, error) {
	v := crdt.Vote{Proposal: proposal, Choice: choice, Reason: reason, At: now.UTC()}
	if err := v.Validate(); err != nil {
		return v, err
	}
	err := d.writeBallots("vote "+choice+" on "+proposal, func(doc *automerge.Doc) error {
		return crdt.PutVote(doc, v)
	})
	return v, err
}

// writeBallots runs fn on the member's ballots document held on the
// device, commits and saves it.
func (d *Device) writeBallots(message string, fn func(*automerge.Doc) error) error {
	_, err := d.writeDoc("ballots", message, func(doc *automerge.Doc) (bool, error) {
		return true, fn(doc)
	})
	return err
}

// writeDoc runs fn on the document the circle names key ("ballots",
// "charter-draft") held on the device and, if fn reports a change,
// commits and saves it. It reports whether it did.
func (d *Device) writeDoc(key, message string, fn func(*automerge.Doc) (bool, error)) (bool, error) {
	info := d.Info()
	if !info.Enrolled() {
		return false, ErrNotEnrolled
	}
	if info.Circle == nil || info.Circle.Docs[key] == "" {
		return false, fmt.Errorf("%s: %w", key, ErrNotSynced)
	}
	unlock, err := lockHome(d.home)
	if err != nil {
		return false, err
	}
	defer unlock()
	id := info.Circle.Docs[key]
	doc, found, err := d.store.loadDoc(id)
	if err != nil {
		return false, err
	}
	if !found {
		return false, fmt.Errorf("the %s document: %w", key, ErrNotSynced)
	}
	changed, err := fn(doc)
	if err != nil || !changed {
		return false, err
	}
	if _, err := doc.Commit(message); err != nil {
		return false, fmt.Errorf("%s: commit: %w", key, err)
	}
	return true, d.store.saveDoc(id, doc)
}

// Proposals asks the server for the circle's proposals, all or those of
// one status (open, passed, rejected, cancelled).
func (c *Client) Proposals(ctx context.Context, status string) (*wire.ProposalList, error) {
	path := "/v1/proposals"
	if status != "" {
		path += "?status=" + url.QueryEscape(status)
	}
	var out wire.ProposalList
	if err := c.call(ctx, "GET", path, nil, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// Proposal asks the server for one proposal.
func (c *Client) Proposal(ctx context.Context, id string) (*wire.Proposal, error) {
	var out wire.Proposal
	if err := c.call(ctx, "GET", "/v1/proposals/"+url.PathEscape(id), nil, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateProposal opens a proposal over REST (POST /v1/proposals).
func (c *Client) CreateProposal(ctx context.Context, req wire.ProposalRequest) (*wire.Proposal, error) {
	var out wire.Proposal
	if err := c.call(ctx, "POST", "/v1/proposals", req, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// CastVote votes over REST (POST /v1/proposals/{id}/votes).
func (c *Client) CastVote(ctx context.Context, proposal string, req wire.VoteRequest) (*wire.Proposal, error) {
	var out wire.Proposal
	if err := c.call(ctx, "POST", "/v1/proposals/"+url.PathEscape(proposal)+"/votes", req, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// Roles asks the server for the circle's roles of one status: active
// (""), retired or all.
func (c *Client) Roles(ctx context.Context, status string) (*wire.RoleList, error) {
	path := "/v1/roles"
	if status != "" {
		path += "?status=" + url.QueryEscape(status)
	}
	var out wire.RoleList
	if err := c.call(ctx, "GET", path, nil, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// Mandates asks the server for the delegates' mandates.
func (c *Client) Mandates(ctx context.Context) (*wire.MandateList, error) {
	var out wire.MandateList
	if err := c.call(ctx, "GET", "/v1/mandates", nil, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// Charter asks the server for the circle's charter (GET /v1/charter).
func (c *Client) Charter(ctx context.Context) (*wire.Charter, error) {
	var out wire.Charter
	if err := c.call(ctx, "GET", "/v1/charter", nil, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// MandateDone marks one of the caller's mandates done
// (POST /v1/mandates/{id}/done).
func (c *Client) MandateDone(ctx context.Context, id string) (*wire.Mandate, error) {
	var out wire.Mandate
	if err := c.call(ctx, "POST", "/v1/mandates/"+url.PathEscape(id)+"/done", nil, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}
