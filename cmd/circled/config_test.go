package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/circles-coop/circles/server"
)

func configFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "circled.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSettingsPrecedence: flags > environment > file > defaults, setting
// by setting; --config or CIRCLED_CONFIG names the file.
func TestSettingsPrecedence(t *testing.T) {
	file := configFile(t, "data: /srv/file\nlisten: 127.0.0.1:1001\nmemory_budget: 10MiB\nlog_level: error\nsync_always: true\n")
	def := server.DefaultSettings()
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want server.Settings
	}{
		{"defaults", []string{"--data", "/srv/flag"}, nil,
			server.Settings{DataDir: "/srv/flag", Listen: def.Listen, MemoryBudget: def.MemoryBudget, LogLevel: slog.LevelInfo}},
		{"file over defaults", []string{"--config", file}, nil,
			server.Settings{DataDir: "/srv/file", Listen: "127.0.0.1:1001", MemoryBudget: 10 << 20, LogLevel: slog.LevelError, SyncAlways: true}},
		{"env over file", []string{"--config", file},
			map[string]string{"CIRCLED_LISTEN": "127.0.0.1:2002", "CIRCLED_SYNC_ALWAYS": "false", "CIRCLED_DATA": "/srv/env"},
			server.Settings{DataDir: "/srv/env", Listen: "127.0.0.1:2002", MemoryBudget: 10 << 20, LogLevel: slog.LevelError}},
		{"flags over env over file", []string{"--config", file, "--listen", "127.0.0.1:3003", "--memory-budget", "20971520", "-v"},
			map[string]string{"CIRCLED_LISTEN": "127.0.0.1:2002", "CIRCLED_MEMORY_BUDGET": "15MiB", "CIRCLED_LOG_LEVEL": "warn"},
			server.Settings{DataDir: "/srv/file", Listen: "127.0.0.1:3003", MemoryBudget: 20 << 20, LogLevel: slog.LevelDebug, SyncAlways: true}},
		{"CIRCLED_CONFIG names the file", nil, map[string]string{"CIRCLED_CONFIG": file, "CIRCLED_LOG_LEVEL": "debug"},
			server.Settings{DataDir: "/srv/file", Listen: "127.0.0.1:1001", MemoryBudget: 10 << 20, LogLevel: slog.LevelDebug, SyncAlways: true}},
		{"a bool flag turns on", []string{"--data", "d", "--sync-always"}, map[string]string{"CIRCLED_SYNC_ALWAYS": "false"},
			server.Settings{DataDir: "d", Listen: def.Listen, MemoryBudget: def.MemoryBudget, LogLevel: slog.LevelInfo, SyncAlways: true}},
		{"cluster settings", []string{"--data", "d", "--replicas", "3"}, map[string]string{"CIRCLED_NATS_URL": "nats://127.0.0.1:4222,nats://127.0.0.1:4223"},
			server.Settings{DataDir: "d", Listen: def.Listen, MemoryBudget: def.MemoryBudget, LogLevel: slog.LevelInfo, NATSURL: "nats://127.0.0.1:4222,nats://127.0.0.1:4223", Replicas: 3}},
		{"metrics and proxies", []string{"--data", "d", "--metrics-listen", "127.0.0.1:9464", "--metrics-on-api"}, map[string]string{"CIRCLED_TRUSTED_PROXIES": "127.0.0.1"},
			server.Settings{DataDir: "d", Listen: def.Listen, MemoryBudget: def.MemoryBudget, LogLevel: slog.LevelInfo, MetricsListen: "127.0.0.1:9464", MetricsOnAPI: true, TrustedProxies: "127.0.0.1"}},
		{"a bool flag turns off", []string{"--config", file, "--sync-always=false"}, nil,
			server.Settings{DataDir: "/srv/file", Listen: "127.0.0.1:1001", MemoryBudget: 10 << 20, LogLevel: slog.LevelError}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := serveSettings(tc.args, func(k string) string { return tc.env[k] }, io.Discard)
			if err != nil {
				t.Fatalf("serveSettings() error = %v", err)
			}
			if got != tc.want {
				t.Fatalf("serveSettings() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestServeSettingErrors: each source's bad value is named by where it
// came from, and nothing is served.
func TestServeSettingErrors(t *testing.T) {
	bad := configFile(t, "data: /srv\nmemory_budget: lots\n")
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"bad flag value", []string{"--data", "d", "--memory-budget", "lots"}, nil, `invalid value "lots" for flag -memory-budget: "lots" is not a size`},
		{"bad flag listen", []string{"--data", "d", "--listen", "nowhere"}, nil, `invalid value "nowhere" for flag -listen: "nowhere" is not HOST:PORT`},
		{"unknown flag", []string{"--data", "d", "--lisen", "x"}, nil, "flag provided but not defined: -lisen"},
		{"bad env value", []string{"--data", "d"}, map[string]string{"CIRCLED_LOG_LEVEL": "loud"}, `environment CIRCLED_LOG_LEVEL: "loud" is not one of debug, info, warn, error`},
		{"bad file value", []string{"--config", bad}, nil, bad + `: line 2: memory_budget: "lots" is not a size`},
		{"bad file even when a flag overrides it", []string{"--config", bad, "--memory-budget", "64MiB"}, nil, "line 2: memory_budget"},
		{"missing file", []string{"--config", bad + ".gone"}, nil, "no such file"},
		{"no data anywhere", []string{"--listen", "127.0.0.1:0"}, nil, "data: required (--data DIR, CIRCLED_DATA or data: in the config file)"},
		{"replicas without a cluster", []string{"--data", "d", "--replicas", "3"}, nil, "replicas: 3 needs nats_url (the embedded server is one node)"},
		{"creds without a cluster", []string{"--data", "d"}, map[string]string{"CIRCLED_NATS_CREDS": "/etc/c.creds"}, "nats_creds: needs nats_url"},
		{"bad replicas flag", []string{"--data", "d", "--replicas", "three"}, nil, `invalid value "three" for flag -replicas: "three" is not a number 1..5`},
		{"stray argument", []string{"--data", "d", "extra"}, nil, `unexpected argument "extra"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := serveSettings(tc.args, func(k string) string { return tc.env[k] }, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("serveSettings() = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestConfigCheck runs `circled config check` as an operator would.
func TestConfigCheck(t *testing.T) {
	good := configFile(t, "listen: 127.0.0.1:8080\ndata: /var/lib/circled\n")
	bad := configFile(t, "listen: 127.0.0.1:8080\nmemory_budgte: 64MiB\n")
	cases := []struct {
		args     []string
		code     int
		out, err string
	}{
		{[]string{"config", "check", good}, 0, good + ": ok (sets data, listen)", ""},
		{[]string{"config", "check", bad}, 1, "", `line 2: unknown key "memory_budgte"`},
		{[]string{"config", "check"}, 2, "", "usage: circled config check FILE"},
		{[]string{"config", "lint", good}, 2, "", "usage: circled config check FILE"},
	}
	for _, tc := range cases {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tc.args, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stdout.String(), tc.out) || !strings.Contains(stderr.String(), tc.err) {
			t.Fatalf("circled %v: exit %d, stdout %q, stderr %q; want %d, %q, %q", tc.args, code, stdout.String(), stderr.String(), tc.code, tc.out, tc.err)
		}
	}
}

// TestDeployConfigChecks: the example config in deploy/ is valid.
func TestDeployConfigChecks(t *testing.T) {
	var stdout, stderr bytes.Buffer
	p := filepath.Join("..", "..", "deploy", "circled.yaml")
	if code := run(context.Background(), []string{"config", "check", p}, &stdout, &stderr); code != 0 {
		t.Fatalf("circled config check %s: exit %d: %s", p, code, stderr.String())
	}
	if want := "ok (sets data, listen, log_level, memory_budget, sync_always)"; !strings.Contains(stdout.String(), want) {
		t.Fatalf("circled config check %s printed %q, want %q", p, stdout.String(), want)
	}
}
