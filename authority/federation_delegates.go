package authority

import (
	"slices"
	"strings"
	"time"

	"github.com/circles-coop/circles/crdt"
)

// FederationDelegate is a member holding an active mandate scoped to a
// federation ("federation:<id>"): one of the circle's delegates there.
type FederationDelegate struct {
	Member   string
	Name     string
	Mandate  string
	Issue    string
	Deadline time.Time
}

// FederationScope is the mandate scope that makes a delegate to federation.
func FederationScope(federation string) string { return "federation:" + federation }

// FederationDelegates lists, by mandate id, the active members who hold a
// mandate scoped "federation:<federation>" that is active now: not
// recalled, revoked by a reset, done, or past its deadline (even before
// the scheduler writes it expired).
func (a *Authority) FederationDelegates(federation string) []FederationDelegate {
	s := a.st
	now := s.now()
	scope := FederationScope(federation)
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []FederationDelegate
	if s.roster == nil {
		return nil
	}
	for _, m := range s.roster.Mandates {
		if m.Scope != scope || m.StatusAt(now) != crdt.MandateActive {
			continue
		}
		mem, ok := s.roster.Members[m.Member]
		if !ok || !mem.ActiveAt(now) {
			continue
		}
		out = append(out, FederationDelegate{Member: m.Member, Name: mem.Name, Mandate: m.ID, Issue: m.Issue, Deadline: m.Deadline})
	}
	slices.SortFunc(out, func(x, y FederationDelegate) int { return strings.Compare(x.Mandate, y.Mandate) })
	return out
}

// CircleName is the circle's name.
func (a *Authority) CircleName() string { return a.st.meta.Name }

// OnRosterChange sets fn to be called after every change of the roster
// (a mandate granted, recalled, done, expired or revoked by a reset; a
// member removed). fn must not block: it is called by the roster's
// writer.
func (a *Authority) OnRosterChange(fn func()) { a.st.rosterHook.Store(&fn) }

func (s *State) rosterChanged() {
	if fn := s.rosterHook.Load(); fn != nil {
		(*fn)()
	}
}
