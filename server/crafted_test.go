package server_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/automerge/automerge-go"
	"github.com/google/uuid"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/crdt/amchange"
	"github.com/circles-coop/circles/crdt/amchange/amchangetest"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// strangerActor is an actor no document of the test knows.
const strangerActor = "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"

type opID = amchange.OpID

// craft is a change being crafted on top of a pulled copy of a document.
type craft struct {
	*amchangetest.Builder
	roots map[string]opID // object ids at the root of the document
	opts  amchangetest.Options
	// fix, if set, edits the finished change before it is encoded.
	fix func(*amchange.Change)
}

// addEntry adds a complete, valid ledger entry id to c and returns its
// map's id.
func (c *craft) addEntry(id string) opID {
	e := c.Add(amchange.Op{Obj: c.roots["entries"], Key: id, Action: amchange.MakeMap})
	for _, f := range []struct {
		key string
		val amchange.Value
	}{
		{"id", amchangetest.Str(id)},
		{"kind", amchangetest.Str("hours")},
		{"quantity", amchangetest.F64(1.5)},
		{"note", amchangetest.Str("crafted byte by byte")},
		{"at", amchangetest.Str("2026-11-01T10:00:00Z")},
	} {
		c.Add(amchange.Op{Obj: e, Key: f.key, Action: amchange.Put, Value: f.val})
	}
	return e
}

// insertText inserts s into the text object after the element after and
// returns the id of its last character.
func (c *craft) insertText(text, after opID, s string) opID {
	for _, r := range s {
		after = c.Add(amchange.Op{Obj: text, ElemKey: true, Elem: after, Insert: true, Action: amchange.Put, Value: amchangetest.Str(string(r))})
	}
	return after
}

// message encodes the crafted change into a sync message, as a device
// that just made it would send it.
func (c *craft) message() []byte {
	ch := c.Change()
	if c.fix != nil {
		c.fix(ch)
	}
	chunk, hash := amchangetest.Encode(ch, c.opts)
	return amchangetest.SyncMessage{Heads: [][32]byte{hash}, Changes: [][]byte{chunk}}.Encode()
}

// startCraft pulls doc as d and starts a change by d's actor on top of it.
func startCraft(t *testing.T, url string, d *servertest.Device, doc string) *craft {
	t.Helper()
	local, _ := servertest.MustPull(t, url, d, doc, d.Actor)
	b, err := amchangetest.NewBuilder(local, d.Actor)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := amchangetest.RootObjects(local)
	if err != nil {
		t.Fatal(err)
	}
	return &craft{Builder: b, roots: roots}
}

func ledgerEntries(t *testing.T, url string, d *servertest.Device) map[string]wire.Entry {
	t.Helper()
	r := servertest.Call(t, url, "GET", "/v1/ledger/entries?member="+d.Member, d.Token, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /v1/ledger/entries: %d %s", r.Status, r.Body)
	}
	var l wire.EntryList
	if err := json.Unmarshal(r.Body, &l); err != nil {
		t.Fatal(err)
	}
	out := make(map[string]wire.Entry)
	for _, e := range l.Entries {
		out[e.ID] = e
	}
	return out
}

func draftText(t *testing.T, url string, d *servertest.Device, doc string) string {
	t.Helper()
	local, _ := servertest.MustPull(t, url, d, doc, d.Actor)
	dt, err := crdt.ReadCharterDraft(local)
	if err != nil {
		t.Fatalf("read charter draft: %v", err)
	}
	return dt.Text
}

