package store

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// KV is a small key-value bucket with revisions, for state that is
// overwritten rather than appended. Keys are arbitrary non-empty strings of
// at most MaxKeyLen bytes; the store encodes them into valid JetStream keys
// and decodes them back in Keys.
type KV interface {
	// Get returns the value and revision of key. ErrNotFound if absent or
	// deleted.
	Get(ctx context.Context, key string) ([]byte, uint64, error)
	// Put writes val under key unconditionally and returns the new revision.
	Put(ctx context.Context, key string, val []byte) (uint64, error)
	// Create writes val only if key is absent (or deleted). ErrExists
	// otherwise.
	Create(ctx context.Context, key string, val []byte) (uint64, error)
	// Update writes val only if key's current revision is lastRev.
	// ErrConflict otherwise.
	Update(ctx context.Context, key string, val []byte, lastRev uint64) (uint64, error)
	// Delete removes key. Deleting an absent key is not an error.
	Delete(ctx context.Context, key string) error
	// Keys returns every present key, sorted.
	Keys(ctx context.Context) ([]string, error)
}

// MaxKeyLen is the longest KV key accepted, in bytes.
const MaxKeyLen = 512

// bucket implements KV on a JetStream KV bucket.
type bucket struct {
	kv    jetstream.KeyValue
	name  string
	gate  *sync.RWMutex // the store's write gate (Store.Snapshot)
	fence func() error  // Options.Fence
}

var _ KV = (*bucket)(nil)

// SyncStates holds the automerge sync state per (device, doc).
func (s *Store) SyncStates() KV { return s.syncStates }

// Meta holds the circle's config, keys, roster cache and counters.
func (s *Store) Meta() KV { return s.meta }

// Invites holds pending invites.
func (s *Store) Invites() KV { return s.invites }

// encodedMark starts every encoded key. Plain keys never contain it.
const encodedMark = '='

// encodeKey maps a caller's key to a valid JetStream KV key. Keys made of
// [A-Za-z0-9_.-] with no empty dot-separated token stay as they are (so
// they read well in `nats kv ls`); anything else becomes "=" followed by
// its unpadded base64url encoding. The two forms cannot collide, since
// plain keys contain no "=".
func encodeKey(key string) (string, error) {
	if key == "" || len(key) > MaxKeyLen {
		return "", fmt.Errorf("%w: length %d not in 1..%d", ErrBadKey, len(key), MaxKeyLen)
	}
	if plainKey(key) {
		return key, nil
	}
	return string(encodedMark) + base64.RawURLEncoding.EncodeToString([]byte(key)), nil
}

