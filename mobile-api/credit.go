package mobileapi

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/circles-coop/circles/wire"
)

// Credits writes and reads mutual-credit transfers (DESIGN.md §1).
type Credits interface {
	// CreateCredit writes a transfer from the caller to in.To into the
	// caller's ledger; created is false when an identical transfer with the
	// same id was already there. A transfer to the caller or to someone
	// who is not a member is invalid_request; the same id with other
	// content is conflict. A transfer beyond the credit limit is stored
	// and comes back flagged over_limit.
	CreateCredit(ctx context.Context, c Caller, in wire.Credit) (stored wire.Credit, created bool, err error)
	// ListCredits pages through the transfers that member (everyone if
	// "") gave or received, in the order the mutual-credit view judges
	// them (by "at", then id, then author), each with its flags.
	ListCredits(ctx context.Context, c Caller, member string, limit int, cursor string) (wire.CreditList, error)
}

func (a *api) registerCreditRoutes(g *echo.Group) {
	g.POST("/credits", a.createCredit)
	g.GET("/credits", a.listCredits)
}

func (a *api) createCredit(c echo.Context) error {
	var in wire.Credit
	if err := bind(c, a.opts.MaxBody, &in); err != nil {
		return err
	}
	stored, created, err := a.svc.Credits.CreateCredit(c.Request().Context(), callerOf(c), in)
	if err != nil {
		return err
	}
	return renderCreated(c, created, stored)
}

func (a *api) listCredits(c echo.Context) error {
	limit, err := queryInt(c, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	list, err := a.svc.Credits.ListCredits(c.Request().Context(), callerOf(c), c.QueryParam("member"), limit, c.QueryParam("cursor"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list)
}
