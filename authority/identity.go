package authority

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/circles-coop/circles/authority/fault"

	"github.com/automerge/automerge-go"
	"github.com/golang-jwt/jwt/v5"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/sync/store"
	"github.com/circles-coop/circles/wire"
)

// Identity enrols members and devices with invites, trades device
// assertions for access tokens, authenticates those tokens, and revokes
// devices (DESIGN.md §5, API.md "Identity").
type Identity struct {
	*State
	audit *Audit
	// inviteMu serializes making invites, from counting a member's open
	// invites to storing the new one (invites.go), and guards open.
	inviteMu sync.Mutex
	// open holds the open invites that count toward their author's cap,
	// by store key; nil until first needed (checkInviteCap).
	open map[string]openInvite
	// tokens are the access tokens already verified (tokens.go).
	tokens verifiedTokens
}

// Token lifetimes (DESIGN.md §5).
const (
	accessTTL       = 15 * time.Minute
	maxAssertionTTL = 5 * time.Minute
	clockSkew       = 30 * time.Second
	defaultInvite   = 72 * time.Hour
	maxInvite       = 30 * 24 * time.Hour
)

// Invite kinds.
const (
	inviteMember = "member"
	inviteDevice = "device"
)

// invite is an invite as stored (under the SHA-256 of its code, so the
// store never holds a usable code).
type invite struct {
	For       string `json:"for"`
	Member    string `json:"member,omitempty"` // for device invites: whose device
	CreatedBy string `json:"created_by,omitempty"`
	Founder   bool   `json:"founder,omitempty"`
	// For the invite of a passed member.admit proposal: the proposal and
	// the name it admitted (the new member's name, whatever they give).
	Proposal  string     `json:"proposal,omitempty"`
	Name      string     `json:"name,omitempty"`
	ExpiresAt time.Time  `json:"expires_at"`
	UsedAt    *time.Time `json:"used_at,omitempty"`
}

// accessClaims are the claims of a circle-signed access token.
type accessClaims struct {
	Member string `json:"mbr"`
	jwt.RegisteredClaims
}

func inviteKey(code string) string {
	sum := sha256.Sum256([]byte(code))
	return hex.EncodeToString(sum[:])
}

func (s *Identity) newInvite(ctx context.Context, inv invite) (string, error) {
	code := newID(16)
	if _, err := s.store.Invites().Create(ctx, inviteKey(code), mustJSON(inv)); err != nil {
		return "", fmt.Errorf("store invite: %w", err)
	}
	return code, nil
}

// CreateInvite makes a one-time invite for a new member or for one more
// device of the caller. A member holds at most maxOpenInvites open
// invites of each kind; beyond that the answer is fault.RateLimited.
func (s *Identity) CreateInvite(ctx context.Context, c Caller, req wire.InviteRequest, baseURL string) (wire.InviteResponse, error) {
	ttl := defaultInvite
	if req.ExpiresIn != "" {
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil || d < time.Minute || d > maxInvite {
			return wire.InviteResponse{}, fault.Errorf(fault.InvalidRequest, "field \"expires_in\" must be a duration from 1m to %s, like \"72h\"", maxInvite)
		}
		ttl = d
	}
	inv := invite{For: req.For, CreatedBy: c.Member, ExpiresAt: s.now().Add(ttl)}
	switch req.For {
	case inviteMember:
	case inviteDevice:
		inv.Member = c.Member
	default:
		return wire.InviteResponse{}, fault.Errorf(fault.InvalidRequest, "field \"for\" must be \"member\" or \"device\"")
	}
	s.inviteMu.Lock()
	defer s.inviteMu.Unlock()
	if err := s.checkInviteCap(ctx, c.Member, req.For); err != nil {
		return wire.InviteResponse{}, err
	}
	code, err := s.newInvite(ctx, inv)
	if err != nil {
		return wire.InviteResponse{}, err
	}
	s.open[inviteKey(code)] = openInvite{member: inv.CreatedBy, kind: inv.For, expires: inv.ExpiresAt}
	return wire.InviteResponse{Code: code, ExpiresAt: inv.ExpiresAt, URL: strings.TrimRight(baseURL, "/") + "/join#" + code}, nil
}

var errInviteInvalid = fault.Errorf(fault.Forbidden, "this invite is unknown, used or expired; ask a member for a new one")

