package client

import (
	"context"
	"encoding/json"
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

// Federation asks the server for one federation as seen from this circle
// (GET /v1/federations/{id}), as the JSON object the server sends.
func (c *Client) Federation(ctx context.Context, id string) (map[string]json.RawMessage, error) {
	var out map[string]json.RawMessage
	if err := c.call(ctx, "GET", "/v1/federations/"+url.PathEscape(id), nil, &out, true); err != nil {
		return nil, err
	}
	return out, nil
}
