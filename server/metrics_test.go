package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/circles-coop/circles/server"
	"github.com/circles-coop/circles/server/servertest"
)

func getText(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestMetricsListener: /metrics is not on the API listener by default;
// Config.MetricsListen serves it on a listener of its own, and
// Config.MetricsOnAPI puts it back on the API listener when an operator
// asks for it.
func TestMetricsListener(t *testing.T) {
	for _, tc := range []struct {
		name      string
		mod       func(*server.Config)
		onAPI     bool
		ownServer bool
	}{
		{"default", func(*server.Config) {}, false, false},
		{"own listener", func(c *server.Config) { c.MetricsListen = "127.0.0.1:0" }, false, true},
		{"on the API when asked", func(c *server.Config) { c.MetricsOnAPI = true }, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := servertest.Start(t, "Metrics", servertest.WithConfig(tc.mod))
			status, body := getText(t, c.URL()+"/metrics")
			if got := status == http.StatusOK && strings.Contains(body, "go_goroutines"); got != tc.onAPI {
				t.Errorf("GET /metrics on the API listener = %d (metrics served: %v), want served %v", status, got, tc.onAPI)
			}
			addr := c.Server.MetricsAddr()
			if (addr != "") != tc.ownServer {
				t.Fatalf("MetricsAddr() = %q, want a listener: %v", addr, tc.ownServer)
			}
			if addr == "" {
				return
			}
			status, body = getText(t, "http://"+addr+"/metrics")
			if status != http.StatusOK || !strings.Contains(body, "circles_rule_violations_total") && !strings.Contains(body, "go_goroutines") {
				t.Errorf("GET /metrics on the metrics listener = %d %.200s, want the metrics", status, body)
			}
			if status, _ := getText(t, "http://"+addr+"/v1/circle"); status != http.StatusNotFound {
				t.Errorf("GET /v1/circle on the metrics listener = %d, want 404 (it serves metrics only)", status)
			}
		})
	}
}

// TestPprof: the profiler is off unless asked for, is served only on the
// metrics listener, and cannot be asked for without one.
func TestPprof(t *testing.T) {
	for _, tc := range []struct {
		name  string
		pprof bool
	}{{"off by default", false}, {"on when asked", true}} {
		t.Run(tc.name, func(t *testing.T) {
			c := servertest.Start(t, "Pprof", servertest.WithConfig(func(cfg *server.Config) {
				cfg.MetricsListen, cfg.Pprof = "127.0.0.1:0", tc.pprof
			}))
			status, body := getText(t, "http://"+c.Server.MetricsAddr()+"/debug/pprof/goroutine?debug=1")
			if served := status == http.StatusOK && strings.Contains(body, "goroutine profile"); served != tc.pprof {
				t.Errorf("GET /debug/pprof/goroutine on the metrics listener = %d (profile served: %v), want %v", status, served, tc.pprof)
			}
			if status, _ := getText(t, c.URL()+"/debug/pprof/goroutine?debug=1"); status == http.StatusOK {
				t.Errorf("GET /debug/pprof/goroutine on the API listener = %d, want it not served", status)
			}
		})
	}
	cfg := server.DefaultConfig()
	cfg.DataDir, cfg.Pprof = t.TempDir(), true
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "metrics") {
		t.Errorf("Validate with Pprof and no metrics listener = %v, want an error naming the metrics listener", err)
	}
}
