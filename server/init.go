package server

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/circles-coop/circles/authority"
	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/internal/atomicfile"
	"github.com/circles-coop/circles/sync/engine"
)

// ErrInitialized is returned by Init for a data directory that already
// holds a circle.
var ErrInitialized = errors.New("the data directory already holds a circle")

// keyFile holds the circle's Ed25519 key (base64 seed), in the data
// directory.
const keyFile = "circle.key"

// InitResult is what Init made.
type InitResult struct {
	CircleID string `json:"circle_id"`
	Invite   string `json:"invite"`
}

// Init creates a circle in cfg.DataDir: its Ed25519 key, its store, the
// server-written documents and the charter with policies, and a founder
// invite (valid 7 days; authority.Found). It refuses a directory that
// already holds a circle.
func Init(ctx context.Context, cfg Config, name string, policies crdt.Policies) (InitResult, error) {
	if err := cfg.Validate(); err != nil {
		return InitResult{}, err
	}
	name = strings.TrimSpace(name)
	if name == "" || len([]rune(name)) > 100 {
		return InitResult{}, errors.New("the circle needs a name of 1 to 100 characters (--name)")
	}
	if err := policies.Validate(); err != nil {
		return InitResult{}, err
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, keyFile)); err == nil {
		return InitResult{}, fmt.Errorf("%s: %w", cfg.DataDir, ErrInitialized)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return InitResult{}, fmt.Errorf("create data directory: %w", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(cfg.DataDir, "nats")); len(entries) > 0 {
		return InitResult{}, fmt.Errorf("%s holds a store but no circle key (an interrupted init?); remove it and run init again", cfg.DataDir)
	}
	unlock, err := lockData(cfg.DataDir)
	if err != nil {
		return InitResult{}, err
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		unlock()
		return InitResult{}, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("component", "init"), unlock: unlock}
	defer s.Close()
	s.natsName = natsServerName(key)
	if err := s.openStore(ctx); err != nil {
		return InitResult{}, err
	}
	// An external cluster is not in the data directory: it may hold a
	// circle already (one circle per NATS account: the stream names are
	// fixed).
	if docs, err := s.store.Docs(ctx); err != nil {
		return InitResult{}, err
	} else if len(docs) > 0 {
		return InitResult{}, fmt.Errorf("the store at %s already holds %d documents of a circle: %w", cfg.NATSURL, len(docs), ErrInitialized)
	}
	meta := authority.NewMeta(name, key, cfg.Now())
	s.auth = authority.New(authority.Config{Meta: meta, Key: key, Store: s.store, Logger: cfg.Logger, Now: cfg.Now, IndexDir: cfg.DataDir})
	s.engine = engine.New(engine.Config{Store: s.store, Policy: s.auth.Policy, Actor: meta.Actor, Logger: cfg.Logger})
	if err := s.engine.Open(ctx); err != nil {
		return InitResult{}, err
	}
	code, err := s.auth.Found(ctx, s.engine, policies)
	if err != nil {
		return InitResult{}, err
	}
	// The key file is written last: its presence marks a finished init.
	seed := base64.StdEncoding.EncodeToString(key.Seed())
	if err := atomicfile.Write(filepath.Join(cfg.DataDir, keyFile), []byte(seed+"\n"), 0o600); err != nil {
		return InitResult{}, fmt.Errorf("write circle key: %w", err)
	}
	return InitResult{CircleID: meta.ID, Invite: code}, nil
}

func readKey(dir string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(filepath.Join(dir, keyFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s holds no circle; create one with: circled init --data %s --name NAME", dir, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("read circle key: %w", err)
	}
	key, err := parseKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s is not a circle key", filepath.Join(dir, keyFile))
	}
	return key, nil
}
