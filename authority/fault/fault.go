// Package fault holds the circle's domain errors: an Error with a stable
// code and a message that is safe to show to whoever asked, and the codes
// themselves. The authority returns them; each transport maps a code to
// its own answer in one place (mobile-api's table maps them to HTTP
// statuses, API.md "every error is ..."). The package imports nothing of
// the project, so every layer may use it.
package fault

import (
	"errors"
	"fmt"
)

// The codes, as API.md names them. The comment gives the HTTP status
// mobile-api answers with.
const (
	InvalidRequest  = "invalid_request" // 400: the message names the field
	Unauthenticated = "unauthenticated" // 401
	Forbidden       = "forbidden"       // 403
	NotFound        = "not_found"       // 404
	Conflict        = "conflict"        // 409
	TooLarge        = "too_large"       // 413
	RuleViolation   = "rule_violation"  // 422: a sync or domain rule; the message names it
	RateLimited     = "rate_limited"    // 429
	Internal        = "internal"        // 500
	NotImplemented  = "not_implemented" // 501
	NotReady        = "not_ready"       // 503
)

// Error is a refusal the caller can act on: Code is one of the constants
// above, Message a sentence safe to show, Err the cause (for logs only).
type Error struct {
	Code    string
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Message + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error with code and message whose cause is err.
func Wrap(err error, code, message string) *Error {
	return &Error{Code: code, Message: message, Err: err}
}

// CodeOf returns the code of the first *Error in err's chain, or "" when
// there is none.
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
