package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/circles-coop/circles/federation"
	"github.com/circles-coop/circles/internal/atomicfile"
)

// InitResult is what Init made.
type InitResult struct {
	FederationID string    `json:"federation_id"`
	Invite       string    `json:"invite"`
	ExpiresAt    time.Time `json:"-"`
}

// Init creates a federation hub in dir: its operator, system account and
// federation account keys, its state, and a first one-time join invite
// (valid DefaultInviteTTL). It refuses a directory that holds a hub.
func Init(dir, name string, now time.Time) (InitResult, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > federation.MaxNameLen {
		return InitResult{}, fmt.Errorf("the federation needs a name of 1 to %d characters (--name)", federation.MaxNameLen)
	}
	if dir == "" {
		return InitResult{}, errors.New("a data directory is required (--data DIR)")
	}
	if _, err := os.Stat(filepath.Join(dir, keysFile)); err == nil {
		return InitResult{}, fmt.Errorf("%s: %w", dir, ErrInitialized)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return InitResult{}, fmt.Errorf("create data directory: %w", err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return InitResult{}, err
	}
	defer unlock()
	k, err := newKeys()
	if err != nil {
		return InitResult{}, err
	}
	st := &state{
		Version: 1, FederationID: randomCode(10), Name: name, CreatedAt: now.UTC(),
		Members: map[string]*member{}, Invites: map[string]*invite{}, Revoked: map[string]int64{},
	}
	inv, err := st.newInvite(now, DefaultInviteTTL)
	if err != nil {
		return InitResult{}, err
	}
	// State first: keys.json is what says "a hub is here".
	if err := st.save(dir); err != nil {
		return InitResult{}, err
	}
	if err := writeJSON(filepath.Join(dir, keysFile), k); err != nil {
		return InitResult{}, fmt.Errorf("write hub keys: %w", err)
	}
	return InitResult{FederationID: st.FederationID, Invite: inv.Invite, ExpiresAt: inv.ExpiresAt}, nil
}

// Config configures a serving hub.
type Config struct {
	DataDir string
	// Listen is the hub's HTTP API address; LeafListen the NATS leaf node
	// listener's. Port 0 picks a free port.
	Listen     string
	LeafListen string
	// AddrFile, if set, receives {"http", "leafnode"} once ready.
	AddrFile string
	Logger   *slog.Logger
	// Now is the clock of invites and notices. Default time.Now. (User
	// JWTs and their revocations use the real clock: nats-server does.)
	Now func() time.Time
}

// Hub is a serving federation hub: nats-server in operator mode with a
// leaf node listener, one account for the federation, and the HTTP API
// circles join and leave through.
type Hub struct {
	cfg    Config
	log    *slog.Logger
	unlock func()

	operator, account kpair
	ns                *server.Server
	resolver          *server.MemAccResolver
	leafPort          int // the leaf node listener's port, once listening

	// mu guards st and the account JWT pushed to ns: every change is
	// saved, then pushed, under it.
	mu sync.Mutex
	st *state

	http *httpServer
	ctl  *httpServer
}

type kpair struct {
	kp  nkeys.KeyPair
	pub string
}

func loadPair(seed string) (kpair, error) {
	kp, err := nkeys.FromSeed([]byte(seed))
	if err != nil {
		return kpair{}, err
	}
	pub, err := kp.PublicKey()
	return kpair{kp, pub}, err
}

// Open serves the hub in cfg.DataDir until Close.
func Open(ctx context.Context, cfg Config) (*Hub, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("a data directory is required (--data DIR)")
	}
	if cfg.Listen == "" || cfg.LeafListen == "" {
		return nil, errors.New("the hub needs --listen and --leafnode-listen addresses")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	st, k, err := loadState(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	unlock, err := lockDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	h := &Hub{cfg: cfg, log: cfg.Logger.With("component", "hub", "federation", st.FederationID), unlock: unlock, st: st}
	ok := false
	defer func() {
		if !ok {
			h.Close()
		}
	}()
	if err := h.startNATS(ctx, k); err != nil {
		return nil, err
	}
	if h.http, err = serveHTTP(cfg.Listen, h.apiHandler()); err != nil {
		return nil, fmt.Errorf("hub API: %w", err)
	}
	sock := filepath.Join(cfg.DataDir, socketFile)
	os.Remove(sock) // a killed hub leaves it behind; we hold the lock
	if h.ctl, err = serveUnix(sock, h.controlHandler()); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if cfg.AddrFile != "" {
		b := fmt.Sprintf("{\"http\": %q, \"leafnode\": %q}\n", h.HTTPAddr(), h.LeafAddr())
		if err := atomicfile.Write(cfg.AddrFile, []byte(b), 0o644); err != nil {
			return nil, fmt.Errorf("write address file: %w", err)
		}
	}
	h.log.Info("hub ready", "name", st.Name, "http", h.HTTPAddr(), "leafnode", h.LeafAddr())
	ok = true
	return h, nil
}

// startNATS starts nats-server in operator mode: the operator trusts the
// system account and the federation's account, both kept in memory
// (MemAccResolver) and updated at runtime (UpdateAccountClaims); no client
// listener, only the leaf node listener.
func (h *Hub) startNATS(ctx context.Context, k keys) error {
	var err error
	if h.operator, err = loadPair(k.Operator); err != nil {
		return fmt.Errorf("operator key: %w", err)
	}
	sys, err := loadPair(k.System)
	if err != nil {
		return fmt.Errorf("system account key: %w", err)
	}
	if h.account, err = loadPair(k.Account); err != nil {
		return fmt.Errorf("account key: %w", err)
	}
	oc := jwt.NewOperatorClaims(h.operator.pub)
	oc.Name = "circles-hub-" + h.st.FederationID
	oc.SystemAccount = sys.pub
	ojwt, err := oc.Encode(h.operator.kp)
	if err != nil {
		return err
	}
	if oc, err = jwt.DecodeOperatorClaims(ojwt); err != nil {
		return err
	}
	sc := jwt.NewAccountClaims(sys.pub)
	sc.Name = "SYS"
	sjwt, err := sc.Encode(h.operator.kp)
	if err != nil {
		return err
	}
	h.resolver = &server.MemAccResolver{}
	_ = h.resolver.Store(sys.pub, sjwt)
	ajwt, _, err := h.accountJWT()
	if err != nil {
		return err
	}
	_ = h.resolver.Store(h.account.pub, ajwt)

	host, port, err := splitHostPort(h.cfg.LeafListen)
	if err != nil {
		return fmt.Errorf("leafnode listen address: %w", err)
	}
	opts := &server.Options{
		ServerName:       ServerName(h.st.FederationID),
		TrustedOperators: []*jwt.OperatorClaims{oc},
		AccountResolver:  h.resolver,
		SystemAccount:    sys.pub,
		DontListen:       true,
		NoSigs:           true,
		NoLog:            true,
		MaxPayload:       8 << 20,
		LeafNode:         server.LeafNodeOpts{Host: host, Port: port},
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("hub nats-server: %w", err)
	}
	l := h.cfg.Logger.With("component", "hub-nats")
	ns.SetLoggerV2(natsLogger{l}, false, false, false)
	go ns.Start()
	deadline := time.Now().Add(30 * time.Second)
	for !ns.ReadyForConnections(100 * time.Millisecond) {
		if ctx.Err() != nil || time.Now().After(deadline) {
			ns.Shutdown()
			return errors.New("hub nats-server not ready")
		}
	}
	h.ns = ns
	// nats-server writes the port it listens on into the options it was given.
	h.leafPort = opts.LeafNode.Port
	return nil
}

// ServerName is the hub's nats-server name for federation fed; a circle
// finds its link to the hub under it in Leafz.
func ServerName(fed string) string { return "fedhub-" + fed }

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q is not a port number", p)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	return host, port, nil
}

// accountJWT is the federation account's JWT for the state as it is: its
// revocations. Members need no entry: any user JWT the account key signed
// and did not revoke connects. The caller holds h.mu (or is Open).
func (h *Hub) accountJWT() (string, *jwt.AccountClaims, error) {
	ac := jwt.NewAccountClaims(h.account.pub)
	ac.Name = h.st.FederationID
	for nk, at := range h.st.Revoked {
		ac.RevokeAt(nk, time.Unix(at, 0))
	}
	s, err := ac.Encode(h.operator.kp)
	return s, ac, err
}

// pushAccount hands the current account JWT to the running server, which
// closes every connection of a user it now revokes (leaf connections
// included). The caller holds h.mu.
func (h *Hub) pushAccount() error {
	s, ac, err := h.accountJWT()
	if err != nil {
		return err
	}
	if err := h.resolver.Store(h.account.pub, s); err != nil {
		return err
	}
	acc, err := h.ns.LookupAccount(h.account.pub)
	if err != nil {
		return fmt.Errorf("look up the federation account: %w", err)
	}
	h.ns.UpdateAccountClaims(acc, ac)
	return nil
}

// FederationID is the federation's id.
func (h *Hub) FederationID() string { return h.st.FederationID }

// HTTPAddr is the hub API's address.
func (h *Hub) HTTPAddr() string { return h.http.addr() }

// LeafAddr is the leaf node listener's address ("host:port").
func (h *Hub) LeafAddr() string {
	if h.ns == nil {
		return ""
	}
	host, _, _ := net.SplitHostPort(h.cfg.LeafListen)
	return net.JoinHostPort(host, strconv.Itoa(h.leafPort))
}

// Members lists the member circles.
func (h *Hub) Members() []federation.Circle {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.st.circles()
}

// Invite makes a one-time join invite valid for ttl.
func (h *Hub) Invite(ttl time.Duration) (Invite, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	inv, err := h.st.newInvite(h.cfg.Now(), ttl)
	if err != nil {
		return Invite{}, err
	}
	if err := h.st.save(h.cfg.DataDir); err != nil {
		return Invite{}, err
	}
	return inv, nil
}

// Join admits a circle with a one-time invite and returns its user JWT.
// A bad, used or expired invite, a bad id or key, and a circle that is a
// member already are refused and change nothing.
func (h *Hub) Join(req federation.JoinRequest, leafURL string) (federation.JoinResponse, error) {
	req.Name = strings.TrimSpace(req.Name)
	if err := federation.CheckID("circle id", req.CircleID); err != nil {
		return federation.JoinResponse{}, err
	}
	if req.Name == "" || utf8.RuneCountInString(req.Name) > federation.MaxNameLen {
		return federation.JoinResponse{}, fmt.Errorf("the circle's name must be 1 to %d characters", federation.MaxNameLen)
	}
	if !nkeys.IsValidPublicUserKey(req.NKey) {
		return federation.JoinResponse{}, errors.New("nkey must be the circle's nkey public user key (U...)")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.cfg.Now()
	inv, err := h.st.checkInvite(req.Invite, now)
	if err != nil {
		return federation.JoinResponse{}, err
	}
	if m := h.st.Members[req.CircleID]; m != nil && m.Status == statusMember {
		return federation.JoinResponse{}, fmt.Errorf("circle %s is a member already", req.CircleID)
	} else if m != nil && m.NKey != req.NKey {
		// A circle id stays bound to the key it first joined with: the
		// other circles keep its last state, and nobody may come back in
		// its name with another key.
		return federation.JoinResponse{}, fmt.Errorf("circle %s: %w", req.CircleID, ErrOtherKey)
	}
	for _, m := range h.st.Members {
		if m.NKey == req.NKey && m.CircleID != req.CircleID {
			return federation.JoinResponse{}, ErrNKeyTaken
		}
	}
	// A JWT issued in the second of a revocation of the same key would be
	// revoked too (nats-server compares Unix seconds): wait for the next.
	if rev, ok := h.st.Revoked[req.NKey]; ok {
		for time.Now().Unix() <= rev {
			time.Sleep(time.Until(time.Unix(rev+1, 0)) + 5*time.Millisecond)
		}
	}
	perms := federation.UserPermissions(h.st.FederationID, req.CircleID)
	uc := jwt.NewUserClaims(req.NKey)
	uc.Name = req.CircleID
	uc.Permissions.Pub.Allow.Add(perms.Publish...)
	uc.Permissions.Sub.Allow.Add(perms.Subscribe...)
	uc.AllowedConnectionTypes.Add(jwt.ConnectionTypeLeafnode)
	ujwt, err := uc.Encode(h.account.kp)
	if err != nil {
		return federation.JoinResponse{}, fmt.Errorf("sign user JWT: %w", err)
	}
	dec, err := jwt.DecodeUserClaims(ujwt)
	if err != nil {
		return federation.JoinResponse{}, err
	}
	at := now.UTC()
	prev := h.st.Members[req.CircleID]
	h.st.Members[req.CircleID] = &member{CircleID: req.CircleID, Name: req.Name, NKey: req.NKey, Status: statusMember, JoinedAt: at, IssuedAt: dec.IssuedAt, ChangedAt: at}
	inv.UsedAt, inv.UsedBy = &at, req.CircleID
	if err := h.st.save(h.cfg.DataDir); err != nil {
		inv.UsedAt, inv.UsedBy = nil, ""
		if prev != nil {
			h.st.Members[req.CircleID] = prev
		} else {
			delete(h.st.Members, req.CircleID)
		}
		return federation.JoinResponse{}, err
	}
	h.log.Info("circle joined", "circle", req.CircleID, "name", req.Name)
	return federation.JoinResponse{
		FederationID: h.st.FederationID, FederationName: h.st.Name, UserJWT: ujwt,
		LeafnodeURL: leafURL, HubServer: ServerName(h.st.FederationID), Circles: h.st.circles(),
	}, nil
}

// Expel revokes circle's user at once: its leaf connection closes and its
// credentials cannot connect again.
func (h *Hub) Expel(circle string) error {
	if err := federation.CheckID("circle id", circle); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.revoke(circle, statusExpelled)
}

// revoke ends circle's membership with status; the caller holds h.mu.
func (h *Hub) revoke(circle, status string) error {
	m := h.st.Members[circle]
	if m == nil || m.Status != statusMember {
		return fmt.Errorf("circle %s: %w", circle, ErrNotMember)
	}
	prevStatus := m.Status
	prevRev, hadRev := h.st.Revoked[m.NKey]
	at := time.Now().Unix()
	if at < m.IssuedAt {
		at = m.IssuedAt
	}
	h.st.Revoked[m.NKey] = at
	m.Status, m.ChangedAt = status, h.cfg.Now().UTC()
	if err := h.st.save(h.cfg.DataDir); err != nil {
		m.Status = prevStatus
		if hadRev {
			h.st.Revoked[m.NKey] = prevRev
		} else {
			delete(h.st.Revoked, m.NKey)
		}
		return err
	}
	if h.ns != nil {
		if err := h.pushAccount(); err != nil {
			return fmt.Errorf("revoke on the running server: %w", err)
		}
	}
	h.log.Info("circle revoked", "circle", circle, "status", status)
	return nil
}

// Leave takes a circle's signed leave notice and revokes its user.
func (h *Hub) Leave(sn federation.SignedNotice) (federation.StatusResponse, error) {
	n, m, err := h.verify(sn, federation.NoticeLeave)
	if err != nil {
		return federation.StatusResponse{}, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if m.Status != statusMember {
		return federation.StatusResponse{Status: m.Status}, nil // already gone: nothing to do
	}
	if time.UnixMilli(n.IssuedAt).Before(m.JoinedAt.Add(-time.Second)) {
		return federation.StatusResponse{}, errors.New("the leave notice is older than the circle's membership")
	}
	if err := h.revoke(m.CircleID, statusLeft); err != nil {
		return federation.StatusResponse{}, err
	}
	return federation.StatusResponse{Status: statusLeft}, nil
}

// Status answers a circle's signed status question.
func (h *Hub) Status(sn federation.SignedNotice) (federation.StatusResponse, error) {
	_, m, err := h.verify(sn, federation.NoticeStatus)
	if err != nil {
		return federation.StatusResponse{}, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	out := federation.StatusResponse{Status: m.Status}
	if m.Status == statusMember {
		out.Circles = h.st.circles()
	}
	return out, nil
}

// errSignature marks a notice that does not verify (answered 401).
var errSignature = errors.New("notice refused")

// verify checks a signed notice of type typ against the key of the circle
// it names.
func (h *Hub) verify(sn federation.SignedNotice, typ string) (federation.Notice, member, error) {
	n, err := sn.Decode()
	if err != nil {
		return n, member{}, err
	}
	if n.Type != typ || n.FederationID != h.st.FederationID {
		return n, member{}, fmt.Errorf("%w: not a %s notice for federation %s", errSignature, typ, h.st.FederationID)
	}
	if err := federation.CheckID("circle id", n.CircleID); err != nil {
		return n, member{}, err
	}
	h.mu.Lock()
	mp := h.st.Members[n.CircleID]
	var m member
	if mp != nil {
		m = *mp
	}
	h.mu.Unlock()
	if mp == nil {
		return n, member{}, fmt.Errorf("%w: circle %s never joined", errSignature, n.CircleID)
	}
	if _, err := sn.Verify(m.NKey, h.cfg.Now()); err != nil {
		return n, member{}, fmt.Errorf("%w: %v", errSignature, err)
	}
	return n, m, nil
}

// Close stops the API, the control socket and nats-server, and releases
// the data directory.
func (h *Hub) Close() error {
	if h.ctl != nil {
		h.ctl.close()
		os.Remove(filepath.Join(h.cfg.DataDir, socketFile))
	}
	if h.http != nil {
		h.http.close()
	}
	if h.ns != nil {
		h.ns.Shutdown()
		h.ns.WaitForShutdown()
	}
	if h.unlock != nil {
		h.unlock()
		h.unlock = nil
	}
	return nil
}

// natsLogger sends nats-server's lines to slog (notices at debug).
type natsLogger struct{ l *slog.Logger }

func (n natsLogger) Noticef(format string, v ...any) { n.l.Debug(fmt.Sprintf(format, v...)) }
func (n natsLogger) Warnf(format string, v ...any)   { n.l.Warn(fmt.Sprintf(format, v...)) }
func (n natsLogger) Errorf(format string, v ...any)  { n.l.Error(fmt.Sprintf(format, v...)) }
func (n natsLogger) Fatalf(format string, v ...any)  { n.l.Error(fmt.Sprintf(format, v...)) }
func (n natsLogger) Debugf(format string, v ...any)  { n.l.Debug(fmt.Sprintf(format, v...)) }
func (n natsLogger) Tracef(format string, v ...any)  { n.l.Debug(fmt.Sprintf(format, v...)) }

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
