package repo_test

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/coder/websocket"
	"github.com/fxamacker/cbor/v2"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/sync/repo"
)

func TestHandshake(t *testing.T) {
	h := startHarness(t, repo.Options{})
	for _, tt := range []struct {
		name string
		join map[string]any
	}{
		{"peerMetadata", map[string]any{"type": "join", "senderId": "p1", "peerMetadata": map[string]any{"storageId": "s1", "isEphemeral": false}, "supportedProtocolVersions": []string{"1"}}},
		{"legacy metadata", map[string]any{"type": "join", "senderId": "p1", "metadata": map[string]any{"isEphemeral": true}, "supportedProtocolVersions": []string{"1"}}},
		{"no version list means 1", map[string]any{"type": "join", "senderId": "p1", "peerMetadata": map[string]any{}}},
		{"several versions", map[string]any{"type": "join", "senderId": "p1", "peerMetadata": map[string]any{}, "supportedProtocolVersions": []string{"2", "1"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := h.dial(t, "dev1", "p1")
			c.sendValue(tt.join)
			got := c.expect("peer", "")
			if got.SenderID != "test-server" || got.TargetID != "p1" || got.SelectedProtocolVersion != "1" || got.PeerMetadata == nil {
				t.Fatalf("answer to join = %+v, want peer from test-server to p1, version 1, with peerMetadata", got)
			}
			c.stillOpen(docA)
		})
	}
}

// TestIgnoredMessages: presence, heads gossip, a client's doc-unavailable
// and types of later versions are accepted and change nothing.
func TestIgnoredMessages(t *testing.T) {
	h := startHarness(t, repo.Options{})
	c := h.dial(t, "dev1", "p1")
	c.join()
	before := h.heads(t, docA)
	for _, m := range []map[string]any{
		{"type": "ephemeral", "senderId": "p1", "targetId": "test-server", "documentId": docA, "sessionId": "s", "count": 1, "data": []byte{0xa0}},
		{"type": "remote-subscription-change", "senderId": "p1", "targetId": "test-server", "add": []string{"storage-1"}},
		{"type": "remote-heads-changed", "senderId": "p1", "targetId": "test-server", "documentId": docA, "newHeads": map[string]any{"storage-1": map[string]any{"heads": []string{"ab"}, "timestamp": 1.5}}},
		{"type": "doc-unavailable", "senderId": "p1", "targetId": "test-server", "documentId": docA},
		{"type": "some-future-type", "senderId": "p1", "targetId": "test-server"},
	} {
		c.sendValue(m)
	}
	c.stillOpen(docA)
	if got := h.heads(t, docA); got != before {
		t.Errorf("heads = %s after ignored messages, want %s", got, before)
	}
	if ev := c.eventList(); len(ev) != 0 {
		t.Errorf("the server answered ignored messages with %+v", ev)
	}
}

func TestVersionError(t *testing.T) {
	h := startHarness(t, repo.Options{})
	for _, versions := range [][]string{{"2"}, {}} {
		c := h.dial(t, "dev1", "p1")
		c.sendValue(map[string]any{"type": "join", "senderId": "p1", "peerMetadata": map[string]any{}, "supportedProtocolVersions": versions})
		got := c.expect("error", "")
		if got.TargetID != "p1" || !strings.Contains(got.Message, "unsupported protocol version") {
			t.Errorf("versions %q: error message = %+v, want one naming the unsupported version", versions, got)
		}
		if code, reason := c.closed(); code != websocket.StatusPolicyViolation {
			t.Errorf("versions %q: closed with %v %q, want %v", versions, code, reason, websocket.StatusPolicyViolation)
		}
	}
}

func TestDocUnavailable(t *testing.T) {
	h := startHarness(t, repo.Options{})
	c := h.dial(t, "dev1", "p1")
	c.join()
	for _, doc := range []string{docNone, docSecret, "not a document id"} {
		c.open(doc)
		got := c.expect("doc-unavailable", doc)
		if got.SenderID != "test-server" || got.TargetID != "p1" || len(got.Data) != 0 {
			t.Errorf("answer for %s = %+v, want doc-unavailable from test-server to p1 without data", doc, got)
		}
	}
	// A sync message (not only a request) for an unreadable document, with
	// a change in it, is answered the same and stores nothing.
	before := h.heads(t, docSecret)
	d := automerge.New()
	_ = d.SetActorID(actorOf("dev1"))
	_ = d.RootMap().Set("x", "y")
	if _, err := d.Commit("intrusion"); err != nil {
		t.Fatal(err)
	}
	c.sendValue(map[string]any{"type": "sync", "senderId": "p1", "targetId": "test-server", "documentId": docSecret, "data": changesMessage(t, d)})
	c.expect("doc-unavailable", docSecret)
	if got := h.heads(t, docSecret); got != before {
		t.Errorf("heads of the unreadable document = %s, want %s", got, before)
	}
	// The connection goes on.
	c.stillOpen(docA)
}

func TestBadFrames(t *testing.T) {
	h := startHarness(t, repo.Options{MaxFrame: 4096})
	big := bytes.Repeat([]byte{0x42}, 8192)
	bigFrame, err := cbor.Marshal(map[string]any{"type": "sync", "senderId": "p1", "documentId": docA, "data": big})
	if err != nil {
		t.Fatal(err)
	}
	notMap, _ := cbor.Marshal(42)
	noSender, _ := cbor.Marshal(map[string]any{"type": "sync", "documentId": docA, "data": []byte{0x42}})
	noData, _ := cbor.Marshal(map[string]any{"type": "sync", "senderId": "p1", "documentId": docA})
	badType, _ := cbor.Marshal(map[string]any{"type": 7, "senderId": "p1"})
	dupKey := []byte{0xa2, 0x64, 't', 'y', 'p', 'e', 0x64, 's', 'y', 'n', 'c', 0x64, 't', 'y', 'p', 'e', 0x64, 'j', 'o', 'i', 'n'}
	for _, tt := range []struct {
		name      string
		typ       websocket.MessageType
		frame     []byte
		wantCode  websocket.StatusCode
		wantError bool // an error message before the close
	}{
		{"not CBOR", websocket.MessageBinary, []byte("\xff\xfe hello"), websocket.StatusInvalidFramePayloadData, true},
		{"CBOR but not a map", websocket.MessageBinary, notMap, websocket.StatusInvalidFramePayloadData, true},
		{"no senderId", websocket.MessageBinary, noSender, websocket.StatusInvalidFramePayloadData, true},
		{"type not a string", websocket.MessageBinary, badType, websocket.StatusInvalidFramePayloadData, true},
		{"duplicate key", websocket.MessageBinary, dupKey, websocket.StatusInvalidFramePayloadData, true},
		{"sync without data", websocket.MessageBinary, noData, websocket.StatusPolicyViolation, true},
		{"text frame", websocket.MessageText, []byte(`{"type":"join"}`), websocket.StatusUnsupportedData, true},
		{"oversized", websocket.MessageBinary, bigFrame, websocket.StatusMessageTooBig, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := h.heads(t, docA)
			c := h.dial(t, "dev1", "p1")
			c.join()
			c.sendRaw(tt.typ, tt.frame)
			if tt.wantError {
				if got := c.expect("error", ""); got.Message == "" || got.SenderID != "test-server" {
					t.Errorf("error message = %+v, want one from test-server saying what was wrong", got)
				}
			}
			if code, reason := c.closed(); code != tt.wantCode {
				t.Errorf("closed with %v %q, want %v", code, reason, tt.wantCode)
			}
			if got := h.heads(t, docA); got != before {
				t.Errorf("heads = %s after a bad frame, want %s", got, before)
			}
		})
	}

	t.Run("another senderId", func(t *testing.T) {
		c := h.dial(t, "dev1", "p1")
		c.join()
		c.stillOpen(docA)
		before := h.heads(t, docA)
		// A change sent as another peer is dropped: not applied, not
		// answered, and the connection goes on.
		c.write(docA, "smuggled", "smuggled")
		c.mu.Lock()
		m := changesMessage(t, c.docs[docA].d)
		c.mu.Unlock()
		c.sendValue(map[string]any{"type": "sync", "senderId": "someone-else", "targetId": "test-server", "documentId": docA, "data": m})
		// Messages before a join are dropped too (a fresh connection).
		early := h.dial(t, "dev1", "p9")
		early.sendValue(map[string]any{"type": "sync", "senderId": "p9", "targetId": "test-server", "documentId": docA, "data": m})
		early.join()
		early.stillOpen(docB)
		c.stillOpen(docB)
		if got := h.heads(t, docA); got != before {
			t.Errorf("heads = %s after messages from a foreign sender, want %s", got, before)
		}
		if h.has(t, docA, "smuggled") {
			t.Errorf("the change sent under a foreign senderId was applied")
		}
	})
}

