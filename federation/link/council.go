package link

import (
	"context"
	"errors"
	"fmt"

	"github.com/circles-coop/circles/federation"
)

// TellExpelVote tells fed's hub, in a notice signed with the circle's
// nkey, that this circle voted yes on the council's federation.expel
// proposal to expel target (package hub counts such notices and expels
// once a majority of member circles sent one for the same proposal). It
// speaks only for this circle's own vote. An error wrapping ErrHub is the
// hub's refusal, final; any other error is worth trying again.
func (l *Link) TellExpelVote(ctx context.Context, fed, proposal, target string) error {
	l.mu.Lock()
	m := l.ms[fed]
	var hub string
	if m != nil && m.active() {
		hub = m.Hub
	}
	l.mu.Unlock()
	if hub == "" {
		return fmt.Errorf("%w: the circle is not a member of federation %s", ErrNotMember, fed)
	}
	sn, err := federation.SignNotice(l.kp, federation.Notice{
		Type: federation.NoticeExpelVote, FederationID: fed, CircleID: l.cfg.CircleID,
		IssuedAt: l.cfg.Now().UnixMilli(), Proposal: proposal, Target: target,
	})
	if err != nil {
		return err
	}
	var resp federation.StatusResponse
	if err := l.call(ctx, hub+federation.PathExpelVote, sn, &resp); err != nil {
		if errors.Is(err, ErrHub) {
			return err
		}
		return fmt.Errorf("tell the hub the council's expel vote: %w", err)
	}
	return nil
}
