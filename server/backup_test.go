package server_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/mobile-api/client"
	"github.com/circles-coop/circles/server"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// mustJoinAndWrite joins a real device (offline store) to c and has it
// write entries offline and by REST, a proposal and a vote, so that every
// kind of document and the audit log hold something; then it syncs.
func mustJoinAndWrite(t *testing.T, c *servertest.Circle, invite, name string) *client.Device {
	t.Helper()
	ctx := context.Background()
	dev, err := client.Join(ctx, t.TempDir(), c.URL(), invite, name, "phone")
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	for i := 0; i < 5; i++ {
		if _, err := dev.Log(crdt.Entry{ID: uuid.NewString(), Kind: "hours", Quantity: 1, Note: "offline", At: time.Now().UTC()}); err != nil {
			t.Fatalf("log: %v", err)
		}
	}
	p, err := dev.Propose(crdt.Proposal{Kind: "role.create", Title: "A treasurer", Payload: map[string]any{"name": "treasurer", "purpose": "keeps the cash", "term": "2160h", "term_limit": 2}})
	if err != nil {
		t.Fatalf("propose: %v", err)
	}
	if _, err := dev.Vote(p.ID, "yes", "", time.Now()); err != nil {
		t.Fatalf("vote: %v", err)
	}
	mustSync(t, dev)
	cl, err := dev.Client()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := cl.CreateEntry(ctx, wire.Entry{ID: uuid.NewString(), Kind: "meal", Quantity: 1, Note: "rest", At: time.Now().UTC()}); err != nil {
			t.Fatalf("rest entry: %v", err)
		}
	}
	mustSync(t, dev)
	return dev
}

func mustSync(t *testing.T, dev *client.Device) client.SyncSummary {
	t.Helper()
	sum, err := dev.Sync(context.Background(), nil)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	if len(sum.Failed) > 0 {
		t.Fatalf("sync refused: %v", sum.Failed[0].Err)
	}
	return sum
}

// syncStates is every device's sync state in s's store.
func syncStates(t *testing.T, s *server.Server) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	kv := s.Store().SyncStates()
	keys, err := kv.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, k := range keys {
		v, _, err := kv.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		out[k] = v
	}
	return out
}

// waitSyncStatesStored waits (at most 10 s) until the engine has written
// the devices' sync states to the store: it flushes them every second, and
// a backup holds what the store holds.
func waitSyncStatesStored(t *testing.T, s *server.Server) {
	t.Helper()
	var last map[string][]byte
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(1200 * time.Millisecond) {
		cur := syncStates(t, s)
		if len(cur) > 0 && len(cur) == len(last) {
			same := true
			for k, v := range cur {
				same = same && bytes.Equal(last[k], v)
			}
			if same {
				return
			}
		}
		last = cur
	}
	t.Fatalf("the sync states did not settle in the store")
}

