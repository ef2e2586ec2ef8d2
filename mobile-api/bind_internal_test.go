package mobileapi

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/circles-coop/circles/authority/fault"
	"github.com/circles-coop/circles/wire"
)

// TestBind: what bind decodes, and how it explains each kind of bad body.
func TestBind(t *testing.T) {
	e := echo.New()
	do := func(body string, chunked bool) (wire.SyncRequest, error) {
		req := httptest.NewRequest(http.MethodPost, "/v1/sync", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if chunked {
			req.ContentLength = -1 // no length given: the limit is found while reading
		}
		var v wire.SyncRequest
		err := bind(e.NewContext(req, httptest.NewRecorder()), 64, &v)
		return v, err
	}

	v, err := do(` {"messages":[{"doc":"d1","data":"AQID"}]} `, false)
	if err != nil {
		t.Fatalf("bind(valid) error = %v", err)
	}
	if len(v.Messages) != 1 || v.Messages[0].Doc != "d1" || string(v.Messages[0].Data) != "\x01\x02\x03" {
		t.Fatalf("bind(valid) = %+v, want one message d1 with bytes 1 2 3", v)
	}

	for _, tc := range []struct {
		name, body string
		chunked    bool
		code       string
		msg        string
	}{
		{"empty", "", false, fault.InvalidRequest, "the body is empty or cut short"},
		{"blank", " \n ", false, fault.InvalidRequest, "the body is empty or cut short"},
		{"cut short", `{"messages": [`, false, fault.InvalidRequest, "the body is empty or cut short"},
		{"two objects", `{} {}`, false, fault.InvalidRequest, "exactly one JSON object"},
		{"trailing text", `{}x`, false, fault.InvalidRequest, "exactly one JSON object"},
		{"not JSON", `{"messages": nope}`, false, fault.InvalidRequest, "malformed JSON at byte"},
		{"wrong type", `{"messages": 5}`, false, fault.InvalidRequest, `field "messages" must be an array, not number`},
		{"nested wrong type", `{"messages":[{"doc":5}]}`, false, fault.InvalidRequest, `field "messages.doc" must be a string, not number`},
		{"bad base64", `{"messages":[{"doc":"d","data":"!!"}]}`, false, fault.InvalidRequest, "malformed JSON body: illegal base64"},
		{"top level array", `[1]`, false, fault.InvalidRequest, `field "body" must be an object, not array`},
		{"over the limit, no length", `{"messages":[{"doc":"` + strings.Repeat("x", 100) + `"}]}`, true, fault.TooLarge, "over the limit of 64 bytes"},
		{"over the limit, length", `{"messages":[{"doc":"` + strings.Repeat("x", 100) + `"}]}`, false, fault.TooLarge, "over the limit of 64 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := do(tc.body, tc.chunked)
			var fe *fault.Error
			if !errors.As(err, &fe) {
				t.Fatalf("bind(%q) error = %v, want a fault", tc.body, err)
			}
			if fe.Code != tc.code || !strings.Contains(fe.Error(), tc.msg) {
				t.Fatalf("bind(%q) = %s %q, want %s containing %q", tc.body, fe.Code, fe.Error(), tc.code, tc.msg)
			}
		})
	}
}
