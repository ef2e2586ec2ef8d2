package client

import (
	"context"
	"net/url"

	"github.com/circles-coop/circles/wire"
)

// CreateMeeting calls a meeting (POST /v1/meetings); the server draws its
// facilitator.
func (c *Client) CreateMeeting(ctx context.Context, req wire.MeetingRequest) (*wire.Meeting, error) {
	var out wire.Meeting
	if err := c.call(ctx, "POST", "/v1/meetings", req, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// Meetings lists the circle's meetings and each member's pattern
// (GET /v1/meetings).
func (c *Client) Meetings(ctx context.Context) (*wire.MeetingList, error) {
	var out wire.MeetingList
	if err := c.call(ctx, "GET", "/v1/meetings", nil, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// Meeting shows one meeting with its minutes and its check's summary.
func (c *Client) Meeting(ctx context.Context, id string) (*wire.Meeting, error) {
	var out wire.Meeting
	if err := c.call(ctx, "GET", "/v1/meetings/"+url.PathEscape(id), nil, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// RecordMinutes records a meeting's minutes, as its facilitator.
func (c *Client) RecordMinutes(ctx context.Context, id string, req wire.MinutesRequest) (*wire.Meeting, error) {
	var out wire.Meeting
	if err := c.call(ctx, "POST", "/v1/meetings/"+url.PathEscape(id)+"/minutes", req, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// CheckIn sends the caller's temperature check for a meeting.
func (c *Client) CheckIn(ctx context.Context, id string, req wire.CheckRequest) (*wire.CheckReceipt, error) {
	var out wire.CheckReceipt
	if err := c.call(ctx, "POST", "/v1/meetings/"+url.PathEscape(id)+"/checks", req, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// StepDown steps the caller down from a role they hold.
func (c *Client) StepDown(ctx context.Context, role string) (*wire.Role, error) {
	var out wire.Role
	if err := c.call(ctx, "POST", "/v1/roles/"+url.PathEscape(role)+"/step-down", nil, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// Honours lists those who handed power on (GET /v1/honours).
func (c *Client) Honours(ctx context.Context) (*wire.Honours, error) {
	var out wire.Honours
	if err := c.call(ctx, "GET", "/v1/honours", nil, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}
