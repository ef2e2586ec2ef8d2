package mobileapi

import (
	"bytes"
	"context"
	_ "embed"
	stdjson "encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/circles-coop/circles/authority"
	"github.com/circles-coop/circles/authority/fault"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/segmentio/encoding/json"

	"github.com/circles-coop/circles/sync/engine"
	"github.com/circles-coop/circles/sync/repo"
	"github.com/circles-coop/circles/wire"
)

// Caller is the authenticated device behind a request.
type Caller = authority.Caller

// Identity enrols devices and turns credentials into callers.
type Identity interface {
	Enroll(ctx context.Context, req wire.EnrollRequest) (wire.EnrollResponse, error)
	Token(ctx context.Context, assertion string) (wire.TokenResponse, error)
	// Authenticate checks an access token and returns its caller, or an
	// error that classifies as unauthenticated.
	Authenticate(ctx context.Context, token string) (Caller, error)
	CreateInvite(ctx context.Context, c Caller, req wire.InviteRequest, baseURL string) (wire.InviteResponse, error)
	// RevokeDevice revokes one of the caller's member's devices.
	RevokeDevice(ctx context.Context, c Caller, device string) (wire.RevokedDevice, error)
}

// Circles describes the circle.
type Circles interface {
	Circle(ctx context.Context, c Caller) (wire.Circle, error)
}

// Syncer runs batches of automerge sync messages.
type Syncer interface {
	Sync(ctx context.Context, c Caller, in []engine.Message) ([]engine.Message, error)
}

// Ledger writes and reads ledger entries.
type Ledger interface {
	// CreateEntry writes e into the caller's ledger; created is false when
	// an identical entry with the same id was already there.
	CreateEntry(ctx context.Context, c Caller, e wire.Entry) (stored wire.Entry, created bool, err error)
	ListEntries(ctx context.Context, c Caller, member string, limit int, cursor string) (wire.EntryList, error)
	Balances(ctx context.Context, c Caller) (wire.Balances, error)
}

// AuditLog reads the circle's hash-chained audit log.
type AuditLog interface {
	Entries(ctx context.Context, c Caller, after int64, limit int) (wire.AuditPage, error)
}

// Resets takes hard-reset signatures and reports on them.
type Resets interface {
	Sign(ctx context.Context, c Caller, statement string) (wire.ResetStatus, error)
	Status(ctx context.Context, c Caller) (wire.Resets, error)
}

// Event is something connected clients are told at once.
type Event = authority.Event

// Events lets connected clients follow what happens in the circle.
type Events interface {
	// Subscribe returns a channel of events, closed when the server shuts
	// down, and a function that ends the subscription.
	Subscribe(c Caller) (<-chan Event, func())
}

// Readiness tells whether the store and NATS are usable.
type Readiness interface {
	Ready(ctx context.Context) error
}

// Services are what the handlers call: the features of package
// authority, wired by package server.
type Services struct {
	Identity  Identity
	Circles   Circles
	Syncer    Syncer
	Ledger    Ledger
	Audit     AuditLog
	Resets    Resets
	Events    Events
	Readiness Readiness
	Credits   Credits
	Scorecard Scorecards
	// Governance takes proposals and votes (mobile-api/governance.go);
	// Charter and Mandates show and end what it decided.
	Governance Governance
	Charter    Charters
	Mandates   Mandates
	// Rituals and Honours serve meetings, temperature checks, stepping
	// down and honours (mobile-api/rituals.go).
	Rituals Rituals
	Honours Honours
	// Sessions serves GET /v1/repo (mobile-api/repo.go); nil: 501.
	Sessions repo.Sessions
	// DrawRounds, PairAudits and Mentorships serve the rituals'
	// commit–reveal draws, pair-link audits and mentorship inversion
	// (draws.go, pairaudits.go).
	DrawRounds  DrawRounds
	PairAudits  PairAudits
	Mentorships MentorshipRounds
	// Federations serves GET /v1/federations (mobile-api/federation.go).
	Federations Federations
	// FederationDocs serves the federation replicas' routes
	// (mobile-api/federation_docs.go); nil: not registered.
	FederationDocs FederationDocs
}

