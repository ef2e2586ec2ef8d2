package mobileapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/mobile-api/wire"
	"github.com/circles-coop/circles/sync/engine"
)

// Error is an error with a stable API code and a message that is safe to
// show to the client. Services return it (usually wrapped) for every
// refusal a client must be able to act on.
type Error struct {
	Code    string // one of the wire.Code* constants
	Message string
	Err     error // the cause, for logs only
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Message + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

var statusOf = map[string]int{
	wire.CodeInvalidRequest:  http.StatusBadRequest,
	wire.CodeUnauthenticated: http.StatusUnauthorized,
	wire.CodeForbidden:       http.StatusForbidden,
	wire.CodeNotFound:        http.StatusNotFound,
	wire.CodeConflict:        http.StatusConflict,
	wire.CodeTooLarge:        http.StatusRequestEntityTooLarge,
	wire.CodeRuleViolation:   http.StatusUnprocessableEntity,
	wire.CodeRateLimited:     http.StatusTooManyRequests,
	wire.CodeNotImplemented:  http.StatusNotImplemented,
	wire.CodeNotReady:        http.StatusServiceUnavailable,
	wire.CodeInternal:        http.StatusInternalServerError,
}

// classify maps any error to the API's code and safe message. It is the
// single place where domain and engine errors meet HTTP.
func classify(err error) (status int, code, msg string) {
	var apiErr *Error
	var rule *crdt.RuleError
	var he *echo.HTTPError
	switch {
	case errors.As(err, &apiErr):
		code, msg = apiErr.Code, apiErr.Message
	case errors.As(err, &rule):
		code, msg = wire.CodeRuleViolation, "rule "+rule.Rule+": "+rule.Message
	case errors.Is(err, engine.ErrBadMessage):
		code, msg = wire.CodeInvalidRequest, "messages: "+err.Error()
	case errors.Is(err, engine.ErrUnknownDoc):
		code, msg = wire.CodeNotFound, "no such document in this circle: "+err.Error()
	case errors.Is(err, engine.ErrForbidden):
		code, msg = wire.CodeForbidden, "you may not read this document: "+err.Error()
	case errors.Is(err, engine.ErrStore), errors.Is(err, engine.ErrClosed):
		code, msg = wire.CodeNotReady, "the circle's store is not available; nothing was applied, try again"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		code, msg = wire.CodeNotReady, "the request timed out; nothing acknowledged was lost, try again"
	case errors.As(err, &he):
		return httpError(he)
	default:
		code, msg = wire.CodeInternal, "internal error"
	}
	return statusOf[code], code, msg
}

// httpError maps echo's own errors (routing, body limit, bad JSON).
func httpError(he *echo.HTTPError) (int, string, string) {
	msg := fmt.Sprint(he.Message)
	switch he.Code {
	case http.StatusNotFound:
		return he.Code, wire.CodeNotFound, "no such endpoint"
	case http.StatusMethodNotAllowed:
		return he.Code, wire.CodeInvalidRequest, "method not allowed on this endpoint"
	case http.StatusRequestEntityTooLarge:
		return he.Code, wire.CodeTooLarge, "request body is too large"
	case http.StatusUnauthorized:
		return he.Code, wire.CodeUnauthenticated, msg
	case http.StatusUnsupportedMediaType:
		return http.StatusBadRequest, wire.CodeInvalidRequest, "send a JSON body with Content-Type: application/json"
	}
	if he.Code >= 400 && he.Code < 500 {
		return http.StatusBadRequest, wire.CodeInvalidRequest, msg
	}
	return http.StatusInternalServerError, wire.CodeInternal, "internal error"
}