// peekInvite reads a valid (unused, unexpired) invite and its revision.
func (s *Identity) peekInvite(ctx context.Context, code string) (invite, uint64, error) {
	raw, rev, err := s.store.Invites().Get(ctx, inviteKey(code))
	if errors.Is(err, store.ErrNotFound) {
		return invite{}, 0, errInviteInvalid
	}
	if err != nil {
		return invite{}, 0, fmt.Errorf("read invite: %w", err)
	}
	var inv invite
	if err := json.Unmarshal(raw, &inv); err != nil {
		return invite{}, 0, fmt.Errorf("decode invite: %w", err)
	}
	if inv.UsedAt != nil || !s.now().Before(inv.ExpiresAt) {
		return invite{}, 0, errInviteInvalid
	}
	return inv, rev, nil
}

// redeem marks the invite used if it is still at revision rev; of two
// concurrent redeemers one loses. It returns the revision after the write,
// for release.
func (s *Identity) redeem(ctx context.Context, code string, inv invite, rev uint64) (uint64, error) {
	now := s.now()
	inv.UsedAt = &now
	next, err := s.store.Invites().Update(ctx, inviteKey(code), mustJSON(inv), rev)
	if errors.Is(err, store.ErrConflict) {
		return 0, errInviteInvalid
	}
	if err != nil {
		return 0, fmt.Errorf("mark invite used: %w", err)
	}
	s.trackInvite(inviteKey(code), inv, false)
	return next, nil
}

// release gives back an invite whose enrolment failed after redeem, so a
// failure of ours does not cost the newcomer their invite.
func (s *Identity) release(ctx context.Context, code string, inv invite, rev uint64) {
	inv.UsedAt = nil
	if _, err := s.store.Invites().Update(ctx, inviteKey(code), mustJSON(inv), rev); err != nil {
		s.log.Warn("could not release invite after a failed enrolment", "err", err)
		return
	}
	s.trackInvite(inviteKey(code), inv, true)
}

// Enroll redeems an invite and registers the device (and, for a member
// invite, the member with their ledger and ballots documents). Everything
// is checked before the invite is used; if a later step fails, the invite
// is released again.
func (s *Identity) Enroll(ctx context.Context, req wire.EnrollRequest) (resp wire.EnrollResponse, err error) {
	if err := validateEnroll(req); err != nil {
		return wire.EnrollResponse{}, err
	}
	actor := strings.ToLower(req.ActorID)
	s.mu.RLock()
	_, _, taken := s.roster.DeviceByActor(actor)
	s.mu.RUnlock()
	if taken || actor == s.meta.Actor {
		return wire.EnrollResponse{}, fault.Errorf(fault.Conflict, "actor_id %s is already registered; make a new random actor id", actor)
	}
	inv, rev, err := s.peekInvite(ctx, req.Invite)
	if err != nil {
		return wire.EnrollResponse{}, err
	}
	now := s.now()
	dev := &crdt.Device{ID: "d_" + newID(10), Name: strings.TrimSpace(req.DeviceName), PublicKey: req.PublicKey, ActorID: actor, AddedAt: now}
	if err := dev.Validate(); err != nil {
		return wire.EnrollResponse{}, asInvalid(err)
	}
	var m *crdt.Member
	if inv.For == inviteDevice {
		if old, ok := s.member(inv.Member); !ok || !old.ActiveAt(now) {
			return wire.EnrollResponse{}, errInviteInvalid
		}
	} else {
		// The circle admitted a member.admit's newcomer under a name:
		// that name, not one given at enrolment.
		name := strings.TrimSpace(req.MemberName)
		if inv.Name != "" {
			name = inv.Name
		}
		if name == "" {
			return wire.EnrollResponse{}, fault.Errorf(fault.InvalidRequest, "field \"member_name\" is required when joining as a new member")
		}
		m = &crdt.Member{ID: "m_" + newID(10), Name: name, JoinedAt: now, Devices: map[string]*crdt.Device{dev.ID: dev}}
		if err := m.Validate(); err != nil {
			return wire.EnrollResponse{}, asInvalid(err)
		}
	}
	used, err := s.redeem(ctx, req.Invite, inv, rev)
	if err != nil {
		return wire.EnrollResponse{}, err
	}
	defer func() {
		if err != nil {
			s.release(context.WithoutCancel(ctx), req.Invite, inv, used)
		}
	}()
	// What was checked above is checked again under the roster's lock,
	// where it cannot change before the write: another enrolment may have
	// taken the actor id, or the member may have been removed meanwhile.
	actorFree := func(r *crdt.Roster) error {
		if _, _, taken := r.DeviceByActor(actor); taken {
			return fault.Errorf(fault.Conflict, "actor_id %s is already registered; make a new random actor id", actor)
		}
		return nil
	}
	if inv.For == inviteDevice {
		m, err = s.updateMember(ctx, inv.Member, func(r *crdt.Roster, m *crdt.Member) error {
			if !m.ActiveAt(now) {
				return errInviteInvalid
			}
			if err := actorFree(r); err != nil {
				return err
			}
			m.Devices[dev.ID] = dev
			return asInvalid(m.Validate())
		})
		if errors.Is(err, errNoMember) {
			err = errInviteInvalid
		}
	} else {
		if err := s.createMemberDocs(ctx, m); err != nil {
			return wire.EnrollResponse{}, err
		}
		err = s.addMember(ctx, m, actorFree)
	}
	if err != nil {
		return wire.EnrollResponse{}, fmt.Errorf("register device: %w", err)
	}
	s.log.Info("device enrolled", "member", m.ID, "device", dev.ID, "new_member", inv.For == inviteMember)
	kind := crdt.AuditDeviceEnrolled
	if inv.For == inviteMember {
		kind = crdt.AuditMemberEnrolled
	}
	data := map[string]any{
		"member": m.ID, "member_name": m.Name, "device": dev.ID, "device_name": dev.Name,
		"public_key": dev.PublicKey, "actor": dev.ActorID, "invited_by": inv.CreatedBy,
	}
	if inv.Proposal != "" {
		data["proposal"] = inv.Proposal // the member.admit that let them in
	}
	if err := s.audit.Append(ctx, kind, data); err != nil {
		// The device is enrolled (the roster is the record); the audit
		// entry is what failed. Say so loudly rather than undo.
		s.log.Error("audit entry for an enrolment could not be written", "member", m.ID, "device", dev.ID, "err", err)
	}
	tok, err := s.issue(m.ID, dev.ID)
	if err != nil {
		return wire.EnrollResponse{}, err
	}
	return wire.EnrollResponse{CircleID: s.meta.ID, MemberID: m.ID, DeviceID: dev.ID, AccessToken: tok, ExpiresIn: int(accessTTL.Seconds())}, nil
}