// Options configure the HTTP API.
type Options struct {
	Logger   *slog.Logger
	Gatherer prometheus.Gatherer // for /metrics; nil: the default registry
	// Metrics serves GET /metrics (Prometheus) on this API. Off by
	// default: the server serves it on a listener of its own.
	Metrics bool
	// MaxBody bounds ordinary JSON bodies (default 64 KiB); MaxSyncBody
	// bounds POST /v1/sync (default 8 MiB).
	MaxBody     int64
	MaxSyncBody int64
	// MaxSyncMessages bounds the messages of one sync request (default 256).
	MaxSyncMessages int
	// IdentityRate and IdentityBurst bound, per client address, the
	// requests to the endpoints that take no token (enroll, token): a
	// steady rate per second and a burst. Defaults 5/s and 50.
	IdentityRate  float64
	IdentityBurst int
	// IdentityAddresses bounds the client addresses the limiter tracks at
	// once (default 4096; idle ones are dropped after 10 minutes).
	IdentityAddresses int
	// TrustedProxies are the addresses or CIDRs of reverse proxies whose
	// X-Forwarded-For header is believed. Empty (the default): the client
	// is the connection's remote address, whatever headers say.
	TrustedProxies []string
	// App holds the phone app's built files (index.html at its root),
	// served at /app/ and /join; nil: the build embedded in the binary
	// (mobile-api/app.go).
	App fs.FS
}

// CheckTrustedProxies reports the first entry of Options.TrustedProxies
// that is not an IP address or CIDR.
func CheckTrustedProxies(list []string) error {
	_, err := ipExtractor(list)
	return err
}

//go:embed openapi.json
var openapiJSON []byte

// New returns the echo instance serving API v1.
func New(svc Services, opts Options) *echo.Echo {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = 64 << 10
	}
	if opts.MaxSyncBody <= 0 {
		opts.MaxSyncBody = 8 << 20
	}
	if opts.MaxSyncMessages <= 0 {
		opts.MaxSyncMessages = 256
	}
	if opts.Gatherer == nil {
		opts.Gatherer = prometheus.DefaultGatherer
	}
	if opts.IdentityRate <= 0 {
		opts.IdentityRate = 5
	}
	if opts.IdentityBurst <= 0 {
		opts.IdentityBurst = 50
	}
	a := &api{svc: svc, opts: opts, log: opts.Logger.With("component", "http")}

	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = a.handleError
	if ex, err := ipExtractor(opts.TrustedProxies); err == nil {
		e.IPExtractor = ex
	} else {
		a.log.Error("ignoring trusted proxies; using the remote address", "err", err)
		e.IPExtractor = echo.ExtractIPDirect()
	}
	// A panic in a handler becomes a 500 with API.md's error body, logged.
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{DisablePrintStack: true, LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
		a.log.Error("handler panicked", "path", c.Path(), "err", err, "stack", string(stack))
		return err
	}}))

	// A body declared larger than any endpoint takes is refused before
	// routing; bind refuses one over its endpoint's own limit.
	maxAny := max(opts.MaxBody, opts.MaxSyncBody)
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if c.Request().ContentLength > maxAny {
				return fault.Errorf(fault.TooLarge, "the body is over the limit of %d bytes", maxAny)
			}
			return next(c)
		}
	})

	e.GET("/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	e.GET("/readyz", a.readyz)
	if opts.Metrics {
		e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{})))
	}

	v1 := e.Group("/v1")
	v1.GET("/openapi.json", func(c echo.Context) error { return c.Blob(http.StatusOK, "application/json", openapiJSON) })
	registerAppRoutes(e, opts.App)
	limited := rateLimit(newLimiterStore(opts.IdentityRate, opts.IdentityBurst, opts.IdentityAddresses))
	a.registerIdentityRoutes(v1, limited)
	a.registerRepoRoutes(v1)
	authed := v1.Group("", a.authenticate)
	a.registerCircleRoutes(authed)
	a.registerSyncRoutes(authed)
	a.registerSnapshotRoutes(authed)
	a.registerLedgerRoutes(authed)
	a.registerAuditRoutes(authed)
	a.registerResetRoutes(authed)
	a.registerEventRoutes(authed)
	a.registerCreditRoutes(authed)
	a.registerScorecardRoutes(authed)
	a.registerGovernanceRoutes(authed)
	a.registerRitualRoutes(authed)
	a.registerDrawRoutes(authed)
	a.registerPairAuditRoutes(authed)
	a.registerFederationRoutes(authed)
	a.registerFederationDocRoutes(authed)
	return e
}

