package store_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/circles-coop/circles/sync/store"
)

func TestStartNATSListeners(t *testing.T) {
	tests := []struct {
		name       string
		listen     string
		wantListen bool
	}{
		{"in-process only", "", false},
		{"loopback, free port", "127.0.0.1:0", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := MustNATSConfig(t, store.NATSConfig{Dir: t.TempDir(), Listen: tt.listen})
			addr := n.Server().Addr()
			if got := addr != nil; got != tt.wantListen {
				t.Fatalf("Server().Addr() = %v, want a listener: %v", addr, tt.wantListen)
			}
			// The in-process connection reaches JetStream either way.
			if _, err := n.JetStream().AccountInfo(testCtx(t)); err != nil {
				t.Fatalf("AccountInfo() in-process error = %v", err)
			}
			if got, want := n.Conn().MaxPayload(), int64(store.MaxPayload); got != want {
				t.Errorf("Conn().MaxPayload() = %d, want %d", got, want)
			}
			if !tt.wantListen {
				return
			}
			// A TCP client sees what the store writes.
			s := MustStore(t, n, store.Options{})
			MustAppend(t, s, "doc", "over tcp")
			nc, err := nats.Connect("nats://" + addr.String())
			if err != nil {
				t.Fatalf("nats.Connect(%s) error = %v", addr, err)
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatalf("jetstream.New() error = %v", err)
			}
			s2, err := store.Open(testCtx(t), js, store.Options{})
			if err != nil {
				t.Fatalf("Open() over TCP error = %v", err)
			}
			got, err := s2.Load(testCtx(t), "doc")
			if err != nil || len(got.Chunks) != 1 || string(got.Chunks[0].Data) != "over tcp" {
				t.Errorf("Load(doc) over TCP = %+v, %v; want one chunk \"over tcp\"", got, err)
			}
		})
	}
}

func TestStartNATSBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  store.NATSConfig
	}{
		{"no dir", store.NATSConfig{}},
		{"listen without port", store.NATSConfig{Dir: t.TempDir(), Listen: "127.0.0.1"}},
		{"listen port not a number", store.NATSConfig{Dir: t.TempDir(), Listen: "127.0.0.1:http"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := store.StartNATS(context.Background(), tt.cfg)
			if err == nil {
				n.Close()
				t.Fatalf("StartNATS(%+v) error = nil, want an error", tt.cfg)
			}
		})
	}
}

func TestStartNATSLogs(t *testing.T) {
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	n := MustNATSConfig(t, store.NATSConfig{Dir: t.TempDir(), Logger: logger})
	if err := n.Close(); err != nil {
		t.Fatalf("Close() error = %v", err)
	}
	if err := n.Close(); err != nil {
		t.Errorf("second Close() error = %v, want nil", err)
	}
	out := buf.String()
	for _, want := range []string{"component=nats", "Starting nats-server", "Server is ready"} {
		if !strings.Contains(out, want) {
			t.Errorf("server log lacks %q; log:\n%s", want, out)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the server's concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
