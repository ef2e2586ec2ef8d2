package servertest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/circles-coop/circles/wire"
)

// Response is what a server answered to Call: the status, the API error
// code when the body is an error body (API.md), and the raw body.
type Response struct {
	Status int
	Code   string
	Body   []byte
}

// Call sends one request to the server at base: body (nil: none) as JSON,
// token (empty: none) as a bearer token. It fails the test only when the
// request cannot be made; the answer, whatever its status, is returned.
func Call(tb testing.TB, base, method, path, token string, body []byte) Response {
	tb.Helper()
	req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var eb wire.ErrorBody
	_ = json.Unmarshal(b, &eb)
	return Response{Status: resp.StatusCode, Code: eb.Error.Code, Body: b}
}

// MustJSON is v encoded as JSON.
func MustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// MustGetJSON GETs path as d, requires 200 and decodes the body into v.
func MustGetJSON(tb testing.TB, base string, d *Device, path string, v any) {
	tb.Helper()
	r := Call(tb, base, "GET", path, d.Token, nil)
	if r.Status != http.StatusOK {
		tb.Fatalf("GET %s = %d %s", path, r.Status, r.Body)
	}
	if err := json.Unmarshal(r.Body, v); err != nil {
		tb.Fatalf("GET %s: %v", path, err)
	}
}

// WantErrorBody checks that body is API.md's error body,
// {"error": {"code", "message"}}, with a message.
func WantErrorBody(tb testing.TB, body []byte) {
	tb.Helper()
	var eb wire.ErrorBody
	if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Message == "" {
		tb.Errorf("error body %.200s is not {\"error\": {\"code\", \"message\"}}", body)
	}
}

// MustCall sends in (nil: no body) as JSON with token (empty: none),
// requires the status want, and decodes the answer into out (nil: not
// decoded); anything else fails tb with the answer.
func MustCall(tb testing.TB, base, method, path, token string, in any, want int, out any) {
	tb.Helper()
	var body []byte
	if in != nil {
		body = MustJSON(tb, in)
	}
	r := Call(tb, base, method, path, token, body)
	if r.Status != want {
		tb.Fatalf("%s %s = %d %.500s, want %d", method, path, r.Status, r.Body, want)
	}
	if out != nil {
		if err := json.Unmarshal(r.Body, out); err != nil {
			tb.Fatalf("%s %s: decoding the answer %.500s: %v", method, path, r.Body, err)
		}
	}
}
