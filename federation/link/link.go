package link

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/circles-coop/circles/federation"
	"github.com/circles-coop/circles/internal/atomicfile"
)

// Statuses of a circle's membership in a federation (API.md).
const (
	StatusJoining  = "joining"  // admitted; the leaf link has not come up yet
	StatusJoined   = "joined"   // admitted and linked at least once
	StatusLeft     = "left"     // the circle left
	StatusExpelled = "expelled" // the hub revoked the circle
)

// Errors callers branch on.
var (
	ErrNotMember = errors.New("this circle is not a member of that federation")
	ErrMember    = errors.New("this circle is a member of that federation already")
	ErrHub       = errors.New("the hub refused")
	ErrNoServer  = errors.New("federation needs the circle's embedded nats-server (it is off with --nats-url)")
)

// Files in the link's directory (0700).
const (
	nkeyFile        = "circle.nk"        // the circle's nkey seed, 0600; never sent anywhere
	membershipsFile = "memberships.json" // 0600
)

// Leafs is what the link needs of the circle's embedded nats-server:
// replace its leaf node remotes at runtime, and list its leaf connections.
// *store.NATS provides it.
type Leafs interface {
	SetLeafRemotes(remotes []*server.RemoteLeafOpts) error
	Server() *server.Server
	Conn() *nats.Conn
}

// Config configures a Link.
type Config struct {
	// Dir keeps the circle's nkey and its memberships (e.g. DATA/federation).
	Dir string
	// NATS is the circle's embedded nats-server; nil when the circle uses
	// an external NATS (every join then fails with ErrNoServer).
	NATS                 Leafs
	CircleID, CircleName string
	Logger               *slog.Logger
	// HTTP calls the hubs; default: a client with a 10 s timeout.
	HTTP *http.Client
	// WatchEvery is how often the link checks its leaf connections and
	// asks the hub of a dropped one whether the circle is still a member.
	// Default 2 s.
	WatchEvery time.Duration
	Now        func() time.Time
}

// Membership is the circle's record of one federation, kept in
// memberships.json.
type Membership struct {
	ID            string              `json:"id"`
	Name          string              `json:"name"`
	Status        string              `json:"status"`
	Hub           string              `json:"hub"`
	LeafURL       string              `json:"leafnode_url"`
	HubServer     string              `json:"hub_server"`
	UserJWT       string              `json:"user_jwt,omitempty"`
	Circles       []federation.Circle `json:"circles"`
	JoinProposal  string              `json:"join_proposal,omitempty"`
	LeaveProposal string              `json:"leave_proposal,omitempty"`
	JoinedAt      time.Time           `json:"joined_at"`
	ChangedAt     time.Time           `json:"changed_at"`
	// LeaveToldHub is false while the hub has not acknowledged the
	// circle's leave notice; the link tells it again until it has.
	LeaveToldHub bool `json:"leave_told_hub,omitempty"`
}

func (m *Membership) active() bool { return m.Status == StatusJoining || m.Status == StatusJoined }

// Federation is what GET /v1/federations shows of one membership.
type Federation struct {
	ID        string              `json:"id"`
	Name      string              `json:"name"`
	Status    string              `json:"status"`
	Connected bool                `json:"connected"`
	Circles   []federation.Circle `json:"circles"`
}

// Link is the circle's side of its federations: its nkey, its
// memberships, and the leaf node remotes of its embedded nats-server.
type Link struct {
	cfg  Config
	log  *slog.Logger
	kp   nkeys.KeyPair
	pub  string
	http *http.Client

	// mu guards ms and the remotes applied to the server: every change
	// is saved and applied under it.
	mu sync.Mutex
	ms map[string]*Membership

	stop chan struct{}
	done chan struct{}
}