func TestSyncAndRefusedNotice(t *testing.T) {
	h := startHarness(t, repo.Options{})
	c := h.dial(t, "dev1", "p1")
	c.join()
	c.stillOpen(docA)
	c.stillOpen(docB)

	c.write(docA, "first", "fine")
	c.flush(docA)
	c.waitFor("the change stored", func() bool { return h.has(t, docA, "first") })

	before := h.heads(t, docA)
	// The refused change goes into a fork, so the replica used afterwards
	// does not depend on it (a real device would have to drop it too).
	c.mu.Lock()
	r := c.docs[docA]
	fork, err := r.d.Fork()
	if err != nil {
		t.Fatal(err)
	}
	_ = fork.SetActorID(c.actor)
	saved := r.ss.Save()
	c.mu.Unlock()
	items, _ := fork.RootMap().Get("items")
	_ = items.Map().Set("bad", "v")
	bad, err := fork.Commit("forbidden")
	if err != nil {
		t.Fatal(err)
	}
	fss, err := automerge.LoadSyncState(fork, saved)
	if err != nil {
		t.Fatal(err)
	}
	// The fork stands in for the replica while it offers the change.
	c.mu.Lock()
	c.docs[docA] = &replica{d: fork, ss: fss}
	c.mu.Unlock()
	c.flush(docA)
	got := c.expect("ephemeral", docA)
	c.mu.Lock()
	c.docs[docA] = r
	c.mu.Unlock()
	var n repo.Notice
	if err := cbor.Unmarshal(got.Data, &n); err != nil {
		t.Fatalf("notice data is not CBOR: %v", err)
	}
	want := repo.Notice{Type: "refused", Doc: docA, Changes: []string{bad.String()}, Rule: "refused", Message: errRefused.Error()}
	if n.Type != want.Type || n.Doc != want.Doc || !slices.Equal(n.Changes, want.Changes) || n.Rule != want.Rule || n.Message != want.Message {
		t.Errorf("notice = %+v, want %+v", n, want)
	}
	if got.SenderID != "test-server" || got.TargetID != "p1" || got.SessionID == "" || got.Count == 0 {
		t.Errorf("ephemeral message = %+v, want from test-server to p1 with a session id and a count", got)
	}
	if h.heads(t, docA) != before || h.has(t, docA, "bad") {
		t.Errorf("the refused change entered the document")
	}

	// The connection, its other document and the same document go on.
	c.write(docB, "after", "fine")
	c.flush(docB)
	c.waitFor("the other document's change", func() bool { return h.has(t, docB, "after") })
	c.write(docA, "after", "fine")
	c.flush(docA)
	c.waitFor("a later change of the same document", func() bool { return h.has(t, docA, "after") })

	// A sync message that is not an automerge message gets a notice too.
	c.sendValue(map[string]any{"type": "sync", "senderId": "p1", "targetId": "test-server", "documentId": docB, "data": []byte("garbage")})
	got = c.expect("ephemeral", docB)
	if err := cbor.Unmarshal(got.Data, &n); err != nil || n.Rule != "malformed" || n.Type != "refused" {
		t.Errorf("notice for garbage = %+v (%v), want rule malformed", n, err)
	}
	c.open(docNone)
	c.expect("doc-unavailable", docNone)
}