type api struct {
	svc  Services
	opts Options
	log  *slog.Logger
}

const callerKey = "circles.caller"

// authenticate is the bearer-token middleware.
func (a *api) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Path() == "/v1/*" || c.Path() == "/v1" {
			return next(c) // the group's catch-all: an unknown path is a 404 for anyone
		}
		h := c.Request().Header.Get("Authorization")
		token, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || token == "" {
			return fault.Errorf(fault.Unauthenticated, "send an access token as 'Authorization: Bearer <token>'; get one at POST /v1/token")
		}
		caller, err := a.svc.Identity.Authenticate(c.Request().Context(), token)
		if err != nil {
			return err
		}
		c.Set(callerKey, caller)
		return next(c)
	}
}

func callerOf(c echo.Context) Caller {
	caller, _ := c.Get(callerKey).(Caller)
	return caller
}

func (a *api) readyz(c echo.Context) error {
	if err := a.svc.Readiness.Ready(c.Request().Context()); err != nil {
		// The cause names internals (buckets, NATS): logged, not told.
		a.log.Warn("not ready", "err", err)
		return &fault.Error{Code: fault.NotReady, Message: "the server is not ready; try again shortly", Err: err}
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

// handleError writes API.md's error body for any error a handler returns.
func (a *api) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, code, msg := classify(err)
	if status >= 500 {
		a.log.Error("request failed", "method", c.Request().Method, "path", c.Path(), "status", status, "err", err)
	} else {
		a.log.Debug("request refused", "method", c.Request().Method, "path", c.Path(), "status", status, "err", err)
	}
	if werr := c.JSON(status, wire.ErrorBody{Error: wire.ErrorDetail{Code: code, Message: msg}}); werr != nil {
		a.log.Warn("writing error response", "err", werr)
	}
}

// bind decodes a JSON body of at most limit bytes into v, refusing
// trailing data; type errors name the field.
//
// The body is read whole, then decoded with segmentio/encoding/json:
// encoding/json's streaming decoder scans a sync request twice, byte by
// byte, and at 110 MB/s it was a tenth of the server's time on a backlog
// of sync requests; segmentio's decoder is a drop-in (the same error
// types, the same rules) that decodes base64 and skips strings an order
// of magnitude faster.
func bind(c echo.Context, limit int64, v any) error {
	r := c.Request()
	if r.ContentLength > limit { // refused before a byte of it is read
		return fault.Errorf(fault.TooLarge, "the body is over the limit of %d bytes", limit)
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return fault.Errorf(fault.InvalidRequest, "Content-Type must be application/json, not %q", ct)
	}
	buf := bodyBuffers.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= maxPooledBody {
			buf.Reset()
			bodyBuffers.Put(buf)
		}
	}()
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + 1) // +1: ReadFrom's final read sees EOF without growing
	}
	if _, err := buf.ReadFrom(http.MaxBytesReader(c.Response(), r.Body, limit)); err != nil {
		return bodyError(err, limit)
	}
	return decodeJSON(buf.Bytes(), limit, v)
}

// decodeJSON decodes a whole request body into v, as bind does once it
// has read it; limit only goes into its messages.
func decodeJSON(body []byte, limit int64, v any) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return bodyError(io.EOF, limit)
	}
	if err := json.Unmarshal(body, v); err != nil {
		// Refusals are explained as encoding/json explains them (the
		// field's path without list indexes, the kind of value found);
		// should it accept what segmentio refused, its reading stands.
		reflect.ValueOf(v).Elem().SetZero()
		if err := stdjson.Unmarshal(body, v); err != nil {
			return bodyError(err, limit)
		}
	}
	return nil
}

