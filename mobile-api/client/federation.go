package client

import (
	"context"
	"net/url"

	"github.com/circles-coop/circles/wire"
)

// Federations asks the server for the circle's federations
// (GET /v1/federations).
func (c *Client) Federations(ctx context.Context) (*wire.Federations, error) {
	var out wire.Federations
	if err := c.call(ctx, "GET", "/v1/federations", nil, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// Federation asks the server for one federation as this circle's replica
// holds it (GET /v1/federations/{id}): every member circle with what it
// publishes.
func (c *Client) Federation(ctx context.Context, id string) (*wire.FederationView, error) {
	var out wire.FederationView
	if err := c.call(ctx, "GET", "/v1/federations/"+url.PathEscape(id), nil, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}
