package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/wire"
)

// ErrCreditToSelf is returned by Device.Credit for a credit to the
// device's own member: it would move nothing.
var ErrCreditToSelf = errors.New("you cannot give credit to yourself")

// Credit writes a mutual-credit transfer — the member gives c.Amount hours
// of credit to c.To — into the member's current ledger segment on disk and
// commits it as this device's change; it needs no network, and the next
// Sync delivers it. An empty ID gets a new UUID, a zero At the current
// time. The limit is not checked here: the circle's view flags a transfer
// beyond it (over_limit) once synced. It returns the credit as written; a
// *crdt.RuleError if it breaks the ledger schema; ErrCreditToSelf;
// crdt.ErrEntryExists if the id is taken; ErrLedgerNotFetched if the
// ledger was never synced; ErrNotEnrolled before enrolment.
func (d *Device) Credit(c crdt.Credit) (crdt.Credit, error) {
	if c.ID == "" {
		c.ID = uuid.NewString()
	}
	if c.At.IsZero() {
		c.At = time.Now()
	}
	c.At = c.At.UTC()
	if err := c.Validate(); err != nil {
		return c, err
	}
	info := d.Info()
	if !info.Enrolled() {
		return c, ErrNotEnrolled
	}
	if c.To == info.MemberID {
		return c, ErrCreditToSelf
	}
	unlock, err := lockHome(d.home)
	if err != nil {
		return c, err
	}
	defer unlock()

	id, doc, err := d.writableLedger(info)
	if err != nil {
		return c, err
	}
	if err := crdt.PutCredit(doc, c); err != nil {
		return c, fmt.Errorf("give credit: %w", err)
	}
	if _, err := doc.Commit("credit " + c.ID); err != nil {
		return c, fmt.Errorf("give credit: commit: %w", err)
	}
	if err := d.store.saveDoc(id, doc); err != nil {
		return c, err
	}
	return c, nil
}

// Credits asks the server for the mutual-credit transfers member gave or
// received (everyone's if ""), with the circle's flags, all pages.
func (d *Device) Credits(ctx context.Context, member string) (*wire.CreditList, error) {
	c, err := d.Client()
	if err != nil {
		return nil, err
	}
	all := &wire.CreditList{Credits: []wire.Credit{}}
	opt := ListOptions{Member: member, Limit: 1000}
	for {
		page, err := c.ListCredits(ctx, opt)
		if err != nil {
			return nil, err
		}
		all.Credits = append(all.Credits, page.Credits...)
		all.Limit = page.Limit
		if page.NextCursor == "" {
			return all, nil
		}
		opt.Cursor = page.NextCursor
	}
}

// Scorecard asks the server for the sovereignty scorecard cut by period
// ("month", "quarter" or "year").
func (d *Device) Scorecard(ctx context.Context, period string) (*wire.Scorecard, error) {
	c, err := d.Client()
	if err != nil {
		return nil, err
	}
	return c.Scorecard(ctx, period)
}

// CreateCredit gives mutual credit through the REST API (POST
// /v1/credits). Sending the same transfer again is a safe retry; the same
// id with other content gives an *APIError with code conflict.
func (c *Client) CreateCredit(ctx context.Context, in wire.Credit) (*wire.Credit, error) {
	var out wire.Credit
	if err := c.call(ctx, http.MethodPost, "/v1/credits", in, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListCredits lists mutual-credit transfers (GET /v1/credits); follow
// NextCursor for the next page.
func (c *Client) ListCredits(ctx context.Context, opt ListOptions) (*wire.CreditList, error) {
	var out wire.CreditList
	if err := c.call(ctx, http.MethodGet, opt.path("/v1/credits"), nil, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// Scorecard returns the sovereignty scorecard (GET /v1/scorecard); an
// empty period means month.
func (c *Client) Scorecard(ctx context.Context, period string) (*wire.Scorecard, error) {
	path := "/v1/scorecard"
	if period != "" {
		path += "?period=" + url.QueryEscape(period)
	}
	var out wire.Scorecard
	if err := c.call(ctx, http.MethodGet, path, nil, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}