// TestCraftedChanges sends changes built byte by byte inside real sync
// messages to a real circle server: valid ones must be accepted, and every
// kind of change that would kill automerge-rs or leave a document that no
// longer loads must be refused with the right answer, leave every stored
// document byte for byte as it was and leave a server that still serves,
// also after a restart.
func TestCraftedChanges(t *testing.T) {
	c := servertest.Start(t, "Crafted Circle")
	url := c.URL()
	alice := servertest.MustEnroll(t, url, c.FounderInvite, "Alice")
	circle := servertest.MustCircle(t, url, alice)
	ledger, draft := circle.Docs["ledger"], circle.Docs[string(crdt.KindCharterDraft)]
	if ledger == "" || draft == "" {
		t.Fatalf("circle docs %v lack the ledger or the charter draft", circle.Docs)
	}
	send := func(doc string, msg []byte) servertest.Response {
		return servertest.Call(t, url, "POST", "/v1/sync", alice.Token, servertest.SyncBody(t, wire.SyncMessage{Doc: doc, Data: msg}))
	}

	// Controls: a crafted entry and a crafted draft edit are accepted, so
	// the encoders are right and refusals below are for what the cases
	// break, not for a bad encoding.
	first := uuid.NewString()
	ok := startCraft(t, url, alice, ledger)
	ok.addEntry(first)
	if r := send(ledger, ok.message()); r.Status != http.StatusOK {
		t.Fatalf("valid crafted entry: %d %s", r.Status, r.Body)
	}
	if e, found := ledgerEntries(t, url, alice)[first]; !found || e.Quantity != 1.5 || e.Note != "crafted byte by byte" {
		t.Fatalf("crafted entry %s not listed as sent: %+v (found %t)", first, e, found)
	}
	ok = startCraft(t, url, alice, draft)
	ok.insertText(ok.roots["text"], opID{}, "hi")
	if r := send(draft, ok.message()); r.Status != http.StatusOK {
		t.Fatalf("valid crafted draft edit: %d %s", r.Status, r.Body)
	}
	if got := draftText(t, url, alice, draft); got != "hi" {
		t.Fatalf("draft text = %q, want %q", got, "hi")
	}
	missing := func(c *craft) opID { return opID{Counter: c.Next().Counter + 50, Actor: alice.Actor} }
	cases := []struct {
		name   string
		doc    string
		build  func(c *craft)
		status int
		code   string
		reason string // part of the error message naming why
	}{
		// Undecodable: automerge-rs indexes the actor table out of bounds
		// when it applies these, and aborts the process.
		{"actor index past the table: object", ledger, func(c *craft) {
			c.addEntry(uuid.NewString())
			c.fix = func(ch *amchange.Change) { ch.Actors = []string{alice.Actor} } // no server actor for the entries map
		}, 400, "invalid_request", "actor index 1 out of range"},
		{"actor index past the table: pred", ledger, func(c *craft) {
			e := c.addEntry(uuid.NewString())
			c.Add(amchange.Op{Obj: e, Key: "note", Action: amchange.Put, Value: amchangetest.Str("x"), Pred: []opID{{Counter: 1, Actor: strangerActor}}})
			c.fix = func(ch *amchange.Change) { ch.Actors = []string{alice.Actor, ch.Ops[0].Obj.Actor} }
		}, 400, "invalid_request", "actor index 2 out of range"},
		{"actor index past the table: list element", ledger, func(c *craft) {
			e := c.addEntry(uuid.NewString())
			l := c.Add(amchange.Op{Obj: e, Key: "tags", Action: amchange.MakeList})
			c.Add(amchange.Op{Obj: l, ElemKey: true, Elem: opID{Counter: 1, Actor: strangerActor}, Insert: true, Action: amchange.Put, Value: amchangetest.Str("x")})
			c.fix = func(ch *amchange.Change) { ch.Actors = []string{alice.Actor, ch.Ops[0].Obj.Actor} }
		}, 400, "invalid_request", "actor index 2 out of range"},
		{"actor index past the table: draft", draft, func(c *craft) {
			c.insertText(c.roots["text"], opID{}, "x")
			c.fix = func(ch *amchange.Change) { ch.Actors = []string{alice.Actor} }
		}, 400, "invalid_request", "out of range"},

		// Not canonical: automerge applies these, but the saved document
		// no longer loads.
		{"valid entry written with runs of one", ledger, func(c *craft) {
			c.addEntry(uuid.NewString())
			c.opts.RunsOfOne = true
		}, 400, "invalid_request", "canonical"},
		{"valid entry with an unused actor in the table", ledger, func(c *craft) {
			c.addEntry(uuid.NewString())
			c.fix = func(ch *amchange.Change) {
				ch.Actors = []string{alice.Actor, ch.Ops[0].Obj.Actor, strangerActor}
				if ch.Ops[0].Obj.Actor > strangerActor {
					ch.Actors[1], ch.Actors[2] = ch.Actors[2], ch.Actors[1]
				}
			}
		}, 400, "invalid_request", "canonical"},
		{"valid draft edit written with runs of one", draft, func(c *craft) {
			c.insertText(c.roots["text"], opID{}, "xy")
			c.opts.RunsOfOne = true
		}, 400, "invalid_request", "canonical"},

		// Well formed, but against the write rules of a ledger.
		{"pred of a missing op", ledger, func(c *craft) {
			e := c.addEntry(uuid.NewString())
			c.Add(amchange.Op{Obj: e, Key: "note", Action: amchange.Put, Value: amchangetest.Str("x"), Pred: []opID{missing(c)}})
		}, 422, "rule_violation", "not in the same message"},
		{"pred of an op of an unknown actor", ledger, func(c *craft) {
			e := c.addEntry(uuid.NewString())
			c.Add(amchange.Op{Obj: e, Key: "note", Action: amchange.Put, Value: amchangetest.Str("x"), Pred: []opID{{Counter: 2, Actor: strangerActor}}})
		}, 422, "rule_violation", "not in the same message"},
		{"pred of itself", ledger, func(c *craft) {
			e := c.addEntry(uuid.NewString())
			c.Add(amchange.Op{Obj: e, Key: "note", Action: amchange.Put, Value: amchangetest.Str("x"), Pred: []opID{c.Next()}})
		}, 422, "rule_violation", "not in the same message"},
		{"pred of a later op of the same change", ledger, func(c *craft) {
			e := c.addEntry(uuid.NewString())
			later := c.Next()
			later.Counter++
			c.Add(amchange.Op{Obj: e, Key: "note", Action: amchange.Put, Value: amchangetest.Str("x"), Pred: []opID{later}})
			c.Add(amchange.Op{Obj: e, Key: "unit", Action: amchange.Put, Value: amchangetest.Str("h")})
		}, 422, "rule_violation", "not in the same message"},
		{"pred of an accepted op", ledger, func(c *craft) {
			e := c.addEntry(uuid.NewString())
			c.Add(amchange.Op{Obj: e, Key: "note", Action: amchange.Put, Value: amchangetest.Str("x"), Pred: []opID{c.roots["entries"]}})
		}, 422, "rule_violation", "not in the same message"},
		{"list element of a missing op", ledger, func(c *craft) {
			e := c.addEntry(uuid.NewString())
			l := c.Add(amchange.Op{Obj: e, Key: "tags", Action: amchange.MakeList})
			c.Add(amchange.Op{Obj: l, ElemKey: true, Elem: missing(c), Insert: true, Action: amchange.Put, Value: amchangetest.Str("x")})
		}, 422, "rule_violation", "list element that is not in the same message"},
		{"delete without pred", ledger, func(c *craft) {
			e := c.addEntry(uuid.NewString())
			c.Add(amchange.Op{Obj: e, Key: "note", Action: amchange.Delete})
		}, 422, "rule_violation", "deletes nothing"},
		{"mark on a new map", ledger, func(c *craft) {
			e := c.addEntry(uuid.NewString())
			c.Add(amchange.Op{Obj: e, ElemKey: true, Insert: true, Action: amchange.Mark, Value: amchange.Value{Kind: amchange.Bool, Bool: true}, MarkName: "bold", HasMarkName: true, Expand: true})
		}, 422, "rule_violation", "list position on a map"},
		{"op on an object that does not exist", ledger, func(c *craft) {
			c.Add(amchange.Op{Obj: missing(c), Key: "note", Action: amchange.Put, Value: amchangetest.Str("x")})
		}, 422, "rule_violation", "already accepted"},
		{"entry made inside an object that does not exist", ledger, func(c *craft) {
			c.roots["entries"] = opID{Counter: 1, Actor: strangerActor}
			c.addEntry(uuid.NewString())
		}, 422, "rule_violation", "already accepted"},

		// Well formed, free-form draft edits that leave a draft that does
		// not load again.
		{"draft: op on an object that does not exist", draft, func(c *craft) {
			c.insertText(missing(c), opID{}, "x")
		}, 422, "rule_violation", "does not exist"},
		{"draft: op on an object of an unknown actor", draft, func(c *craft) {
			c.insertText(opID{Counter: 1, Actor: strangerActor}, opID{}, "x")
		}, 422, "rule_violation", "does not exist"},
		{"draft: op on a character as if it were an object", draft, func(c *craft) {
			x := c.insertText(c.roots["text"], opID{}, "x")
			c.Add(amchange.Op{Obj: x, Key: "k", Action: amchange.Put, Value: amchangetest.Str("y")})
		}, 422, "rule_violation", "does not exist"},
		{"draft: pred of a missing op", draft, func(c *craft) {
			x := c.insertText(c.roots["text"], opID{}, "x")
			c.Add(amchange.Op{Obj: c.roots["text"], ElemKey: true, Elem: x, Action: amchange.Put, Value: amchangetest.Str("X"), Pred: []opID{missing(c)}})
		}, 422, "rule_violation", "cannot be loaded again"},
		{"draft: pred of itself", draft, func(c *craft) {
			x := c.insertText(c.roots["text"], opID{}, "x")
			c.Add(amchange.Op{Obj: c.roots["text"], ElemKey: true, Elem: x, Action: amchange.Put, Value: amchangetest.Str("X"), Pred: []opID{c.Next()}})
		}, 422, "rule_violation", "cannot be loaded again"},
		{"draft: delete without pred", draft, func(c *craft) {
			x := c.insertText(c.roots["text"], opID{}, "x")
			c.Add(amchange.Op{Obj: c.roots["text"], ElemKey: true, Elem: x, Action: amchange.Delete})
		}, 422, "rule_violation", "cannot be loaded again"},
		{"draft: delete of a missing element", draft, func(c *craft) {
			m := missing(c)
			c.Add(amchange.Op{Obj: c.roots["text"], ElemKey: true, Elem: m, Action: amchange.Delete, Pred: []opID{m}})
		}, 422, "rule_violation", "cannot be loaded again"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cr := startCraft(t, url, alice, tc.doc)
			tc.build(cr)
			msg := cr.message()
			before := servertest.MustStoredDocs(t, c)
			r := send(tc.doc, msg)
			if r.Status != tc.status || r.Code != tc.code || !strings.Contains(string(r.Body), tc.reason) {
				t.Errorf("sync = %d %q, want %d %q naming %q (body %.300s)", r.Status, r.Code, tc.status, tc.code, tc.reason, r.Body)
			}
			after := servertest.MustStoredDocs(t, c)
			if len(after) != len(before) {
				t.Fatalf("stored documents: %d, want %d", len(after), len(before))
			}
			for id, b := range before {
				if !bytes.Equal(after[id], b) {
					t.Errorf("document %s changed in the store", id)
				}
			}
			if got := servertest.MustCircle(t, url, alice).CircleID; got != circle.CircleID {
				t.Fatalf("GET /v1/circle after the case: circle %q, want %q", got, circle.CircleID)
			}
		})
	}

	// The server still takes a valid change after all that: nothing of a
	// refused request lingers (a queued change, a poisoned sync state).
	second := uuid.NewString()
	ok = startCraft(t, url, alice, ledger)
	ok.addEntry(second)
	if r := send(ledger, ok.message()); r.Status != http.StatusOK {
		t.Fatalf("valid crafted entry after the refusals: %d %s", r.Status, r.Body)
	}

	// After a restart every document loads from the store, and a copy
	// pulled from the server saves and loads again.
	stored := servertest.MustStoredDocs(t, c)
	c.Stop()
	c.Start()
	for id := range stored {
		local, _ := servertest.MustPull(t, url, alice, id, alice.Actor)
		if len(local.Heads()) == 0 {
			t.Errorf("document %s: pulled copy is empty", id)
			continue
		}
		if _, err := automerge.Load(local.Save()); err != nil {
			t.Errorf("document %s: pulled copy does not load again: %v", id, err)
		}
	}
	if got := servertest.MustCircle(t, url, alice).CircleID; got != circle.CircleID {
		t.Fatalf("GET /v1/circle after restart: circle %q, want %q", got, circle.CircleID)
	}
	entries := ledgerEntries(t, url, alice)
	if _, ok := entries[first]; !ok {
		t.Errorf("entry %s lost in the restart", first)
	}
	if _, ok := entries[second]; !ok {
		t.Errorf("entry %s lost in the restart", second)
	}
	third := uuid.NewString()
	ok = startCraft(t, url, alice, ledger)
	ok.addEntry(third)
	if r := send(ledger, ok.message()); r.Status != http.StatusOK {
		t.Fatalf("valid crafted entry after restart: %d %s", r.Status, r.Body)
	}
}

