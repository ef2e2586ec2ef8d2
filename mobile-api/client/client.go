package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/circles-coop/circles/authority/fault"

	"github.com/circles-coop/circles/wire"
)

// ErrUnreachable wraps every failure to reach the server at all (refused
// connection, DNS failure, timeout): the request may not have arrived.
var ErrUnreachable = errors.New("circle server unreachable")

// ErrNoCredentials is returned by calls that need an access token when the
// client has neither a token nor a device key to get one with.
var ErrNoCredentials = errors.New("no access token and no device key to get one")

// maxResponse bounds how much of a response body the client reads.
const maxResponse = 64 << 20

// refreshMargin is how long before its expiry an access token is replaced.
const refreshMargin = 30 * time.Second

// APIError is an answer outside 2xx, decoded from the server's error body
// ({"error": {"code", "message"}}). When the body is not that shape, Code is
// derived from Status and Message is the start of the body.
type APIError struct {
	Status  int
	Code    string
	Message string
}

// Error returns the status, code and message in one line.
func (e *APIError) Error() string {
	return fmt.Sprintf("circle server: %d %s: %s", e.Status, e.Code, e.Message)
}

// IsAPIError reports whether err is or wraps an *APIError with the given
// code (one of the authority/fault constants).
func IsAPIError(err error, code string) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == code
}

// Credentials are what a device needs to sign its own assertions: the ids
// the server gave it at enrolment and its private key.
type Credentials struct {
	CircleID string
	DeviceID string
	Key      ed25519.PrivateKey
}

// Client is an HTTP client for API v1. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	httpc *http.Client
	creds *Credentials
	now   func() time.Time

	mu      sync.Mutex
	token   string
	expires time.Time // zero: unknown, used until the server answers 401
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the Client send its requests through hc.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) { c.httpc = hc }
}

// WithCredentials lets the Client get and refresh access tokens itself by
// signing device assertions with the device key.
func WithCredentials(cr Credentials) Option {
	return func(c *Client) { c.creds = &cr }
}

// WithToken starts the Client with an access token that expires at
// expires (zero: unknown).
func WithToken(token string, expires time.Time) Option {
	return func(c *Client) { c.token, c.expires = token, expires }
}

// WithClock replaces time.Now, for assertions and token expiry.
func WithClock(now func() time.Time) Option {
	return func(c *Client) { c.now = now }
}

// New returns a Client for the server at baseURL (e.g.
// "https://circle.example.org"). It returns an error if baseURL is not an
// absolute http or https URL.
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("server URL %q: %w", baseURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: want http:// or https:// and a host", baseURL)
	}
	c := &Client{base: u, httpc: &http.Client{Timeout: 2 * time.Minute}, now: time.Now}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// BaseURL returns the server URL the Client talks to.
func (c *Client) BaseURL() string { return c.base.String() }

// AccessToken returns the current access token and its expiry (zero if
// unknown); the token is empty if the client has none.
func (c *Client) AccessToken() (string, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token, c.expires
}

// Healthz calls GET /healthz; it returns nil when the server process is up.
func (c *Client) Healthz(ctx context.Context) error {
	return c.call(ctx, http.MethodGet, "/healthz", nil, nil, false)
}

// Enroll redeems an invite (POST /v1/enroll) and keeps the access token it
// returns for later calls. A used, expired or unknown invite gives an
// *APIError with code forbidden.
func (c *Client) Enroll(ctx context.Context, req wire.EnrollRequest) (*wire.EnrollResponse, error) {
	var out wire.EnrollResponse
	if err := c.call(ctx, http.MethodPost, "/v1/enroll", req, &out, false); err != nil {
		return nil, err
	}
	c.setToken(out.AccessToken, out.ExpiresIn)
	return &out, nil
}

// Token trades a device assertion (see NewAssertion) for an access token
// (POST /v1/token) and keeps it for later calls.
func (c *Client) Token(ctx context.Context, assertion string) (*wire.TokenResponse, error) {
	var out wire.TokenResponse
	req := wire.TokenRequest{Assertion: assertion}
	if err := c.call(ctx, http.MethodPost, "/v1/token", req, &out, false); err != nil {
		return nil, err
	}
	c.setToken(out.AccessToken, out.ExpiresIn)
	return &out, nil
}

