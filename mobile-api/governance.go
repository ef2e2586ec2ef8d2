package mobileapi

import (
	"context"
	"net/http"

	"github.com/circles-coop/circles/authority/fault"

	"github.com/labstack/echo/v4"

	"github.com/circles-coop/circles/wire"
)

// Governance takes proposals and votes and shows what they decided: the
// proposals, the roles and the mandates.
type Governance interface {
	// Propose opens a proposal by the caller's member; created is false
	// when an identical proposal with the same id was already there.
	Propose(ctx context.Context, c Caller, req wire.ProposalRequest) (p wire.Proposal, created bool, err error)
	// Vote counts the caller's member's vote and returns the proposal
	// after it (decided, if the vote settled it).
	Vote(ctx context.Context, c Caller, proposal string, req wire.VoteRequest) (wire.Proposal, error)
	Proposal(ctx context.Context, c Caller, id string) (wire.Proposal, error)
	// Proposals lists the proposals, all or those of one status.
	Proposals(ctx context.Context, c Caller, status string) (wire.ProposalList, error)
	// Roles lists the roles of one status: active (""), retired, or all.
	Roles(ctx context.Context, c Caller, status string) (wire.RoleList, error)
	Mandates(ctx context.Context, c Caller) (wire.MandateList, error)
}

// Charters shows the circle's charter.
type Charters interface {
	// Charter returns the circle's ratified charter and its status now.
	Charter(ctx context.Context, c Caller) (wire.Charter, error)
}

// Mandates ends delegates' mandates.
type Mandates interface {
	// MandateDone ends a mandate whose task is done; only its delegate may
	// (fault.Forbidden), and only while it is active (fault.Conflict).
	MandateDone(ctx context.Context, c Caller, id string) (wire.Mandate, error)
}

func (a *api) registerGovernanceRoutes(g *echo.Group) {
	g.POST("/proposals", a.propose)
	g.GET("/proposals", a.listProposals)
	g.GET("/proposals/:id", a.getProposal)
	g.POST("/proposals/:id/votes", a.vote)
	g.GET("/roles", a.roles)
	g.GET("/mandates", a.mandates)
	g.POST("/mandates/:id/done", a.mandateDone)
	g.GET("/charter", a.charter)
}

func (a *api) propose(c echo.Context) error {
	var req wire.ProposalRequest
	if err := bind(c, a.opts.MaxBody, &req); err != nil {
		return err
	}
	p, created, err := a.svc.Governance.Propose(c.Request().Context(), callerOf(c), req)
	if err != nil {
		return err
	}
	return renderCreated(c, created, p)
}

func (a *api) listProposals(c echo.Context) error {
	status := c.QueryParam("status")
	switch status {
	case "", "open", "passed", "rejected", "cancelled":
	default:
		return fault.Errorf(fault.InvalidRequest, "query parameter \"status\" must be open, passed, rejected or cancelled")
	}
	list, err := a.svc.Governance.Proposals(c.Request().Context(), callerOf(c), status)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list)
}

func (a *api) getProposal(c echo.Context) error {
	p, err := a.svc.Governance.Proposal(c.Request().Context(), callerOf(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

func (a *api) vote(c echo.Context) error {
	var req wire.VoteRequest
	if err := bind(c, a.opts.MaxBody, &req); err != nil {
		return err
	}
	p, err := a.svc.Governance.Vote(c.Request().Context(), callerOf(c), c.Param("id"), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

func (a *api) roles(c echo.Context) error {
	status := c.QueryParam("status")
	switch status {
	case "", "active", "retired", "all":
	default:
		return fault.Errorf(fault.InvalidRequest, "query parameter \"status\" must be active, retired or all")
	}
	list, err := a.svc.Governance.Roles(c.Request().Context(), callerOf(c), status)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list)
}

func (a *api) mandates(c echo.Context) error {
	list, err := a.svc.Governance.Mandates(c.Request().Context(), callerOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list)
}

func (a *api) charter(c echo.Context) error {
	ch, err := a.svc.Charter.Charter(c.Request().Context(), callerOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ch)
}

func (a *api) mandateDone(c echo.Context) error {
	m, err := a.svc.Mandates.MandateDone(c.Request().Context(), callerOf(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, m)
}
