package crdt

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// RuleReset names the rule a reset statement breaks.
const RuleReset = "reset"

// ResetTyp is the typ claim of every reset statement. Any other JWT a
// device signs (a token assertion) must not carry a typ claim at all, so
// the two can never pass for each other (see CheckAssertionClaims).
const ResetTyp = "reset"

// ResetSkew is how far in the future a statement's iat may lie (clocks of
// phones drift).
const ResetSkew = 5 * time.Minute

// ResetClaims are the claims of a hard-reset statement (DESIGN.md §6):
// signed by a device key, bound to one circle and one epoch.
type ResetClaims struct {
	Typ    string `json:"typ"`
	Epoch  int64  `json:"epoch"`
	Reason string `json:"reason,omitempty"`
	jwt.RegisteredClaims
}

// ResetSignature is a verified reset statement.
type ResetSignature struct {
	JTI       string    `json:"jti"`
	Member    string    `json:"member"`
	Device    string    `json:"device"`
	Epoch     int64     `json:"epoch"`
	Reason    string    `json:"reason,omitempty"`
	IssuedAt  time.Time `json:"iat"`
	Statement string    `json:"statement"` // the JWT, verbatim
}

// SignReset makes a reset statement with a device key. It is what a
// member's device does, online or offline.
func SignReset(key ed25519.PrivateKey, device, circle string, epoch int64, reason, jti string, now time.Time) (string, error) {
	if len(reason) > MaxNoteLen {
		return "", fieldErr("reset", "reason", fmt.Sprintf("must be at most %d characters", MaxNoteLen))
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, ResetClaims{
		Typ: ResetTyp, Epoch: epoch, Reason: reason,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: device, Audience: jwt.ClaimStrings{circle}, IssuedAt: jwt.NewNumericDate(now), ID: jti,
		},
	})
	t.Header["kid"] = device
	return t.SignedString(key)
}

func resetErr(format string, args ...any) error {
	return &RuleError{Rule: RuleReset, Message: fmt.Sprintf(format, args...)}
}

// resetClaimNames are the only claims a reset statement may carry. A
// statement is a statement and nothing else: with exp, nbf or sub it could
// pass for a token assertion or another kind of JWT, so those are refused.
var resetClaimNames = []string{"typ", "epoch", "reason", "iss", "aud", "iat", "jti"}

// ParseReset checks a statement's signature against the roster and its
// claims, explicitly, and returns it:
//
//   - header alg is EdDSA (nothing else is even tried) and kid names an
//     enrolled device of the roster, whose key signed it;
//   - the claims are exactly typ, epoch, reason?, iss, aud, iat and jti
//     (DESIGN.md §6): typ is "reset"; aud is this circle and only it;
//     epoch is a whole number ≥ 0; iss is the device of kid; iat lies
//     between the years 2000 and 2200; jti is an id.
//
// It does not judge time against a clock, the current epoch or the
// signer's standing: AdmitReset and CheckReset do, with the circle's
// clock and window. Every refusal is a *RuleError of rule "reset".
func ParseReset(statement, circle string, r *Roster) (ResetSignature, error) {
	if len(statement) > MaxStatementLen {
		return ResetSignature{}, resetErr("the statement is longer than %d bytes", MaxStatementLen)
	}
	var claims ResetClaims
	member, device, raw, problem := deviceStatement(statement, &claims, r, resetClaimNames, "a reset statement")
	if problem != "" {
		return ResetSignature{}, resetErr("%s", problem)
	}
	aud, err := claims.GetAudience()
	switch {
	case claims.Typ != ResetTyp:
		return ResetSignature{}, resetErr("the statement's typ must be %q", ResetTyp)
	case err != nil || len(aud) != 1 || aud[0] != circle:
		return ResetSignature{}, resetErr("the statement's aud must be this circle (%s) and only it", circle)
	case raw["epoch"] == nil || string(raw["epoch"]) == "null":
		return ResetSignature{}, resetErr("the statement needs epoch, the circle's epoch it resets")
	case claims.Epoch < 0:
		return ResetSignature{}, resetErr("the statement's epoch must not be negative")
	case claims.Issuer == "" || claims.Issuer != device:
		return ResetSignature{}, resetErr("the statement's iss must be the device in its kid header")
	case claims.IssuedAt == nil:
		return ResetSignature{}, resetErr("the statement needs iat")
	case checkTime("reset", "iat", claims.IssuedAt.Time) != nil:
		return ResetSignature{}, resetErr("the statement's iat must lie between the years %d and %d", minYear, maxYear)
	case claims.ID == "" || !isID(claims.ID):
		return ResetSignature{}, resetErr("the statement needs a jti of at most 64 characters from [A-Za-z0-9._:-]")
	case len(claims.Reason) > MaxNoteLen:
		return ResetSignature{}, resetErr("the reason is longer than %d characters", MaxNoteLen)
	}
	return ResetSignature{
		JTI: claims.ID, Member: member, Device: device, Epoch: claims.Epoch, Reason: claims.Reason,
		IssuedAt: claims.IssuedAt.Time.UTC(), Statement: statement,
	}, nil
}