// crashChildEnv names the directory a child process of
// TestCraftedActorIndexAbortsAutomerge reads its document and message from.
const crashChildEnv = "CIRCLES_CRAFTED_CRASH_DIR"

// TestCraftedActorIndexAbortsAutomerge proves that the actor-index case of
// TestCraftedChanges is the real threat: handed to automerge-go without
// the server's guard, in a child process, the same kind of change kills
// the process with SIGABRT, which no recover can stop.
func TestCraftedActorIndexAbortsAutomerge(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		docBytes, err1 := os.ReadFile(filepath.Join(dir, "doc"))
		msg, err2 := os.ReadFile(filepath.Join(dir, "msg"))
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		doc, err := automerge.Load(docBytes)
		if err != nil {
			t.Fatal(err)
		}
		_, err = automerge.NewSyncState(doc).ReceiveMessage(msg)
		t.Logf("automerge survived the change: ReceiveMessage() = %v", err)
		return
	}

	// A ledger as the server makes it, by the server's actor.
	doc := automerge.New()
	if err := doc.SetActorID("5e77e75e77e75e77e75e77e75e77e75e"); err != nil {
		t.Fatal(err)
	}
	if err := crdt.InitLedger(doc, "m_alice", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := doc.Commit("create"); err != nil {
		t.Fatal(err)
	}
	b, err := amchangetest.NewBuilder(doc, "a11cea11cea11cea11cea11cea11cea1")
	if err != nil {
		t.Fatal(err)
	}
	roots, err := amchangetest.RootObjects(doc)
	if err != nil {
		t.Fatal(err)
	}
	cr := &craft{Builder: b, roots: roots}
	cr.addEntry(uuid.NewString())
	cr.fix = func(ch *amchange.Change) { ch.Actors = []string{ch.Actor} }
	msg := cr.message()

	dir := t.TempDir()
	if err := errors.Join(os.WriteFile(filepath.Join(dir, "doc"), doc.Save(), 0o600), os.WriteFile(filepath.Join(dir, "msg"), msg, 0o600)); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCraftedActorIndexAbortsAutomerge$", "-test.v")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	if !aborted(err, out) {
		t.Fatalf("child process = %v, want it killed by SIGABRT; output:\n%.2000s", err, out)
	}
	t.Logf("automerge-go aborted on a %d-byte sync message, as expected: %s", len(msg), rustPanic(out))
}

