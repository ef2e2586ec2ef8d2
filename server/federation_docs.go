package server

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/circles-coop/circles/authority"
	"github.com/circles-coop/circles/federation/replica"
	"github.com/circles-coop/circles/sync/store"
)

// fedSource is what the circle shares in its federations, read from the
// authority: its name, its delegates (mandates scoped "federation:<id>")
// and its scorecard.
type fedSource struct{ a *authority.Authority }

var _ replica.Source = fedSource{}

func (f fedSource) Profile() replica.Profile { return replica.Profile{Name: f.a.CircleName()} }

func (f fedSource) Delegates(federation string) []replica.Delegate {
	ds := f.a.FederationDelegates(federation)
	out := make([]replica.Delegate, len(ds))
	for i, d := range ds {
		out[i] = replica.Delegate{Member: d.Member, Name: d.Name, Mandate: d.Mandate, Issue: d.Issue, Deadline: d.Deadline.UTC()}
	}
	return out
}

func (f fedSource) Scorecard(ctx context.Context) (json.RawMessage, error) {
	sc, err := f.a.Scorecard.Scorecard(ctx, authority.Caller{}, "quarter")
	if err != nil {
		return nil, err
	}
	return json.Marshal(sc)
}

// openReplicas opens the circle's federation replicas' manager; the
// federation link attaches a replica per federation joined
// (Replicas().Attach). A roster change (a mandate ends, a reset) makes
// every replica republish its delegates at once.
func (s *Server) openReplicas(ctx context.Context) error {
	s.replicaStop = make(chan struct{}) // closed by Close (federation_glue.go)
	s.replicas = replica.NewManager(replica.ManagerConfig{
		Circle:    s.auth.CircleID(),
		JS:        s.nats.JetStream(),
		Replicas:  s.cfg.Replicas,
		Source:    fedSource{s.auth},
		OnDecided: s.federationDecided, // federation_glue.go
		Logger:    s.cfg.Logger,
		Now:       s.cfg.Now,
	})
	if err := s.replicas.Open(ctx); err != nil {
		return fmt.Errorf("federation replicas: %w", err)
	}
	s.auth.OnRosterChange(s.replicas.RefreshAll)
	return nil
}

// Replicas is the circle's federation replicas: the link attaches one
// per federation joined, with a connection to the circle's NATS.
func (s *Server) Replicas() *replica.Manager { return s.replicas }

// NATS is the circle's NATS (the embedded server, or the connection to
// an external one), for the federation link and tests.
func (s *Server) NATS() *store.NATS { return s.nats }