// deviceStatement verifies statement, a JWT a member's device signed
// (reset statements, draw commitments): signed with EdDSA by the enrolled
// device of r that its kid header names, its claims decoded into claims,
// and carrying no claim but those in allowed (the first other one, in
// name order, is named). It returns the device's member and id and the
// raw claims, or a problem ("" when it holds) for the caller's rule error, which says what
// kind of statement it is. jwt's own claim checks are off (they would
// also skip aud): each caller checks every claim itself.
func deviceStatement(statement string, claims jwt.Claims, r *Roster, allowed []string, kind string) (member, device string, raw map[string]json.RawMessage, problem string) {
	p := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}), jwt.WithoutClaimsValidation())
	tok, err := p.ParseWithClaims(statement, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("no kid")
		}
		for _, m := range r.Members {
			if d, ok := m.Devices[kid]; ok && len(d.PublicKey) == ed25519.PublicKeySize {
				member, device = m.ID, d.ID
				return ed25519.PublicKey(d.PublicKey), nil
			}
		}
		return nil, errors.New("unknown device")
	})
	if err != nil || tok == nil || !tok.Valid {
		return "", "", nil, "the statement does not verify: it must be a JWT signed (EdDSA) by an enrolled device of this circle named in kid"
	}
	raw, err = statementClaims(statement)
	if err != nil {
		return "", "", nil, "the statement's claims are not a JSON object"
	}
	for _, name := range slices.Sorted(maps.Keys(raw)) {
		if !slices.Contains(allowed, name) {
			return "", "", nil, fmt.Sprintf("the statement carries the claim %q; %s carries only %s", truncate(name, maxIDLen), kind, strings.Join(allowed, ", "))
		}
	}
	return member, device, raw, ""
}

// statementClaims decodes the claims segment of a compact JWS into its
// top-level names.
func statementClaims(statement string) (map[string]json.RawMessage, error) {
	parts := strings.Split(statement, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a compact JWS")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// CheckReset says whether a parsed signature counts now toward a reset of
// epoch: the epoch matches, it was signed within the reset window and not
// in the future, its device is not revoked, and its member is active and
// has been a member for at least reset.min_membership.
func CheckReset(sig ResetSignature, epoch int64, r *Roster, p Policies, now time.Time) error {
	return checkReset(sig, epoch, r, p.Duration("reset.window"), p.Duration("reset.min_membership"), now)
}

func checkReset(sig ResetSignature, epoch int64, r *Roster, window, minAge time.Duration, now time.Time) error {
	m, ok := r.Members[sig.Member]
	switch {
	case sig.Epoch != epoch:
		return resetErr("the statement is for epoch %d, but the circle is at epoch %d", sig.Epoch, epoch)
	case sig.IssuedAt.After(now.Add(ResetSkew)):
		return resetErr("the statement was signed in the future (iat %s); check the device's clock", sig.IssuedAt.Format(time.RFC3339))
	case now.Sub(sig.IssuedAt) > window:
		return resetErr("the statement is older than the reset window of %s", window)
	case !ok || !m.ActiveAt(now):
		return resetErr("the signer is not an active member")
	case m.Devices[sig.Device] == nil || !m.Devices[sig.Device].ActiveAt(now):
		return resetErr("the signing device is revoked")
	case minAge > 0 && now.Sub(m.JoinedAt) < minAge:
		return resetErr("the signer joined less than %s ago (reset.min_membership); their signature counts from %s", minAge, m.JoinedAt.Add(minAge).Format(time.RFC3339))
	}
	return nil
}

// CountReset returns the signatures that count now toward a reset of
// epoch — one per member, the newest of each — and the quorum needed.
func CountReset(sigs []ResetSignature, epoch int64, r *Roster, p Policies, now time.Time) (counted []ResetSignature, quorum int) {
	best := map[string]ResetSignature{}
	for _, s := range sigs {
		if CheckReset(s, epoch, r, p, now) != nil {
			continue
		}
		if b, ok := best[s.Member]; !ok || s.IssuedAt.After(b.IssuedAt) {
			best[s.Member] = s
		}
	}
	for _, s := range best {
		counted = append(counted, s)
	}
	sort.Slice(counted, func(i, j int) bool { return counted[i].Member < counted[j].Member })
	return counted, p.Int("reset.quorum")
}
