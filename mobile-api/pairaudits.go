package mobileapi

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/circles-coop/circles/wire"
)

// PairAudits shows the quarterly pair-link audits and takes what their
// auditors record.
type PairAudits interface {
	List(ctx context.Context, c Caller) (wire.PairAuditList, error)
	Get(ctx context.Context, c Caller, id string) (wire.PairAudit, error)
	Interview(ctx context.Context, c Caller, id string, req wire.PairInterviewRequest) (wire.PairAudit, error)
	SetSession(ctx context.Context, c Caller, id string, req wire.PairSessionRequest) (wire.PairAudit, error)
	PublishFindings(ctx context.Context, c Caller, id string, req wire.PairFindingsRequest) (wire.PairAudit, error)
}

// MentorshipRounds shows the yearly mentorship pairs.
type MentorshipRounds interface {
	List(ctx context.Context, c Caller) (wire.Mentorships, error)
}

func (a *api) registerPairAuditRoutes(g *echo.Group) {
	g.GET("/pair-audits", a.listPairAudits)
	g.GET("/pair-audits/:id", a.getPairAudit)
	g.POST("/pair-audits/:id/interviews", a.pairInterview)
	g.POST("/pair-audits/:id/session", a.pairSession)
	g.POST("/pair-audits/:id/findings", a.pairFindings)
	g.GET("/mentorships", a.mentorships)
}

func (a *api) listPairAudits(c echo.Context) error {
	list, err := a.svc.PairAudits.List(c.Request().Context(), callerOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list)
}

func (a *api) getPairAudit(c echo.Context) error {
	p, err := a.svc.PairAudits.Get(c.Request().Context(), callerOf(c), unescapedID(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

func (a *api) pairInterview(c echo.Context) error {
	var req wire.PairInterviewRequest
	if err := bind(c, a.opts.MaxBody, &req); err != nil {
		return err
	}
	p, err := a.svc.PairAudits.Interview(c.Request().Context(), callerOf(c), unescapedID(c), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

func (a *api) pairSession(c echo.Context) error {
	var req wire.PairSessionRequest
	if err := bind(c, a.opts.MaxBody, &req); err != nil {
		return err
	}
	p, err := a.svc.PairAudits.SetSession(c.Request().Context(), callerOf(c), unescapedID(c), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

func (a *api) pairFindings(c echo.Context) error {
	var req wire.PairFindingsRequest
	if err := bind(c, a.opts.MaxBody, &req); err != nil {
		return err
	}
	p, err := a.svc.PairAudits.PublishFindings(c.Request().Context(), callerOf(c), unescapedID(c), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

func (a *api) mentorships(c echo.Context) error {
	list, err := a.svc.Mentorships.List(c.Request().Context(), callerOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list)
}