// TestOrderedProcessing: back-to-back messages of one document are
// processed in order (each answer shows the heads after its own message),
// and while one document is held up, another one syncs.
func TestOrderedProcessing(t *testing.T) {
	h := startHarness(t, repo.Options{Workers: 2})
	c := h.dial(t, "dev1", "p1")
	c.join()
	c.stillOpen(docA)

	const n = 20
	var hashes []automerge.ChangeHash
	var msgs [][]byte
	for i := range n {
		hashes = append(hashes, c.write(docA, "k"+string(rune('a'+i)), "fine"))
		c.mu.Lock()
		m, ok := c.docs[docA].ss.GenerateMessage()
		c.mu.Unlock()
		if !ok || len(m.Changes()) != 1 {
			t.Fatalf("message %d carries %d changes, want 1", i, len(m.Changes()))
		}
		msgs = append(msgs, m.Bytes())
	}
	// Sent at once, not answered until all are out.
	for _, m := range msgs {
		c.sendValue(map[string]any{"type": "sync", "senderId": "p1", "targetId": "test-server", "documentId": docA, "data": m})
	}
	// Collect the answers until one names the last change. Answers left
	// over from the opening exchange name none of the new changes.
	index := make(map[automerge.ChangeHash]int, n)
	for i, h := range hashes {
		index[h] = i
	}
	var seen []int
	deadline := time.After(10 * time.Second)
	for len(seen) == 0 || seen[len(seen)-1] != n-1 {
		select {
		case f := <-c.frames:
			if f.Type != "sync" || f.DocumentID != docA {
				continue
			}
			sm, err := automerge.LoadSyncMessage(f.Data)
			if err != nil {
				t.Fatal(err)
			}
			if hs := sm.Heads(); len(hs) == 1 {
				if i, ok := index[hs[0]]; ok {
					seen = append(seen, i)
				}
			}
		case <-deadline:
			t.Fatalf("no answer naming the last change within 10 s; answers named changes %v", seen)
		}
	}
	// In order, each message's answer names its own change: had a message
	// been applied before the one it depends on, its change would have
	// waited and the earlier heads would never have been named.
	for i, got := range seen {
		if got != i {
			t.Fatalf("answers named changes %v, want 0..%d in order", seen, n-1)
		}
	}

	// docSlow's first change holds its worker inside the engine; docB
	// syncs meanwhile on the other worker.
	c.stillOpen(docSlow)
	c.write(docSlow, "slow", "fine")
	c.flush(docSlow)
	c.stillOpen(docB)
	c.write(docB, "quick", "fine")
	c.flush(docB)
	c.waitFor("docB while docSlow is held", func() bool { return h.has(t, docB, "quick") })
	close(h.policy.slow)
	c.waitFor("docSlow once released", func() bool { return h.has(t, docSlow, "slow") })
}

