package client_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/mobile-api/client"
	"github.com/circles-coop/circles/wire"
)

func TestInitOpenDevice(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	d, err := client.InitDevice(home)
	if err != nil {
		t.Fatalf("InitDevice() = %v", err)
	}
	fi, err := os.Stat(filepath.Join(home, "device.key"))
	if err != nil {
		t.Fatalf("stat device.key: %v", err)
	}
	if got, want := fi.Mode().Perm(), os.FileMode(0o600); got != want {
		t.Errorf("device.key mode = %v, want %v", got, want)
	}
	if d.Info().Enrolled() {
		t.Errorf("Info().Enrolled() = true after InitDevice, want false")
	}
	if _, err := client.InitDevice(home); !errors.Is(err, client.ErrDeviceExists) {
		t.Errorf("InitDevice(again) = %v, want ErrDeviceExists", err)
	}
	if _, err := d.Client(); !errors.Is(err, client.ErrNotEnrolled) {
		t.Errorf("Client() before enrolment = %v, want ErrNotEnrolled", err)
	}

	o, err := client.OpenDevice(home)
	if err != nil {
		t.Fatalf("OpenDevice() = %v", err)
	}
	if got, want := o.ActorID(), d.ActorID(); got != want {
		t.Errorf("OpenDevice().ActorID() = %q, want %q", got, want)
	}
	if got, want := o.PublicKey(), d.PublicKey(); !got.Equal(want) {
		t.Errorf("OpenDevice().PublicKey() = %x, want %x", got, want)
	}
	// The actor id must be usable as an automerge actor.
	if err := automerge.New().SetActorID(o.ActorID()); err != nil {
		t.Errorf("SetActorID(%q) = %v", o.ActorID(), err)
	}

	other, err := client.InitDevice(t.TempDir())
	if err != nil {
		t.Fatalf("InitDevice() = %v", err)
	}
	if other.ActorID() == d.ActorID() || other.PublicKey().Equal(d.PublicKey()) {
		t.Errorf("two devices share an actor id or key")
	}

	if _, err := client.OpenDevice(t.TempDir()); !errors.Is(err, client.ErrNoDevice) {
		t.Errorf("OpenDevice(empty dir) = %v, want ErrNoDevice", err)
	}
}

// serverLedger makes a ledger segment the way the circle server does: a
// document created by the server's actor holding crdt.InitLedger's root.
func serverLedger(tb testing.TB, member string) *automerge.Doc {
	tb.Helper()
	doc := automerge.New()
	if err := crdt.InitLedger(doc, member, 0); err != nil {
		tb.Fatalf("InitLedger() = %v", err)
	}
	if _, err := doc.Commit("init ledger"); err != nil {
		tb.Fatalf("Commit() = %v", err)
	}
	return doc
}

// syncInProcess runs the automerge sync protocol between two documents
// until neither has anything to send, and returns the number of messages.
func syncInProcess(tb testing.TB, a, b *automerge.Doc) int {
	tb.Helper()
	sa, sb := automerge.NewSyncState(a), automerge.NewSyncState(b)
	n := 0
	for range 20 {
		progress := false
		if m, ok := sa.GenerateMessage(); ok {
			if _, err := sb.ReceiveMessage(m.Bytes()); err != nil {
				tb.Fatalf("ReceiveMessage() = %v", err)
			}
			progress = true
			n++
		}
		if m, ok := sb.GenerateMessage(); ok {
			if _, err := sa.ReceiveMessage(m.Bytes()); err != nil {
				tb.Fatalf("ReceiveMessage() = %v", err)
			}
			progress = true
			n++
		}
		if !progress {
			return n
		}
	}
	tb.Fatalf("in-process sync did not converge")
	return n
}

// deadURL returns the URL of a port nothing listens on.
func deadURL(tb testing.TB) string {
	tb.Helper()
	srv := mustListen(tb)
	addr := srv.Addr().String()
	srv.Close()
	return "http://" + addr
}

// offlineDevice is an enrolled device whose server is gone, holding the
// member's ledger as fetched from a server-made document (fetched false:
// the ledger was never fetched).
type offlineDevice struct {
	dev      *client.Device
	ledger   string
	server   *automerge.Doc // the server's copy of the ledger
	memberID string
}