// bodyBuffers hold request bodies while bind decodes them; decoded values
// never point into them ([]byte fields are copies).
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBody: buffers that grew past this go to the collector rather
// than back to the pool.
const maxPooledBody = 1 << 20

func bodyError(err error, limit int64) error {
	var tooBig *http.MaxBytesError
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &tooBig):
		return fault.Errorf(fault.TooLarge, "the body is over the limit of %d bytes", limit)
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "body"
		}
		return fault.Errorf(fault.InvalidRequest, "field %q must be %s, not %s", field, jsonKind(typeErr.Type.String()), typeErr.Value)
	case errors.As(err, &syntaxErr) && strings.Contains(syntaxErr.Error(), "unexpected end of JSON input"):
		return fault.Errorf(fault.InvalidRequest, "the body is empty or cut short; send a JSON object")
	case errors.As(err, &syntaxErr) && strings.Contains(syntaxErr.Error(), "after top-level value"):
		return fault.Errorf(fault.InvalidRequest, "the body must hold exactly one JSON object")
	case errors.As(err, &syntaxErr):
		return fault.Errorf(fault.InvalidRequest, "malformed JSON at byte %d", syntaxErr.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fault.Errorf(fault.InvalidRequest, "the body is empty or cut short; send a JSON object")
	default:
		return fault.Errorf(fault.InvalidRequest, "malformed JSON body: %v", err)
	}
}

func jsonKind(goType string) string {
	switch {
	case goType == "string":
		return "a string"
	case goType == "[]uint8":
		return "a base64 string"
	case strings.HasPrefix(goType, "float"), strings.HasPrefix(goType, "int"):
		return "a number"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case goType == "time.Time":
		return "an RFC 3339 time"
	default:
		return "an object"
	}
}

// renderCreated answers an idempotent create: 201 when it created v, 200
// when an identical v was already there (a retry after a lost response).
func renderCreated(c echo.Context, created bool, v any) error {
	if created {
		return c.JSON(http.StatusCreated, v)
	}
	return c.JSON(http.StatusOK, v)
}

func queryInt(c echo.Context, name string, def, min, max int) (int, error) {
	s := c.QueryParam(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < min || n > max {
		return 0, fault.Errorf(fault.InvalidRequest, "query parameter %q must be an integer from %d to %d", name, min, max)
	}
	return n, nil
}

// rateLimit limits requests per client address (echo's IPExtractor: the
// remote address unless a trusted proxy says otherwise) with a token
// bucket, and answers 429 rate_limited beyond it. The answer names no
// address: the client's own claims are never echoed.
func rateLimit(store middleware.RateLimiterStore) echo.MiddlewareFunc {
	return middleware.RateLimiterWithConfig(middleware.RateLimiterConfig{
		Store: store,
		IdentifierExtractor: func(c echo.Context) (string, error) {
			return c.RealIP(), nil
		},
		ErrorHandler: func(c echo.Context, err error) error {
			return fault.Errorf(fault.InvalidRequest, "cannot tell who is asking")
		},
		DenyHandler: func(c echo.Context, id string, err error) error {
			return fault.Errorf(fault.RateLimited, "too many requests from your address; wait a few seconds and try again")
		},
	})
}

// joinPage is where an invite's URL (or its QR code) leads: the code is
// in the URL's fragment, which never reaches the server.
func joinPage(c echo.Context) error {
	return c.HTML(http.StatusOK, joinHTML)
}

const joinHTML = `<!doctype html>
<html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Join this circle</title>
<body style="font-family: sans-serif; max-width: 34em; margin: 2em auto; line-height: 1.5">
<h1>Join this circle</h1>
<p>You were given an invite to this circle. The phone app is not built yet;
join from a computer with the command line:</p>
<pre id="cmd">circlectl join THIS_PAGE_ADDRESS</pre>
<p>Paste this page's whole address, with the part after <code>#</code>: that is your one-time invite code.</p>
<script>document.getElementById("cmd").textContent = "circlectl join " + location.href;</script>
</body></html>
`