// New loads (or, the first time, makes) the circle's nkey and its
// memberships. Open starts linking.
func New(cfg Config) (*Link, error) {
	if cfg.Dir == "" {
		return nil, errors.New("link: Config.Dir is required")
	}
	if err := federation.CheckID("circle id", cfg.CircleID); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.WatchEvery <= 0 {
		cfg.WatchEvery = 2 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("link: %w", err)
	}
	kp, err := loadOrMakeNKey(filepath.Join(cfg.Dir, nkeyFile))
	if err != nil {
		return nil, err
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, err
	}
	l := &Link{cfg: cfg, log: cfg.Logger.With("component", "federation"), kp: kp, pub: pub, http: cfg.HTTP, ms: map[string]*Membership{}}
	var list []*Membership
	if b, err := os.ReadFile(filepath.Join(cfg.Dir, membershipsFile)); err == nil {
		if err := json.Unmarshal(b, &list); err != nil {
			return nil, fmt.Errorf("link: %s: %w", membershipsFile, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("link: %w", err)
	}
	for _, m := range list {
		l.ms[m.ID] = m
	}
	return l, nil
}

func loadOrMakeNKey(path string) (nkeys.KeyPair, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		kp, err := nkeys.FromSeed(bytes.TrimSpace(b))
		if err != nil {
			return nil, fmt.Errorf("link: %s is not an nkey seed", path)
		}
		return kp, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("link: %w", err)
	}
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, err
	}
	seed, err := kp.Seed()
	if err != nil {
		return nil, err
	}
	if err := atomicfile.Write(path, append(seed, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("link: write nkey: %w", err)
	}
	return kp, nil
}

// PublicKey is the circle's nkey public key, which hubs know it by.
func (l *Link) PublicKey() string { return l.pub }

// Conn is an in-process connection to the circle's embedded nats-server,
// whose leaf links carry the federations' subjects; nil without one.
func (l *Link) Conn() *nats.Conn {
	if l.cfg.NATS == nil {
		return nil
	}
	return l.cfg.NATS.Conn()
}

// Open links the circle to every federation it is a member of (after a
// restart: the same credentials) and starts watching the links.
func (l *Link) Open(ctx context.Context) error {
	l.mu.Lock()
	err := l.applyLocked()
	l.mu.Unlock()
	if err != nil && !errors.Is(err, ErrNoServer) {
		return err
	}
	l.stop, l.done = make(chan struct{}), make(chan struct{})
	go l.watch()
	return nil
}

// Close stops watching. The leaf links end with the server.
func (l *Link) Close() error {
	if l.stop != nil {
		close(l.stop)
		<-l.done
		l.stop = nil
	}
	return nil
}

func (l *Link) credsPath(fed string) string { return filepath.Join(l.cfg.Dir, fed+".creds") }

// saveLocked writes the memberships; the caller holds l.mu.
func (l *Link) saveLocked() error {
	list := make([]*Membership, 0, len(l.ms))
	for _, m := range l.ms {
		list = append(list, m)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(l.cfg.Dir, membershipsFile), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("link: save memberships: %w", err)
	}
	return nil
}

// applyLocked sets the server's leaf remotes to one per active
// membership, with its credentials file; every other remote is gone, and
// nats-server closes its connection at once. The caller holds l.mu.
func (l *Link) applyLocked() error {
	if l.cfg.NATS == nil || l.cfg.NATS.Server() == nil {
		return ErrNoServer
	}
	var remotes []*server.RemoteLeafOpts
	ids := make([]string, 0, len(l.ms))
	for id := range l.ms {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		m := l.ms[id]
		if !m.active() {
			continue
		}
		u, err := url.Parse(m.LeafURL)
		if err != nil {
			return fmt.Errorf("link: federation %s: leaf node URL: %w", id, err)
		}
		if err := l.writeCreds(m); err != nil {
			return err
		}
		remotes = append(remotes, &server.RemoteLeafOpts{
			URLs:        []*url.URL{u},
			Credentials: l.credsPath(id),
			// Reconnect quickly after the hub comes back.
			FirstInfoTimeout: 5 * time.Second,
		})
	}
	return l.cfg.NATS.SetLeafRemotes(remotes)
}

// writeCreds writes the credentials file nats-server reads for m's
// remote: the user JWT and the circle's seed, 0600, in the circle's own
// data directory (the seed never leaves the circle).
func (l *Link) writeCreds(m *Membership) error {
	seed, err := l.kp.Seed()
	if err != nil {
		return err
	}
	b, err := jwt.FormatUserConfig(m.UserJWT, seed)
	if err != nil {
		return fmt.Errorf("link: credentials: %w", err)
	}
	return atomicfile.Write(l.credsPath(m.ID), b, 0o600)
}

// connected reports, from the server's Leafz, which hub servers the
// circle has a live leaf connection to.
func (l *Link) connected() map[string]bool {
	out := map[string]bool{}
	if l.cfg.NATS == nil || l.cfg.NATS.Server() == nil {
		return out
	}
	lz, err := l.cfg.NATS.Server().Leafz(nil)
	if err != nil {
		return out
	}
	for _, li := range lz.Leafs {
		out[li.Name] = true
	}
	return out
}

// checkHubURL checks a hub's address: http or https, a host, no more.
func checkHubURL(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("hub must be the hub's address, like http://hub.example.org:7480")
	}
	u.Path = ""
	return u, nil
}