// aborted reports whether a child process died of SIGABRT, either killed
// by it or, as the Go runtime does when the signal arrives in cgo code,
// exiting after printing "SIGABRT: abort".
func aborted(err error, out []byte) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGABRT {
		return true
	}
	return bytes.Contains(out, []byte("SIGABRT: abort"))
}

// rustPanic returns the line of a child's output where automerge-rs
// panicked, or "".
func rustPanic(out []byte) string {
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "panicked at") {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// keyKindChildEnv names the case a child process of
// TestCraftedKeyKindMismatch runs.
const keyKindChildEnv = "CIRCLES_CRAFTED_KEY_KIND_CASE"

// keyKindCases address an object with the wrong kind of key: a map key on a
// list or text, a list element on a map. The changes are well formed and
// canonical, and touch only objects the same change created (or the
// draft's text, which members edit freely), but automerge-rs panics on
// some of them ("can only compare map keys"), which aborts the process.
var keyKindCases = []struct {
	name  string
	doc   string // a key of wire.Circle.Docs
	build func(c *craft)
}{
	{"ledger: map key on a new list that holds elements", "ledger", func(c *craft) {
		e := c.addEntry(uuid.NewString())
		l := c.Add(amchange.Op{Obj: e, Key: "tags", Action: amchange.MakeList})
		a := c.Add(amchange.Op{Obj: l, ElemKey: true, Insert: true, Action: amchange.Put, Value: amchangetest.Str("a")})
		c.Add(amchange.Op{Obj: l, ElemKey: true, Elem: a, Insert: true, Action: amchange.Put, Value: amchangetest.Str("b")})
		c.Add(amchange.Op{Obj: l, Key: "k", Action: amchange.Put, Value: amchangetest.Str("x")})
	}},
	{"ledger: list element on a new entry, then its fields", "ledger", func(c *craft) {
		id := uuid.NewString()
		e := c.Add(amchange.Op{Obj: c.roots["entries"], Key: id, Action: amchange.MakeMap})
		c.Add(amchange.Op{Obj: e, ElemKey: true, Insert: true, Action: amchange.Put, Value: amchangetest.Str("x")})
		c.Add(amchange.Op{Obj: e, Key: "id", Action: amchange.Put, Value: amchangetest.Str(id)})
	}},
	{"draft: map key on the text after inserting characters", string(crdt.KindCharterDraft), func(c *craft) {
		c.insertText(c.roots["text"], opID{}, "ab")
		c.Add(amchange.Op{Obj: c.roots["text"], Key: "k", Action: amchange.Put, Value: amchangetest.Str("x")})
	}},
}

// TestCraftedKeyKindMismatch sends each of keyKindCases to a real circle
// server in a child process, so that an abort shows as a failure instead
// of killing the test binary. The server must refuse the change (400 or
// 422), keep its store unchanged and keep serving.
func TestCraftedKeyKindMismatch(t *testing.T) {
	if name := os.Getenv(keyKindChildEnv); name != "" {
		for _, tc := range keyKindCases {
			if tc.name == name {
				runKeyKindCase(t, tc.doc, tc.build)
				return
			}
		}
		t.Fatalf("no case %q", name)
	}
	for _, tc := range keyKindCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestCraftedKeyKindMismatch$", "-test.v", "-test.timeout=60s")
			cmd.Env = append(os.Environ(), keyKindChildEnv+"="+tc.name)
			out, err := cmd.CombinedOutput()
			switch {
			case aborted(err, out):
				t.Errorf("the circle server's process was killed by SIGABRT: automerge-rs %s", rustPanic(out))
			case err != nil:
				t.Errorf("child process: %v; output:\n%.3000s", err, out)
			}
		})
	}
}

