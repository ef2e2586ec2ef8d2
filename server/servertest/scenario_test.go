package servertest_test

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// recorder is a testing.TB that records failures instead of failing, so
// that a test can check what a Scenario reports.
type recorder struct {
	testing.TB
	mu       sync.Mutex
	failures []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

func (r *recorder) Error(args ...any) { r.Errorf("%s", fmt.Sprint(args...)) }

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Fatal(args ...any) { r.Fatalf("%s", fmt.Sprint(args...)) }

// check runs s on a recorder in its own goroutine (a Fatal ends it) and
// returns the failures it reported.
func check(t *testing.T, s servertest.Scenario, base string) []string {
	rec := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Check(rec, base)
	}()
	<-done
	return rec.failures
}

// TestScenario: a scenario sends what it says (raw bytes and strings as
// they are, other bodies as JSON, the token as a bearer token), runs its
// hooks in order, passes when the answer is what it wants, and reports
// each way the answer can differ.
func TestScenario(t *testing.T) {
	c := servertest.Start(t, "Scenario Circle")
	url := c.URL()
	alice := servertest.MustEnroll(t, url, c.FounderInvite, "Alice")

	var order []string
	servertest.RunScenarios(t, url, []servertest.Scenario{
		{Name: "a JSON body and a token", Method: "POST", Path: "/v1/invites", Token: alice.Token, Body: wire.InviteRequest{For: "member"},
			WantStatus: http.StatusCreated, WantContains: []string{`"code"`, `"expires_at"`}},
		{Name: "a string body is sent as it is", Method: "POST", Path: "/v1/invites", Token: alice.Token, Body: `{"for": `,
			WantStatus: http.StatusBadRequest, WantCode: "invalid_request"},
		{Name: "no token", Method: "GET", Path: "/v1/circle", WantStatus: http.StatusUnauthorized, WantCode: "unauthenticated"},
		{Name: "a decoded body", Method: "GET", Path: "/v1/circle", Token: alice.Token, WantStatus: http.StatusOK,
			WantBody: servertest.WantJSON(func(tb testing.TB, got wire.Circle) {
				if got.Name != "Scenario Circle" || len(got.Members) != 1 || got.Members[0].MemberID != alice.Member {
					tb.Errorf("GET /v1/circle = %+v, want Scenario Circle with Alice alone", got)
				}
			})},
		{Name: "hooks in order", Method: "GET", Path: "/v1/circle", Token: alice.Token, WantStatus: http.StatusOK,
			Before: func(tb testing.TB) {
				order = append(order, "before")
				tb.Cleanup(func() { order = append(order, "cleanup") })
			},
			After: func(tb testing.TB, r servertest.Response) { order = append(order, fmt.Sprintf("after %d", r.Status)) }},
	})
	if got, want := strings.Join(order, ", "), "before, after 200, cleanup"; got != want {
		t.Errorf("hooks ran as %q, want %q", got, want)
	}

	for _, tc := range []struct {
		name string
		s    servertest.Scenario
		want string // part of the one failure reported
	}{
		{"another status", servertest.Scenario{Method: "GET", Path: "/v1/circle", Token: alice.Token, WantStatus: http.StatusTeapot},
			`GET /v1/circle = 200 "", want 418 ""`},
		{"another code", servertest.Scenario{Method: "GET", Path: "/v1/circle", WantStatus: http.StatusUnauthorized, WantCode: "forbidden"},
			`= 401 "unauthenticated", want 401 "forbidden"`},
		{"a page, no code wanted: passes", servertest.Scenario{Method: "GET", Path: "/join", WantStatus: http.StatusOK}, ""},
		{"a missing word", servertest.Scenario{Method: "GET", Path: "/v1/circle", Token: alice.Token, WantStatus: http.StatusOK, WantContains: []string{"Bob"}},
			`does not contain "Bob"`},
		{"a body check that fails", servertest.Scenario{Method: "GET", Path: "/v1/circle", Token: alice.Token, WantStatus: http.StatusOK,
			WantBody: func(tb testing.TB, _ []byte) { tb.Errorf("body refused") }}, "body refused"},
		{"a body that is not the type", servertest.Scenario{Method: "GET", Path: "/join", WantStatus: http.StatusOK,
			WantBody: servertest.WantJSON(func(testing.TB, wire.Circle) {})}, "invalid character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			failures := check(t, tc.s, url)
			switch {
			case tc.want == "" && len(failures) != 0:
				t.Errorf("failures %q, want none", failures)
			case tc.want != "" && (len(failures) != 1 || !strings.Contains(failures[0], tc.want)):
				t.Errorf("failures %q, want one naming %q", failures, tc.want)
			}
		})
	}

	// An expected code requires API.md's error body with a message.
	if failures := check(t, servertest.Scenario{Method: "GET", Path: "/join", WantStatus: http.StatusOK, WantCode: "not_found"}, url); len(failures) != 2 ||
		!strings.Contains(failures[1], `is not {"error": {"code", "message"}}`) {
		t.Errorf("a code wanted from a page: failures %q, want the code and the error body named", failures)
	}
}
