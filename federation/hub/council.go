package hub

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/circles-coop/circles/federation"
)

// The delegates' council decides federation.expel proposals in the
// circles' own documents (federation/replica); the hub holds the power to
// revoke, and must not take any one circle's word that the council
// decided. So each circle tells the hub only its own vote (a notice
// signed with its nkey, sent once it saw the proposal pass), and the hub
// counts: once a majority of the member circles — the rule the council
// itself uses, the target included in the count — told it they voted yes
// on the same proposal, the target is expelled.

// ExpelVote records a circle's signed yes vote on a council proposal to
// expel another member, and expels the target once a majority of member
// circles voted so on that proposal.
func (h *Hub) ExpelVote(sn federation.SignedNotice) (federation.StatusResponse, error) {
	n, voter, err := h.verify(sn, federation.NoticeExpelVote)
	if err != nil {
		return federation.StatusResponse{}, err
	}
	if err := federation.CheckID("target circle id", n.Target); err != nil {
		return federation.StatusResponse{}, err
	}
	if err := federation.CheckID("proposal id", n.Proposal); err != nil {
		return federation.StatusResponse{}, err
	}
	if n.Target == voter.CircleID {
		return federation.StatusResponse{}, &apiError{http.StatusBadRequest, "invalid_request", "a circle does not vote to expel itself; it can leave"}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if cur := h.st.Members[voter.CircleID]; cur == nil || cur.Status != statusMember {
		return federation.StatusResponse{}, &apiError{http.StatusForbidden, "forbidden", "only a member circle's vote counts"}
	}
	target := h.st.Members[n.Target]
	if target == nil || target.Status != statusMember {
		return federation.StatusResponse{Status: statusMember}, nil // gone already: nothing to decide
	}
	key := n.Target + "/" + n.Proposal
	if h.st.ExpelVotes == nil {
		h.st.ExpelVotes = map[string][]string{}
	}
	prev, had := h.st.ExpelVotes[key]
	if !slices.Contains(prev, voter.CircleID) {
		h.st.ExpelVotes[key] = append(slices.Clone(prev), voter.CircleID)
		if err := h.st.save(h.cfg.DataDir); err != nil {
			if had {
				h.st.ExpelVotes[key] = prev
			} else {
				delete(h.st.ExpelVotes, key)
			}
			return federation.StatusResponse{}, err
		}
	}
	members, yes := 0, 0
	for id, m := range h.st.Members {
		if m.Status != statusMember {
			continue
		}
		members++
		if slices.Contains(h.st.ExpelVotes[key], id) {
			yes++
		}
	}
	h.log.Info("council expel vote", "voter", voter.CircleID, "target", n.Target, "proposal", n.Proposal, "yes", yes, "members", members)
	if yes >= members/2+1 {
		if err := h.revoke(n.Target, statusExpelled); err != nil {
			return federation.StatusResponse{}, fmt.Errorf("expel %s as the council decided: %w", n.Target, err)
		}
		h.log.Info("circle expelled by the council", "circle", n.Target, "proposal", n.Proposal)
	}
	return federation.StatusResponse{Status: statusMember}, nil
}
