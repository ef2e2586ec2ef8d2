package mobileapi

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/circles-coop/circles/authority/fault"
	"github.com/circles-coop/circles/wire"
)

// FederationDocs serves what the circle's replica of each federation
// holds (federation/replica): the member circles' shared documents, the
// delegates' council, inter-circle credit and blueprints.
type FederationDocs interface {
	FederationView(ctx context.Context, c Caller, id string) (wire.FederationView, error)
	FederationPropose(ctx context.Context, c Caller, id string, req wire.FederationProposalRequest) (wire.FederationProposal, bool, error)
	FederationVote(ctx context.Context, c Caller, id, proposal, choice string) (wire.FederationProposal, error)
	FederationProposals(ctx context.Context, c Caller, id string) ([]wire.FederationProposal, error)
	FederationCredit(ctx context.Context, c Caller, id string, req wire.FederationCreditRequest) (wire.FederationCredit, bool, error)
	FederationBalances(ctx context.Context, c Caller, id string) ([]wire.FederationBalance, error)
	PublishBlueprint(ctx context.Context, c Caller, b wire.Blueprint) (wire.Blueprint, bool, error)
	AdoptBlueprint(ctx context.Context, c Caller, id, federation, circle string) (wire.Blueprint, bool, error)
}

func (a *api) registerFederationDocRoutes(g *echo.Group) {
	if a.svc.FederationDocs == nil {
		h := func(c echo.Context) error {
			return fault.Errorf(fault.NotImplemented, "federations are not available on this server")
		}
		for _, r := range []struct{ method, path string }{
			{"GET", "/federations/:id"}, {"POST", "/federations/:id/proposals"}, {"GET", "/federations/:id/proposals"},
			{"POST", "/federations/:id/proposals/:pid/votes"}, {"POST", "/federations/:id/credits"},
			{"GET", "/federations/:id/balances"}, {"POST", "/blueprints"}, {"POST", "/blueprints/:id/adopt"},
		} {
			g.Add(r.method, r.path, h)
		}
		return
	}
	g.GET("/federations/:id", a.federationView)
	g.POST("/federations/:id/proposals", a.federationPropose)
	g.GET("/federations/:id/proposals", a.federationProposals)
	g.POST("/federations/:id/proposals/:pid/votes", a.federationVote)
	g.POST("/federations/:id/credits", a.federationCredit)
	g.GET("/federations/:id/balances", a.federationBalances)
	g.POST("/blueprints", a.publishBlueprint)
	g.POST("/blueprints/:id/adopt", a.adoptBlueprint)
}

func createdStatus(created bool) int {
	if created {
		return http.StatusCreated
	}
	return http.StatusOK
}

func (a *api) federationView(c echo.Context) error {
	v, err := a.svc.FederationDocs.FederationView(c.Request().Context(), callerOf(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

func (a *api) federationPropose(c echo.Context) error {
	var req wire.FederationProposalRequest
	if err := bind(c, a.opts.MaxBody, &req); err != nil {
		return err
	}
	p, created, err := a.svc.FederationDocs.FederationPropose(c.Request().Context(), callerOf(c), c.Param("id"), req)
	if err != nil {
		return err
	}
	return c.JSON(createdStatus(created), p)
}

func (a *api) federationProposals(c echo.Context) error {
	ps, err := a.svc.FederationDocs.FederationProposals(c.Request().Context(), callerOf(c), c.Param("id"))
	if err != nil {
		return err
	}
	if ps == nil {
		ps = []wire.FederationProposal{}
	}
	return c.JSON(http.StatusOK, map[string]any{"proposals": ps})
}

func (a *api) federationVote(c echo.Context) error {
	var req struct {
		Choice string `json:"choice"`
	}
	if err := bind(c, a.opts.MaxBody, &req); err != nil {
		return err
	}
	if req.Choice == "" {
		return fault.Errorf(fault.InvalidRequest, "choice is required: yes, no or abstain")
	}
	p, err := a.svc.FederationDocs.FederationVote(c.Request().Context(), callerOf(c), c.Param("id"), c.Param("pid"), req.Choice)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

func (a *api) federationCredit(c echo.Context) error {
	var req wire.FederationCreditRequest
	if err := bind(c, a.opts.MaxBody, &req); err != nil {
		return err
	}
	cr, created, err := a.svc.FederationDocs.FederationCredit(c.Request().Context(), callerOf(c), c.Param("id"), req)
	if err != nil {
		return err
	}
	return c.JSON(createdStatus(created), cr)
}

func (a *api) federationBalances(c echo.Context) error {
	bs, err := a.svc.FederationDocs.FederationBalances(c.Request().Context(), callerOf(c), c.Param("id"))
	if err != nil {
		return err
	}
	if bs == nil {
		bs = []wire.FederationBalance{}
	}
	return c.JSON(http.StatusOK, map[string]any{"balances": bs})
}

func (a *api) publishBlueprint(c echo.Context) error {
	var req struct {
		ID    string `json:"id"`
		Title string `json:"title"`
		Body  string `json:"body"`
	}
	if err := bind(c, a.opts.MaxBody, &req); err != nil {
		return err
	}
	b, created, err := a.svc.FederationDocs.PublishBlueprint(c.Request().Context(), callerOf(c), wire.Blueprint{ID: req.ID, Title: req.Title, Body: req.Body})
	if err != nil {
		return err
	}
	return c.JSON(createdStatus(created), b)
}

func (a *api) adoptBlueprint(c echo.Context) error {
	var req struct {
		Federation string `json:"federation"`
		CircleID   string `json:"circle_id"`
	}
	if err := bind(c, a.opts.MaxBody, &req); err != nil {
		return err
	}
	b, created, err := a.svc.FederationDocs.AdoptBlueprint(c.Request().Context(), callerOf(c), c.Param("id"), req.Federation, req.CircleID)
	if err != nil {
		return err
	}
	return c.JSON(createdStatus(created), b)
}
