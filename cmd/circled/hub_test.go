package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHubCommands runs `circled hub init`, `serve` (until its context
// ends), `invite` while it serves and `expel` of a stranger.
func TestHubCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "hub")
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"hub", "init", "--data", dir, "--name", "Seed savers", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("hub init = %d: %s", code, errb.String())
	}
	var res struct {
		FederationID string `json:"federation_id"`
		Invite       string `json:"invite"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || res.FederationID == "" || res.Invite == "" {
		t.Fatalf("hub init --json printed %q", out.String())
	}
	if code := run(context.Background(), []string{"hub", "init", "--data", dir, "--name", "Again"}, &out, &errb); code != 1 {
		t.Fatalf("hub init twice = %d, want 1", code)
	}

	ctx, cancel := context.WithCancel(context.Background())
	addrFile := filepath.Join(t.TempDir(), "addr.json")
	done := make(chan int, 1)
	go func() {
		var o, e bytes.Buffer
		done <- run(ctx, []string{"hub", "serve", "--data", dir, "--listen", "127.0.0.1:0", "--leafnode-listen", "127.0.0.1:0", "--addr-file", addrFile, "--log-level", "warn"}, &o, &e)
	}()
	defer func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("hub serve = %d", code)
			}
		case <-time.After(10 * time.Second):
			t.Error("hub serve did not stop within 10s")
		}
	}()
	var addrs struct {
		HTTP     string `json:"http"`
		Leafnode string `json:"leafnode"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, err := os.ReadFile(addrFile); err == nil && json.Unmarshal(b, &addrs) == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("hub serve wrote no address file within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if addrs.HTTP == "" || addrs.Leafnode == "" || strings.HasSuffix(addrs.Leafnode, ":0") {
		t.Fatalf("address file = %+v", addrs)
	}
	if r, err := http.Get("http://" + addrs.HTTP + "/healthz"); err != nil || r.StatusCode != 200 {
		t.Fatalf("GET /healthz: %v %v", r, err)
	}
	out.Reset()
	if code := run(context.Background(), []string{"hub", "invite", "--data", dir, "--expires-in", "1h", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("hub invite while serving = %d: %s", code, errb.String())
	}
	var inv struct {
		Invite    string    `json:"invite"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal(out.Bytes(), &inv); err != nil || inv.Invite == "" || time.Until(inv.ExpiresAt) > time.Hour {
		t.Fatalf("hub invite --json printed %q", out.String())
	}
	errb.Reset()
	if code := run(context.Background(), []string{"hub", "expel", "--data", dir, "stranger"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "not a member") {
		t.Fatalf("hub expel of a stranger = %d %q, want 1 and not a member", code, errb.String())
	}
	if code := run(context.Background(), []string{"hub", "expel", "--data", dir}, &out, &errb); code != 2 {
		t.Fatalf("hub expel without a circle = %d, want 2", code)
	}
}
