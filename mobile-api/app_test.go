package mobileapi_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/circles-coop/circles/authority/fault"
	mobileapi "github.com/circles-coop/circles/mobile-api"
	"github.com/circles-coop/circles/wire"
)

// builtApp is a stand-in for mobile-api/app/dist after `make app`.
var builtApp = fstest.MapFS{
	"index.html":           {Data: []byte("<!doctype html><title>Circles</title><p>the app</p>")},
	"app.js":               {Data: []byte("console.log('app');" + strings.Repeat(" ", 4000))},
	"sw.js":                {Data: []byte("self.addEventListener('fetch', () => {});")},
	"automerge.wasm":       {Data: []byte("\x00asm\x01\x00\x00\x00")},
	"manifest.webmanifest": {Data: []byte(`{"name":"Circles"}`)},
	"icon-192.png":         {Data: []byte("\x89PNG")},
	".keep":                {Data: nil},
}

func serveApp(t *testing.T, app fstest.MapFS, method, path string, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	e := mobileapi.New(mobileapi.Services{}, mobileapi.Options{App: app})
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return rec
}

func TestAppServesFiles(t *testing.T) {
	index := string(builtApp["index.html"].Data)
	for _, tt := range []struct {
		path, wantType, wantBody string
	}{
		{"/app/", "text/html; charset=utf-8", index},
		{"/join", "text/html; charset=utf-8", index},
		{"/app/ledger", "text/html; charset=utf-8", index}, // a page of the app
		{"/app/index.html", "text/html; charset=utf-8", index},
		{"/app/app.js", "text/javascript; charset=utf-8", string(builtApp["app.js"].Data)},
		{"/app/sw.js", "text/javascript; charset=utf-8", string(builtApp["sw.js"].Data)},
		{"/app/automerge.wasm", "application/wasm", string(builtApp["automerge.wasm"].Data)},
		{"/app/manifest.webmanifest", "application/manifest+json", string(builtApp["manifest.webmanifest"].Data)},
		{"/app/icon-192.png", "image/png", string(builtApp["icon-192.png"].Data)},
	} {
		t.Run(tt.path, func(t *testing.T) {
			rec := serveApp(t, builtApp, http.MethodGet, tt.path, nil)
			if rec.Code != http.StatusOK {
				t.Fatalf("GET %s = %d %.200s, want 200", tt.path, rec.Code, rec.Body)
			}
			if got := rec.Header().Get("Content-Type"); got != tt.wantType {
				t.Errorf("GET %s Content-Type = %q, want %q", tt.path, got, tt.wantType)
			}
			if got := rec.Body.String(); got != tt.wantBody {
				t.Errorf("GET %s body = %.80q, want %.80q", tt.path, got, tt.wantBody)
			}
			if got := rec.Header().Get("Cache-Control"); got != "no-cache" {
				t.Errorf("GET %s Cache-Control = %q, want no-cache (the service worker keeps the app offline)", tt.path, got)
			}
			if rec.Header().Get("ETag") == "" || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("GET %s headers = %v, want an ETag and nosniff", tt.path, rec.Header())
			}
		})
	}
}

func TestAppHeaders(t *testing.T) {
	rec := serveApp(t, builtApp, http.MethodGet, "/app/sw.js", nil)
	if got := rec.Header().Get("Service-Worker-Allowed"); got != "/app/" {
		t.Errorf("sw.js Service-Worker-Allowed = %q, want /app/", got)
	}
	rec = serveApp(t, builtApp, http.MethodGet, "/join", nil)
	csp := rec.Header().Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "'wasm-unsafe-eval'") || strings.Contains(csp, "'unsafe-inline'") {
		t.Errorf("/join Content-Security-Policy = %q, want self only, wasm allowed, no inline scripts", csp)
	}

	// An unchanged file costs a 304.
	etag := serveApp(t, builtApp, http.MethodGet, "/app/sw.js", nil).Header().Get("ETag")
	rec = serveApp(t, builtApp, http.MethodGet, "/app/sw.js", http.Header{"If-None-Match": {etag}})
	if rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
		t.Errorf("GET /app/sw.js with If-None-Match %s = %d (%d bytes), want 304 and no body", etag, rec.Code, rec.Body.Len())
	}

	// A large file goes gzipped to a browser that takes gzip, with its own
	// ETag, and decompresses to the file.
	rec = serveApp(t, builtApp, http.MethodGet, "/app/app.js", http.Header{"Accept-Encoding": {"gzip, br"}})
	if rec.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("GET /app/app.js with Accept-Encoding gzip: Content-Encoding = %q, want gzip", rec.Header().Get("Content-Encoding"))
	}
	if rec.Header().Get("ETag") == serveApp(t, builtApp, http.MethodGet, "/app/app.js", nil).Header().Get("ETag") {
		t.Errorf("gzipped and plain app.js share an ETag")
	}
	zr, err := gzip.NewReader(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(plain, builtApp["app.js"].Data) {
		t.Errorf("gunzipped app.js = %d bytes (err %v), want the file (%d bytes)", len(plain), err, len(builtApp["app.js"].Data))
	}
}

func TestAppMissingFiles(t *testing.T) {
	for _, path := range []string{"/app/nope.js", "/app/.keep", "/app/..%2fopenapi.json"} {
		rec := serveApp(t, builtApp, http.MethodGet, path, nil)
		var body wire.ErrorBody
		if rec.Code != http.StatusNotFound || json.Unmarshal(rec.Body.Bytes(), &body) != nil || body.Error.Code != fault.NotFound {
			t.Errorf("GET %s = %d %.200s, want 404 not_found", path, rec.Code, rec.Body)
		}
	}
	rec := serveApp(t, builtApp, http.MethodGet, "/app", nil)
	if rec.Code != http.StatusMovedPermanently || rec.Header().Get("Location") != "/app/" {
		t.Errorf("GET /app = %d Location %q, want 301 to /app/", rec.Code, rec.Header().Get("Location"))
	}
}

// TestAppNotBuilt: a binary built before the front-end (a fresh clone's
// go build) says how to build it, and /join still explains circlectl join.
func TestAppNotBuilt(t *testing.T) {
	notBuilt := fstest.MapFS{".keep": {Data: nil}}
	rec := serveApp(t, notBuilt, http.MethodGet, "/app/", nil)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "make build") {
		t.Errorf("GET /app/ without a build = %d %.200s, want a page saying to run make build", rec.Code, rec.Body)
	}
	rec = serveApp(t, notBuilt, http.MethodGet, "/app/ledger", nil)
	if !strings.Contains(rec.Body.String(), "make build") {
		t.Errorf("GET /app/ledger without a build = %d %.200s, want the make build page", rec.Code, rec.Body)
	}
	rec = serveApp(t, notBuilt, http.MethodGet, "/join", nil)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "circlectl join") {
		t.Errorf("GET /join without a build = %d %.200s, want the circlectl join page", rec.Code, rec.Body)
	}
}
