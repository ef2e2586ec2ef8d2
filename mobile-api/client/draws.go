package client

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/wire"
)

// Taking part in commit–reveal draws (crdt/drawround.go): the device's
// value for a draw is the HMAC-SHA256 of the circle and the draw id under
// the device's private key, so the device keeps no secret state between
// committing and revealing (a restart, or another process of the same
// home, reveals the same value), and nobody without the key can predict
// it.

// drawValue is this device's secret value for draw id.
func (d *Device) drawValue(circle, id string) []byte {
	mac := hmac.New(sha256.New, d.key.Seed())
	mac.Write([]byte("circles-draw-device-value\n" + circle + "\n" + id))
	return mac.Sum(nil)
}

// Draws lists the circle's commit–reveal draws (GET /v1/draws): status
// "open" for those not closed yet, "" for all.
func (d *Device) Draws(ctx context.Context, status string) (*wire.DrawList, error) {
	c, err := d.Client()
	if err != nil {
		return nil, err
	}
	path := "/v1/draws"
	if status != "" {
		path += "?status=" + url.QueryEscape(status)
	}
	var out wire.DrawList
	if err := c.call(ctx, "GET", path, nil, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// Draw returns one draw with its commitments, reveals and result.
func (d *Device) Draw(ctx context.Context, id string) (*wire.Draw, error) {
	c, err := d.Client()
	if err != nil {
		return nil, err
	}
	var out wire.Draw
	if err := c.call(ctx, "GET", "/v1/draws/"+url.PathEscape(id), nil, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// CommitmentStatement signs this device's commitment to draw id, bound to
// the circle, the draw and the member.
func (d *Device) CommitmentStatement(id string) (string, error) {
	info := d.Info()
	if !info.Enrolled() {
		return "", ErrNotEnrolled
	}
	commitment := crdt.DrawValueCommitment(info.CircleID, id, info.MemberID, d.drawValue(info.CircleID, id))
	c, err := d.Client()
	if err != nil {
		return "", err
	}
	return crdt.SignDrawCommit(d.key, info.DeviceID, info.CircleID, id, commitment, c.now())
}

// CommitDraw sends this device's commitment to draw id
// (POST /v1/draws/{id}/commitments).
func (d *Device) CommitDraw(ctx context.Context, id string) (*wire.Draw, error) {
	st, err := d.CommitmentStatement(id)
	if err != nil {
		return nil, err
	}
	c, err := d.Client()
	if err != nil {
		return nil, err
	}
	var out wire.Draw
	if err := c.call(ctx, "POST", "/v1/draws/"+url.PathEscape(id)+"/commitments", wire.DrawCommitRequest{Statement: st}, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// RevealDraw reveals this device's value in draw id
// (POST /v1/draws/{id}/reveals).
func (d *Device) RevealDraw(ctx context.Context, id string) (*wire.Draw, error) {
	info := d.Info()
	if !info.Enrolled() {
		return nil, ErrNotEnrolled
	}
	c, err := d.Client()
	if err != nil {
		return nil, err
	}
	var out wire.Draw
	req := wire.DrawRevealRequest{Value: hex.EncodeToString(d.drawValue(info.CircleID, id))}
	if err := c.call(ctx, "POST", "/v1/draws/"+url.PathEscape(id)+"/reveals", req, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// DrawAction is what TakePartInDraws did in one draw: "committed",
// "revealed", "waiting" (committed, reveals not open yet), "done"
// (nothing left to do), "other device" (the member committed from
// another device, which must reveal), or "failed" with Err.
type DrawAction struct {
	Draw    string
	Purpose string
	Phase   string
	Action  string
	Err     error
}

// TakePartInDraws does what this device can do in every open draw:
// commit in the commit phase, reveal in the reveal phase. It goes on
// after a draw fails, reporting each; the error is for the listing only.
func (d *Device) TakePartInDraws(ctx context.Context) ([]DrawAction, error) {
	list, err := d.Draws(ctx, "open")
	if err != nil {
		return nil, err
	}
	info := d.Info()
	mine := func(w wire.Draw) (committed, revealed, ours bool) {
		want := crdt.DrawValueCommitment(info.CircleID, w.ID, info.MemberID, d.drawValue(info.CircleID, w.ID))
		for _, c := range w.Commitments {
			if c.Member == info.MemberID {
				committed, ours = true, c.Commitment == want
			}
		}
		for _, r := range w.Reveals {
			if r.Member == info.MemberID {
				revealed = true
			}
		}
		return committed, revealed, ours
	}
	var out []DrawAction
	for _, w := range list.Draws {
		a := DrawAction{Draw: w.ID, Purpose: w.Purpose, Phase: w.Phase, Action: "done"}
		committed, revealed, ours := mine(w)
		switch {
		case w.Phase == "commit" && !committed:
			if _, err := d.CommitDraw(ctx, w.ID); err != nil {
				a.Action, a.Err = "failed", fmt.Errorf("commit: %w", err)
			} else {
				a.Action = "committed"
			}
		case w.Phase == "commit":
			a.Action = "waiting"
		case w.Phase == "reveal" && committed && !ours:
			a.Action = "other device"
		case w.Phase == "reveal" && committed && !revealed:
			if _, err := d.RevealDraw(ctx, w.ID); err != nil {
				a.Action, a.Err = "failed", fmt.Errorf("reveal: %w", err)
			} else {
				a.Action = "revealed"
			}
		}
		out = append(out, a)
	}
	return out, nil
}

// PairAudits lists the pair-link audits (GET /v1/pair-audits).
func (d *Device) PairAudits(ctx context.Context) (*wire.PairAuditList, error) {
	var out wire.PairAuditList
	return &out, d.authed(ctx, "GET", "/v1/pair-audits", nil, &out)
}

// RecordInterview records, as an auditor, an interview with member.
func (d *Device) RecordInterview(ctx context.Context, audit, member, note string) (*wire.PairAudit, error) {
	var out wire.PairAudit
	return &out, d.authed(ctx, "POST", "/v1/pair-audits/"+url.PathEscape(audit)+"/interviews", wire.PairInterviewRequest{Member: member, Note: note}, &out)
}

// SetListeningSession sets, as an auditor, the listening session's date.
func (d *Device) SetListeningSession(ctx context.Context, audit string, req wire.PairSessionRequest) (*wire.PairAudit, error) {
	var out wire.PairAudit
	return &out, d.authed(ctx, "POST", "/v1/pair-audits/"+url.PathEscape(audit)+"/session", req, &out)
}

// PublishFindings publishes, as an auditor, the findings at the session.
func (d *Device) PublishFindings(ctx context.Context, audit, text string) (*wire.PairAudit, error) {
	var out wire.PairAudit
	return &out, d.authed(ctx, "POST", "/v1/pair-audits/"+url.PathEscape(audit)+"/findings", wire.PairFindingsRequest{Text: text}, &out)
}

// Mentorships lists the yearly mentorship pairs (GET /v1/mentorships).
func (d *Device) Mentorships(ctx context.Context) (*wire.Mentorships, error) {
	var out wire.Mentorships
	return &out, d.authed(ctx, "GET", "/v1/mentorships", nil, &out)
}

func (d *Device) authed(ctx context.Context, method, path string, in, out any) error {
	c, err := d.Client()
	if err != nil {
		return err
	}
	return c.call(ctx, method, path, in, out, true)
}
