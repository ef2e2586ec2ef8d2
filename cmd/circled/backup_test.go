package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/mobile-api/client"
)

// TestBackupUnderWriteLoad runs circled as real processes: `circled
// backup` runs while four clients write entries to the served circle as
// fast as they can; `circled restore` puts the file into a new directory;
// the restored circle, served on the same address, holds every entry
// acknowledged before the backup started, its audit log verifies on the
// device, and the device syncs on. Restore then refuses the directory it
// just filled and a truncated copy of the file, with exit status 1.
func TestBackupUnderWriteLoad(t *testing.T) {
	bin := buildCircled(t)
	data := filepath.Join(t.TempDir(), "circle")
	invite := initCircle(t, bin, data)
	proc, addr := startCircled(t, bin, data, "127.0.0.1:0")
	ctx := context.Background()
	dev, err := client.Join(ctx, t.TempDir(), "http://"+addr, invite, "Alice", "phone")
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	cl, err := dev.Client()
	if err != nil {
		t.Fatal(err)
	}
	synced := logAndSync(t, ctx, dev, 20)

	load := startWriters(ctx, 4, 3000, func() *client.Client { return cl })
	time.Sleep(300 * time.Millisecond) // let the writers get going

	before := load.ids()
	backupFile := filepath.Join(t.TempDir(), "circle.backup")
	start := time.Now()
	bout, err := exec.Command(bin, "backup", "--data", data, "--out", backupFile).CombinedOutput()
	took := time.Since(start)
	if err != nil {
		t.Fatalf("circled backup: %v\n%s", err, bout)
	}
	if !strings.Contains(string(bout), "through the running server") {
		t.Fatalf("circled backup printed %q, want it taken through the running server", bout)
	}
	time.Sleep(200 * time.Millisecond)
	load.finish()
	if n := load.failed.Load(); n > 0 {
		t.Errorf("%d writes failed during the backup", n)
	}
	acked := load.ids()
	total := len(acked)
	if len(before) == 0 || total <= len(before) {
		t.Fatalf("%d entries acknowledged before the backup, %d in all: the backup ran under no write load", len(before), total)
	}
	if err := proc.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = proc.Wait()

	restored := filepath.Join(t.TempDir(), "restored")
	start = time.Now()
	if rout, err := exec.Command(bin, "restore", "--data", restored, "--in", backupFile).CombinedOutput(); err != nil {
		t.Fatalf("circled restore: %v\n%s", err, rout)
	}
	restoreTook := time.Since(start)
	// Served from a config file this time, with an environment variable
	// overriding the file's listen address.
	dir := t.TempDir()
	conf := filepath.Join(dir, "circled.yaml")
	yaml := "# the restored circle\ndata: " + restored + "\nlisten: 127.0.0.1:1\naddr_file: addr\nlog_level: warn\n"
	if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "config", "check", conf).CombinedOutput(); err != nil {
		t.Fatalf("circled config check: %v %s", err, out)
	}
	t.Setenv("CIRCLED_LISTEN", addr)
	if _, got := startCircledWith(t, bin, filepath.Join(dir, "addr"), "serve", "--config", conf); got != addr {
		t.Fatalf("restored circle served on %s, want %s (CIRCLED_LISTEN over the file)", got, addr)
	}

	stored := map[string]bool{}
	cursor := ""
	for page := 0; page < 1000; page++ {
		list, err := cl.ListEntries(ctx, client.ListOptions{Limit: 1000, Cursor: cursor})
		if err != nil {
			t.Fatalf("list after restore: %v", err)
		}
		for _, e := range list.Entries {
			stored[e.ID] = true
		}
		if cursor = list.NextCursor; cursor == "" {
			break
		}
	}
	missing := 0
	for id := range before {
		if !stored[id] {
			missing++
		}
	}
	for _, id := range synced {
		if !stored[id] {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of the %d entries acknowledged before the backup are not in the restored circle", missing, len(before)+len(synced))
	}
	for id := range stored {
		if !acked[id] && !slices.Contains(synced, id) {
			t.Fatalf("the restored circle holds entry %s that no writer was told was stored", id)
		}
	}

	// The device syncs on against the restored circle and verifies its log.
	if _, err := dev.Log(crdt.Entry{ID: uuid.NewString(), Kind: "hours", Quantity: 1, Note: "after", At: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	sum, err := dev.Sync(ctx, nil)
	if err != nil || len(sum.Failed) > 0 {
		t.Fatalf("sync after restore: %v %v", err, sum.Failed)
	}
	if _, err := dev.AuditLog(); err != nil {
		t.Fatalf("audit log after restore: %v", err)
	}
	fi, _ := os.Stat(backupFile)
	t.Logf("backup of %d entries (%d acknowledged before it, %d stored in it) under load: %d bytes in %s; restore in %s",
		total+len(synced), len(before)+len(synced), len(stored), fi.Size(), took.Round(time.Millisecond), restoreTook.Round(time.Millisecond))

	// Refusals, as an operator sees them.
	trunc := filepath.Join(t.TempDir(), "truncated.backup")
	b, _ := os.ReadFile(backupFile)
	if err := os.WriteFile(trunc, b[:len(b)-40], 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ dir, in, words string }{
		{restored, backupFile, "is not empty"},
		{filepath.Join(t.TempDir(), "new"), trunc, "corrupt or truncated"},
	} {
		cmd := exec.Command(bin, "restore", "--data", tc.dir, "--in", tc.in)
		msg, err := cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(msg), tc.words) {
			t.Fatalf("circled restore --data %s --in %s: %v %q, want exit 1 saying %q", tc.dir, tc.in, err, msg, tc.words)
		}
	}
}
