package server

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/circles-coop/circles/federation/link"
	"github.com/circles-coop/circles/federation/replica"
)

// The federation link (server/federation.go, package federation/link)
// knows the circle's memberships and its leaf connections; the replicas
// (server/federation_docs.go, package federation/replica) hold the
// federations' documents. linkReplicas keeps the second in step with the
// first: a replica for every federation the circle is or was in, told
// how the link stands, asked to announce its heads when the link comes
// back, and told which circles the hub no longer lists (departed).

// replicaEvery is how often linkReplicas looks at the link.
const replicaEvery = 500 * time.Millisecond

func (s *Server) startLinkingReplicas() {
	if s.fed == nil || s.replicas == nil || s.fed.Conn() == nil {
		return // an external NATS: no federation
	}
	stop, done := s.replicaStop, make(chan struct{})
	s.replicaDone = done
	go func() {
		defer close(done)
		t := time.NewTicker(replicaEvery)
		defer t.Stop()
		was := map[string]bool{} // federation → connected at the last look
		for {
			s.linkReplicas(was)
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
}

// stopLinkingReplicas stops the loop and whatever still tells the hub
// (tellExpelVote).
func (s *Server) stopLinkingReplicas() {
	if s.replicaStop != nil {
		s.replicaStopOnce.Do(func() { close(s.replicaStop) })
	}
	if s.replicaDone != nil {
		<-s.replicaDone
		s.replicaDone = nil
	}
}

// linkReplicas is one look; was remembers each federation's connection.
func (s *Server) linkReplicas(was map[string]bool) {
	for _, f := range s.fed.Federations() {
		r, err := s.replicas.Replica(f.ID)
		if err != nil {
			if f.Status != link.StatusJoining && f.Status != link.StatusJoined {
				continue // left before this process started: nothing to show
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			r, err = s.replicas.Attach(ctx, s.fed.Conn(), f.ID, f.Name)
			cancel()
			if err != nil {
				s.log.Warn("federation: start the replica", "federation", f.ID, "err", err)
				continue
			}
			id := f.ID
			r.SetLinkState(func() (string, bool) {
				cur, ok := s.fed.Federation(id)
				return cur.Status, ok && cur.Connected
			})
		}
		if f.Connected && !was[f.ID] {
			r.Announce() // back on the link: catch up at once
		}
		was[f.ID] = f.Connected
		if f.Status != link.StatusJoined || len(f.Circles) == 0 {
			continue // the hub's list is only known while linked
		}
		listed := make(map[string]bool, len(f.Circles))
		for _, c := range f.Circles {
			listed[c.CircleID] = true
		}
		r.FollowListing(listed)
	}
}

// federationDecided is told once of each federation proposal this
// circle's replica sees decided. When the council passed a
// federation.expel with this circle's yes, the circle tells the hub its
// vote (the hub counts the member circles' votes itself and revokes the
// target once a majority told it: federation/hub/council.go).
func (s *Server) federationDecided(fed string, p replica.Proposal) {
	if s.cfg.FederationDecided != nil {
		s.cfg.FederationDecided(fed, p)
	}
	if p.Kind != "federation.expel" || p.Status != replica.StatusPassed || p.Votes[s.auth.CircleID()] != "yes" || s.fed == nil {
		return
	}
	var payload struct {
		CircleID string `json:"circle_id"`
	}
	if json.Unmarshal(p.Payload, &payload) != nil || payload.CircleID == "" {
		return
	}
	go s.tellExpelVote(s.replicaStop, fed, p.ID, payload.CircleID)
}

// tellExpelVote tells the hub the circle's expel vote, trying again every
// 5 s while the hub cannot be reached, for up to half an hour or until
// stop closes.
func (s *Server) tellExpelVote(stop <-chan struct{}, fed, proposal, target string) {
	for range 360 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := s.fed.TellExpelVote(ctx, fed, proposal, target)
		cancel()
		switch {
		case err == nil:
			s.log.Info("federation: told the hub the council's expel vote", "federation", fed, "proposal", proposal, "target", target)
			return
		case errors.Is(err, link.ErrHub), errors.Is(err, link.ErrNotMember):
			s.log.Warn("federation: the hub refused the council's expel vote", "federation", fed, "proposal", proposal, "err", err)
			return
		}
		select {
		case <-stop:
			return
		case <-time.After(5 * time.Second):
		}
	}
}