func plainKey(key string) bool {
	if key[0] == '.' || key[len(key)-1] == '.' {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		case c == '.':
			if key[i+1] == '.' {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// decodeKey reverses encodeKey. It reports false for a key encodeKey cannot
// have produced.
func decodeKey(k string) (string, bool) {
	if k == "" {
		return "", false
	}
	if k[0] != encodedMark {
		return k, plainKey(k)
	}
	b, err := base64.RawURLEncoding.DecodeString(k[1:])
	if err != nil || len(b) == 0 {
		return "", false
	}
	key := string(b)
	if plainKey(key) { // encodeKey would have kept it plain
		return "", false
	}
	return key, true
}

// Get implements KV.
func (b *bucket) Get(ctx context.Context, key string) ([]byte, uint64, error) {
	k, err := encodeKey(key)
	if err != nil {
		return nil, 0, err
	}
	e, err := b.kv.Get(ctx, k)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, fmt.Errorf("%s: get %q: %w", b.name, key, ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("store: %s: get %q: %w", b.name, key, err)
	}
	return e.Value(), e.Revision(), nil
}

// Put implements KV.
func (b *bucket) Put(ctx context.Context, key string, val []byte) (uint64, error) {
	k, err := encodeKey(key)
	if err != nil {
		return 0, err
	}
	if err := enterGate(b.gate, b.fence); err != nil {
		return 0, err
	}
	defer b.gate.RUnlock()
	rev, err := b.kv.Put(ctx, k, val)
	if err != nil {
		return 0, fmt.Errorf("store: %s: put %q: %w", b.name, key, err)
	}
	return rev, nil
}

// Create implements KV.
func (b *bucket) Create(ctx context.Context, key string, val []byte) (uint64, error) {
	k, err := encodeKey(key)
	if err != nil {
		return 0, err
	}
	if err := enterGate(b.gate, b.fence); err != nil {
		return 0, err
	}
	defer b.gate.RUnlock()
	rev, err := b.kv.Create(ctx, k, val)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, fmt.Errorf("%s: create %q: %w", b.name, key, ErrExists)
	}
	if err != nil {
		return 0, fmt.Errorf("store: %s: create %q: %w", b.name, key, err)
	}
	return rev, nil
}

// Update implements KV.
func (b *bucket) Update(ctx context.Context, key string, val []byte, lastRev uint64) (uint64, error) {
	k, err := encodeKey(key)
	if err != nil {
		return 0, err
	}
	if err := enterGate(b.gate, b.fence); err != nil {
		return 0, err
	}
	defer b.gate.RUnlock()
	rev, err := b.kv.Update(ctx, k, val, lastRev)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, fmt.Errorf("%s: update %q at revision %d: %w", b.name, key, lastRev, ErrConflict)
	}
	if err != nil {
		return 0, fmt.Errorf("store: %s: update %q: %w", b.name, key, err)
	}
	return rev, nil
}

// Delete implements KV.
func (b *bucket) Delete(ctx context.Context, key string) error {
	k, err := encodeKey(key)
	if err != nil {
		return err
	}
	if err := enterGate(b.gate, b.fence); err != nil {
		return err
	}
	defer b.gate.RUnlock()
	if err := b.kv.Delete(ctx, k); err != nil {
		return fmt.Errorf("store: %s: delete %q: %w", b.name, key, err)
	}
	return nil
}

// Keys implements KV.
func (b *bucket) Keys(ctx context.Context) ([]string, error) {
	lister, err := b.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: %s: list keys: %w", b.name, err)
	}
	defer lister.Stop()
	keys := []string{}
	for k := range lister.Keys() {
		// Keys written around this package cannot be addressed through it;
		// leave them out rather than return names Get would refuse.
		if key, ok := decodeKey(k); ok {
			keys = append(keys, key)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: %s: list keys: %w", b.name, err)
	}
	slices.Sort(keys)
	return slices.Compact(keys), nil
}

// ClaimJTI records a token id, atomically: the first claim of a jti
// succeeds, every later one fails with ErrReplay for as long as the bucket
// remembers it (Options.JTITTL from the first claim). exp is the token's
// expiry; a token that would outlive the replay window is refused with
// ErrJTIExpiry, since its id could otherwise be replayed after the window.
// The jti is stored as its SHA-256, so any string is accepted (ErrBadKey
// only when empty or longer than MaxKeyLen).
func (s *Store) ClaimJTI(ctx context.Context, jti string, exp time.Time) error {
	if jti == "" || len(jti) > MaxKeyLen {
		return fmt.Errorf("%w: token id length %d not in 1..%d", ErrBadKey, len(jti), MaxKeyLen)
	}
	if limit := time.Now().Add(s.opts.JTITTL); exp.After(limit) {
		return fmt.Errorf("%w: expires %s, window ends %s", ErrJTIExpiry,
			exp.UTC().Format(time.RFC3339), limit.UTC().Format(time.RFC3339))
	}
	sum := sha256.Sum256([]byte(jti))
	key := hex.EncodeToString(sum[:])
	if err := s.enter(); err != nil {
		return err
	}
	defer s.gate.RUnlock()
	_, err := s.jti.kv.Create(ctx, key, []byte(exp.UTC().Format(time.RFC3339Nano)))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("claim jti: %w", ErrReplay)
	}
	if err != nil {
		return fmt.Errorf("store: claim jti: %w", err)
	}
	return nil
}