// asInvalid turns a schema RuleError about enrolment input into a 400.
func asInvalid(err error) error {
	var re *crdt.RuleError
	if errors.As(err, &re) {
		return fault.Errorf(fault.InvalidRequest, "%s", re.Message)
	}
	return err
}

// createMemberDocs creates a new member's first ledger segment and ballots
// document and names them in m.
func (s *Identity) createMemberDocs(ctx context.Context, m *crdt.Member) error {
	ledger, ballots := crdt.NewDocID(), crdt.NewDocID()
	if err := s.engine.Create(ctx, string(ledger), func(d *automerge.Doc) ([]byte, error) {
		return nil, crdt.InitLedger(d, m.ID, 0)
	}); err != nil {
		return fmt.Errorf("create ledger: %w", err)
	}
	if err := s.engine.Create(ctx, string(ballots), func(d *automerge.Doc) ([]byte, error) {
		return nil, crdt.InitBallots(d, m.ID)
	}); err != nil {
		return fmt.Errorf("create ballots: %w", err)
	}
	m.Ledgers = []crdt.DocID{ledger}
	m.Ballots = ballots
	return nil
}

func validateEnroll(req wire.EnrollRequest) error {
	bad := func(format string, args ...any) error {
		return fault.Errorf(fault.InvalidRequest, format, args...)
	}
	switch {
	case req.Invite == "" || len(req.Invite) > 128:
		return bad("field \"invite\" is required: the invite code you were given")
	case !validName(req.DeviceName):
		return bad("field \"device_name\" must be 1 to %d characters", crdt.MaxNameLen)
	case req.MemberName != "" && !validName(req.MemberName):
		return bad("field \"member_name\" must be 1 to %d characters", crdt.MaxNameLen)
	case len(req.PublicKey) != ed25519.PublicKeySize:
		return bad("field \"public_key\" must be a raw 32-byte Ed25519 public key in base64, got %d bytes", len(req.PublicKey))
	case !validActor(req.ActorID):
		return bad("field \"actor_id\" must be a hex automerge actor id (2 to 64 hex digits, even length)")
	}
	return nil
}

