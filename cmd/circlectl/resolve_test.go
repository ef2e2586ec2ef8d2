package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/circles-coop/circles/mobile-api/client"
	"github.com/circles-coop/circles/wire"
)

// mustDeviceSeeing makes a device whose last seen circle has members, and
// opens it as circlectl does; members nil leaves the circle unseen.
func mustDeviceSeeing(t *testing.T, members []wire.CircleMember) *client.Device {
	t.Helper()
	home := t.TempDir()
	d, err := client.InitDevice(home)
	if err != nil {
		t.Fatal(err)
	}
	info := d.Info()
	if members != nil {
		info.Circle = &wire.Circle{CircleID: "c-1", Name: "Tool library", Members: members}
	}
	data, err := json.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "device.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	d, err = openDevice(&env{home: home})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestResolveMember: every --to, --member and --payload member argument
// goes through resolveMember; a name (any case) or an id gives the id, an
// ambiguous or unknown one an error naming the option and the argument.
func TestResolveMember(t *testing.T) {
	d := mustDeviceSeeing(t, []wire.CircleMember{
		{MemberID: "m-alice", Name: "Alice"},
		{MemberID: "m-sam1", Name: "Sam"},
		{MemberID: "m-mallory", Name: "m-bob"}, // a name that is another member's id
		{MemberID: "m-bob", Name: "Bob"},
		{MemberID: "m-sam2", Name: "sam"},
	})
	tests := []struct {
		name    string
		arg     string
		want    string // member id; "" for an error
		wantErr string
	}{
		{"name", "Alice", "m-alice", ""},
		{"name in another case", "bOB", "m-bob", ""},
		{"id", "m-alice", "m-alice", ""},
		{"id of a member whose name is shared", "m-sam2", "m-sam2", ""},
		{"an id wins over a name equal to it", "m-bob", "m-bob", ""},
		{"ambiguous name", "Sam", "", `--to "Sam": no single member of that name or id`},
		{"unknown", "Carol", "", `--to "Carol": no single member of that name or id`},
		{"empty", "", "", `--to "": no single member`},
		{"part of a name", "Ali", "", `--to "Ali": no single member`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveMember(d, "--to", tt.arg)
			if tt.wantErr == "" {
				if err != nil || got != tt.want {
					t.Fatalf("resolveMember(%q) = %q, %v, want %q", tt.arg, got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("resolveMember(%q) = %q, %v, want an error containing %q", tt.arg, got, err, tt.wantErr)
			}
			if got != "" {
				t.Errorf("resolveMember(%q) returned id %q with its error, want none", tt.arg, got)
			}
		})
	}

	// Every command that takes a member goes through resolveMember.
	t.Run("commands", func(t *testing.T) {
		home := d.Home()
		for _, args := range [][]string{
			{"log", "1h", "fixed it", "--to", "Sam"},
			{"ledger", "--member", "Sam"},
			{"credit", "1", "--to", "Sam"},
			{"credits", "--member", "Sam"},
			{"propose", "role.assign", "--title", "Sam keeps the keys", "--payload", "role=r-1", "--payload", "member=Sam"},
		} {
			code, stdout, stderr := runCLI(t, append([]string{"--home", home}, args...)...)
			if code == exitOK || !strings.Contains(stderr, `"Sam": no single member of that name or id`) {
				t.Errorf("circlectl %s = %d, stdout %q, stderr %q; want the ambiguity named", strings.Join(args, " "), code, stdout, stderr)
			}
		}
		code, stdout, stderr := runCLI(t, "--home", home, "ledger", "--member", "m-sam1")
		if code != exitOK || !strings.Contains(stdout, "0 entries held") {
			t.Errorf("circlectl ledger --member m-sam1 = %d, stdout %q, stderr %q; want 0 entries", code, stdout, stderr)
		}
	})

	t.Run("circle never seen", func(t *testing.T) {
		d := mustDeviceSeeing(t, nil)
		if got, err := resolveMember(d, "--member", "Alice"); err == nil || !strings.Contains(err.Error(), "circlectl sync") {
			t.Fatalf("resolveMember before any sync = %q, %v, want an error suggesting circlectl sync", got, err)
		}
	})
}
