package client

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/wire"
)

// SignReset signs a hard-reset statement with this device's key, for the
// circle's epoch as this device last saw it, and writes it into the
// member's ballots document (DESIGN.md §6). It needs no network: the next
// Sync delivers it, and it counts if it is still inside the circle's
// reset window then. It returns the statement's jti.
func (d *Device) SignReset(reason string, now time.Time) (string, error) {
	info := d.Info()
	if !info.Enrolled() {
		return "", ErrNotEnrolled
	}
	if info.Circle == nil || info.Circle.Docs["ballots"] == "" || info.Circle.Docs["governance"] == "" {
		return "", fmt.Errorf("sign reset: %w", ErrNotSynced)
	}
	unlock, err := lockHome(d.home)
	if err != nil {
		return "", err
	}
	defer unlock()
	gov, found, err := d.store.loadDoc(info.Circle.Docs["governance"])
	if err != nil {
		return "", err
	}
	if !found {
		return "", fmt.Errorf("sign reset: the governance document: %w", ErrNotSynced)
	}
	epoch, err := crdt.ReadEpoch(gov)
	if err != nil {
		return "", fmt.Errorf("sign reset: read epoch: %w", err)
	}
	id := info.Circle.Docs["ballots"]
	ballots, found, err := d.store.loadDoc(id)
	if err != nil {
		return "", err
	}
	if !found {
		return "", fmt.Errorf("sign reset: the ballots document: %w", ErrNotSynced)
	}
	jti := uuid.NewString()
	st, err := crdt.SignReset(d.key, info.DeviceID, info.CircleID, int64(epoch), reason, jti, now)
	if err != nil {
		return "", fmt.Errorf("sign reset: %w", err)
	}
	if err := crdt.PutResetStatement(ballots, jti, st); err != nil {
		return "", fmt.Errorf("sign reset: %w", err)
	}
	if _, err := ballots.Commit("reset " + jti); err != nil {
		return "", fmt.Errorf("sign reset: commit: %w", err)
	}
	if err := d.store.saveDoc(id, ballots); err != nil {
		return "", err
	}
	return jti, nil
}

// Resets asks the server for the epoch, the pending reset signatures and
// the past resets (GET /v1/resets).
func (d *Device) Resets(ctx context.Context) (*wire.Resets, error) {
	c, err := d.Client()
	if err != nil {
		return nil, err
	}
	var out wire.Resets
	if err := c.call(ctx, "GET", "/v1/resets", nil, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// MemberName returns a member's name as this device last saw the circle,
// or the id when it does not know it.
func (d *Device) MemberName(id string) string {
	if c := d.Info().Circle; c != nil {
		for _, m := range c.Members {
			if m.MemberID == id {
				return m.Name
			}
		}
	}
	return id
}