// TestReceiveQueueBound: a client that sends more than MaxQueued messages
// while they cannot be processed is closed with a reason.
func TestReceiveQueueBound(t *testing.T) {
	h := startHarness(t, repo.Options{Workers: 1, MaxQueued: 3, QueueWait: 200 * time.Millisecond})
	c := h.dial(t, "dev1", "p1")
	c.join()
	c.stillOpen(docSlow)
	c.write(docSlow, "slow", "fine")
	c.mu.Lock()
	m := changesMessage(t, c.docs[docSlow].d)
	c.mu.Unlock()
	for range 6 {
		c.sendValue(map[string]any{"type": "sync", "senderId": "p1", "targetId": "test-server", "documentId": docSlow, "data": m})
	}
	code, reason := c.closed()
	if code != websocket.StatusPolicyViolation || !strings.Contains(reason, "too many messages waiting") {
		t.Errorf("closed with %v %q, want %v naming the full queue", code, reason, websocket.StatusPolicyViolation)
	}
}

// TestPush: a change by one connection, or by the server itself, reaches
// another connection syncing the document without it asking.
func TestPush(t *testing.T) {
	h := startHarness(t, repo.Options{})
	a := h.dial(t, "dev1", "p1")
	b := h.dial(t, "dev2", "p2")
	for _, c := range []*client{a, b} {
		c.join()
		c.stillOpen(docA)
	}
	a.write(docA, "from-a", "fine")
	a.flush(docA)
	b.waitFor("a's change pushed to b", func() bool { return b.has(docA, "from-a") })

	if err := h.e.Update(context.Background(), docA, func(d *automerge.Doc) ([]byte, error) {
		items, err := d.RootMap().Get("items")
		if err != nil {
			return nil, err
		}
		return nil, items.Map().Set("from-server", "v")
	}); err != nil {
		t.Fatal(err)
	}
	a.waitFor("the server's change pushed to a", func() bool { return a.has(docA, "from-server") })
	b.waitFor("the server's change pushed to b", func() bool { return b.has(docA, "from-server") })
}

// TestReplaceSameSender: a second join with the same senderId from the
// same device replaces the first connection; the same senderId from
// another device does not.
func TestReplaceSameSender(t *testing.T) {
	h := startHarness(t, repo.Options{})
	first := h.dial(t, "dev1", "p1")
	first.join()
	other := h.dial(t, "dev2", "p1")
	other.join()
	second := h.dial(t, "dev1", "p1")
	second.join()
	code, reason := first.closed()
	if code != websocket.StatusNormalClosure || !strings.Contains(reason, "replaced") {
		t.Errorf("first connection closed with %v %q, want a normal closure saying it was replaced", code, reason)
	}
	second.stillOpen(docA)
	other.stillOpen(docA)
}