func validName(s string) bool {
	s = strings.TrimSpace(s)
	return s != "" && utf8.RuneCountInString(s) <= crdt.MaxNameLen && utf8.ValidString(s)
}

func validActor(s string) bool {
	if len(s) < 2 || len(s) > 64 || len(s)%2 != 0 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// issue signs an access token for a device.
func (s *Identity) issue(member, device string) (string, error) {
	now := s.now()
	claims := accessClaims{
		Member: member,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.meta.ID,
			Subject:   device,
			Audience:  jwt.ClaimStrings{s.meta.ID},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(accessTTL)),
			ID:        newID(12),
		},
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims).SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("sign access token: %w", err)
	}
	return tok, nil
}

var errUnauthenticated = fault.Errorf(fault.Unauthenticated, "the access token is missing, expired or not valid for this circle; get a new one at POST /v1/token")

// Authenticate checks a circle-signed access token (EdDSA only) and that
// its device and member are still active.
func (s *Identity) Authenticate(ctx context.Context, token string) (Caller, error) {
	if v, ok := s.tokens.get(token, s.now()); ok { // tokens.go
		return s.caller(v.member, v.device)
	}
	var claims accessClaims
	_, err := jwt.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) {
		return s.key.Public(), nil
	},
		jwt.WithValidMethods([]string{"EdDSA"}),
		jwt.WithIssuer(s.meta.ID),
		jwt.WithAudience(s.meta.ID),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(clockSkew),
		jwt.WithTimeFunc(s.now),
	)
	if err != nil {
		return Caller{}, &fault.Error{Code: fault.Unauthenticated, Message: errUnauthenticated.Message, Err: err}
	}
	caller, err := s.caller(claims.Member, claims.Subject)
	if err != nil {
		return Caller{}, err
	}
	// ParseWithClaims required the expiry; the issue time is in the past
	// (within the skew), and a token without one holds from the start.
	v := verifiedToken{member: claims.Member, device: claims.Subject, until: claims.ExpiresAt.Add(clockSkew)}
	if claims.NotBefore != nil {
		v.notBefore = claims.NotBefore.Add(-clockSkew)
	}
	s.tokens.put(token, v)
	return caller, nil
}

// caller is the member and device a token names, if both are active.
func (s *Identity) caller(member, device string) (Caller, error) {
	m, d, err := s.activeDevice(member, device)
	if err != nil {
		return Caller{}, err
	}
	return Caller{Member: m.ID, Device: d.ID, Actor: d.ActorID}, nil
}

func (s *State) activeDevice(member, device string) (*crdt.Member, *crdt.Device, error) {
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	m, ok := s.roster.Members[member]
	if !ok || !m.ActiveAt(now) {
		return nil, nil, fault.Errorf(fault.Unauthenticated, "this member is not (or no longer) in the circle")
	}
	d, ok := m.Devices[device]
	if !ok || !d.ActiveAt(now) {
		return nil, nil, fault.Errorf(fault.Unauthenticated, "this device is revoked or unknown; enrol it again with a device invite")
	}
	return m, d, nil
}

