package server_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/circles-coop/circles/server"
)

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "circled.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLoadFile reads every setting from a file, relative paths against
// the file's directory.
func TestLoadFile(t *testing.T) {
	p := writeConfig(t, `# a circle
data: circle
listen: "[::1]:9090"
addr_file: /run/circled/addr
sync_always: true
memory_budget: 64MiB
log_level: warn
`)
	s := server.DefaultSettings()
	if err := s.LoadFile(p); err != nil {
		t.Fatalf("LoadFile() = %v", err)
	}
	want := server.Settings{DataDir: filepath.Join(filepath.Dir(p), "circle"), Listen: "[::1]:9090", AddrFile: "/run/circled/addr",
		SyncAlways: true, MemoryBudget: 64 << 20, LogLevel: slog.LevelWarn}
	if s != want {
		t.Fatalf("LoadFile() settings = %+v, want %+v", s, want)
	}
	cfg := server.DefaultConfig()
	s.NATSURL, s.NATSCreds, s.Replicas = "nats://127.0.0.1:4222", "/etc/c.creds", 3
	s.MetricsListen, s.MetricsOnAPI, s.TrustedProxies = "127.0.0.1:9464", true, "10.0.0.1, 192.168.0.0/16"
	s.Apply(&cfg)
	if cfg.MetricsListen != "127.0.0.1:9464" || !cfg.MetricsOnAPI || len(cfg.TrustedProxies) != 2 || cfg.TrustedProxies[1] != "192.168.0.0/16" {
		t.Fatalf("Apply() metrics and proxies = %q %v %q", cfg.MetricsListen, cfg.MetricsOnAPI, cfg.TrustedProxies)
	}
	if cfg.DataDir != s.DataDir || cfg.Listen != s.Listen || cfg.AddrFile != s.AddrFile || !cfg.SyncAlways ||
		cfg.MemoryBudget != s.MemoryBudget || cfg.NATSURL != s.NATSURL || cfg.NATSCreds != s.NATSCreds || cfg.Replicas != 3 {
		t.Fatalf("Apply() config = %+v, from %+v", cfg, s)
	}
	for _, empty := range []string{"", "# nothing here\n"} {
		s := server.DefaultSettings()
		if err := s.LoadFile(writeConfig(t, empty)); err != nil || s != server.DefaultSettings() {
			t.Fatalf("LoadFile(%q) = %v, %+v; want no error and the defaults", empty, err, s)
		}
	}
}

