package mobileapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/circles-coop/circles/authority/fault"

	"github.com/labstack/echo/v4"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/sync/engine"
)

var statusOf = map[string]int{
	fault.InvalidRequest:  http.StatusBadRequest,
	fault.Unauthenticated: http.StatusUnauthorized,
	fault.Forbidden:       http.StatusForbidden,
	fault.NotFound:        http.StatusNotFound,
	fault.Conflict:        http.StatusConflict,
	fault.TooLarge:        http.StatusRequestEntityTooLarge,
	fault.RuleViolation:   http.StatusUnprocessableEntity,
	fault.RateLimited:     http.StatusTooManyRequests,
	fault.NotImplemented:  http.StatusNotImplemented,
	fault.NotReady:        http.StatusServiceUnavailable,
	fault.Internal:        http.StatusInternalServerError,
}

// classify maps any error to the API's code and safe message. It is the
// single place where domain and engine errors meet HTTP.
func classify(err error) (status int, code, msg string) {
	var apiErr *fault.Error
	var rule *crdt.RuleError
	var he *echo.HTTPError
	switch {
	case errors.As(err, &apiErr):
		code, msg = apiErr.Code, apiErr.Message
	case errors.As(err, &rule):
		code, msg = fault.RuleViolation, "rule "+rule.Rule+": "+rule.Message
	case errors.Is(err, engine.ErrBadMessage):
		code, msg = fault.InvalidRequest, "messages: "+err.Error()
	case errors.Is(err, engine.ErrUnknownDoc):
		code, msg = fault.NotFound, "no such document in this circle: "+err.Error()
	case errors.Is(err, engine.ErrForbidden):
		code, msg = fault.Forbidden, "you may not read this document: "+err.Error()
	case errors.Is(err, engine.ErrStore), errors.Is(err, engine.ErrClosed):
		code, msg = fault.NotReady, "the circle's store is not available; nothing was applied, try again"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		code, msg = fault.NotReady, "the request timed out; nothing acknowledged was lost, try again"
	case errors.As(err, &he):
		return httpError(he)
	default:
		code, msg = fault.Internal, "internal error"
	}
	return statusOf[code], code, msg
}

// httpError maps echo's own errors (routing, body limit, bad JSON).
func httpError(he *echo.HTTPError) (int, string, string) {
	msg := fmt.Sprint(he.Message)
	switch he.Code {
	case http.StatusNotFound:
		return he.Code, fault.NotFound, "no such endpoint"
	case http.StatusMethodNotAllowed:
		return he.Code, fault.InvalidRequest, "method not allowed on this endpoint"
	case http.StatusRequestEntityTooLarge:
		return he.Code, fault.TooLarge, "request body is too large"
	case http.StatusUnauthorized:
		return he.Code, fault.Unauthenticated, msg
	case http.StatusUnsupportedMediaType:
		return http.StatusBadRequest, fault.InvalidRequest, "send a JSON body with Content-Type: application/json"
	}
	if he.Code >= 400 && he.Code < 500 {
		return http.StatusBadRequest, fault.InvalidRequest, msg
	}
	return http.StatusInternalServerError, fault.Internal, "internal error"
}