func mustOfflineDevice(tb testing.TB, fetched bool) offlineDevice {
	tb.Helper()
	home := tb.TempDir()
	d, err := client.InitDevice(home)
	if err != nil {
		tb.Fatalf("InitDevice() = %v", err)
	}
	const member = "m-alice"
	ledger := string(crdt.NewDocID())
	info := d.Info()
	info.ServerURL = deadURL(tb)
	info.CircleID, info.MemberID, info.DeviceID = "c-test", member, "d-alice-phone"
	info.MemberName = "Alice"
	info.Circle = &wire.Circle{
		CircleID: "c-test",
		Name:     "Tool library",
		Docs:     map[string]string{"ledger": ledger},
		Members: []wire.CircleMember{
			{MemberID: member, Name: "Alice", Ledgers: []string{ledger}},
			{MemberID: "m-bob", Name: "Bob"},
		},
	}
	data, err := json.Marshal(info)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "device.json"), data, 0o600); err != nil {
		tb.Fatal(err)
	}
	server := serverLedger(tb, member)
	if fetched {
		// The device's copy comes from the server's through a real sync.
		local := automerge.New()
		if got := syncInProcess(tb, server, local); got == 0 {
			tb.Fatalf("in-process sync sent %d messages, want some", got)
		}
		if err := os.WriteFile(filepath.Join(home, "docs", ledger+".automerge"), local.Save(), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	d, err = client.OpenDevice(home)
	if err != nil {
		tb.Fatalf("OpenDevice() = %v", err)
	}
	return offlineDevice{dev: d, ledger: ledger, server: server, memberID: member}
}

func TestLogOffline(t *testing.T) {
	od := mustOfflineDevice(t, true)
	at := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)
	first, err := od.dev.Log(crdt.Entry{Kind: "hours", Quantity: 2, Unit: "h", Note: "fixed the bike", At: at, Counterparty: "m-bob"})
	if err != nil {
		t.Fatalf("Log() = %v", err)
	}
	if first.ID == "" {
		t.Fatalf("Log() entry id is empty, want a new UUID")
	}
	fix, err := od.dev.Log(crdt.Entry{Kind: "hours", Quantity: 3, Note: "it was 3h", At: at.Add(time.Hour), Voids: first.ID})
	if err != nil {
		t.Fatalf("Log(voiding entry) = %v", err)
	}

	// A reopened device reads both entries from disk.
	d, err := client.OpenDevice(od.dev.Home())
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.Entries()
	if err != nil {
		t.Fatalf("Entries() = %v", err)
	}
	if len(got) != 2 {
		t.Fatalf("Entries() = %d entries, want 2", len(got))
	}
	tests := []struct {
		got, want client.LedgerEntry
	}{
		{got[0], client.LedgerEntry{Entry: first, Member: od.memberID, MemberName: "Alice", Doc: od.ledger, Mine: true, Voided: true}},
		{got[1], client.LedgerEntry{Entry: fix, Member: od.memberID, MemberName: "Alice", Doc: od.ledger, Mine: true}},
	}
	for i, tt := range tests {
		if !tt.got.Entry.Same(tt.want.Entry) || tt.got.Member != tt.want.Member || tt.got.MemberName != tt.want.MemberName ||
			tt.got.Doc != tt.want.Doc || tt.got.Mine != tt.want.Mine || tt.got.Voided != tt.want.Voided {
			t.Errorf("Entries()[%d] = %+v, want %+v", i, tt.got, tt.want)
		}
	}

	st, err := d.Status()
	if err != nil {
		t.Fatalf("Status() = %v", err)
	}
	if got, want := st.Pending, 2; got != want {
		t.Errorf("Status().Pending = %d, want %d", got, want)
	}
	if got, want := st.DocsHeld, 1; got != want {
		t.Errorf("Status().DocsHeld = %d, want %d", got, want)
	}

	// The device's changes merge into the server's copy, carry the
	// device's actor id and sit in the server's "entries" map.
	data, err := os.ReadFile(filepath.Join(d.Home(), "docs", od.ledger+".automerge"))
	if err != nil {
		t.Fatal(err)
	}
	local, err := automerge.Load(data)
	if err != nil {
		t.Fatalf("Load(device ledger) = %v", err)
	}
	before := od.server.Heads()
	syncInProcess(t, od.server, local)
	changes, err := od.server.Changes(before...)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 2 {
		t.Fatalf("server received %d changes, want 2", len(changes))
	}
	for _, ch := range changes {
		if got, want := ch.ActorID(), d.ActorID(); got != want {
			t.Errorf("change actor = %q, want the device's %q", got, want)
		}
	}
	entries, _, err := crdt.ReadLedger(od.server)
	if err != nil {
		t.Fatalf("ReadLedger(server) = %v", err)
	}
	if len(entries) != 2 || !entries[0].Same(first) || !entries[1].Same(fix) {
		t.Errorf("server ledger = %+v, want [%+v %+v]", entries, first, fix)
	}
}

func TestLogRefuses(t *testing.T) {
	fetched := mustOfflineDevice(t, true)
	valid := crdt.Entry{Kind: "meal", Quantity: 1, Note: "soup"}
	taken, err := fetched.dev.Log(valid)
	if err != nil {
		t.Fatalf("Log() = %v", err)
	}
	var ruleErr *crdt.RuleError
	tests := []struct {
		name  string
		dev   *client.Device
		entry crdt.Entry
		check func(error) bool
		want  string
	}{
		{"never fetched", mustOfflineDevice(t, false).dev, valid, func(err error) bool { return errors.Is(err, client.ErrLedgerNotFetched) }, "ErrLedgerNotFetched"},
		{"zero quantity", fetched.dev, crdt.Entry{Kind: "hours", Note: "x"}, func(err error) bool { return errors.As(err, &ruleErr) }, "*crdt.RuleError"},
		{"unknown kind", fetched.dev, crdt.Entry{Kind: "gift", Quantity: 1}, func(err error) bool { return errors.As(err, &ruleErr) }, "*crdt.RuleError"},
		{"id taken", fetched.dev, taken, func(err error) bool { return errors.Is(err, crdt.ErrEntryExists) }, "crdt.ErrEntryExists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.dev.Log(tt.entry)
			if !tt.check(err) {
				t.Errorf("Log() = %v, want %s", err, tt.want)
			}
		})
	}
}

func TestOfflineServerCalls(t *testing.T) {
	od := mustOfflineDevice(t, true)
	ctx := t.Context()
	if _, err := od.dev.Balances(ctx); !errors.Is(err, client.ErrUnreachable) {
		t.Errorf("Balances() offline = %v, want ErrUnreachable", err)
	}
	if _, err := od.dev.Sync(ctx, nil); !errors.Is(err, client.ErrUnreachable) {
		t.Errorf("Sync() offline = %v, want ErrUnreachable", err)
	}
	c, err := client.New(deadURL(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Healthz(ctx); !errors.Is(err, client.ErrUnreachable) {
		t.Errorf("Healthz() offline = %v, want ErrUnreachable", err)
	}
	if _, err := c.Circle(ctx); !errors.Is(err, client.ErrNoCredentials) {
		t.Errorf("Circle() without token or key = %v, want ErrNoCredentials", err)
	}
}
