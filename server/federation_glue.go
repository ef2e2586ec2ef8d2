package server

import (
	"context"
	"time"

	"github.com/circles-coop/circles/federation/link"
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
	s.replicaStop, s.replicaDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(s.replicaDone)
		t := time.NewTicker(replicaEvery)
		defer t.Stop()
		was := map[string]bool{} // federation → connected at the last look
		for {
			s.linkReplicas(was)
			select {
			case <-s.replicaStop:
				return
			case <-t.C:
			}
		}
	}()
}

func (s *Server) stopLinkingReplicas() {
	if s.replicaStop != nil {
		close(s.replicaStop)
		<-s.replicaDone
		s.replicaStop = nil
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
		listed := map[string]bool{s.auth.CircleID(): true}
		for _, c := range f.Circles {
			listed[c.CircleID] = true
		}
		for _, c := range r.View().Circles {
			if listed[c.CircleID] == c.Departed {
				r.MarkDeparted(c.CircleID, !listed[c.CircleID])
			}
		}
	}
}
