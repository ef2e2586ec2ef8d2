package mobileapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/circles-coop/circles/authority/fault"

	"github.com/labstack/echo/v4"

	mobileapi "github.com/circles-coop/circles/mobile-api"
	"github.com/circles-coop/circles/wire"
)

// The spec is checked as generic JSON: a typed OpenAPI library would be a
// new dependency for what a few map walks do here.

// publicOps are the operations that need no access token (API.md).
var publicOps = []string{
	"GET /healthz",
	"GET /readyz",
	"GET /metrics",
	"GET /v1/openapi.json",
	"GET /join",
	"GET /app",
	"GET /app/",
	"GET /app/{file}",
	"POST /v1/enroll",
	"POST /v1/token",
}

// plainErrorOps answer their errors in another format than the JSON error
// body: /metrics is served by the Prometheus client library.
var plainErrorOps = []string{"GET /metrics"}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// mustSpec fetches /v1/openapi.json from an API with no services, which is
// the embedded spec, and decodes it. The API serves /metrics as an
// operator may ask (server.Config.MetricsOnAPI), so the spec's /metrics
// is checked against the route.
func mustSpec(tb testing.TB) (*echo.Echo, map[string]any) {
	tb.Helper()
	e := mobileapi.New(mobileapi.Services{}, mobileapi.Options{Metrics: true})
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/openapi.json", nil))
	if rec.Code != http.StatusOK {
		tb.Fatalf("GET /v1/openapi.json = %d, want 200", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		tb.Fatalf("GET /v1/openapi.json Content-Type = %q, want application/json", ct)
	}
	var spec map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &spec); err != nil {
		tb.Fatalf("the embedded spec is not JSON: %v", err)
	}
	return e, spec
}

// operations lists the spec's operations as "METHOD /path".
func operations(spec map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	paths, _ := spec["paths"].(map[string]any)
	for path, item := range paths {
		item, _ := item.(map[string]any)
		for _, m := range httpMethods {
			if op, ok := item[m].(map[string]any); ok {
				out[strings.ToUpper(m)+" "+path] = op
			}
		}
	}
	return out
}

var echoParam = regexp.MustCompile(`:([A-Za-z0-9_]+)`)