func runKeyKindCase(t *testing.T, kind string, build func(c *craft)) {
	c := servertest.Start(t, "Crafted Circle")
	url := c.URL()
	alice := servertest.MustEnroll(t, url, c.FounderInvite, "Alice")
	doc := servertest.MustCircle(t, url, alice).Docs[kind]
	cr := startCraft(t, url, alice, doc)
	build(cr)
	msg := cr.message()
	before := servertest.MustStoredDocs(t, c)
	r := servertest.Call(t, url, "POST", "/v1/sync", alice.Token, servertest.SyncBody(t, wire.SyncMessage{Doc: doc, Data: msg}))
	if !(r.Status == 400 && r.Code == "invalid_request") && !(r.Status == 422 && r.Code == "rule_violation") {
		t.Errorf("sync = %d %q, want 400 invalid_request or 422 rule_violation (body %.300s)", r.Status, r.Code, r.Body)
	}
	after := servertest.MustStoredDocs(t, c)
	for id, b := range before {
		if !bytes.Equal(after[id], b) {
			t.Errorf("document %s changed in the store", id)
		}
	}
	servertest.MustCircle(t, url, alice)
	c.Stop()
	c.Start()
	local, _ := servertest.MustPull(t, url, alice, doc, alice.Actor)
	if _, err := automerge.Load(local.Save()); err != nil {
		t.Errorf("document %s does not load after a restart: %v", doc, err)
	}
}

