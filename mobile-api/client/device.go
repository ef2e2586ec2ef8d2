package client

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/internal/atomicfile"
	"github.com/circles-coop/circles/wire"
)

// ErrNoDevice is returned by OpenDevice when the home directory holds no
// device.
var ErrNoDevice = errors.New("no device here; run join first")

// ErrDeviceExists is returned by InitDevice, and by Join, when the home
// directory already holds a device (for Join: an enrolled one).
var ErrDeviceExists = errors.New("a device already exists here")

// ErrNotEnrolled is returned by calls that need the server when the device
// has a key but was never enrolled.
var ErrNotEnrolled = errors.New("device is not enrolled in a circle; run join")

// DeviceInfo is the content of device.json.
type DeviceInfo struct {
	ServerURL  string `json:"server_url,omitempty"`
	CircleID   string `json:"circle_id,omitempty"`
	MemberID   string `json:"member_id,omitempty"`
	DeviceID   string `json:"device_id,omitempty"`
	ActorID    string `json:"actor_id"`
	MemberName string `json:"member_name,omitempty"`
	DeviceName string `json:"device_name,omitempty"`
	// Circle is the answer of GET /v1/circle as last seen: the circle's
	// name, its documents and its members' ledgers.
	Circle       *wire.Circle `json:"circle,omitempty"`
	CircleSeenAt time.Time    `json:"circle_seen_at,omitzero"`
	// LastSync is when a Sync last finished with every document in step.
	LastSync time.Time `json:"last_sync,omitzero"`
}

// Enrolled reports whether the server has given this device its ids.
func (i DeviceInfo) Enrolled() bool {
	return i.ServerURL != "" && i.CircleID != "" && i.MemberID != "" && i.DeviceID != ""
}

// Device is a member's device kept in a home directory (see the package
// comment for its files). Its methods are safe for concurrent use, and a
// lock on the directory serialises writers across processes.
type Device struct {
	home  string
	key   ed25519.PrivateKey
	opts  []Option
	store store

	mu     sync.Mutex
	info   DeviceInfo
	client *Client
}

// InitDevice creates a device in home (made if missing, mode 0700): a new
// Ed25519 key and a new automerge actor id, not yet enrolled. It returns
// ErrDeviceExists if home already holds a device. The options are used for
// the device's Client.
func InitDevice(home string, opts ...Option) (*Device, error) {
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, fmt.Errorf("init device: %w", err)
	}
	unlock, err := lockHome(home)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(home, infoFile)); err == nil {
		return nil, fmt.Errorf("init device in %s: %w", home, ErrDeviceExists)
	}
	for _, dir := range []string{docsDir, syncDir} {
		if err := os.MkdirAll(filepath.Join(home, dir), 0o700); err != nil {
			return nil, fmt.Errorf("init device: %w", err)
		}
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("init device: generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("init device: encode key: %w", err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := atomicfile.Write(filepath.Join(home, keyFile), pemKey, 0o600); err != nil {
		return nil, fmt.Errorf("init device: write key: %w", err)
	}
	d := newDevice(home, key, DeviceInfo{ActorID: automerge.NewActorID()}, opts)
	if err := d.saveInfo(d.info); err != nil {
		return nil, err
	}
	return d, nil
}

// OpenDevice opens the device kept in home. It returns an error wrapping
// ErrNoDevice if there is none, or an error naming the broken file.
func OpenDevice(home string, opts ...Option) (*Device, error) {
	data, err := os.ReadFile(filepath.Join(home, infoFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open device in %s: %w", home, ErrNoDevice)
	}
	if err != nil {
		return nil, fmt.Errorf("open device: %w", err)
	}
	var info DeviceInfo
	if err := json.Unmarshal(data, &info); err != nil {
		return nil, fmt.Errorf("open device: %s: %w", infoFile, err)
	}
	if info.ActorID == "" {
		return nil, fmt.Errorf("open device: %s has no actor_id", infoFile)
	}
	key, err := readKey(filepath.Join(home, keyFile))
	if err != nil {
		return nil, fmt.Errorf("open device: %w", err)
	}
	return newDevice(home, key, info, opts), nil
}

func newDevice(home string, key ed25519.PrivateKey, info DeviceInfo, opts []Option) *Device {
	return &Device{
		home:  home,
		key:   key,
		opts:  opts,
		info:  info,
		store: store{home: home, actor: info.ActorID},
	}
}

func readKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read device key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s: not a PEM \"PRIVATE KEY\" block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an Ed25519 key", path)
	}
	return key, nil
}