// TestKeepAlive: a client that stops answering pings is dropped.
func TestKeepAlive(t *testing.T) {
	h := startHarness(t, repo.Options{PingInterval: 50 * time.Millisecond, PingTimeout: 200 * time.Millisecond})
	// A raw connection that joins and then never reads: pongs are only
	// sent while reading.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(h.http.URL, "http")+"/?device=dev1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	join, _ := cbor.Marshal(map[string]any{"type": "join", "senderId": "p1", "peerMetadata": map[string]any{}})
	if err := ws.Write(ctx, websocket.MessageBinary, join); err != nil {
		t.Fatal(err)
	}
	// A client that reads stays connected meanwhile.
	live := h.dial(t, "dev2", "p2")
	live.join()
	time.Sleep(time.Second)
	live.stillOpen(docA)
	// The silent one finds its connection closed: reading now gets the
	// peer message, then the end.
	var readErr error
	for range 10 {
		if _, _, readErr = ws.Read(ctx); readErr != nil {
			break
		}
	}
	if readErr == nil || ctx.Err() != nil {
		t.Fatalf("the silent client is still connected (read err %v)", readErr)
	}
}

// TestLongLivedUnderWriteTimeout: the HTTP server's read and write
// timeouts do not cut a WebSocket.
func TestLongLivedUnderWriteTimeout(t *testing.T) {
	h := startHarness(t, repo.Options{}, func(s *http.Server) {
		s.WriteTimeout = 300 * time.Millisecond
		s.ReadTimeout = 300 * time.Millisecond
	})
	c := h.dial(t, "dev1", "p1")
	c.join()
	time.Sleep(time.Second)
	c.stillOpen(docA)
	c.write(docA, "late", "fine")
	c.flush(docA)
	c.waitFor("a change a second later", func() bool { return h.has(t, docA, "late") })
}

// TestRecheckAndShutdown: a connection whose credentials stop being valid
// is closed with a reason; closing the engine closes the others.
func TestRecheckAndShutdown(t *testing.T) {
	h := startHarness(t, repo.Options{RecheckEvery: 50 * time.Millisecond})
	c := h.dial(t, "dev1", "p1")
	c.join()
	h.denied.Store(true)
	code, reason := c.closed()
	if code != websocket.StatusPolicyViolation || !strings.Contains(reason, "token") {
		t.Errorf("closed with %v %q, want %v about the token", code, reason, websocket.StatusPolicyViolation)
	}
	h.denied.Store(false)
	d := h.dial(t, "dev2", "p2")
	d.join()
	d.stillOpen(docA)
	if err := h.e.Close(); err != nil {
		t.Fatal(err)
	}
	if code, reason := d.closed(); code != websocket.StatusGoingAway {
		t.Errorf("after the engine closed: closed with %v %q, want %v", code, reason, websocket.StatusGoingAway)
	}
}

// BenchmarkChangeRoundTrip: one connection writes a change and waits until
// the server has stored it and answered; one iteration is one change. The
// document is replaced by a fresh one every 250 changes, so the figure is
// the transport's and not automerge's growing cost on a long history.
func BenchmarkChangeRoundTrip(b *testing.B) {
	h := startHarness(b, repo.Options{})
	c := h.dial(b, "dev1", "p1")
	c.join()
	var doc string
	for i := range b.N {
		if i%250 == 0 {
			b.StopTimer()
			doc = string(crdt.NewDocID())
			if err := h.e.Create(context.Background(), doc, func(d *automerge.Doc) ([]byte, error) {
				return nil, d.RootMap().Set("items", automerge.NewMap())
			}); err != nil {
				b.Fatal(err)
			}
			c.stillOpen(doc)
			b.StartTimer()
		}
		hash := c.write(doc, "k"+strconv.Itoa(i), "fine")
		c.flush(doc)
		c.waitFor("the answer", func() bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			for _, f := range c.syncs {
				if sm, err := automerge.LoadSyncMessage(f.Data); err == nil && slices.Contains(sm.Heads(), hash) {
					return true
				}
			}
			return false
		})
		c.mu.Lock()
		c.syncs = c.syncs[:0]
		c.mu.Unlock()
	}
}