// registered lists the routes the echo instance serves as "METHOD /path",
// with OpenAPI path parameters.
func registered(e *echo.Echo) map[string]bool {
	out := map[string]bool{}
	for _, r := range e.Routes() {
		if r.Method == echo.RouteNotFound {
			continue // echo's own catch-alls for groups with middleware
		}
		out[r.Method+" "+echoParam.ReplaceAllString(r.Path, "{$1}")] = true
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// resolve follows a local JSON pointer such as "#/components/schemas/Error".
func resolve(spec map[string]any, ref string) (any, bool) {
	ptr, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, false
	}
	var cur any = spec
	for _, tok := range strings.Split(ptr, "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = obj[tok]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// at walks down nested objects by key; it returns nil where one is missing.
func at(v map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		v, _ = v[k].(map[string]any)
	}
	return v
}

// deref follows $ref until it reaches an object without one.
func deref(spec map[string]any, v any) map[string]any {
	for range 10 {
		obj, _ := v.(map[string]any)
		ref, ok := obj["$ref"].(string)
		if !ok {
			return obj
		}
		v, _ = resolve(spec, ref)
	}
	return nil
}

func TestOpenAPIDocument(t *testing.T) {
	_, spec := mustSpec(t)
	v, _ := spec["openapi"].(string)
	if !strings.HasPrefix(v, "3.") {
		t.Errorf("openapi = %q, want 3.x", v)
	}
	info, _ := spec["info"].(map[string]any)
	if info["title"] == nil || info["version"] == nil {
		t.Errorf("info = %v, want title and version", info)
	}
	if len(operations(spec)) == 0 {
		t.Fatalf("the spec has no operations under paths")
	}
	scheme := at(spec, "components", "securitySchemes", "bearerAuth")
	if scheme["type"] != "http" || scheme["scheme"] != "bearer" || scheme["bearerFormat"] != "JWT" {
		t.Errorf("securitySchemes.bearerAuth = %v, want an http bearer JWT scheme", scheme)
	}
}

func TestOpenAPICoversRoutes(t *testing.T) {
	e, spec := mustSpec(t)
	routes := registered(e)
	ops := operations(spec)
	for _, r := range sortedKeys(routes) {
		if ops[r] == nil {
			t.Errorf("route %s is registered but not in openapi.json", r)
		}
	}
	for _, op := range sortedKeys(ops) {
		if !routes[op] {
			t.Errorf("openapi.json describes %s, which the server does not register", op)
		}
	}
}

func TestOpenAPISecurity(t *testing.T) {
	e, spec := mustSpec(t)
	global, _ := spec["security"].([]any)
	for _, name := range sortedKeys(operations(spec)) {
		op := operations(spec)[name]
		sec, set := op["security"].([]any)
		if !set {
			sec = global
		}
		public := len(sec) == 0
		if want := slices.Contains(publicOps, name); public != want {
			t.Errorf("%s: needs no token in openapi.json = %v, want %v", name, public, want)
			continue
		}
		if public {
			continue
		}
		if !hasResponse(op, http.StatusUnauthorized) {
			t.Errorf("%s needs a token but documents no 401", name)
		}
		// Without a token the middleware answers before any service runs,
		// so the nil services are never reached.
		method, path, _ := strings.Cut(name, " ")
		path = strings.NewReplacer("{id}", "x").Replace(path)
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		var body wire.ErrorBody
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != http.StatusUnauthorized || body.Error.Code != fault.Unauthenticated {
			t.Errorf("%s without a token = %d %s, want 401 %s", name, rec.Code, rec.Body.Bytes(), fault.Unauthenticated)
		}
	}
}

func hasResponse(op map[string]any, status int) bool {
	resp, _ := op["responses"].(map[string]any)
	_, ok := resp[strconv.Itoa(status)]
	return ok
}

func TestOpenAPIErrorResponses(t *testing.T) {
	_, spec := mustSpec(t)
	const errorSchema = "#/components/schemas/Error"
	for _, name := range sortedKeys(operations(spec)) {
		op := operations(spec)[name]
		responses, _ := op["responses"].(map[string]any)
		if len(responses) == 0 {
			t.Errorf("%s has no responses", name)
			continue
		}
		var errs []string
		for status, r := range responses {
			if status != "default" && !strings.HasPrefix(status, "4") && !strings.HasPrefix(status, "5") {
				continue
			}
			if at(deref(spec, r), "content", "application/json", "schema")["$ref"] != errorSchema {
				if !slices.Contains(plainErrorOps, name) {
					t.Errorf("%s: response %s does not use %s", name, status, errorSchema)
				}
				continue
			}
			errs = append(errs, status)
		}
		if len(errs) == 0 && !slices.Contains(plainErrorOps, name) {
			t.Errorf("%s documents no error response with %s", name, errorSchema)
		}
	}

	// The error body's codes are exactly the ones the server uses.
	codes, _ := at(spec, "components", "schemas", "ErrorDetail", "properties", "code")["enum"].([]any)
	var got []string
	for _, c := range codes {
		s, _ := c.(string)
		got = append(got, s)
	}
	want := []string{
		fault.InvalidRequest, fault.Unauthenticated, fault.Forbidden, fault.NotFound,
		fault.Conflict, fault.TooLarge, fault.RuleViolation, fault.RateLimited,
		fault.NotImplemented, fault.NotReady, fault.Internal,
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("ErrorDetail.code enum = %v, want %v", got, want)
	}
}

func TestOpenAPIRefsResolve(t *testing.T) {
	_, spec := mustSpec(t)
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if _, found := resolve(spec, ref); !found {
					t.Errorf("%s: $ref %q does not resolve", where, ref)
				}
			}
			for _, k := range sortedKeys(v) {
				walk(where+"/"+k, v[k])
			}
		case []any:
			for i, x := range v {
				walk(where+"/"+strconv.Itoa(i), x)
			}
		}
	}
	walk("#", spec)
}