// TestCraftedDraftEditIsStored checks that an accepted edit of the charter
// draft, made the ordinary way with automerge-go, is stored: it is still
// there after a restart.
func TestCraftedDraftEditIsStored(t *testing.T) {
	c := servertest.Start(t, "Crafted Circle")
	url := c.URL()
	alice := servertest.MustEnroll(t, url, c.FounderInvite, "Alice")
	draft := servertest.MustCircle(t, url, alice).Docs[string(crdt.KindCharterDraft)]
	before := servertest.MustStoredDocs(t, c)[draft]
	msg := servertest.MustChangeMessage(t, url, alice, draft, alice.Actor, func(d *automerge.Doc) error {
		v, err := d.Path("text").Get()
		if err != nil {
			return err
		}
		return v.Text().Insert(0, "hi")
	})
	if r := servertest.Call(t, url, "POST", "/v1/sync", alice.Token, servertest.SyncBody(t, wire.SyncMessage{Doc: draft, Data: msg})); r.Status != http.StatusOK {
		t.Fatalf("draft edit: %d %s", r.Status, r.Body)
	}
	if got := draftText(t, url, alice, draft); got != "hi" {
		t.Fatalf("draft text = %q, want %q", got, "hi")
	}
	stored := servertest.MustStoredDocs(t, c)[draft]
	c.Stop()
	c.Start()
	if got := draftText(t, url, alice, draft); got != "hi" {
		t.Errorf("draft text after restart = %q, want %q: the accepted edit was not stored (stored draft %d bytes before the edit, %d after)", got, "hi", len(before), len(stored))
	}
}