// CheckJoin checks a federation.join payload without calling anyone.
func CheckJoin(hubURL, invite string) error {
	if _, err := checkHubURL(hubURL); err != nil {
		return err
	}
	if strings.TrimSpace(invite) == "" || len(invite) > federation.MaxInviteLen {
		return fmt.Errorf("invite must be the hub's one-time invite, 1 to %d characters", federation.MaxInviteLen)
	}
	return nil
}

// Join asks the hub at hubURL to admit the circle with a one-time invite,
// records the membership and links the circle to the hub at once. proposal
// is the passed federation.join proposal: joining again for the same
// proposal (finishing after a crash) returns the membership it made. A
// hub's refusal is ErrHub with the hub's message.
func (l *Link) Join(ctx context.Context, proposal, hubURL, invite string) (Membership, error) {
	if err := CheckJoin(hubURL, invite); err != nil {
		return Membership{}, err
	}
	u, _ := checkHubURL(hubURL)
	l.mu.Lock()
	for _, m := range l.ms {
		if proposal != "" && m.JoinProposal == proposal {
			out := *m
			l.mu.Unlock()
			return out, nil
		}
	}
	l.mu.Unlock()
	if l.cfg.NATS == nil || l.cfg.NATS.Server() == nil {
		return Membership{}, ErrNoServer
	}
	// The hub is called without holding l.mu, so the circle's federations
	// can be listed meanwhile. (The authority carries out one proposal at a
	// time, so two joins do not race.)
	var resp federation.JoinResponse
	err := l.call(ctx, u.String()+federation.PathJoin, federation.JoinRequest{
		Invite: strings.TrimSpace(invite), CircleID: l.cfg.CircleID, Name: l.cfg.CircleName, NKey: l.pub,
	}, &resp)
	if err != nil {
		return Membership{}, err
	}
	if err := federation.CheckID("federation id", resp.FederationID); err != nil {
		return Membership{}, fmt.Errorf("%w: the hub answered %v", ErrHub, err)
	}
	if _, err := url.Parse(resp.LeafnodeURL); err != nil || !strings.HasPrefix(resp.LeafnodeURL, "nats") {
		return Membership{}, fmt.Errorf("%w: the hub answered a leaf node URL %q", ErrHub, resp.LeafnodeURL)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.cfg.Now().UTC()
	m := &Membership{
		ID: resp.FederationID, Name: resp.FederationName, Status: StatusJoining, Hub: u.String(),
		LeafURL: resp.LeafnodeURL, HubServer: resp.HubServer, UserJWT: resp.UserJWT, Circles: resp.Circles,
		JoinProposal: proposal, JoinedAt: now, ChangedAt: now,
	}
	prev := l.ms[m.ID]
	if prev != nil && prev.active() {
		// The hub admitted us again; keep one record, the new one.
		l.log.Warn("hub admitted a circle that was already a member", "federation", m.ID)
	}
	l.ms[m.ID] = m
	if err := l.saveLocked(); err != nil {
		l.restore(m.ID, prev)
		return Membership{}, err
	}
	if err := l.applyLocked(); err != nil {
		l.log.Error("link to hub", "federation", m.ID, "err", err)
	}
	l.log.Info("joined federation", "federation", m.ID, "name", m.Name, "hub", m.Hub)
	return *m, nil
}

func (l *Link) restore(id string, prev *Membership) {
	if prev == nil {
		delete(l.ms, id)
	} else {
		l.ms[id] = prev
	}
}

// Member reports whether the circle is an active member of fed.
func (l *Link) Member(fed string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.ms[fed]
	return m != nil && m.active()
}

// LeftBy reports whether fed was left by proposal (finishing after a
// crash).
func (l *Link) LeftBy(fed, proposal string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.ms[fed]
	return m != nil && proposal != "" && m.LeaveProposal == proposal
}

// Leave ends the circle's membership of fed at once: its leaf remote is
// removed (the connection closes; nothing more comes in or goes out),
// then the hub is told with a notice signed by the circle's nkey, so it
// revokes the credentials. The hub's answer is not waited for beyond a
// few seconds: if it is unreachable the link tells it again later. proposal
// is the passed federation.leave proposal.
func (l *Link) Leave(ctx context.Context, proposal, fed string) (Membership, error) {
	l.mu.Lock()
	m := l.ms[fed]
	if m != nil && proposal != "" && m.LeaveProposal == proposal {
		out := *m
		l.mu.Unlock()
		return out, nil
	}
	if m == nil || !m.active() {
		l.mu.Unlock()
		return Membership{}, fmt.Errorf("federation %s: %w", fed, ErrNotMember)
	}
	prev := *m
	m.Status, m.LeaveProposal, m.ChangedAt, m.LeaveToldHub = StatusLeft, proposal, l.cfg.Now().UTC(), false
	if err := l.saveLocked(); err != nil {
		*m = prev
		l.mu.Unlock()
		return Membership{}, err
	}
	if err := l.applyLocked(); err != nil {
		l.log.Error("unlink from hub", "federation", fed, "err", err)
	}
	os.Remove(l.credsPath(fed))
	out := *m
	l.mu.Unlock()
	l.log.Info("left federation", "federation", fed)

	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	l.tellLeave(tctx, out)
	return out, nil
}

// tellLeave sends m's leave notice to its hub and records that the hub
// has it.
func (l *Link) tellLeave(ctx context.Context, m Membership) {
	sn, err := federation.SignNotice(l.kp, federation.Notice{Type: federation.NoticeLeave, FederationID: m.ID, CircleID: l.cfg.CircleID, IssuedAt: l.cfg.Now().UnixMilli()})
	if err != nil {
		l.log.Error("sign leave notice", "err", err)
		return
	}
	var resp federation.StatusResponse
	if err := l.call(ctx, m.Hub+federation.PathLeave, sn, &resp); err != nil {
		l.log.Warn("tell the hub the circle left (will try again)", "federation", m.ID, "err", err)
		if !errors.Is(err, ErrHub) {
			return
		}
		// The hub refused the notice for good: nothing more to tell.
	}
	l.mu.Lock()
	if cur := l.ms[m.ID]; cur != nil && cur.Status == StatusLeft {
		cur.LeaveToldHub = true
		if err := l.saveLocked(); err != nil {
			l.log.Error("save memberships", "err", err)
		}
	}
	l.mu.Unlock()
}

// Linked reports whether the circle's embedded server has a live leaf
// connection to the hub of fed now (whatever the membership's status).
func (l *Link) Linked(fed string) bool {
	if federation.CheckID("federation id", fed) != nil {
		return false
	}
	l.mu.Lock()
	m := l.ms[fed]
	name := ""
	if m != nil {
		name = m.HubServer
	}
	l.mu.Unlock()
	return name != "" && l.connected()[name]
}

// Federations lists the circle's memberships, each with whether its leaf
// link is up now.
func (l *Link) Federations() []Federation {
	conn := l.connected()
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Federation, 0, len(l.ms))
	for _, m := range l.ms {
		out = append(out, l.view(m, conn))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Federation returns the membership of fed; ok is false if there is none.
func (l *Link) Federation(fed string) (Federation, bool) {
	conn := l.connected()
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.ms[fed]
	if m == nil {
		return Federation{}, false
	}
	return l.view(m, conn), true
}

func (l *Link) view(m *Membership, conn map[string]bool) Federation {
	circles := append([]federation.Circle{}, m.Circles...)
	return Federation{ID: m.ID, Name: m.Name, Status: m.Status, Connected: m.active() && conn[m.HubServer], Circles: circles}
}

// call posts req as JSON to url and decodes a 200 answer into resp; any
// other answer is ErrHub with the hub's message.
func (l *Link) call(ctx context.Context, url string, req, resp any) error {
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	r.Header.Set("Content-Type", "application/json")
	res, err := l.http.Do(r)
	if err != nil {
		return fmt.Errorf("cannot reach the hub: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read the hub's answer: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		var eb federation.ErrorBody
		if json.Unmarshal(body, &eb) == nil && eb.Error.Message != "" {
			return fmt.Errorf("%w: %s", ErrHub, eb.Error.Message)
		}
		return fmt.Errorf("%w: HTTP %d", ErrHub, res.StatusCode)
	}
	if err := json.Unmarshal(body, resp); err != nil {
		return fmt.Errorf("the hub's answer is not JSON: %w", err)
	}
	return nil
}
