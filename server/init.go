package server

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/mr-tron/base58"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/sync/engine"
)

// ErrInitialized is returned by Init for a data directory that already
// holds a circle.
var ErrInitialized = errors.New("the data directory already holds a circle")

const (
	keyFile       = "circle.key"
	metaCircleKey = "circle"
	founderTTL    = 7 * 24 * time.Hour
)

// circleMeta is the circle's identity and the ids of its server-written
// documents, kept in the store's meta bucket.
type circleMeta struct {
	ID        string                   `json:"circle_id"`
	Name      string                   `json:"name"`
	CreatedAt time.Time                `json:"created_at"`
	Actor     string                   `json:"actor"` // the server's automerge actor id
	PublicKey []byte                   `json:"public_key"`
	Docs      map[crdt.Kind]crdt.DocID `json:"docs"`
}

// InitResult is what Init made.
type InitResult struct {
	CircleID string `json:"circle_id"`
	Invite   string `json:"invite"`
}

// Init creates a circle in cfg.DataDir: its Ed25519 key, its store, the
// server-written documents and the charter with policies, and a founder
// invite (valid 7 days). It refuses a directory that already holds a
// circle.
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
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return InitResult{}, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("component", "init"), key: priv, met: newMetrics(nil), events: newBroker()}
	defer s.Close()
	if err := s.openStore(ctx); err != nil {
		return InitResult{}, err
	}
	s.meta = circleMeta{
		ID:        newID(10),
		Name:      name,
		CreatedAt: s.now(),
		Actor:     automerge.NewActorID(),
		PublicKey: pub,
		Docs:      make(map[crdt.Kind]crdt.DocID),
	}
	s.engine = engine.New(engine.Config{Store: s.store, Policy: (*policy)(s), Actor: s.meta.Actor, Logger: cfg.Logger})
	if err := s.engine.Open(ctx); err != nil {
		return InitResult{}, err
	}
	inits := []struct {
		kind crdt.Kind
		fn   func(d *automerge.Doc) error
	}{
		{crdt.KindCharter, func(d *automerge.Doc) error { return crdt.InitCharter(d, name, policies) }},
		{crdt.KindCharterDraft, crdt.InitCharterDraft},
		{crdt.KindRoster, crdt.InitRoster},
		{crdt.KindGovernance, crdt.InitGovernance},
		{crdt.KindAudit, crdt.InitAudit},
	}
	for _, in := range inits {
		id := crdt.NewDocID()
		fn := in.fn
		if err := s.engine.Create(ctx, string(id), func(d *automerge.Doc) ([]byte, error) { return nil, fn(d) }); err != nil {
			return InitResult{}, fmt.Errorf("create %s document: %w", in.kind, err)
		}
		s.meta.Docs[in.kind] = id
	}
	if _, err := s.store.Meta().Create(ctx, metaCircleKey, mustJSON(s.meta)); err != nil {
		return InitResult{}, fmt.Errorf("save circle: %w", err)
	}
	if err := s.appendAudit(ctx, crdt.AuditCircleCreated, map[string]any{
		"circle_id": s.meta.ID, "name": name, "public_key": s.meta.PublicKey, "policies": policies,
	}); err != nil {
		return InitResult{}, err
	}
	code, err := (*identity)(s).newInvite(ctx, invite{For: inviteMember, Founder: true, ExpiresAt: s.now().Add(founderTTL)})
	if err != nil {
		return InitResult{}, err
	}
	// The key file is written last: its presence marks a finished init.
	seed := base64.StdEncoding.EncodeToString(priv.Seed())
	if err := writeFileAtomic(filepath.Join(cfg.DataDir, keyFile), []byte(seed+"\n"), 0o600); err != nil {
		return InitResult{}, fmt.Errorf("write circle key: %w", err)
	}
	return InitResult{CircleID: s.meta.ID, Invite: code}, nil
}

func readKey(dir string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(filepath.Join(dir, keyFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s holds no circle; create one with: circled init --data %s --name NAME", dir, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("read circle key: %w", err)
	}
	seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%s is not a circle key", filepath.Join(dir, keyFile))
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

func (s *Server) loadMeta(ctx context.Context) error {
	b, _, err := s.store.Meta().Get(ctx, metaCircleKey)
	if err != nil {
		return fmt.Errorf("read circle from store: %w", err)
	}
	if err := json.Unmarshal(b, &s.meta); err != nil {
		return fmt.Errorf("decode circle: %w", err)
	}
	if !ed25519.PublicKey(s.meta.PublicKey).Equal(s.key.Public()) {
		return errors.New("circle.key does not match the circle in the store")
	}
	return nil
}

// newID returns a random base58 id of n bytes of entropy.
func newID(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("server: random: %v", err))
	}
	return base58.Encode(b)
}
