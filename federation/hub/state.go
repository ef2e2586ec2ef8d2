package hub

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/mr-tron/base58"
	"github.com/nats-io/nkeys"

	"github.com/circles-coop/circles/federation"
	"github.com/circles-coop/circles/internal/atomicfile"
)

// Files in the hub's data directory (0700). keys.json holds the seeds of
// the operator, the system account and the federation's account;
// state.json the members, revocations and invites (each invite by the
// SHA-256 of its code only). Both are 0600 and replaced atomically.
const (
	keysFile   = "keys.json"
	stateFile  = "state.json"
	lockFile   = "hub.lock"
	socketFile = "hub.sock"
)

// Errors callers branch on.
var (
	ErrInitialized  = errors.New("the data directory already holds a hub")
	ErrNoHub        = errors.New("the data directory holds no hub")
	ErrLocked       = errors.New("another process has the hub's data directory open")
	ErrBadInvite    = errors.New("invite unknown")
	ErrInviteUsed   = errors.New("invite already used")
	ErrInviteExpire = errors.New("invite expired")
	ErrNotMember    = errors.New("not a member circle")
	ErrNKeyTaken    = errors.New("nkey belongs to another circle")
	ErrOtherKey     = errors.New("this circle joined before with another nkey")
)

// keys are the hub's secrets.
type keys struct {
	Operator string `json:"operator"` // seeds
	System   string `json:"system"`
	Account  string `json:"account"`
}

// Member statuses in state.json.
const (
	statusMember   = federation.HubMember
	statusLeft     = federation.HubLeft
	statusExpelled = federation.HubExpelled
)

// member is a circle that joined once.
type member struct {
	CircleID  string    `json:"circle_id"`
	Name      string    `json:"name"`
	NKey      string    `json:"nkey"`
	Status    string    `json:"status"`
	JoinedAt  time.Time `json:"joined_at"`
	IssuedAt  int64     `json:"issued_at"` // of its current user JWT (Unix seconds)
	ChangedAt time.Time `json:"changed_at"`
}

// invite is a one-time join invite, kept by the hash of its code.
type invite struct {
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	UsedAt    *time.Time `json:"used_at,omitempty"`
	UsedBy    string     `json:"used_by,omitempty"`
}

// state is the hub's durable state.
type state struct {
	Version      int                `json:"version"`
	FederationID string             `json:"federation_id"`
	Name         string             `json:"name"`
	CreatedAt    time.Time          `json:"created_at"`
	Members      map[string]*member `json:"members"`
	Invites      map[string]*invite `json:"invites"`
	// Revoked maps an nkey to the time (Unix seconds) up to which every
	// user JWT issued to it is revoked.
	Revoked map[string]int64 `json:"revoked"`
	// ExpelVotes maps "<target>/<proposal>" to the circles that told the
	// hub they voted yes to expel target in that council proposal
	// (council.go).
	ExpelVotes map[string][]string `json:"expel_votes,omitempty"`
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(b, '\n'), 0o600)
}

func loadState(dir string) (*state, keys, error) {
	var k keys
	if err := readJSON(filepath.Join(dir, keysFile), &k); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, k, fmt.Errorf("%s: %w; create one with: circled hub init --data %s --name NAME", dir, ErrNoHub, dir)
		}
		return nil, k, fmt.Errorf("read hub keys: %w", err)
	}
	st := &state{}
	if err := readJSON(filepath.Join(dir, stateFile), st); err != nil {
		return nil, k, fmt.Errorf("read hub state: %w", err)
	}
	if st.Members == nil {
		st.Members = map[string]*member{}
	}
	if st.Invites == nil {
		st.Invites = map[string]*invite{}
	}
	if st.Revoked == nil {
		st.Revoked = map[string]int64{}
	}
	return st, k, nil
}

func (st *state) save(dir string) error {
	if err := writeJSON(filepath.Join(dir, stateFile), st); err != nil {
		return fmt.Errorf("write hub state: %w", err)
	}
	return nil
}

// lockDir takes the data directory's lock without waiting: the serving
// hub holds it, and an offline invite or expel takes it for its change.
func lockDir(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock hub data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", dir, ErrLocked)
		}
		return nil, fmt.Errorf("lock hub data directory: %w", err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

func randomCode(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("hub: reading random bytes: %v", err))
	}
	return base58.Encode(b)
}

func inviteKey(code string) string {
	h := sha256.Sum256([]byte(code))
	return hex.EncodeToString(h[:])
}

// Invite is a one-time join invite.
type Invite struct {
	Invite    string    `json:"invite"`
	ExpiresAt time.Time `json:"expires_at"`
}

// DefaultInviteTTL is how long an invite stays valid unless told.
const DefaultInviteTTL = 72 * time.Hour

// MaxInviteTTL bounds an invite's life.
const MaxInviteTTL = 30 * 24 * time.Hour

// newInvite adds a one-time invite valid for ttl; the caller saves.
func (st *state) newInvite(now time.Time, ttl time.Duration) (Invite, error) {
	if ttl <= 0 || ttl > MaxInviteTTL {
		return Invite{}, fmt.Errorf("an invite lives from 1s to %s, not %s", MaxInviteTTL, ttl)
	}
	// Drop invites long dead, so the state stays small.
	for k, inv := range st.Invites {
		if now.Sub(inv.ExpiresAt) > 30*24*time.Hour {
			delete(st.Invites, k)
		}
	}
	code := randomCode(16)
	inv := &invite{CreatedAt: now.UTC(), ExpiresAt: now.Add(ttl).UTC()}
	st.Invites[inviteKey(code)] = inv
	return Invite{Invite: code, ExpiresAt: inv.ExpiresAt}, nil
}

// checkInvite reports whether code is a live invite.
func (st *state) checkInvite(code string, now time.Time) (*invite, error) {
	if code == "" || len(code) > federation.MaxInviteLen {
		return nil, ErrBadInvite
	}
	inv, ok := st.Invites[inviteKey(code)]
	switch {
	case !ok:
		return nil, ErrBadInvite
	case inv.UsedAt != nil:
		return nil, ErrInviteUsed
	case !now.Before(inv.ExpiresAt):
		return nil, ErrInviteExpire
	}
	return inv, nil
}

// circles lists the member circles, by id.
func (st *state) circles() []federation.Circle {
	out := []federation.Circle{}
	for _, m := range st.Members {
		if m.Status == statusMember {
			out = append(out, federation.Circle{CircleID: m.CircleID, Name: m.Name})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CircleID < out[j].CircleID })
	return out
}

// newKeys makes the hub's operator, system account and federation
// account keys.
func newKeys() (keys, error) {
	var k keys
	for _, x := range []struct {
		dst  *string
		make func() (nkeys.KeyPair, error)
	}{{&k.Operator, nkeys.CreateOperator}, {&k.System, nkeys.CreateAccount}, {&k.Account, nkeys.CreateAccount}} {
		kp, err := x.make()
		if err != nil {
			return k, err
		}
		seed, err := kp.Seed()
		if err != nil {
			return k, err
		}
		*x.dst = string(seed)
	}
	return k, nil
}