// Token trades a device-signed assertion for an access token.
func (s *Identity) Token(ctx context.Context, assertion string) (wire.TokenResponse, error) {
	if len(assertion) > 4096 {
		return wire.TokenResponse{}, fault.Errorf(fault.InvalidRequest, "field \"assertion\" is too long for a device assertion")
	}
	// A reset statement, or anything else signed by the device that is not
	// a device assertion, is no ticket to a token.
	if err := crdt.CheckAssertionClaims(assertion); err != nil {
		var re *crdt.RuleError
		msg := "it carries claims a device assertion does not"
		if errors.As(err, &re) {
			msg = re.Message
		}
		return wire.TokenResponse{}, fault.Wrap(err, fault.Unauthenticated, "the device assertion is not valid: "+msg)
	}
	var claims jwt.RegisteredClaims
	var member, device string
	_, err := jwt.ParseWithClaims(assertion, &claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		m, d, err := s.deviceByID(kid)
		if err != nil {
			return nil, err
		}
		member, device = m, d.ID
		return ed25519.PublicKey(d.PublicKey), nil
	},
		jwt.WithValidMethods([]string{"EdDSA"}),
		jwt.WithAudience(s.meta.ID),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(clockSkew),
		jwt.WithTimeFunc(s.now),
	)
	if err != nil {
		return wire.TokenResponse{}, &fault.Error{Code: fault.Unauthenticated, Message: "the device assertion is not valid: " + assertionProblem(err), Err: err}
	}
	switch {
	case claims.Issuer != device:
		return wire.TokenResponse{}, fault.Errorf(fault.Unauthenticated, "the assertion's iss must be the device id in its kid header")
	case claims.IssuedAt == nil || claims.ExpiresAt.Sub(claims.IssuedAt.Time) > maxAssertionTTL:
		return wire.TokenResponse{}, fault.Errorf(fault.Unauthenticated, "the assertion may be valid for at most 5 minutes (exp - iat)")
	case claims.ID == "" || len(claims.ID) > 128:
		return wire.TokenResponse{}, fault.Errorf(fault.Unauthenticated, "the assertion needs a unique jti")
	}
	if _, _, err := s.activeDevice(member, device); err != nil {
		return wire.TokenResponse{}, err
	}
	// The store forgets a jti by the wall clock; remember it for as long as
	// the assertion stays valid by the server's clock.
	remember := time.Now().Add(claims.ExpiresAt.Time.Sub(s.now()) + clockSkew)
	if err := s.store.ClaimJTI(ctx, device+"/"+claims.ID, remember); err != nil {
		if errors.Is(err, store.ErrReplay) {
			return wire.TokenResponse{}, fault.Errorf(fault.Unauthenticated, "this assertion was already used (replayed jti); sign a new one")
		}
		if errors.Is(err, store.ErrJTIExpiry) {
			return wire.TokenResponse{}, fault.Errorf(fault.Unauthenticated, "the assertion expires too far in the future; check the device's clock")
		}
		return wire.TokenResponse{}, fmt.Errorf("record jti: %w", err)
	}
	tok, err := s.issue(member, device)
	if err != nil {
		return wire.TokenResponse{}, err
	}
	return wire.TokenResponse{AccessToken: tok, ExpiresIn: int(accessTTL.Seconds())}, nil
}

func (s *State) deviceByID(device string) (string, *crdt.Device, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, m := range s.roster.Members {
		if d, ok := m.Devices[device]; ok {
			return m.ID, d, nil
		}
	}
	return "", nil, errors.New("unknown device in kid")
}

func assertionProblem(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "it has expired"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "the signature does not match the device's key"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "aud must be this circle's id"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "kid must name an enrolled device and alg must be EdDSA"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "it is not a JWT"
	default:
		return "check alg (EdDSA), kid, iss, aud, iat, exp and jti"
	}
}

// RevokeDevice revokes a device of the caller's own member (a lost or
// sold phone). Its tokens stop working at once, its assertions are
// refused, and its actor id can write nothing more; what it wrote before
// stays. Revoking another member's device is forbidden: that is the
// circle's decision (member.remove), not one member's.
func (s *Identity) RevokeDevice(ctx context.Context, c Caller, device string) (wire.RevokedDevice, error) {
	owner, d, err := s.deviceByID(device)
	if err != nil {
		return wire.RevokedDevice{}, fault.Errorf(fault.NotFound, "no device %q in this circle", device)
	}
	if owner != c.Member {
		return wire.RevokedDevice{}, fault.Errorf(fault.Forbidden, "device %s belongs to another member; a member revokes only their own devices", device)
	}
	if d.RevokedAt != nil {
		return wire.RevokedDevice{DeviceID: device, RevokedAt: *d.RevokedAt}, nil
	}
	now := s.now()
	var revokedAt time.Time
	_, err = s.updateMember(ctx, owner, func(_ *crdt.Roster, m *crdt.Member) error {
		d := m.Devices[device]
		if d.RevokedAt != nil { // revoked meanwhile: the first revocation stands
			revokedAt = *d.RevokedAt
			return errNoChange
		}
		d.RevokedAt, revokedAt = &now, now
		return nil
	})
	if errors.Is(err, errNoChange) {
		return wire.RevokedDevice{DeviceID: device, RevokedAt: revokedAt}, nil
	}
	if err != nil {
		return wire.RevokedDevice{}, fmt.Errorf("revoke device: %w", err)
	}
	s.log.Info("device revoked", "member", owner, "device", device)
	if err := s.audit.Append(ctx, crdt.AuditDeviceRevoked, map[string]any{"member": owner, "device": device, "by_device": c.Device}); err != nil {
		s.log.Error("audit entry for a revocation could not be written", "device", device, "err", err)
	}
	return wire.RevokedDevice{DeviceID: device, RevokedAt: revokedAt}, nil
}