// openRestored serves the circle restored in dir on addr.
func openRestored(t *testing.T, dir, addr string) *server.Server {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.DataDir, cfg.Listen = dir, addr
	s, err := server.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("serve the restored circle: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestBackupRestoreSameCircle backs up a served circle through its
// control socket and restores it into a new directory: every document is
// stored byte for byte as before (so its heads are equal), the devices'
// sync states and the circle key are the same, and a device carries on
// against the restored server: it syncs a new entry and its copy of the
// audit log verifies.
func TestBackupRestoreSameCircle(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t, "Backup Circle")
	alice := mustJoinAndWrite(t, c, c.FounderInvite, "Alice")
	cl, _ := alice.Client()
	inv, err := cl.CreateInvite(ctx, wire.InviteRequest{For: "member"})
	if err != nil {
		t.Fatal(err)
	}
	mustJoinAndWrite(t, c, inv.Code, "Bob")
	mustSync(t, alice)
	waitSyncStatesStored(t, c.Server)

	out := filepath.Join(t.TempDir(), "circle.backup")
	info, err := server.BackupFile(ctx, c.DataDir, out, nil)
	if err != nil {
		t.Fatalf("BackupFile: %v", err)
	}
	if info.Via != "server" || info.CircleID != c.CircleID {
		t.Fatalf("BackupFile() = %+v, want via server of circle %s", info, c.CircleID)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file mode: %v %v, want 0600 (it holds the circle key)", fi.Mode(), err)
	}
	docs := servertest.MustStoredDocs(t, c)
	states := syncStates(t, c.Server)
	auditBefore, err := alice.AuditLog()
	if err != nil {
		t.Fatalf("audit before: %v", err)
	}
	addr := c.Server.Addr()
	c.Stop()

	dir := filepath.Join(t.TempDir(), "restored")
	got, err := server.Restore(ctx, dir, out, nil)
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if got.CircleID != c.CircleID || got.Streams != 7 {
		t.Fatalf("Restore() = %+v, want circle %s with 7 streams (the store's 6 and the federation's)", got, c.CircleID)
	}
	k1, _ := os.ReadFile(filepath.Join(c.DataDir, "circle.key"))
	k2, _ := os.ReadFile(filepath.Join(dir, "circle.key"))
	if len(k1) == 0 || !bytes.Equal(k1, k2) {
		t.Fatalf("restored circle.key differs from the original")
	}

	s := openRestored(t, dir, addr)
	if s.CircleID() != c.CircleID {
		t.Fatalf("restored CircleID() = %s, want %s", s.CircleID(), c.CircleID)
	}
	restored := servertest.MustStoredDocs(t, &servertest.Circle{Server: s})
	if len(restored) != len(docs) {
		t.Fatalf("restored %d documents, want %d", len(restored), len(docs))
	}
	for id, b := range docs {
		if !bytes.Equal(restored[id], b) {
			t.Fatalf("document %s differs after restore", id)
		}
	}
	gotStates := syncStates(t, s)
	if len(states) == 0 || len(gotStates) != len(states) {
		t.Fatalf("restored %d sync states, want %d (> 0)", len(gotStates), len(states))
	}
	for k, v := range states {
		if !bytes.Equal(gotStates[k], v) {
			t.Fatalf("sync state %s differs after restore", k)
		}
	}

	// The device carries on, on the same address, as if nothing happened.
	e, err := alice.Log(crdt.Entry{ID: uuid.NewString(), Kind: "lend", Quantity: 1, Note: "after restore", At: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	if sum := mustSync(t, alice); sum.ChangesSent != 1 {
		t.Fatalf("first sync after restore sent %d changes, want exactly the new one", sum.ChangesSent)
	}
	list, err := cl.ListEntries(ctx, client.ListOptions{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, x := range list.Entries {
		found = found || x.ID == e.ID
	}
	if !found || len(list.Entries) != 21 {
		t.Fatalf("restored circle lists %d entries (new one found: %v), want 21", len(list.Entries), found)
	}
	auditAfter, err := alice.AuditLog()
	if err != nil {
		t.Fatalf("audit log after restore does not verify: %v", err)
	}
	if len(auditAfter) < len(auditBefore) || auditAfter[len(auditBefore)-1].Hash != auditBefore[len(auditBefore)-1].Hash {
		t.Fatalf("audit log after restore: %d entries, not a continuation of the %d before", len(auditAfter), len(auditBefore))
	}
}

// TestBackupWhileStopped takes the backup from the store itself when no
// server runs, and refuses a second server on a directory being served.
func TestBackupWhileStopped(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t, "Stopped Circle")
	mustJoinAndWrite(t, c, c.FounderInvite, "Alice")

	cfg := server.DefaultConfig()
	cfg.DataDir, cfg.Listen = c.DataDir, "127.0.0.1:0"
	if s, err := server.Open(ctx, cfg); !errors.Is(err, server.ErrLocked) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("second server.Open on a served directory: %v, want ErrLocked", err)
	}

	docs := servertest.MustStoredDocs(t, c)
	c.Stop()
	out := filepath.Join(t.TempDir(), "b")
	info, err := server.BackupFile(ctx, c.DataDir, out, nil)
	if err != nil {
		t.Fatalf("BackupFile of a stopped circle: %v", err)
	}
	if info.Via != "store" {
		t.Fatalf("BackupFile().Via = %q, want store", info.Via)
	}
	dir := t.TempDir() // exists and is empty: allowed
	if _, err := server.Restore(ctx, dir, out, nil); err != nil {
		t.Fatalf("Restore into an empty directory: %v", err)
	}
	s := openRestored(t, dir, "127.0.0.1:0")
	restored := servertest.MustStoredDocs(t, &servertest.Circle{Server: s})
	for id, b := range docs {
		if !bytes.Equal(restored[id], b) {
			t.Fatalf("document %s differs after restore", id)
		}
	}
	if len(restored) != len(docs) {
		t.Fatalf("restored %d documents, want %d", len(restored), len(docs))
	}
}

// TestRestoreRefuses: restore refuses a non-empty directory and every
// damaged, truncated, foreign or future backup, with an error that says
// which, and leaves the target as it was.
func TestRestoreRefuses(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t, "Refusing Circle")
	mustJoinAndWrite(t, c, c.FounderInvite, "Alice")
	good := filepath.Join(t.TempDir(), "good")
	if _, err := server.BackupFile(ctx, c.DataDir, good, nil); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	endAt := bytes.LastIndex(b, []byte(`{"type":"end"`))
	if endAt < 0 {
		t.Fatalf("no end marker in the backup")
	}
	flip := func(at int) []byte {
		x := bytes.Clone(b)
		x[at] ^= 0x40
		return x
	}
	withEnd := func(body []byte, end string) []byte { return append(bytes.Clone(body), end...) }

	cases := []struct {
		name     string
		file     []byte
		nonEmpty bool
		want     error
		words    string
	}{
		{"non-empty directory", b, true, server.ErrNotEmpty, "is not empty"},
		{"empty file", nil, false, server.ErrNotBackup, "not a circles backup"},
		{"another file", []byte("hello\nworld\n"), false, server.ErrNotBackup, "not a circles backup"},
		{"future version", append([]byte("CIRCLES-BACKUP 2\n"), b[len("CIRCLES-BACKUP 1\n"):]...), false, server.ErrBackupVersion, "version 2, this circled restores version 1"},
		{"truncated in half", b[:len(b)/2], false, server.ErrBackupCorrupt, "past the end of the file"},
		{"truncated before the end marker", b[:endAt], false, server.ErrBackupCorrupt, "without its end marker"},
		{"a byte changed in a stream", flip(len(b) / 2), false, server.ErrBackupCorrupt, ""},
		{"a byte changed in the circle key", flip(bytes.Index(b, []byte(`"type":"key"`)) + 25), false, server.ErrBackupCorrupt, ""},
		{"wrong checksum", withEnd(b[:endAt], `{"type":"end","frames":8,"sha256":"00"}`+"\n"), false, server.ErrBackupCorrupt, "checksum mismatch"},
		{"data after the end", withEnd(b, "x"), false, server.ErrBackupCorrupt, "after the end marker"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := filepath.Join(t.TempDir(), "backup")
			if err := os.WriteFile(in, tc.file, 0o600); err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(t.TempDir(), "target")
			if tc.nonEmpty {
				if err := os.MkdirAll(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := server.Restore(ctx, dir, in, nil)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.words) {
				t.Fatalf("Restore() = %v, want %v saying %q", err, tc.want, tc.words)
			}
			entries, _ := os.ReadDir(dir)
			if tc.nonEmpty {
				if len(entries) != 1 {
					t.Fatalf("target holds %d files after a refused restore, want its 1", len(entries))
				}
			} else if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a refused restore created %s", dir)
			}
		})
	}
}

// TestBackupHoldsSyncStatesUpToNow: the engine writes devices' sync
// states to the store in the background; a backup first writes those not
// yet written, so a device that synced just before the backup finds its
// state in the restored circle.
func TestBackupHoldsSyncStatesUpToNow(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t, "Backup Flush", servertest.WithConfig(func(cfg *server.Config) {
		server.SlowSyncStateFlush(cfg, time.Hour)
	}))
	mustJoinAndWrite(t, c, c.FounderInvite, "Alice")
	if n := len(syncStates(t, c.Server)); n != 0 {
		t.Fatalf("%d sync states stored before any flush, want 0 (the periodic flush is an hour away)", n)
	}
	out := filepath.Join(t.TempDir(), "circle.backup")
	if _, err := server.BackupFile(ctx, c.DataDir, out, nil); err != nil {
		t.Fatalf("BackupFile: %v", err)
	}
	states := syncStates(t, c.Server)
	if len(states) == 0 {
		t.Fatal("after the backup no sync state is stored, want Alice's device's")
	}
	c.Stop()
	dir := filepath.Join(t.TempDir(), "restored")
	if _, err := server.Restore(ctx, dir, out, nil); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	s := openRestored(t, dir, "127.0.0.1:0")
	got := syncStates(t, s)
	if len(got) != len(states) {
		t.Fatalf("restored %d sync states, want %d", len(got), len(states))
	}
	for k, v := range states {
		if !bytes.Equal(got[k], v) {
			t.Fatalf("sync state %s differs after restore", k)
		}
	}
}
