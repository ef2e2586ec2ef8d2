package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/circles-coop/circles/mobile-api/client"
	"github.com/circles-coop/circles/wire"
)

// Helpers of the crash harness (crash_test.go): a circled process that
// can be killed and started again, raw HTTP calls as a member, and the
// members' credentials.

// proc is one run of `circled serve` on a data directory.
type proc struct {
	cmd  *exec.Cmd
	addr string
	logs *lockedBuffer
	done chan struct{}
}

// lockedBuffer collects a process's output; the process writes it while
// the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// tail returns the last n lines of the output.
func (l *lockedBuffer) tail(n int) string {
	lines := strings.Split(strings.TrimRight(l.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// serve starts `circled serve` on data, listening on listen, with extra
// flags, and waits (at most 30 s) for its address file.
func serve(bin, data, listen string, extra ...string) (*proc, error) {
	addrFile := filepath.Join(data+".run", fmt.Sprintf("addr-%d", time.Now().UnixNano()))
	if err := os.MkdirAll(filepath.Dir(addrFile), 0o700); err != nil {
		return nil, err
	}
	args := append([]string{"serve", "--data", data, "--listen", listen, "--addr-file", addrFile}, extra...)
	p := &proc{cmd: exec.Command(bin, args...), logs: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start circled: %w", err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(addrFile); err == nil && strings.HasSuffix(string(b), "\n") {
			p.addr = strings.TrimSpace(string(b))
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("circled exited before it was ready:\n%s", p.logs.tail(30))
		case <-time.After(20 * time.Millisecond):
		}
	}
	p.kill()
	return nil, fmt.Errorf("circled was not ready within 30 s:\n%s", p.logs.tail(30))
}

// kill sends SIGKILL and waits (at most 10 s) for the process to end.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

// stop asks the process to shut down (SIGTERM), killing it after 20 s.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.kill()
	}
}

// api calls one circle over loopback HTTP.
type api struct {
	base string
	hc   *http.Client
}

func newAPI(addr string) *api {
	return &api{base: "http://" + addr, hc: &http.Client{Timeout: 15 * time.Second}}
}

// httpError is an answer with an unexpected status.
type httpError struct {
	status int
	body   string
}

func (e *httpError) Error() string { return fmt.Sprintf("status %d: %.300s", e.status, e.body) }

// do sends in as JSON (nil: no body) and decodes a 2xx answer into out.
// Any other status is an *httpError.
func (a *api) do(ctx context.Context, method, path, token string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s %s: %w", method, path, &httpError{resp.StatusCode, string(b)})
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode: %w", method, path, err)
		}
	}
	return nil
}

// member is a member's device as the harness knows it: its credentials
// and, for the founding members, its offline store (client.Device).
type member struct {
	name     string
	memberID string
	deviceID string
	key      ed25519.PrivateKey
	dev      *client.Device // nil for a device enrolled by raw HTTP

	mu    sync.Mutex
	token string
}

// tokenFor returns an access token for m, asking POST /v1/token with a
// fresh device assertion when it has none (or fresh is set).
func (a *api) tokenFor(ctx context.Context, circle string, m *member, fresh bool) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.token != "" && !fresh {
		return m.token, nil
	}
	as, err := client.NewAssertion(m.key, m.deviceID, circle, time.Now())
	if err != nil {
		return "", err
	}
	var tr wire.TokenResponse
	if err := a.do(ctx, "POST", "/v1/token", "", wire.TokenRequest{Assertion: as}, &tr); err != nil {
		return "", err
	}
	m.token = tr.AccessToken
	return m.token, nil
}

// as calls the API as member m.
func (a *api) as(ctx context.Context, circle string, m *member, method, path string, in, out any) error {
	tok, err := a.tokenFor(ctx, circle, m, false)
	if err != nil {
		return err
	}
	err = a.do(ctx, method, path, tok, in, out)
	var he *httpError
	if errors.As(err, &he) && he.status == http.StatusUnauthorized {
		if tok, err = a.tokenFor(ctx, circle, m, true); err != nil {
			return err
		}
		err = a.do(ctx, method, path, tok, in, out)
	}
	return err
}

// readDeviceKey reads the private key a client.Device keeps in its home.
func readDeviceKey(home string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(filepath.Join(home, "device.key"))
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("device.key holds no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, errors.New("device.key is not an Ed25519 key")
	}
	return key, nil
}

// pointDevice makes the device kept in home talk to the server at url:
// the trial's copy of a founding member's home still names the server
// that enrolled it.
func pointDevice(home, url string) error {
	path := filepath.Join(home, "device.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var info map[string]any
	if err := json.Unmarshal(b, &info); err != nil {
		return err
	}
	info["server_url"] = url
	out, err := json.Marshal(info)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o600)
}

// copyTree copies the regular files and directories under src to dst.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, info.Mode().Perm()|0o700)
		case info.Mode().IsRegular():
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, info.Mode().Perm())
		}
		return nil // sockets, links: nothing of the circle
	})
}