// Home returns the device's home directory.
func (d *Device) Home() string { return d.home }

// Info returns a copy of the device's device.json content.
func (d *Device) Info() DeviceInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.info
}

// PublicKey returns the device's Ed25519 public key.
func (d *Device) PublicKey() ed25519.PublicKey {
	return d.key.Public().(ed25519.PublicKey)
}

// ActorID returns the automerge actor id every change of this device
// carries.
func (d *Device) ActorID() string { return d.store.actor }

// Assertion returns a fresh device assertion for POST /v1/token. It
// returns ErrNotEnrolled before enrolment.
func (d *Device) Assertion() (string, error) {
	info := d.Info()
	if !info.Enrolled() {
		return "", ErrNotEnrolled
	}
	return NewAssertion(d.key, info.DeviceID, info.CircleID, time.Now())
}

// Client returns the device's API client, which gets its access tokens
// with the device key. It returns ErrNotEnrolled before enrolment.
func (d *Device) Client() (*Client, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.client != nil {
		return d.client, nil
	}
	if !d.info.Enrolled() {
		return nil, ErrNotEnrolled
	}
	opts := append([]Option{}, d.opts...)
	opts = append(opts, WithCredentials(Credentials{CircleID: d.info.CircleID, DeviceID: d.info.DeviceID, Key: d.key}))
	c, err := New(d.info.ServerURL, opts...)
	if err != nil {
		return nil, err
	}
	d.client = c
	return c, nil
}

// saveInfo writes info to device.json and makes it the device's info.
func (d *Device) saveInfo(info DeviceInfo) error {
	data, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", infoFile, err)
	}
	if err := atomicfile.Write(filepath.Join(d.home, infoFile), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", infoFile, err)
	}
	d.mu.Lock()
	d.info = info
	d.mu.Unlock()
	return nil
}

// Join makes a device in home, enrols it with invite at the server at
// serverURL (POST /v1/enroll), fetches the circle (GET /v1/circle), saves
// device.json and syncs once, so the member's ledger is on disk before the
// first Log. A home holding a key that was never enrolled (an earlier Join
// failed) is reused; one holding an enrolled device gives ErrDeviceExists.
// If enrolment succeeded but the first sync failed, Join returns the device
// and the error: run Sync again.
func Join(ctx context.Context, home, serverURL, invite, memberName, deviceName string, opts ...Option) (*Device, error) {
	d, err := OpenDevice(home, opts...)
	switch {
	case errors.Is(err, ErrNoDevice):
		if d, err = InitDevice(home, opts...); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	case d.Info().Enrolled():
		return nil, fmt.Errorf("join: %s: %w (member %s of circle %s)", home, ErrDeviceExists, d.Info().MemberID, d.Info().CircleID)
	}
	c, err := New(serverURL, opts...)
	if err != nil {
		return nil, err
	}
	enr, err := c.Enroll(ctx, wire.EnrollRequest{
		Invite:     invite,
		MemberName: memberName,
		DeviceName: deviceName,
		PublicKey:  d.PublicKey(),
		ActorID:    d.ActorID(),
	})
	if err != nil {
		return nil, fmt.Errorf("join: enroll: %w", err)
	}
	info := d.Info()
	info.ServerURL = c.BaseURL()
	info.CircleID, info.MemberID, info.DeviceID = enr.CircleID, enr.MemberID, enr.DeviceID
	info.MemberName, info.DeviceName = memberName, deviceName
	// Keep the token from enrolment: the client refreshes it with the key.
	c.creds = &Credentials{CircleID: enr.CircleID, DeviceID: enr.DeviceID, Key: d.key}
	d.mu.Lock()
	d.client = c
	d.mu.Unlock()
	circle, err := c.Circle(ctx)
	if err != nil {
		// Enrolled: remember the ids so Sync can finish the job.
		if serr := d.saveInfo(info); serr != nil {
			return nil, serr
		}
		return d, fmt.Errorf("join: enrolled, but fetching the circle failed: %w", err)
	}
	info.Circle, info.CircleSeenAt = circle, time.Now().UTC()
	for _, m := range circle.Members {
		if m.MemberID == enr.MemberID {
			// A device invite joins an existing member, whose name the
			// server knows better than the name given here.
			info.MemberName = m.Name
		}
	}
	if err := d.saveInfo(info); err != nil {
		return nil, err
	}
	if _, err := d.Sync(ctx, nil); err != nil {
		return d, fmt.Errorf("join: enrolled, but the first sync failed: %w", err)
	}
	return d, nil
}
