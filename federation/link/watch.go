package link

import (
	"context"
	"os"
	"time"

	"github.com/circles-coop/circles/federation"
)

// refreshEvery is how often a linked circle asks its hub for the member
// circles.
const refreshEvery = 30 * time.Second

// watch runs until Close: it marks a membership joined once its link is
// up, asks the hub of a link that is down whether the circle is still a
// member (an expelled circle's connection is closed and refused by the
// hub; the circle then stops trying and says "expelled"), refreshes the
// member circles now and then, and tells hubs of leaves they missed.
func (l *Link) watch() {
	defer close(l.done)
	t := time.NewTicker(l.cfg.WatchEvery)
	defer t.Stop()
	lastAsked := map[string]time.Time{}
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		l.watchOnce(lastAsked)
	}
}

func (l *Link) watchOnce(lastAsked map[string]time.Time) {
	conn := l.connected()
	now := time.Now()
	type ask struct {
		m     Membership
		leave bool
	}
	var asks []ask
	l.mu.Lock()
	changed := false
	for _, m := range l.ms {
		switch {
		case m.active() && conn[m.HubServer]:
			if m.Status == StatusJoining {
				m.Status, m.ChangedAt, changed = StatusJoined, l.cfg.Now().UTC(), true
			}
			if now.Sub(lastAsked[m.ID]) >= refreshEvery {
				asks = append(asks, ask{m: *m})
			}
		case m.active():
			asks = append(asks, ask{m: *m})
		case m.Status == StatusLeft && !m.LeaveToldHub:
			asks = append(asks, ask{m: *m, leave: true})
		}
	}
	if changed {
		if err := l.saveLocked(); err != nil {
			l.log.Error("save memberships", "err", err)
		}
	}
	l.mu.Unlock()
	for _, a := range asks {
		lastAsked[a.m.ID] = now
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if a.leave {
			l.tellLeave(ctx, a.m)
		} else {
			l.askStatus(ctx, a.m)
		}
		cancel()
	}
}

// askStatus asks m's hub about the circle and records what it says.
func (l *Link) askStatus(ctx context.Context, m Membership) {
	sn, err := federation.SignNotice(l.kp, federation.Notice{Type: federation.NoticeStatus, FederationID: m.ID, CircleID: l.cfg.CircleID, IssuedAt: l.cfg.Now().UnixMilli()})
	if err != nil {
		return
	}
	var resp federation.StatusResponse
	if err := l.call(ctx, m.Hub+federation.PathStatus, sn, &resp); err != nil {
		l.log.Debug("ask the hub", "federation", m.ID, "err", err)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	cur := l.ms[m.ID]
	if cur == nil || !cur.active() || cur.JoinedAt != m.JoinedAt {
		return // it changed meanwhile
	}
	switch resp.Status {
	case federation.HubMember:
		if resp.Circles != nil {
			cur.Circles = resp.Circles
		}
	case federation.HubExpelled, federation.HubLeft:
		cur.Status, cur.ChangedAt = StatusExpelled, l.cfg.Now().UTC()
		if resp.Status == federation.HubLeft {
			cur.Status, cur.LeaveToldHub = StatusLeft, true
		}
		if err := l.applyLocked(); err != nil {
			l.log.Error("unlink from hub", "federation", m.ID, "err", err)
		}
		os.Remove(l.credsPath(m.ID))
		l.log.Warn("the hub says this circle is no longer a member", "federation", m.ID, "status", resp.Status)
	default:
		return
	}
	if err := l.saveLocked(); err != nil {
		l.log.Error("save memberships", "err", err)
	}
}
