package server_test

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/circles-coop/circles/server"
	"github.com/circles-coop/circles/server/servertest"
)

// stream is one open GET /v1/events: the event types it hears, and done,
// closed when the server ends it.
type stream struct {
	events <-chan string
	done   <-chan struct{}
}

func openStream(t *testing.T, url, token string) stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /v1/events: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		t.Fatalf("GET /v1/events: %d", resp.StatusCode)
	}
	events, done := make(chan string, 64), make(chan struct{})
	go func() {
		defer close(done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if ev, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				select {
				case events <- ev:
				default:
				}
			}
		}
	}()
	return stream{events: events, done: done}
}

func wantEnded(t *testing.T, s stream, within time.Duration, what string) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(within):
		t.Fatalf("%s: the event stream is still open after %s", what, within)
	}
}

func wantOpen(t *testing.T, s stream, what string) {
	t.Helper()
	select {
	case <-s.done:
		t.Fatalf("%s: the event stream ended", what)
	default:
	}
}

// TestEventStreamEndsOnRevocation: the stream of a device ends within a
// second of its revocation; the member's other device keeps its own.
func TestEventStreamEndsOnRevocation(t *testing.T) {
	c := servertest.Start(t, "Revoked Stream")
	url := c.URL()
	phone := servertest.MustEnroll(t, url, c.FounderInvite, "Alice")
	laptop := servertest.MustEnroll(t, url, servertest.MustInvite(t, url, phone, "device", "1h"), "Alice")
	lost := openStream(t, url, laptop.Token)
	kept := openStream(t, url, phone.Token)
	if r := servertest.Call(t, url, "POST", "/v1/devices/"+laptop.ID+"/revoke", phone.Token, []byte(`{}`)); r.Status != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	wantEnded(t, lost, time.Second, "revoked device")
	wantOpen(t, kept, "the member's other device")
}

// TestEventStreamEndsOnRemoval: once member.remove passes, the removed
// member's streams end within a second.
func TestEventStreamEndsOnRemoval(t *testing.T) {
	c := servertest.Start(t, "Removed Stream")
	url := c.URL()
	a := servertest.MustEnroll(t, url, c.FounderInvite, "Ada")
	b := servertest.MustEnroll(t, url, servertest.MustInvite(t, url, a, "member", "1h"), "Bo")
	bStream := openStream(t, url, b.Token)
	aStream := openStream(t, url, a.Token)
	p := mustPropose(t, url, a, "member.remove", "Bo leaves", map[string]any{"member": b.Member})
	mustVote(t, url, a, p.ID, "yes")
	if got := mustVote(t, url, b, p.ID, "yes"); got.Status != "passed" {
		t.Fatalf("member.remove is %s, want passed", got.Status)
	}
	wantEnded(t, bStream, time.Second, "removed member")
	wantOpen(t, aStream, "a remaining member")
}

// TestEventStreamsPerDevice: a device holds at most 4 streams; opening a
// 5th closes its oldest, and every other stream keeps delivering.
func TestEventStreamsPerDevice(t *testing.T) {
	c := servertest.Start(t, "Many Streams")
	url := c.URL()
	a := servertest.MustEnroll(t, url, c.FounderInvite, "Ada")
	b := servertest.MustEnroll(t, url, servertest.MustInvite(t, url, a, "member", "1h"), "Bo")
	var streams []stream
	for i := 0; i < 5; i++ {
		streams = append(streams, openStream(t, url, a.Token))
	}
	other := openStream(t, url, b.Token)
	wantEnded(t, streams[0], time.Second, "the oldest of 5 streams of one device")
	mustPropose(t, url, a, "role.create", "A treasurer", treasurer(2))
	for i, s := range append(streams[1:], other) {
		select {
		case ev := <-s.events:
			if ev != "proposal.opened" {
				t.Errorf("stream %d heard %q, want proposal.opened", i+1, ev)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("stream %d heard nothing within 5 s", i+1)
		}
	}
}

// TestEventStreamOutlivesWriteTimeout: a stream still delivers after the
// server's WriteTimeout (1 s here, 60 s by default) has passed.
func TestEventStreamOutlivesWriteTimeout(t *testing.T) {
	c := servertest.Start(t, "Long Stream", servertest.WithConfig(func(cfg *server.Config) {
		cfg.WriteTimeout = time.Second
	}))
	url := c.URL()
	a := servertest.MustEnroll(t, url, c.FounderInvite, "Ada")
	s := openStream(t, url, a.Token)
	time.Sleep(2 * time.Second)
	mustPropose(t, url, a, "role.create", "A treasurer", treasurer(2))
	select {
	case ev := <-s.events:
		if ev != "proposal.opened" {
			t.Errorf("heard %q, want proposal.opened", ev)
		}
	case <-s.done:
		t.Fatal("the stream ended before the event, after the write timeout")
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5 s")
	}
}
