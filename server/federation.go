package server

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"

	"github.com/circles-coop/circles/authority"
	"github.com/circles-coop/circles/federation/link"
	"github.com/circles-coop/circles/wire"
)

// federationDir, in the data directory, holds the circle's nkey and its
// federation memberships (package federation/link).
const federationDir = "federation"

// natsServerName names the embedded nats-server after the circle's key:
// a federation hub tells its leaf connections apart by server name.
func natsServerName(key ed25519.PrivateKey) string {
	h := sha256.Sum256(key.Public().(ed25519.PublicKey))
	return "circled-" + hex.EncodeToString(h[:8])
}

// openFederation makes the circle's federation link on the embedded
// nats-server (none with an external NATS: joins are then refused).
func (s *Server) openFederation(meta authority.Meta) error {
	cfg := link.Config{
		Dir:        filepath.Join(s.cfg.DataDir, federationDir),
		CircleID:   meta.ID,
		CircleName: meta.Name,
		Logger:     s.cfg.Logger,
		WatchEvery: s.cfg.FederationWatch,
	}
	if s.nats.Server() != nil {
		cfg.NATS = s.nats
	}
	l, err := link.New(cfg)
	if err != nil {
		return err
	}
	s.fed = l
	return nil
}

// Federation is the circle's federation link: its memberships, and an
// in-process connection to the server its leaf links are on.
func (s *Server) Federation() *link.Link { return s.fed }

// fedLink adapts *link.Link to what the authority asks of it.
type fedLink struct{ l *link.Link }

var _ authority.FederationLink = fedLink{}

func (f fedLink) Join(ctx context.Context, proposal, hub, invite string) (string, string, error) {
	m, err := f.l.Join(ctx, proposal, hub, invite)
	return m.ID, m.Name, err
}

func (f fedLink) Leave(ctx context.Context, proposal, fed string) error {
	_, err := f.l.Leave(ctx, proposal, fed)
	if errors.Is(err, link.ErrNotMember) {
		return nil // expelled meanwhile: there is nothing left to leave
	}
	return err
}

func (f fedLink) Member(fed string) bool            { return f.l.Member(fed) }
func (f fedLink) LeftBy(fed, proposal string) bool  { return f.l.LeftBy(fed, proposal) }
func (f fedLink) listFederations() wire.Federations { return listFederations(f.l) }
func (f fedLink) Federations(ctx context.Context, _ authority.Caller) (wire.Federations, error) {
	return f.listFederations(), nil
}

// listFederations is GET /v1/federations: the link's memberships, each
// with the circles the hub reported. (The federation's replicas can fill
// the circles in instead; this is the one place to change.)
func listFederations(l *link.Link) wire.Federations {
	out := wire.Federations{Federations: []wire.Federation{}}
	for _, f := range l.Federations() {
		wf := wire.Federation{ID: f.ID, Name: f.Name, Status: f.Status, Connected: f.Connected, Circles: []wire.FederationCircle{}}
		for _, c := range f.Circles {
			wf.Circles = append(wf.Circles, wire.FederationCircle{CircleID: c.CircleID, Name: c.Name})
		}
		out.Federations = append(out.Federations, wf)
	}
	return out
}
