package server_test

import (
	"strings"
	"testing"

	"github.com/circles-coop/circles/server"
)

// TestGoLimit: the Go runtime's soft limit is twice the memory budget
// unless set, none when off, and GOMEMLIMIT in the environment wins.
func TestGoLimit(t *testing.T) {
	noEnv := func(string) string { return "" }
	load := func(content string) server.Settings {
		t.Helper()
		s := server.DefaultSettings()
		if err := s.LoadFile(writeConfig(t, content)); err != nil {
			t.Fatal(err)
		}
		return s
	}
	cases := []struct {
		name, file string
		getenv     func(string) string
		want       int64
		set        bool
	}{
		{"default: twice the default budget", "", noEnv, 64 << 20, true},
		{"twice the budget", "memory_budget: 100MiB\n", noEnv, 200 << 20, true},
		{"set", "memory_budget: 100MiB\ngo_memory_limit: 48MiB\n", noEnv, 48 << 20, true},
		{"off", "go_memory_limit: OFF\n", noEnv, 0, false},
		{"GOMEMLIMIT wins", "go_memory_limit: 48MiB\n", func(k string) string {
			if k == "GOMEMLIMIT" {
				return "1GiB"
			}
			return ""
		}, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, set := server.GoLimit(load(tc.file), tc.getenv)
			if got != tc.want || set != tc.set {
				t.Fatalf("GoLimit() = %d, %v; want %d, %v", got, set, tc.want, tc.set)
			}
		})
	}
	if _, err := server.CheckConfigFile(writeConfig(t, "go_memory_limit: 100GiB\n")); err == nil || !strings.Contains(err.Error(), "outside 16MiB..64GiB") {
		t.Fatalf("CheckConfigFile(100GiB) = %v, want the range refused", err)
	}
}