// TestLoadFileErrors: every way a file can be wrong is refused with a
// message naming the line and the key and saying why, and sets nothing.
func TestLoadFileErrors(t *testing.T) {
	cases := []struct{ name, content, want string }{
		{"not YAML", "listen: [\n", "not YAML"},
		{"not a mapping", "- listen\n", "line 1: want a mapping of settings"},
		{"unknown key", "listen: 127.0.0.1:1\nlisen: x\n", `line 2: unknown key "lisen" (known: data, listen, addr_file, sync_always, tick_every, memory_budget, go_memory_limit, log_level, metrics_listen, metrics_on_api, pprof, trusted_proxies, nats_url, nats_creds, replicas, audit_segment_entries, governance_archive_proposals, failover, advertise, instance)`},
		{"key twice", "listen: 127.0.0.1:1\nlisten: 127.0.0.1:2\n", "line 2: listen: given twice"},
		{"a list value", "listen:\n  - 127.0.0.1:1\n", "line 2: listen: want a single value, not a list or mapping"},
		{"no value", "listen:\n", "line 1: listen: no value"},
		{"empty data", "data: ''\n", "line 1: data: must not be empty"},
		{"listen without port", "listen: localhost\n", `line 1: listen: "localhost" is not HOST:PORT`},
		{"listen port out of range", "listen: 127.0.0.1:99999\n", `listen: "127.0.0.1:99999": port "99999" is not a number 0..65535`},
		{"sync_always not a bool", "sync_always: maybe\n", `line 1: sync_always: "maybe" is not true or false`},
		{"memory_budget not a size", "memory_budget: lots\n", `line 1: memory_budget: "lots" is not a size (bytes, or e.g. 64MiB)`},
		{"memory_budget bad unit", "memory_budget: 5TiB\n", `memory_budget: "5TiB" is not a size`},
		{"memory_budget too small", "memory_budget: 1KiB\n", "memory_budget: 1KiB is outside 1MiB..64GiB"},
		{"memory_budget overflow", "memory_budget: 99999999999999G\n", `memory_budget: "99999999999999G" is too large`},
		{"go_memory_limit too small", "go_memory_limit: 1MiB\n", "go_memory_limit: 1MiB is outside 16MiB..64GiB"},
		{"go_memory_limit not a size", "go_memory_limit: lots\n", `go_memory_limit: "lots" is not a size`},
		{"log_level unknown", "log_level: loud\n", `line 1: log_level: "loud" is not one of debug, info, warn, error`},
		{"nats_url not a URL", "nats_url: localhost:4222\n", `line 1: nats_url: "localhost:4222" is not a NATS URL`},
		{"nats_url one bad of two", "nats_url: nats://a:4222,http://b:80\n", `nats_url: "http://b:80" is not a NATS URL`},
		{"nats_creds empty", "nats_creds: ''\n", "line 1: nats_creds: must not be empty"},
		{"replicas out of range", "replicas: 7\n", `line 1: replicas: "7" is not a number 1..5`},
		{"metrics_listen not HOST:PORT", "metrics_listen: 9464\n", `line 1: metrics_listen: "9464" is not HOST:PORT`},
		{"metrics_on_api not a bool", "metrics_on_api: sometimes\n", `metrics_on_api: "sometimes" is not true or false`},
		{"trusted_proxies not addresses", "trusted_proxies: 10.0.0.1, proxy.local\n", "line 1: trusted_proxies: "},
		{"too large", "# " + strings.Repeat("x", 1<<20) + "\n", "larger than 1048576 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := writeConfig(t, tc.content)
			s := server.DefaultSettings()
			err := s.LoadFile(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), p) {
				t.Fatalf("LoadFile() = %v, want an error starting with the path and saying %q", err, tc.want)
			}
			if s != server.DefaultSettings() {
				t.Fatalf("a refused file changed the settings: %+v", s)
			}
			if _, err := server.CheckConfigFile(p); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CheckConfigFile() = %v, want %q", err, tc.want)
			}
		})
	}
	s := server.DefaultSettings()
	if err := s.LoadFile(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("LoadFile(missing) = %v, want no such file", err)
	}
}

// TestLoadEnv names the variable of a bad value and leaves unset ones.
func TestLoadEnv(t *testing.T) {
	env := map[string]string{"CIRCLED_LISTEN": "127.0.0.1:7000", "CIRCLED_SYNC_ALWAYS": "1", "CIRCLED_LOG_LEVEL": "DEBUG"}
	s := server.DefaultSettings()
	if err := s.LoadEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if s.Listen != "127.0.0.1:7000" || !s.SyncAlways || s.LogLevel != slog.LevelDebug || s.MemoryBudget != server.DefaultSettings().MemoryBudget {
		t.Fatalf("LoadEnv() settings = %+v", s)
	}
	env = map[string]string{"CIRCLED_MEMORY_BUDGET": "lots"}
	err := s.LoadEnv(func(k string) string { return env[k] })
	if want := `environment CIRCLED_MEMORY_BUDGET: "lots" is not a size`; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("LoadEnv() = %v, want %q", err, want)
	}
	if err := s.Set("nope", "1"); err == nil || !strings.Contains(err.Error(), `unknown setting "nope"`) {
		t.Fatalf("Set(nope) = %v", err)
	}
}

// TestValidateClusterSettings: the combinations cluster mode refuses.
func TestValidateClusterSettings(t *testing.T) {
	cases := []struct {
		name string
		set  func(c *server.Config)
		want string
	}{
		{"replicas without a cluster", func(c *server.Config) { c.Replicas = 3 }, "replicas above 1 need an external NATS cluster"},
		{"replicas out of range", func(c *server.Config) { c.NATSURL, c.Replicas = "nats://127.0.0.1:4222", 6 }, "replicas 6: want 1..5"},
		{"creds without a cluster", func(c *server.Config) { c.NATSCreds = "/etc/c.creds" }, "needs --nats-url"},
		{"sync_always with a cluster", func(c *server.Config) { c.NATSURL, c.SyncAlways = "nats://127.0.0.1:4222", true }, "set sync_always on the cluster's servers"},
	}
	for _, tc := range cases {
		cfg := server.DefaultConfig()
		cfg.DataDir = t.TempDir()
		tc.set(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: Validate() = %v, want %q", tc.name, err, tc.want)
		}
	}
}
