package mobileapi

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/circles-coop/circles/wire"
)

// Rituals are the meetings with drawn facilitation, their minutes and
// temperature checks (API.md "Rituals").
type Rituals interface {
	// CreateMeeting calls a meeting and draws its facilitator; created is
	// false when the same meeting with this id was already there.
	CreateMeeting(ctx context.Context, c Caller, req wire.MeetingRequest) (m wire.Meeting, created bool, err error)
	// RecordMinutes writes a meeting's minutes, by its facilitator only.
	RecordMinutes(ctx context.Context, c Caller, id string, req wire.MinutesRequest) (m wire.Meeting, created bool, err error)
	// Check counts the caller's temperature check, once per member.
	Check(ctx context.Context, c Caller, id string, req wire.CheckRequest) (wire.CheckReceipt, error)
	Meeting(ctx context.Context, c Caller, id string) (wire.Meeting, error)
	Meetings(ctx context.Context, c Caller) (wire.MeetingList, error)
}

// Honours lets a holder step down and lists who handed power on.
type Honours interface {
	StepDown(ctx context.Context, c Caller, role string) (wire.Role, error)
	Honours(ctx context.Context, c Caller) (wire.Honours, error)
}

func (a *api) registerRitualRoutes(g *echo.Group) {
	g.POST("/meetings", a.createMeeting)
	g.GET("/meetings", a.listMeetings)
	g.GET("/meetings/:id", a.getMeeting)
	g.POST("/meetings/:id/minutes", a.recordMinutes)
	g.POST("/meetings/:id/checks", a.check)
	g.POST("/roles/:id/step-down", a.stepDown)
	g.GET("/honours", a.honours)
}

func (a *api) createMeeting(c echo.Context) error {
	var req wire.MeetingRequest
	if err := bind(c, a.opts.MaxBody, &req); err != nil {
		return err
	}
	m, created, err := a.svc.Rituals.CreateMeeting(c.Request().Context(), callerOf(c), req)
	if err != nil {
		return err
	}
	return renderCreated(c, created, m)
}

func (a *api) listMeetings(c echo.Context) error {
	list, err := a.svc.Rituals.Meetings(c.Request().Context(), callerOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list)
}

func (a *api) getMeeting(c echo.Context) error {
	m, err := a.svc.Rituals.Meeting(c.Request().Context(), callerOf(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, m)
}

func (a *api) recordMinutes(c echo.Context) error {
	var req wire.MinutesRequest
	if err := bind(c, a.opts.MaxBody, &req); err != nil {
		return err
	}
	m, created, err := a.svc.Rituals.RecordMinutes(c.Request().Context(), callerOf(c), c.Param("id"), req)
	if err != nil {
		return err
	}
	return renderCreated(c, created, m)
}

func (a *api) check(c echo.Context) error {
	var req wire.CheckRequest
	if err := bind(c, a.opts.MaxBody, &req); err != nil {
		return err
	}
	r, err := a.svc.Rituals.Check(c.Request().Context(), callerOf(c), c.Param("id"), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, r)
}

func (a *api) stepDown(c echo.Context) error {
	r, err := a.svc.Honours.StepDown(c.Request().Context(), callerOf(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

func (a *api) honours(c echo.Context) error {
	h, err := a.svc.Honours.Honours(c.Request().Context(), callerOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, h)
}
