package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/google/go-cmp/cmp"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/mobile-api/client"
	"github.com/circles-coop/circles/wire"
)

func TestParseQuantity(t *testing.T) {
	tests := []struct {
		in        string
		want      float64
		wantHours bool
		wantErr   bool
	}{
		{"2h", 2, true, false},
		{"1.5h", 1.5, true, false},
		{"90m", 1.5, true, false},
		{"1h30m", 1.5, true, false},
		{"20m", 0.333333, true, false},
		{"45s", 0.0125, true, false},
		{"3", 3, false, false},
		{"0.25", 0.25, false, false},
		{"0h", 0, false, true},
		{"0", 0, false, true},
		{"-2h", 0, false, true},
		{"-1", 0, false, true},
		{"NaN", 0, false, true},
		{"inf", 0, false, true},
		{"2 hours", 0, false, true},
		{"two", 0, false, true},
		{"", 0, false, true},
	}
	for _, tt := range tests {
		got, hours, err := parseQuantity(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseQuantity(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if got != tt.want || hours != tt.wantHours {
			t.Errorf("parseQuantity(%q) = %v, %v, want %v, %v", tt.in, got, hours, tt.want, tt.wantHours)
		}
	}
}

func TestParseWhen(t *testing.T) {
	loc := time.FixedZone("CEST", 2*3600)
	now := time.Date(2025, 5, 2, 12, 0, 0, 0, loc)
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{"", now, false},
		{"now", now, false},
		{"yesterday", now.Add(-24 * time.Hour), false},
		{"-3h", now.Add(-3 * time.Hour), false},
		{"2025-05-01T18:00:00Z", time.Date(2025, 5, 1, 18, 0, 0, 0, time.UTC), false},
		{"2025-05-01 18:00", time.Date(2025, 5, 1, 18, 0, 0, 0, loc), false},
		{"2025-05-01T18:00", time.Date(2025, 5, 1, 18, 0, 0, 0, loc), false},
		{"2025-05-01", time.Date(2025, 5, 1, 0, 0, 0, 0, loc), false},
		{"last tuesday", time.Time{}, true},
		{"2025-13-01", time.Time{}, true},
	}
	for _, tt := range tests {
		got, err := parseWhen(tt.in, now)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseWhen(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if !got.Equal(tt.want) {
			t.Errorf("parseWhen(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestInviteCode(t *testing.T) {
	tests := []struct{ in, want string }{
		{"ABCD-1234", "ABCD-1234"},
		{" ABCD-1234\n", "ABCD-1234"},
		{"https://circle.example.org/join?code=ABCD", "ABCD"},
		{"https://circle.example.org/join?invite=ABCD", "ABCD"},
		{"https://circle.example.org/app/#ABCD", "ABCD"},
		{"https://circle.example.org/invites/ABCD", "ABCD"},
	}
	for _, tt := range tests {
		if got := inviteCode(tt.in); got != tt.want {
			t.Errorf("inviteCode(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSplitInviteURL(t *testing.T) {
	tests := []struct {
		in, wantServer, wantCode string
		wantOK                   bool
	}{
		{"http://127.0.0.1:8080/join#ABCD", "http://127.0.0.1:8080", "ABCD", true},
		{"https://circle.example.org/join?code=ABCD", "https://circle.example.org", "ABCD", true},
		{"https://circle.example.org", "", "", false},
		{"https://circle.example.org/", "", "", false},
		{"ABCD", "", "", false},
		{"ftp://circle.example.org/join#ABCD", "", "", false},
	}
	for _, tt := range tests {
		server, code, ok := splitInviteURL(tt.in)
		if server != tt.wantServer || code != tt.wantCode || ok != tt.wantOK {
			t.Errorf("splitInviteURL(%q) = %q, %q, %v, want %q, %q, %v", tt.in, server, code, ok, tt.wantServer, tt.wantCode, tt.wantOK)
		}
	}
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		args     []string
		wantPos  []string
		wantKind string
	}{
		{[]string{"2h", "fixed", "the", "bike"}, []string{"2h", "fixed", "the", "bike"}, ""},
		{[]string{"2h", "soup", "--kind", "meal"}, []string{"2h", "soup"}, "meal"},
		{[]string{"--kind=meal", "2h", "soup"}, []string{"2h", "soup"}, "meal"},
		{[]string{"2h", "--kind", "meal", "soup"}, []string{"2h", "soup"}, "meal"},
		{[]string{"2h", "--", "--kind", "meal"}, []string{"2h", "--kind", "meal"}, ""},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		kind := fs.String("kind", "", "")
		pos, err := parseArgs(fs, tt.args)
		if err != nil {
			t.Errorf("parseArgs(%q) = %v", tt.args, err)
			continue
		}
		if diff := cmp.Diff(tt.wantPos, pos); diff != "" || *kind != tt.wantKind {
			t.Errorf("parseArgs(%q) = %q, kind %q; want %q, kind %q", tt.args, pos, *kind, tt.wantPos, tt.wantKind)
		}
	}
}

// runCLI runs circlectl and returns its exit code and outputs.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestRunUsage(t *testing.T) {
	home := t.TempDir()
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string // substring; empty: no check
		wantStderr string // substring; empty: stderr must be empty
	}{
		{"no command", nil, exitUsage, "", "usage: circlectl"},
		{"unknown command", []string{"frobnicate"}, exitUsage, "", `unknown command "frobnicate"`},
		{"bad global flag", []string{"--nope", "status"}, exitUsage, "", "usage: circlectl"},
		{"help", []string{"help"}, exitOK, "commands:", ""},
		{"-h", []string{"-h"}, exitOK, "commands:", ""},
		{"command -h", []string{"log", "-h"}, exitOK, "usage: circlectl log", ""},
		{"log without note", []string{"--home", home, "log", "2h"}, exitUsage, "", "want QUANTITY and NOTE"},
		{"log bad quantity", []string{"--home", home, "log", "lots", "x"}, exitUsage, "", `quantity "lots"`},
		{"log zero", []string{"--home", home, "log", "0h", "x"}, exitUsage, "", "greater than 0"},
		{"log bad kind", []string{"--home", home, "log", "2h", "x", "--kind", "gift"}, exitUsage, "", `--kind "gift"`},
		{"log bad time", []string{"--home", home, "log", "2h", "x", "--at", "soon"}, exitUsage, "", `time "soon"`},
		{"log unknown flag", []string{"--home", home, "log", "2h", "x", "--colour", "red"}, exitUsage, "", "flag provided but not defined"},
		{"join server URL only", []string{"--home", home, "join", "http://127.0.0.1:1"}, exitUsage, "", "want URL and INVITE"},
		{"join three args", []string{"--home", home, "join", "a", "b", "c"}, exitUsage, "", "want URL and INVITE"},
		{"sync with arg", []string{"--home", home, "sync", "now"}, exitUsage, "", "takes no arguments"},
		{"invite bad expiry", []string{"--home", home, "invite", "--expires", "soon"}, exitUsage, "", "invalid value"},
		{"status without device", []string{"--home", home, "status"}, exitError, "", "no device in"},
		{"log without device", []string{"--home", home, "log", "2h", "x"}, exitError, "", "run: circlectl join"},
		{"home after command", []string{"status", "--home", home}, exitError, "", "no device in " + home},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != tt.wantCode {
				t.Errorf("run(%q) = %d, want %d (stderr %q)", tt.args, code, tt.wantCode, stderr)
			}
			if tt.wantStdout != "" && !strings.Contains(stdout, tt.wantStdout) {
				t.Errorf("run(%q) stdout = %q, want it to contain %q", tt.args, stdout, tt.wantStdout)
			}
			if tt.wantStderr == "" && stderr != "" {
				t.Errorf("run(%q) stderr = %q, want empty", tt.args, stderr)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("run(%q) stderr = %q, want it to contain %q", tt.args, stderr, tt.wantStderr)
			}
			if tt.wantCode == exitError && strings.Count(stderr, "\n") != 1 {
				t.Errorf("run(%q) stderr = %q, want one line", tt.args, stderr)
			}
		})
	}
}

func TestHomeDir(t *testing.T) {
	tests := []struct {
		name, flag, env, xdg, want string
	}{
		{"flag wins", "/f", "/e", "/x", "/f"},
		{"env", "", "/e", "/x", "/e"},
		{"xdg", "", "", "/x", "/x/circlectl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("CIRCLECTL_HOME", tt.env)
			t.Setenv("XDG_CONFIG_HOME", tt.xdg)
			got, err := homeDir(tt.flag)
			if err != nil || got != tt.want {
				t.Errorf("homeDir(%q) = %q, %v, want %q", tt.flag, got, err, tt.want)
			}
		})
	}
	t.Run("default", func(t *testing.T) {
		t.Setenv("CIRCLECTL_HOME", "")
		t.Setenv("XDG_CONFIG_HOME", "")
		t.Setenv("HOME", "/home/ada")
		if got, want := mustHomeDir(t), "/home/ada/.config/circlectl"; got != want {
			t.Errorf("homeDir(\"\") = %q, want %q", got, want)
		}
	})
}

func mustHomeDir(t *testing.T) string {
	t.Helper()
	h, err := homeDir("")
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// mustJoinedHome prepares a device home as Join leaves it, without a
// server: an enrolled device.json whose server is gone, and the member's
// ledger synced in-process from a document made the way the server makes
// it (crdt.InitLedger).
func mustJoinedHome(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	d, err := client.InitDevice(home)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()

	ledger := string(crdt.NewDocID())
	info := d.Info()
	info.ServerURL, info.CircleID, info.MemberID, info.DeviceID = dead, "c-1", "m-alice", "d-1"
	info.MemberName, info.DeviceName = "Alice", "laptop"
	info.Circle = &wire.Circle{CircleID: "c-1", Name: "Tool library", Docs: map[string]string{"ledger": ledger},
		Members: []wire.CircleMember{{MemberID: "m-alice", Name: "Alice", Ledgers: []string{ledger}}, {MemberID: "m-bob", Name: "Bob"}}}
	data, err := json.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "device.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}

	server := automerge.New()
	if err := crdt.InitLedger(server, "m-alice", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Commit("init"); err != nil {
		t.Fatal(err)
	}
	local := automerge.New()
	ss, ls := automerge.NewSyncState(server), automerge.NewSyncState(local)
	for range 10 {
		m1, ok1 := ss.GenerateMessage()
		if ok1 {
			if _, err := ls.ReceiveMessage(m1.Bytes()); err != nil {
				t.Fatal(err)
			}
		}
		m2, ok2 := ls.GenerateMessage()
		if ok2 {
			if _, err := ss.ReceiveMessage(m2.Bytes()); err != nil {
				t.Fatal(err)
			}
		}
		if !ok1 && !ok2 {
			break
		}
	}
	if err := os.WriteFile(filepath.Join(home, "docs", ledger+".automerge"), local.Save(), 0o600); err != nil {
		t.Fatal(err)
	}
	return home
}

func TestRunOffline(t *testing.T) {
	home := mustJoinedHome(t)
	steps := []struct {
		args       []string
		wantCode   int
		wantStdout []string
	}{
		{[]string{"log", "2h", "fixed the bike"}, exitOK, []string{`logged 2h hours "fixed the bike"`}},
		{[]string{"log", "90m", "soup", "for", "six", "--kind", "meal", "--to", "bob", "--at", "2025-05-01 18:00"}, exitOK, []string{`logged 1.5h meal "soup for six"`}},
		{[]string{"log", "3", "drill", "--kind", "lend", "--unit", "days"}, exitOK, []string{`logged 3 days lend "drill"`}},
		{[]string{"ledger"}, exitOK, []string{"2025-05-01 18:00", "Alice", "meal", "1.5h", "Bob", "soup for six", "fixed the bike", "3 days", "3 entries held"}},
		{[]string{"ledger", "--member", "bob"}, exitOK, []string{"0 entries held"}},
		{[]string{"status"}, exitOK, []string{"Alice (m-alice)", "Tool library (c-1)", "3 local changes not yet synced", "1 document held"}},
		{[]string{"balances"}, exitError, nil},
		{[]string{"sync"}, exitError, nil},
		{[]string{"log", "1h", "x", "--to", "carol"}, exitError, nil},
	}
	for _, st := range steps {
		args := append([]string{"--home", home}, st.args...)
		code, stdout, stderr := runCLI(t, args...)
		t.Logf("circlectl %s\n%s%s", strings.Join(st.args, " "), stdout, stderr)
		if code != st.wantCode {
			t.Fatalf("run(%q) = %d, want %d (stderr %q)", st.args, code, st.wantCode, stderr)
		}
		for _, want := range st.wantStdout {
			if !strings.Contains(stdout, want) {
				t.Errorf("run(%q) stdout = %q, want it to contain %q", st.args, stdout, want)
			}
		}
		if code == exitError && strings.Count(stderr, "\n") != 1 {
			t.Errorf("run(%q) stderr = %q, want one line", st.args, stderr)
		}
	}
}
