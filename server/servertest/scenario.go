package servertest

import (
	"encoding/json"
	"strings"
	"testing"
)

// Scenario is one HTTP API call of a test and what must come of it, read
// as a line of a specification: who (Token) asks what (Method, Path, Body)
// and what they get (WantStatus, WantCode, WantContains, WantBody).
// A table of scenarios runs with RunScenarios, each as a subtest named Name,
// in order, against the same server.
type Scenario struct {
	Name   string
	Method string
	Path   string
	Token  string // a bearer token; empty: none

	// Body is sent as the request body with Content-Type application/json:
	// []byte and string as they are (to send malformed JSON), anything else
	// encoded as JSON; nil sends no body.
	Body any

	// WantStatus is the HTTP status the server must answer.
	WantStatus int
	// WantCode, if not empty, is the API error code (authority/fault's
	// codes, e.g. "invalid_request") the answer must carry in an error body
	// {"error": {"code", "message"}} with a message.
	WantCode string
	// WantContains are strings the body must contain.
	WantContains []string
	// WantBody, if set, checks the body further.
	WantBody func(tb testing.TB, body []byte)

	// Before runs before the request: it may move a clock and register
	// its undoing with tb.Cleanup.
	Before func(tb testing.TB)
	// After runs after the answer was checked, for assertions on the
	// server's state (e.g. MustStoreUnchanged).
	After func(tb testing.TB, r Response)
}

// RunScenarios runs each scenario as a subtest of t against the server at
// base, in order.
func RunScenarios(t *testing.T, base string, scenarios []Scenario) {
	t.Helper()
	for _, s := range scenarios {
		s.Run(t, base)
	}
}

// Run runs s as the subtest s.Name of t against the server at base and
// reports whether it passed.
func (s Scenario) Run(t *testing.T, base string) bool {
	t.Helper()
	return t.Run(s.Name, func(t *testing.T) { s.Check(t, base) })
}

// Check runs s in tb itself, without a subtest: Before, the request, the
// checks of the answer, After.
func (s Scenario) Check(tb testing.TB, base string) {
	tb.Helper()
	if s.Before != nil {
		s.Before(tb)
	}
	r := Call(tb, base, s.Method, s.Path, s.Token, s.body(tb))
	if r.Status != s.WantStatus || (s.WantCode != "" && r.Code != s.WantCode) {
		tb.Errorf("%s %s = %d %q, want %d %q (body %.300s)", s.Method, s.Path, r.Status, r.Code, s.WantStatus, s.WantCode, r.Body)
	}
	if s.WantCode != "" {
		WantErrorBody(tb, r.Body)
	}
	for _, w := range s.WantContains {
		if !strings.Contains(string(r.Body), w) {
			tb.Errorf("%s %s: body %.300s does not contain %q", s.Method, s.Path, r.Body, w)
		}
	}
	if s.WantBody != nil {
		s.WantBody(tb, r.Body)
	}
	if s.After != nil {
		s.After(tb, r)
	}
}

func (s Scenario) body(tb testing.TB) []byte {
	tb.Helper()
	switch b := s.Body.(type) {
	case nil:
		return nil
	case []byte:
		return b
	case string:
		return []byte(b)
	default:
		return MustJSON(tb, b)
	}
}

// WantJSON returns a WantBody that decodes the body into a new T and
// passes it to check.
func WantJSON[T any](check func(tb testing.TB, v T)) func(testing.TB, []byte) {
	return func(tb testing.TB, body []byte) {
		tb.Helper()
		var v T
		if err := json.Unmarshal(body, &v); err != nil {
			tb.Fatalf("body %.300s: %v", body, err)
		}
		check(tb, v)
	}
}
