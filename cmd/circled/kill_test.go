package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/circles-coop/circles/mobile-api/client"
)

// buildCircled compiles this command into a temporary directory.
func buildCircled(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "circled")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startCircled runs `circled serve` as a real process and waits for its
// address file.
func startCircled(t *testing.T, bin, data, listen string) (*exec.Cmd, string) {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "addr")
	return startCircledWith(t, bin, addrFile, "serve", "--data", data, "--listen", listen, "--addr-file", addrFile)
}

// startCircledWith runs circled with args, which make it write addrFile,
// and waits for that file.
func startCircledWith(t *testing.T, bin, addrFile string, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start circled: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(addrFile); err == nil && strings.HasSuffix(string(b), "\n") {
			return cmd, strings.TrimSpace(string(b))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("circled did not become ready in 30 s; output:\n%s", logs.String())
	return nil, ""
}

// TestKill9LosesNothingAcknowledged writes entries from several clients,
// through REST and through sync, kills the server process with SIGKILL in
// the middle of it, restarts it, and checks that every entry the server
// acknowledged is there.
func TestKill9LosesNothingAcknowledged(t *testing.T) {
	bin := buildCircled(t)
	data := filepath.Join(t.TempDir(), "circle")
	invite := initCircle(t, bin, data)

	proc, addr := startCircled(t, bin, data, "127.0.0.1:0")
	url := "http://" + addr
	ctx := context.Background()
	dev, err := client.Join(ctx, t.TempDir(), url, invite, "Alice", "phone")
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	cl, err := dev.Client()
	if err != nil {
		t.Fatal(err)
	}

	// Entries acknowledged before the kill, by sync from the device's
	// offline store (first: a sync chasing a stream of REST writes would
	// not settle) ...
	synced := logAndSync(t, ctx, dev, 20)

	// ... and by REST, from several writers at once (a failed write is the
	// server gone).
	load := startWriters(ctx, 4, 2000, func() *client.Client { return cl })
	time.Sleep(300 * time.Millisecond) // let the writers get going
	if err := proc.Process.Signal(os.Kill); err != nil {
		t.Fatalf("kill: %v", err)
	}
	_ = proc.Wait()
	load.finish()
	acked := load.ids()
	n := len(acked)
	if n == 0 {
		t.Fatalf("no entry was acknowledged before the kill; the test proves nothing")
	}

	startCircled(t, bin, data, addr) // same address: the device's client works on
	stored := map[string]bool{}
	cursor := ""
	for page := 0; page < 1000; page++ {
		list, err := cl.ListEntries(ctx, client.ListOptions{Limit: 1000, Cursor: cursor})
		if err != nil {
			t.Fatalf("list after restart: %v", err)
		}
		for _, e := range list.Entries {
			stored[e.ID] = true
		}
		if cursor = list.NextCursor; cursor == "" {
			break
		}
	}
	lost := 0
	for id := range acked {
		if !stored[id] {
			lost++
		}
	}
	for _, id := range synced {
		if !stored[id] {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged entries were lost by kill -9", lost, n+len(synced))
	}
	t.Logf("%d REST + %d synced entries acknowledged before kill -9; all %d stored after restart", n, len(synced), len(stored))
}