// RevokeDevice revokes one of the caller's own devices
// (POST /v1/devices/{id}/revoke): its tokens stop working at once and its
// actor can write nothing more.
func (c *Client) RevokeDevice(ctx context.Context, deviceID string) (*wire.RevokedDevice, error) {
	var out wire.RevokedDevice
	if deviceID == "" || strings.ContainsAny(deviceID, "/?#") {
		return nil, fmt.Errorf("revoke device: %q is not a device id", deviceID)
	}
	if err := c.call(ctx, http.MethodPost, "/v1/devices/"+deviceID+"/revoke", nil, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateInvite makes an invite (POST /v1/invites): For is "member" for a
// new member or "device" for another device of the caller.
func (c *Client) CreateInvite(ctx context.Context, req wire.InviteRequest) (*wire.InviteResponse, error) {
	var out wire.InviteResponse
	if err := c.call(ctx, http.MethodPost, "/v1/invites", req, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// Circle describes the circle and its documents (GET /v1/circle).
func (c *Client) Circle(ctx context.Context) (*wire.Circle, error) {
	var out wire.Circle
	if err := c.call(ctx, http.MethodGet, "/v1/circle", nil, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// Sync sends one batch of automerge sync messages (POST /v1/sync) and
// returns the server's answers. A change the device may not make gives an
// *APIError with code rule_violation, and the server applied nothing of the
// batch.
func (c *Client) Sync(ctx context.Context, msgs []wire.SyncMessage) ([]wire.SyncMessage, error) {
	var out wire.SyncResponse
	if msgs == nil {
		msgs = []wire.SyncMessage{}
	}
	if err := c.call(ctx, http.MethodPost, "/v1/sync", wire.SyncRequest{Messages: msgs}, &out, true); err != nil {
		return nil, err
	}
	return out.Messages, nil
}

// CreateEntry writes an entry into the caller's ledger through the REST
// API (POST /v1/ledger/entries). Sending the same entry again is a safe
// retry; the same id with other content gives an *APIError with code
// conflict.
func (c *Client) CreateEntry(ctx context.Context, e wire.Entry) (*wire.Entry, error) {
	var out wire.Entry
	if err := c.call(ctx, http.MethodPost, "/v1/ledger/entries", e, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListOptions filter and page GET /v1/ledger/entries; zero values are left
// out of the query.
type ListOptions struct {
	Member string
	Limit  int
	Cursor string
}

// path adds the options as query parameters to base.
func (opt ListOptions) path(base string) string {
	q := url.Values{}
	if opt.Member != "" {
		q.Set("member", opt.Member)
	}
	if opt.Limit > 0 {
		q.Set("limit", strconv.Itoa(opt.Limit))
	}
	if opt.Cursor != "" {
		q.Set("cursor", opt.Cursor)
	}
	if len(q) == 0 {
		return base
	}
	return base + "?" + q.Encode()
}

// ListEntries lists ledger entries (GET /v1/ledger/entries); follow
// NextCursor for the next page.
func (c *Client) ListEntries(ctx context.Context, opt ListOptions) (*wire.EntryList, error) {
	var out wire.EntryList
	if err := c.call(ctx, http.MethodGet, opt.path("/v1/ledger/entries"), nil, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// Balances returns every member's balance and the circle's signals (GET
// /v1/balances).
func (c *Client) Balances(ctx context.Context) (*wire.Balances, error) {
	var out wire.Balances
	if err := c.call(ctx, http.MethodGet, "/v1/balances", nil, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

func (c *Client) setToken(token string, expiresIn int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.token = token
	c.expires = time.Time{}
	if expiresIn > 0 {
		c.expires = c.now().Add(time.Duration(expiresIn) * time.Second)
	}
}

// bearer returns a usable access token, getting a new one first when the
// current one is missing or about to expire (or when force is set).
func (c *Client) bearer(ctx context.Context, force bool) (string, error) {
	c.mu.Lock()
	tok, exp := c.token, c.expires
	c.mu.Unlock()
	fresh := tok != "" && (exp.IsZero() || c.now().Add(refreshMargin).Before(exp))
	if fresh && !force {
		return tok, nil
	}
	if c.creds == nil {
		if tok != "" && !force {
			return tok, nil // let the server judge it
		}
		return "", ErrNoCredentials
	}
	a, err := NewAssertion(c.creds.Key, c.creds.DeviceID, c.creds.CircleID, c.now())
	if err != nil {
		return "", err
	}
	out, err := c.Token(ctx, a)
	if err != nil {
		return "", fmt.Errorf("get access token: %w", err)
	}
	return out.AccessToken, nil
}

// call sends one request with in (if not nil) as its JSON body and decodes
// a 2xx answer into out (if not nil). With auth it carries a bearer token
// and, on 401, gets a new token and tries once more.
func (c *Client) call(ctx context.Context, method, path string, in, out any, auth bool) error {
	var body []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		body = b
	}
	token := ""
	if auth {
		t, err := c.bearer(ctx, false)
		if err != nil {
			return err
		}
		token = t
	}
	err := c.send(ctx, method, path, body, token, out)
	var ae *APIError
	if auth && c.creds != nil && errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
		t, terr := c.bearer(ctx, true)
		if terr != nil {
			return terr
		}
		err = c.send(ctx, method, path, body, t, out)
	}
	return err
}

func (c *Client) send(ctx context.Context, method, path string, body []byte, token string, out any) error {
	u := c.base.String() + path
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.httpc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s %s: %w", method, path, ctx.Err())
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%w at %s (%v)", ErrUnreachable, c.base.Host, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if len(data) > maxResponse {
		return fmt.Errorf("%s %s: answer larger than %d bytes", method, path, maxResponse)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeError(resp.StatusCode, data)
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

func decodeError(status int, data []byte) *APIError {
	var eb wire.ErrorBody
	if json.Unmarshal(data, &eb) == nil && eb.Error.Code != "" {
		return &APIError{Status: status, Code: eb.Error.Code, Message: eb.Error.Message}
	}
	msg := strings.TrimSpace(string(data))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	return &APIError{Status: status, Code: codeForStatus(status), Message: msg}
}

func codeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return fault.InvalidRequest
	case http.StatusUnauthorized:
		return fault.Unauthenticated
	case http.StatusForbidden:
		return fault.Forbidden
	case http.StatusNotFound:
		return fault.NotFound
	case http.StatusConflict:
		return fault.Conflict
	case http.StatusRequestEntityTooLarge:
		return fault.TooLarge
	case http.StatusUnprocessableEntity:
		return fault.RuleViolation
	case http.StatusTooManyRequests:
		return fault.RateLimited
	case http.StatusNotImplemented:
		return fault.NotImplemented
	case http.StatusServiceUnavailable:
		return fault.NotReady
	}
	return fault.Internal
}
